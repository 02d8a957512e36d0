//! The pipeline's behaviour: steps that are atomic and idempotent, bad input named by file and
//! line, Luigi skipping what is complete, and a real Airflow run supervised through its API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use parcours_pipelines::PipelineError;
use parcours_pipelines::airflow::{self, Airflow, AirflowPaths, EVENTS_DAG, Session};
use parcours_pipelines::events::{EventSet, EventSpec};
use parcours_pipelines::luigi;
use parcours_pipelines::steps::{self, Outcome, Summary};
use serde_json::json;

const PROGRAM: &str = env!("CARGO_BIN_EXE_parcours-pipeline");

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parcours-pipelines-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn use_this_build() {
    // SAFETY (edition 2024): set before any thread of this test reads it; every test sets the
    // same value.
    unsafe { std::env::set_var(parcours_pipelines::BIN_DIR_ENV, Path::new(PROGRAM).parent().unwrap()) };
}

/// Every file's totals per kind, counted the plain way: one line at a time.
fn counted(set: &EventSet) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for path in set.paths() {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            *kinds.entry(event["kind"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    kinds
}

#[test]
fn the_steps_sum_every_event_once_and_a_rerun_skips_what_is_complete() {
    let dir = folder("steps");
    let set = EventSet::generate(dir.join("events"), &EventSpec::new(2, 3, 5_000)).unwrap();
    assert_eq!(set.paths().len(), 6);
    let out = dir.join("summaries");
    std::fs::create_dir_all(&out).unwrap();
    for path in set.paths() {
        let name = format!("{}.json", path.file_stem().unwrap().to_string_lossy());
        let output = out.join(format!("{}_{name}", path.parent().unwrap().file_name().unwrap().to_string_lossy()));
        assert_eq!(steps::summarize_file(&path, &output).unwrap(), Outcome::Done);
        assert_eq!(steps::summarize_file(&path, &output).unwrap(), Outcome::Skipped);
    }
    let report = steps::aggregate_folder(&out, &dir.join("report.json")).unwrap();
    assert_eq!(report.rows, 30_000);
    assert_eq!(report.inputs.len(), 6);
    let kinds: BTreeMap<String, u64> = report.kinds.iter().map(|(k, t)| (k.clone(), t.count)).collect();
    assert_eq!(kinds, counted(&set));
    assert_eq!(report.days.len(), 2);
    // The same set again is kept, byte for byte; another spec replaces it.
    let first = std::fs::read(&set.paths()[0]).unwrap();
    let again = EventSet::generate(dir.join("events"), &EventSpec::new(2, 3, 5_000)).unwrap();
    assert_eq!(std::fs::read(&again.paths()[0]).unwrap(), first);
    // A summary listed twice would be counted twice: refused.
    let one: Summary = steps::read_summary(&out.read_dir().unwrap().next().unwrap().unwrap().path()).unwrap();
    assert!(matches!(steps::aggregate(&[one.clone(), one]), Err(PipelineError::Duplicate(_))));
    // A folder of other files is not taken for an event set.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let refused = EventSet::generate(&foreign, &EventSpec::new(1, 1, 10)).unwrap_err().to_string();
    assert!(refused.contains("not an event set"), "{refused}");
    assert!(foreign.join("notes.txt").is_file());
}

#[test]
fn a_step_killed_at_any_moment_leaves_its_output_whole_or_absent() {
    let dir = folder("killed");
    let set = EventSet::generate(dir.join("events"), &EventSpec::new(1, 1, 400_000)).unwrap();
    let input = &set.paths()[0];
    let output = dir.join("summary.json");
    let mut seen_absent = 0;
    for delay_ms in [2, 5, 10, 20, 40, 80, 160] {
        let _ = std::fs::remove_file(&output);
        let mut child = Command::new(PROGRAM).args(["summarize"]).arg(input).arg(&output).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        match steps::read_summary(&output) {
            Ok(summary) => assert_eq!(summary.rows, 400_000, "a complete summary, or none"),
            Err(PipelineError::Io { .. }) => seen_absent += 1,
            Err(other) => panic!("a half-written output after a kill at {delay_ms} ms: {other}"),
        }
    }
    assert!(seen_absent > 0, "no kill landed before the step finished: the test proved nothing");
    // A re-run (the last kill may have come after the end: its summary goes) cleans what the
    // killed runs left and completes.
    let _ = std::fs::remove_file(&output);
    assert_eq!(steps::summarize_file(input, &output).unwrap(), Outcome::Done);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn a_partition_step_killed_at_any_moment_is_complete_only_with_its_manifest() {
    let dir = folder("partition");
    let set = EventSet::generate(dir.join("events"), &EventSpec::new(1, 1, 300_000)).unwrap();
    let input = &set.paths()[0];
    let expected = counted(&set);
    let out = dir.join("partitioned");
    // Every part on disk is whole: all its lines are of its kind, as many as the input has.
    let parts_are_whole = || {
        for (kind, count) in &expected {
            let Ok(text) = std::fs::read_to_string(steps::partition_path(&out, kind, input)) else { continue };
            assert_eq!(text.lines().count() as u64, *count, "a half-written part for {kind}");
            assert!(text.lines().all(|line| line.contains(&format!("\"kind\":\"{kind}\""))), "a line of another kind in {kind}'s part");
        }
    };
    let mut seen_without_manifest = 0;
    for delay_ms in [2, 5, 10, 20, 40, 80, 160] {
        let _ = std::fs::remove_dir_all(&out);
        let mut child = Command::new(PROGRAM).arg("partition").arg(input).arg(&out).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        parts_are_whole();
        match steps::read_manifest(&steps::manifest_path(&out, input)) {
            Ok(manifest) => {
                assert_eq!(manifest.parts, expected);
                let missing: Vec<_> = expected.keys().filter(|kind| !steps::partition_path(&out, kind, input).is_file()).collect();
                assert!(missing.is_empty(), "a manifest written before its parts {missing:?}");
            }
            Err(_) => seen_without_manifest += 1,
        }
    }
    assert!(seen_without_manifest > 0, "no kill landed before the step finished: the test proved nothing");
    // A re-run completes what the last kill left, then skips; no temporary file is left.
    let _ = std::fs::remove_file(steps::manifest_path(&out, input));
    assert_eq!(steps::partition_file(input, &out).unwrap(), Outcome::Done);
    assert_eq!(steps::partition_file(input, &out).unwrap(), Outcome::Skipped);
    parts_are_whole();
    assert_eq!(steps::read_manifest(&steps::manifest_path(&out, input)).unwrap().parts, expected);
    let folders: Vec<String> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(folders.len(), expected.len() + 1, "a folder per kind and the manifests: {folders:?}");
    for folder in std::fs::read_dir(&out).unwrap().flatten() {
        let left: Vec<_> = std::fs::read_dir(folder.path()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
    // A lost part makes the input incomplete again, though its manifest is there.
    let (kind, _) = expected.iter().next().unwrap();
    std::fs::remove_file(steps::partition_path(&out, kind, input)).unwrap();
    assert_eq!(steps::partition_file(input, &out).unwrap(), Outcome::Done);
    // A bad line is named by file and line, and no manifest says the input is done.
    steps::cut_short(input).unwrap();
    let bad_out = dir.join("bad");
    let output = Command::new(PROGRAM).arg("partition").arg(input).arg(&bad_out).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains(&format!("{}:300000:", input.display())), "{message}");
    assert!(!steps::manifest_path(&bad_out, input).exists());
    // A kind that would name a folder elsewhere is refused.
    std::fs::write(input, "{\"ts\":\"2026-11-01T00:00:00\",\"user\":1,\"kind\":\"view\",\"amount\":0.0}\n\
                           {\"ts\":\"2026-11-01T00:00:01\",\"user\":1,\"kind\":\"../../x\",\"amount\":0.0}\n").unwrap();
    let error = steps::partition_file(input, &bad_out).unwrap_err().to_string();
    assert!(error.starts_with(&format!("{}:2: kind \"../../x\"", input.display())), "{error}");
}

#[test]
fn a_bad_file_fails_with_its_name_and_line_and_a_planted_fault_fails_once() {
    let dir = folder("bad");
    let set = EventSet::generate(dir.join("events"), &EventSpec::new(1, 2, 1_000)).unwrap();
    let (bad, good) = (&set.paths()[0], &set.paths()[1]);
    steps::cut_short(bad).unwrap();
    let output = Command::new(PROGRAM).arg("summarize").arg(bad).arg(dir.join("bad.json")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains(&format!("{}:1000:", bad.display())), "{message}");
    assert!(!dir.join("bad.json").exists());
    // A malformed line in the middle, too.
    let text = std::fs::read_to_string(good).unwrap().replacen("\"kind\"", "\"kind\" oops", 1);
    std::fs::write(good, text).unwrap();
    let error = steps::summarize(good).unwrap_err().to_string();
    assert!(error.starts_with(&format!("{}:1:", good.display())), "{error}");
    // Generating again mends both files.
    let set = EventSet::generate(dir.join("events"), &EventSpec::new(1, 2, 1_000)).unwrap();
    assert_eq!(steps::summarize(&set.paths()[0]).unwrap().rows, 1_000);
    steps::plant_fault(&set.paths()[1], 1).unwrap();
    assert!(matches!(steps::summarize(&set.paths()[1]), Err(PipelineError::Planted { left: 0, .. })));
    assert_eq!(steps::summarize(&set.paths()[1]).unwrap().rows, 1_000);
}

#[test]
fn luigi_runs_what_is_missing_and_names_a_bad_file() {
    use_this_build();
    let dir = folder("luigi");
    let set = EventSet::generate(dir.join("events"), &EventSpec::new(2, 2, 2_000)).unwrap();
    let out = dir.join("out");
    let first = luigi::run(&set, &out, 2).unwrap();
    assert!(first.succeeded, "{}", first.summary);
    assert_eq!(first.ran("Summarize").len(), 4);
    assert_eq!(first.ran("Report").len(), 1);
    assert_eq!(first.complete("EventFile").len(), 4);
    // Everything complete: nothing runs.
    let second = luigi::run(&set, &out, 2).unwrap();
    assert!(second.ran("").is_empty(), "{:?}", second.ran(""));
    assert_eq!(second.complete("Report").len(), 1);
    // One summary and the report gone: exactly those run again.
    let summaries: Vec<PathBuf> = std::fs::read_dir(out.join("summaries")).unwrap().flatten().map(|e| e.path()).collect();
    std::fs::remove_file(&summaries[0]).unwrap();
    std::fs::remove_file(out.join("report.json")).unwrap();
    let third = luigi::run(&set, &out, 2).unwrap();
    assert_eq!((third.ran("Summarize").len(), third.ran("Report").len()), (1, 1));
    assert_eq!(steps::aggregate_folder(&out.join("summaries"), &dir.join("check.json")).unwrap().rows, 8_000);
    // A cut file: its task fails with the file and line; the others still ran.
    let out = dir.join("out-bad");
    steps::cut_short(&set.paths()[3]).unwrap();
    let bad = luigi::run(&set, &out, 2).unwrap();
    assert!(!bad.succeeded);
    let failed = bad.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].1.contains(&format!("{}:", set.paths()[3].display())), "{failed:?}");
    assert_eq!(bad.ran("Summarize").len(), 3);
}

/// A real Airflow in a home of its own (not the notebooks'), installed by ./course setup.
fn test_airflow(name: &str) -> AirflowPaths {
    let course = AirflowPaths::for_course();
    assert!(course.installed(), "Airflow is not installed at {}: ./course setup installs it", course.program.display());
    let dir = folder(name);
    let paths = AirflowPaths { program: course.program, home: dir.join("home"), dags: dir.join("dags") };
    paths.install_dags().unwrap();
    paths
}

#[test]
fn airflow_runs_the_workflow_retries_a_fault_and_starts_and_stops_cleanly() {
    use_this_build();
    let paths = test_airflow("airflow");
    let data = paths.home.parent().unwrap().to_path_buf();
    let set = EventSet::generate(data.join("events"), &EventSpec::new(2, 3, 3_000)).unwrap();
    steps::plant_fault(&set.paths()[2], 1).unwrap();
    steps::cut_short(&set.paths()[4]).unwrap();

    let airflow = Airflow::start_with(paths.clone()).unwrap();
    // Started twice: refused, naming the running one.
    let twice = Airflow::start_with(paths.clone()).unwrap_err().to_string();
    assert!(twice.contains("already runs"), "{twice}");
    airflow.wait_for_dag(EVENTS_DAG).unwrap();
    let conf = json!({"events": set.dir, "out": data.join("out")});
    let run = airflow.trigger(EVENTS_DAG, conf.clone()).unwrap();
    let instances = airflow.wait(EVENTS_DAG, &run, Duration::from_secs(400)).unwrap();
    let state = |task: &str, index: i64| instances.iter().find(|ti| ti.task_id == task && ti.map_index == index).unwrap().clone();
    // Six mapped instances: the faulty file's succeeded on its second try, the cut one failed
    // (three tries), the others succeeded first time; the other five were summed, and the
    // report named the cut file and failed the run.
    assert_eq!(instances.iter().filter(|ti| ti.task_id == "summarize").count(), 6);
    assert_eq!((state("summarize", 2).state.as_deref(), state("summarize", 2).try_number), (Some("success"), 2));
    assert_eq!((state("summarize", 4).state.as_deref(), state("summarize", 4).try_number), (Some("failed"), 3));
    assert_eq!(state("summarize", 0).try_number, 1);
    assert_eq!(state("aggregate", -1).state.as_deref(), Some("success"));
    assert_eq!(state("report", -1).state.as_deref(), Some("failed"));
    assert_eq!(airflow.run_state(EVENTS_DAG, &run).unwrap(), "failed");
    let partial = steps::Report::read(&data.join("out").join("all").join("report.json")).unwrap();
    assert_eq!((partial.rows, partial.inputs.len()), (15_000, 5));
    let failed: Vec<String> = serde_json::from_str(&std::fs::read_to_string(data.join("out").join("all").join("failed.json")).unwrap()).unwrap();
    assert_eq!(failed, [set.paths()[4].display().to_string()]);
    let log = airflow.log(EVENTS_DAG, &run, "summarize", 4, 3).unwrap();
    assert!(log.contains(&format!("{}:", set.paths()[4].display())), "the failed try's log names the file and line:\n{log}");
    assert!(airflow::gantt(&instances).as_svg().contains("summarize[2]"));

    // Mended, triggered again: the five complete summaries are skipped, the run succeeds.
    EventSet::generate(&set.dir, &set.spec).unwrap();
    let run = airflow.trigger(EVENTS_DAG, conf.clone()).unwrap();
    airflow.wait(EVENTS_DAG, &run, Duration::from_secs(400)).unwrap();
    assert_eq!(airflow.run_state(EVENTS_DAG, &run).unwrap(), "success");
    let report = steps::Report::read(&data.join("out").join("all").join("report.json")).unwrap();
    assert_eq!((report.rows, report.inputs.len()), (18_000, 6));

    // A backfill of both days: one run per day, each reading its own day's three files.
    let session = Session::Servers(airflow);
    let days = session.backfill(EVENTS_DAG, "2026-11-01", "2026-11-02", conf).unwrap();
    assert_eq!(days.iter().map(|r| (r.day.clone().unwrap(), r.state.clone())).collect::<Vec<_>>(),
        [("2026-11-01".to_string(), "success".to_string()), ("2026-11-02".to_string(), "success".to_string())]);
    for run in &days {
        let report = steps::Report::read(&data.join("out").join(run.day.as_ref().unwrap()).join("report.json")).unwrap();
        assert_eq!((report.rows, report.inputs.len()), (9_000, 3));
    }
    let Session::Servers(mut airflow) = session else { unreachable!() };

    let pids: Vec<u32> = airflow.pids().into_values().collect();
    let stopped = airflow.stop();
    assert_eq!(stopped.gracefully.len() + stopped.killed.len(), 3, "{stopped}");
    assert_eq!(airflow.stop().to_string(), "Airflow was not running: nothing to stop");
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().contains(") Z "), "pid {pid} left running");
    }
    assert!(std::fs::read_dir(paths.home.join("run")).unwrap().next().is_none(), "pid files left");
    set_up_stale_pid_file(&paths);
    let mut again = Airflow::start_with(paths).unwrap();
    again.stop();
}

