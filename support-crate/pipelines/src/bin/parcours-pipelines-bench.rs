//! `./course bench pipelines`: the whole workflow's throughput, three ways, in one run.
//!
//! 1. one process, the files one after the other, each step single-threaded in effect
//!    (a rayon pool of one thread): the baseline;
//! 2. one process, the files fanned out with rayon on every core;
//! 3. the course's Airflow DAG (`parcours_events`): a task instance per file, in the pool of
//!    one slot per core, scheduled by a real Airflow.
//!
//! Printed: MB/s and the ratio to the baseline for each; for Airflow, the time from the
//! trigger to the first task's start and the scheduler's cost per task instance.
//!
//! ```text
//! parcours-pipelines-bench [DAYS FILES_PER_DAY ROWS_PER_FILE]   (default: 2 4 1000000)
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use parcours::rayon::prelude::*;
use parcours_pipelines::airflow::{self, Airflow, AirflowPaths, EVENTS_DAG};
use parcours_pipelines::events::{EventSet, EventSpec};
use parcours_pipelines::steps;

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (days, files, rows) = match args.as_slice() {
        [d, f, r] => (*d as u32, *f as u32, *r),
        _ => (2, 4, 1_000_000),
    };
    let data = parcours::notebook::scratch("pipelines-bench");
    println!("generating {days} day(s) × {files} file(s) × {rows} events in {}...", data.display());
    let set = EventSet::generate(data.join("events"), &EventSpec::new(days, files, rows)).expect("the event set");
    let megabytes = set.bytes() as f64 / 1e6;
    let paths = set.paths();
    println!("{} files, {megabytes:.0} MB", paths.len());

    let fresh = |name: &str| {
        let dir = data.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("an output folder");
        dir
    };
    let one = parcours::rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool");
    let out = fresh("sequential");
    let started = Instant::now();
    one.install(|| {
        for file in &paths {
            steps::summarize_file(file, &steps::summary_path(&out, file)).expect("a summary");
        }
        steps::aggregate_folder(&out, &out.join("report.json")).expect("the report");
    });
    let sequential = started.elapsed();

    let out = fresh("rayon");
    let started = Instant::now();
    paths.par_iter().for_each(|file| {
        steps::summarize_file(file, &steps::summary_path(&out, file)).expect("a summary");
    });
    steps::aggregate_folder(&out, &out.join("report.json")).expect("the report");
    let parallel = started.elapsed();

    let mut rows_printed = vec![("one process, one thread", sequential), ("one process, rayon on every core", parallel)];
    let airflow_note = match run_airflow(&set, &fresh("airflow")) {
        Ok((elapsed, first_start, tasks)) => {
            rows_printed.push(("Airflow, one task instance per file", elapsed));
            let overhead = (elapsed.as_secs_f64() - parallel.as_secs_f64()) / tasks as f64;
            format!(
                "Airflow: {tasks} task instances; trigger to first task start {:.1} s; about {overhead:.2} s of scheduling per task instance",
                first_start.as_secs_f64()
            )
        }
        Err(error) => format!("Airflow not measured: {error}"),
    };
    println!("\n| how | seconds | MB/s | × one thread |\n| --- | ---: | ---: | ---: |");
    for (how, elapsed) in &rows_printed {
        println!(
            "| {how} | {:.2} | {:.0} | {:.2} |",
            elapsed.as_secs_f64(),
            megabytes / elapsed.as_secs_f64(),
            sequential.as_secs_f64() / elapsed.as_secs_f64()
        );
    }
    println!("\n{airflow_note}");
}

/// One run of the course's DAG over `set`: its wall time from the trigger, the time to its
/// first task's start, and how many task instances it ran.
fn run_airflow(set: &EventSet, out: &Path) -> Result<(Duration, Duration, usize), String> {
    let paths = AirflowPaths::for_course();
    paths.install_dags().map_err(|e| e.to_string())?;
    let mut airflow = Airflow::start_with(paths).map_err(|e| e.to_string())?;
    airflow.wait_for_dag(EVENTS_DAG).map_err(|e| e.to_string())?;
    let conf = serde_json::json!({"events": set.dir, "out": out});
    let triggered = Instant::now();
    let wall_clock_trigger = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let run = airflow.trigger(EVENTS_DAG, conf).map_err(|e| e.to_string())?;
    let instances = airflow.wait(EVENTS_DAG, &run, Duration::from_secs(3600)).map_err(|e| e.to_string())?;
    let elapsed = triggered.elapsed();
    let state = airflow.run_state(EVENTS_DAG, &run).map_err(|e| e.to_string())?;
    airflow.stop();
    if state != "success" {
        return Err(format!("the run {state}"));
    }
    let first = instances.iter().filter_map(|ti| airflow::seconds(ti.start_date.as_deref())).fold(f64::INFINITY, f64::min);
    Ok((elapsed, Duration::from_secs_f64((first - wall_clock_trigger).max(0.0)), instances.len()))
}
