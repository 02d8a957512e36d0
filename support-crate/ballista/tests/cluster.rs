//! A Ballista cluster of separate processes (the course's program), as notebook 45 starts it:
//! its answers are one process' answers, it survives an executor killed in the middle of a
//! query, and its processes end with it. Built against the kernel's build of DataFusion
//! (tests/kernel_only_crates.py), never in release.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::Int64Array;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use parcours_ballista::cluster::{BallistaCluster, EXECUTOR_TIMEOUT, PROGRAM_ENV};
use parcours_ballista::data::GroupBy;
use parcours_ballista::{check_rows, run, sql};

/// The cluster's program, as cargo built it for these tests.
fn start(executors: usize) -> BallistaCluster {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var(PROGRAM_ENV, env!("CARGO_BIN_EXE_parcours-ballista")) };
    BallistaCluster::start(executors, 2).expect("the scheduler and its executors start")
}

/// db-benchmark's table, in a folder of this test's own.
fn table(name: &str, rows: usize) -> String {
    let folder: PathBuf = std::env::temp_dir().join(format!("parcours-ballista-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    GroupBy { rows, groups: 100, files: 4, seed: 7 }.write(&folder).expect("the table is written");
    folder.display().to_string()
}

fn register(ctx: &SessionContext, path: &str) {
    run(ctx.register_parquet("groupby", path, ParquetReadOptions::default())).expect("the table registers");
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
}

#[test]
fn a_cluster_of_processes_answers_as_one_process_and_its_processes_end_with_it() {
    let path = table("answers", 50_000);
    let local = SessionContext::new();
    register(&local, &path);
    let mut cluster = start(2);
    let remote = cluster.context().unwrap();
    register(&remote, &path);
    let query = "SELECT id1, sum(v1) AS v1, avg(v3) AS v3 FROM groupby GROUP BY id1 ORDER BY id1";
    let before = cluster.jobs().unwrap().len();
    check_rows("the group-by on the cluster", &sql(&remote, query).unwrap(), &sql(&local, query).unwrap());

    let jobs = cluster.jobs().unwrap();
    assert_eq!(jobs.len(), before + 1, "one job on the scheduler: {jobs:?}");
    let job = jobs.last().unwrap()["job_id"].as_str().unwrap().to_owned();
    let stages = cluster.stages(&job).unwrap();
    assert!(stages.len() >= 2, "a group-by is a map stage, a shuffle, then a reduce stage: {stages:?}");

    let pids = cluster.pids();
    assert_eq!(pids.len(), 3, "a scheduler and two executors");
    cluster.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pids.iter().any(|&pid| alive(pid)), "the cluster's processes outlived stop()");
}

#[test]
fn a_query_survives_an_executor_killed_while_it_runs() {
    // A self-join on id4 (100 groups of 2 000 rows): 400 million pairs to count, seconds of
    // work spread over both executors, so the kill lands in the middle of it.
    let path = table("killed", 200_000);
    let local = SessionContext::new();
    register(&local, &path);
    let expected = sql(&local, "SELECT sum(n * n) AS pairs FROM (SELECT count(*) AS n FROM groupby GROUP BY id4)").unwrap();
    let expected = expected[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);

    let mut cluster = start(2);
    let remote = cluster.context().unwrap();
    register(&remote, &path);
    let (sent, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let query = "SELECT count(*) AS pairs FROM groupby a JOIN groupby b ON a.id4 = b.id4";
        let _ = sent.send(sql(&remote, query));
    });
    let started = Instant::now();
    let running = loop {
        let jobs = cluster.jobs().unwrap();
        if let Some(job) = jobs.iter().find(|job| job["job_status"].as_str().is_some_and(|s| s.contains("Running"))) {
            break job["job_id"].as_str().unwrap().to_owned();
        }
        if let Ok(done) = answer.try_recv() {
            panic!("the query ended before it could be seen running: {done:?}; make it longer");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no job seen running: {jobs:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    cluster.kill_executor(2).unwrap();
    let killed_after = started.elapsed();

    let limit = Duration::from_secs(120) + EXECUTOR_TIMEOUT;
    let batches = answer
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no answer {limit:?} after the kill; scheduler:\n{}", cluster.log_tail("scheduler", 30)))
        .unwrap_or_else(|e| panic!("the query failed after the kill: {e}\nscheduler:\n{}", cluster.log_tail("scheduler", 30)));
    let pairs = batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
    assert_eq!(pairs, expected, "job {running}: the count after executor 2 was killed");
    println!(
        "executor 2 killed {:.1} s into job {running}; the right answer {:.1} s later",
        killed_after.as_secs_f64(),
        (started.elapsed() - killed_after).as_secs_f64()
    );
    cluster.stop();
}
