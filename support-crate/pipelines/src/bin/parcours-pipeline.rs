//! The pipeline's steps as a program, for the schedulers that run them (Luigi, Airflow):
//!
//! ```text
//! parcours-pipeline generate DIR [DAYS FILES_PER_DAY ROWS_PER_FILE]
//! parcours-pipeline summarize INPUT OUTPUT
//! parcours-pipeline partition INPUT OUT_DIR
//! parcours-pipeline aggregate SUMMARIES_DIR OUTPUT
//! ```
//!
//! Exit status 0 when the step did its work or found it complete (it prints `done` or
//! `skipped`), 1 with the reason on stderr (a bad input names its file and line), 2 for a
//! wrong command line.

use std::path::Path;
use std::process::ExitCode;

use parcours_pipelines::events::{EventSet, EventSpec};
use parcours_pipelines::steps::{self, Outcome};

const USAGE: &str = "usage: parcours-pipeline generate DIR [DAYS FILES_PER_DAY ROWS_PER_FILE]
       parcours-pipeline summarize INPUT OUTPUT
       parcours-pipeline partition INPUT OUT_DIR
       parcours-pipeline aggregate SUMMARIES_DIR OUTPUT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["generate", dir] => EventSet::generate(dir, &EventSpec::for_course()).map(|set| format!("{} files", set.paths().len())),
        ["generate", dir, days, files, rows] => match (days.parse(), files.parse(), rows.parse()) {
            (Ok(days), Ok(files), Ok(rows)) => {
                EventSet::generate(dir, &EventSpec::new(days, files, rows)).map(|set| format!("{} files", set.paths().len()))
            }
            _ => return usage("DAYS, FILES_PER_DAY and ROWS_PER_FILE are whole numbers"),
        },
        ["summarize", input, output] => steps::summarize_file(Path::new(input), Path::new(output)).map(|outcome| match outcome {
            Outcome::Done => format!("done: {output}"),
            Outcome::Skipped => format!("skipped: {output} is complete"),
        }),
        ["partition", input, out] => steps::partition_file(Path::new(input), Path::new(out)).map(|outcome| match outcome {
            Outcome::Done => format!("done: {}", steps::manifest_path(Path::new(out), Path::new(input)).display()),
            Outcome::Skipped => format!("skipped: {input} is partitioned"),
        }),
        ["aggregate", summaries, output] => steps::aggregate_folder(Path::new(summaries), Path::new(output))
            .map(|report| format!("done: {} events from {} files into {output}", report.rows, report.inputs.len())),
        _ => return usage("unknown command"),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("parcours-pipeline: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("parcours-pipeline: {problem}\n{USAGE}");
    ExitCode::from(2)
}