/// A pid file as a kernel killed mid-run leaves it: its process long gone.
fn set_up_stale_pid_file(paths: &AirflowPaths) {
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(paths.home.join("run").join("scheduler.pid"), gone.id().to_string()).unwrap();
}

#[test]
fn a_run_survives_a_killed_scheduler_and_counts_each_file_once() {
    use_this_build();
    let paths = test_airflow("restart");
    let data = paths.home.parent().unwrap().to_path_buf();
    let set = EventSet::generate(data.join("events"), &EventSpec::new(1, 6, 150_000)).unwrap();
    let conf = json!({"events": set.dir, "out": data.join("out")});
    let mut airflow = Airflow::start_with(paths.clone()).unwrap();
    airflow.wait_for_dag(EVENTS_DAG).unwrap();
    let run = airflow.trigger(EVENTS_DAG, conf).unwrap();
    // Once a first file is summarised, the scheduler dies as in a crash, with the tasks it runs.
    let started = std::time::Instant::now();
    while !airflow.task_instances(EVENTS_DAG, &run).unwrap().iter().any(|ti| ti.task_id == "summarize" && ti.state.as_deref() == Some("success")) {
        assert!(started.elapsed() < Duration::from_secs(300), "no file summarised after 5 minutes");
        std::thread::sleep(Duration::from_millis(200));
    }
    let scheduler = airflow.pids()["scheduler"] as i32;
    // SAFETY: kill(2) on the process group of our own child.
    unsafe { libc::kill(-scheduler, libc::SIGKILL) };
    airflow.stop();
    let airflow = Airflow::start_with(paths).unwrap();
    let instances = airflow.wait(EVENTS_DAG, &run, Duration::from_secs(600)).unwrap();
    assert_eq!(airflow.run_state(EVENTS_DAG, &run).unwrap(), "success", "{instances:?}");
    let out = data.join("out").join("all");
    let report = steps::Report::read(&out.join("report.json")).unwrap();
    assert_eq!((report.rows, report.inputs.len()), (900_000, 6), "each file counted once");
    let left: Vec<_> = std::fs::read_dir(out.join("summaries")).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn without_servers_a_dags_test_run_reports_its_own_task_instances() {
    use_this_build();
    let paths = test_airflow("dags-test");
    let data = paths.home.parent().unwrap().to_path_buf();
    let set = EventSet::generate(data.join("events"), &EventSpec::new(2, 2, 1_000)).unwrap();
    let session = Session::InProcess(paths.clone());
    let conf = json!({"events": set.dir, "out": data.join("out")});
    let days = session.backfill(EVENTS_DAG, "2026-11-02", "2026-11-02", conf).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].state, "success", "{:?}", days[0].instances);
    assert_eq!(days[0].instances_of("summarize").len(), 2, "the day's two files");
    let report = steps::Report::read(&data.join("out").join("2026-11-02").join("report.json")).unwrap();
    assert_eq!(report.rows, 2_000);
    // A DAG file that does not load makes no run: an error, not the previous run's record.
    session.write_dag("broken", "broken", "from airflow.sdk import dag\nthis is not python\n").unwrap();
    let error = session.run("broken", json!({})).unwrap_err().to_string();
    assert!(error.contains("made no run"), "{error}");
}
