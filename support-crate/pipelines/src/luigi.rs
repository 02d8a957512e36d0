//! The pipeline run by Luigi (`luigi/parcours_luigi.py`): one `Summarize` task per event file,
//! then `Report`, with Luigi's local scheduler, from the course's Python environment.
//!
//! Luigi decides what runs from the targets: a task whose output exists is *complete* and is
//! not run again. A [`LuigiRun`] holds what each task did, read from the events Luigi fired
//! (complete, start, success, failure), not from its printed summary.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use parcours::diagram::{Bar, Diagram};
use parcours::display::Table;
use serde::Deserialize;

use crate::PipelineError;
use crate::events::EventSet;

/// One event Luigi fired for a task.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LuigiEvent {
    /// `complete` (its output existed: not run), `start`, `success` or `failure`.
    pub event: String,
    /// Luigi's id of the task, e.g. `Summarize_2026_11_01_part_...`.
    pub task: String,
    /// The task's class: `Summarize` or `Report`.
    pub family: String,
    /// When, in seconds since 1970.
    pub time: f64,
    /// The process that fired it (with several workers, each task runs in a process of its own).
    pub pid: u32,
    /// A failure's message.
    pub error: Option<String>,
}

/// What one `luigi.build` did.
#[derive(Clone, Debug)]
pub struct LuigiRun {
    /// Every task event, in order.
    pub events: Vec<LuigiEvent>,
    /// Whether the whole pipeline succeeded.
    pub succeeded: bool,
    /// Luigi's own summary, as it prints it.
    pub summary: String,
}

impl LuigiRun {
    fn tasks(&self, event: &str, family: &str) -> Vec<String> {
        let set: BTreeSet<String> = self
            .events
            .iter()
            .filter(|e| e.event == event && (family.is_empty() || e.family == family))
            .map(|e| e.task.clone())
            .collect();
        set.into_iter().collect()
    }

    /// The tasks that ran and succeeded (of class `family`, or all with `""`).
    pub fn ran(&self, family: &str) -> Vec<String> {
        self.tasks("success", family)
    }

    /// The tasks found complete, so not run.
    pub fn complete(&self, family: &str) -> Vec<String> {
        self.tasks("complete", family)
    }

    /// The tasks that failed, with their messages.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter(|e| e.event == "failure")
            .map(|e| (e.task.clone(), e.error.clone().unwrap_or_default()))
            .collect()
    }

    /// A table: per class of task, how many were complete already, ran, failed.
    pub fn table(&self) -> Table {
        let mut table = Table::new(["task", "complete already (skipped)", "ran", "failed"]).title("what Luigi did");
        for family in ["EventFile", "Summarize", "Report"] {
            let failed = self.events.iter().filter(|e| e.event == "failure" && e.family == family).count();
            table.push_row([
                family.to_string(),
                self.complete(family).len().to_string(),
                self.ran(family).len().to_string(),
                failed.to_string(),
            ]);
        }
        table
    }

    /// The run as a Gantt chart, one bar per task run. With several workers Luigi runs each
    /// task in a process of its own, so the lanes are slots: a bar goes in the first lane
    /// free when it starts, and there are as many lanes as tasks ever ran at once.
    pub fn gantt(&self) -> Diagram {
        let origin = self.events.iter().map(|e| e.time).fold(f64::INFINITY, f64::min);
        let mut runs: Vec<(f64, f64, &LuigiEvent, bool)> = Vec::new();
        for start in self.events.iter().filter(|e| e.event == "start") {
            let end = self.events.iter().find(|e| e.task == start.task && (e.event == "success" || e.event == "failure"));
            let Some(end) = end else { continue };
            runs.push((start.time - origin, end.time - origin, start, end.event == "failure"));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut lanes: Vec<f64> = Vec::new();
        let mut bars = Vec::new();
        for (start, end, event, failed) in runs {
            let lane = lanes.iter().position(|&busy_until| busy_until <= start).unwrap_or_else(|| {
                lanes.push(0.0);
                lanes.len() - 1
            });
            lanes[lane] = end;
            let bar = Bar::new(format!("slot {lane}"), event.family.clone(), start, end);
            bars.push(if failed { bar.color(Bar::RED) } else { bar });
        }
        Diagram::gantt("Luigi's run: the tasks, and how many ran at once", &bars)
    }
}

/// Runs the pipeline over `events` into `out` with `workers` Luigi workers.
///
/// # Errors
/// When Python or Luigi is missing (`./course setup` installs Luigi), or the program
/// `parcours-pipeline` cannot be found or built. A failing task is not an error here: the run
/// says so ([`LuigiRun::succeeded`], [`LuigiRun::failed`]).
pub fn run(events: &EventSet, out: &Path, workers: usize) -> Result<LuigiRun, PipelineError> {
    let python = parcours::notebook::parcours_home().join("venv").join("bin").join("python");
    if !python.is_file() {
        return Err(PipelineError::Program(format!(
            "no Python environment at {}: run ./course setup (it installs Luigi there)",
            python.display()
        )));
    }
    fs::create_dir_all(out).map_err(PipelineError::io("creating", out))?;
    let log = out.join(format!(".luigi-events-{}.jsonl", std::process::id()));
    let _ = fs::remove_file(&log);
    let output = Command::new(&python)
        .arg(script())
        .arg(&events.dir)
        .arg(out)
        .arg(workers.to_string())
        .arg(&log)
        .env("PARCOURS_PIPELINE_BIN", crate::program()?)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PipelineError::Program(format!("cannot run {}: {e}", python.display())))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'luigi'") {
        return Err(PipelineError::Program("Luigi is not installed in the course's Python environment: run ./course setup".into()));
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    let events: Vec<LuigiEvent> = text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    if events.is_empty() && !output.status.success() {
        return Err(PipelineError::Program(format!("Luigi did not run ({}):\n{stderr}", output.status)));
    }
    Ok(LuigiRun { events, succeeded: output.status.success(), summary: String::from_utf8_lossy(&output.stdout).trim().to_string() })
}

/// The Luigi module's path.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("luigi").join("parcours_luigi.py")
}
