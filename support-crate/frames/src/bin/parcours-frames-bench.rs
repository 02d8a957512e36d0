//! polars' side of `./course bench dataframes`: db-benchmark's group-by questions q1-q5 on a
//! dataset loaded in memory, best of `--runs` timings each, printed as one JSON line.
//!
//!     parcours-frames-bench --rows N --dir DIR [--runs 3]
//!
//! The dataset is written to `DIR` as parquet (the data) and `DIR/groupby.csv` (for pandas,
//! which reads it in the same run). Like db-benchmark, the load is not timed: the questions are;
//! and the string ids are categories on both sides.

use std::time::Instant;

use parcours_frames::frames::{Dataset, GroupByData, questions};
use parcours_frames::polars::prelude::{Categories, DataType, IntoLazy, col};

fn main() {
    if let Err(problem) = run() {
        eprintln!("parcours-frames-bench: {problem}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut rows = 1_000_000usize;
    let mut runs = 3usize;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rows" => rows = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            "--dir" => dir = Some(std::path::PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}: --rows N --dir DIR [--runs R]").into()),
        }
    }
    let dir = dir.ok_or("--dir DIR is needed: where to write the dataset")?;
    let data = Dataset::generate(dir.join("parquet"), GroupByData::new(rows), 8)?;
    let csv = dir.join("groupby.csv");
    if !csv.exists() {
        data.write_csv(&csv)?;
    }
    // The string ids as categories, as db-benchmark loads them for polars and pandas alike.
    let categories = DataType::from_categories(Categories::global());
    let frame = data
        .scan()?
        .with_columns(["id1", "id2", "id3"].map(|id| col(id).cast(categories.clone())))
        .collect()?;
    let mut timings = serde_json::Map::new();
    for question in questions() {
        let mut best = f64::INFINITY;
        let mut groups = 0;
        for _ in 0..runs.max(1) {
            let start = Instant::now();
            let answer = (question.query)(frame.clone().lazy()).collect()?;
            best = best.min(start.elapsed().as_secs_f64());
            groups = answer.height();
        }
        timings.insert(question.name.into(), serde_json::json!({ "seconds": best, "groups": groups }));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!("{}", serde_json::json!({ "rows": rows, "csv": csv, "threads": threads, "questions": timings }));
    Ok(())
}
