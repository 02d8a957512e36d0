//! The tasks the course's workers know, and the handler that runs them.
//!
//! A worker is a compiled program: it can only run code it was built with (Celery ships the
//! task's *name*, and the worker imports the function: the same here). So the tasks of the
//! lessons are the variants of [`CourseTask`], and a payload is their JSON, e.g.
//! `{"kind": "square", "n": 7}`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::broker::Run;

/// A task of the lessons, as a worker receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CourseTask {
    /// `n²`: the "hello world" of task queues.
    Square {
        /// The number.
        n: u64,
    },
    /// Sleeps `ms` milliseconds, then answers `ms`: a task that takes time, not CPU.
    Sleep {
        /// How long.
        ms: u64,
    },
    /// Fails on its first `fail_first` attempts, then answers the attempt that worked: a
    /// flaky network call, to see retries.
    Flaky {
        /// How many attempts fail.
        fail_first: u32,
    },
    /// Counts the primes in `start..end`: CPU work.
    Primes {
        /// First number.
        start: u64,
        /// One past the last.
        end: u64,
    },
    /// Does nothing, answers nothing: to measure the queue itself.
    Noop,
}

impl CourseTask {
    /// Runs the task; `attempt` is apalis' attempt number (1 for the first run).
    ///
    /// # Errors
    /// A [`CourseTask::Flaky`] task on its failing attempts.
    pub async fn run(&self, attempt: usize) -> Result<Value, String> {
        match *self {
            CourseTask::Square { n } => Ok(n.wrapping_mul(n).into()),
            CourseTask::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(ms.into())
            }
            CourseTask::Flaky { fail_first } => {
                if attempt <= fail_first as usize {
                    Err(format!("attempt {attempt} fails on purpose (the first {fail_first} do)"))
                } else {
                    Ok(attempt.into())
                }
            }
            CourseTask::Primes { start, end } => {
                let count = tokio::task::spawn_blocking(move || count_primes(start, end))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(count.into())
            }
            CourseTask::Noop => Ok(Value::Null),
        }
    }
}

/// Primes in `start..end`, by trial division (slow on purpose: work to spread).
pub fn count_primes(start: u64, end: u64) -> u64 {
    (start..end)
        .filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

/// A handler of your own, on JSON payloads (see [`crate::worker::KernelWorker`]).
pub(crate) type CustomHandler = dyn Fn(Value, usize) -> Result<Value, Failure> + Send + Sync;

/// Why a run did not give a result.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The payload is not a task this worker knows: a dead letter, never retried.
    Malformed(String),
    /// The task failed: retried while attempts remain.
    Failed(String),
}

/// How a worker runs the tasks it takes: what the handler needs besides the task.
pub struct Handling {
    /// The worker's name, for the run log.
    pub worker: String,
    /// Attempts after the first before giving up (the retry layer waits between them).
    pub retries: u32,
    /// A run longer than this fails.
    pub time_limit: Option<Duration>,
    log: Option<Mutex<File>>,
    custom: Option<Arc<CustomHandler>>,
}

impl std::fmt::Debug for Handling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handling")
            .field("worker", &self.worker)
            .field("retries", &self.retries)
            .field("time_limit", &self.time_limit)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl Handling {
    /// Runs logged in `runs_dir/<worker>.jsonl` (created), if given.
    ///
    /// # Errors
    /// When the log cannot be created.
    pub fn new(
        worker: &str,
        retries: u32,
        time_limit: Option<Duration>,
        runs_dir: Option<&Path>,
    ) -> std::io::Result<Self> {
        let log = match runs_dir {
            Some(dir) => {
                fs::create_dir_all(dir)?;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("{worker}.jsonl")))?;
                Some(Mutex::new(file))
            }
            None => None,
        };
        Ok(Handling { worker: worker.to_string(), retries, time_limit, log, custom: None })
    }

    pub(crate) fn with_custom(mut self, custom: Arc<CustomHandler>) -> Self {
        self.custom = Some(custom);
        self
    }

    pub(crate) fn log(&self, line: &Value) {
        if let Some(log) = &self.log {
            let mut text = line.to_string();
            text.push('\n');
            // One write per line, appended: a killed worker leaves at worst a cut last line.
            let _ = log.lock().unwrap_or_else(|e| e.into_inner()).write_all(text.as_bytes());
        }
    }

    async fn run(&self, payload: Value, attempt: usize) -> Result<Value, Failure> {
        if let Some(custom) = &self.custom {
            let custom = Arc::clone(custom);
            // Your handler may block: a thread of the blocking pool, not the runtime's.
            return tokio::task::spawn_blocking(move || custom(payload, attempt))
                .await
                .unwrap_or_else(|e| Err(Failure::Failed(format!("the handler panicked: {e}"))));
        }
        let task: CourseTask = serde_json::from_value(payload.clone())
            .map_err(|error| Failure::Malformed(format!("malformed payload {payload}: {error}")))?;
        task.run(attempt).await.map_err(Failure::Failed)
    }
}

/// The course's apalis handler: logs the run, runs the task under the time limit (a payload
/// it cannot read is a dead letter), and gives up (`AbortError`: status `Killed`) once the
/// attempts are spent, so that neither broker retries it again on its own.
///
/// # Errors
/// The task's error, or an [`AbortError`] for a dead letter or the last attempt.
pub async fn handle(
    payload: Value,
    id: TaskId,
    attempt: Attempt,
    handling: Data<Arc<Handling>>,
) -> Result<Value, BoxDynError> {
    let attempt = attempt.current();
    let started = now_ms();
    let id = id.to_string();
    let line = |outcome: Option<&str>| {
        let mut line = serde_json::json!({
            "task": id, "worker": handling.worker, "pid": std::process::id(), "attempt": attempt,
            "started_ms": started,
        });
        if let Some(outcome) = outcome {
            line["ended_ms"] = now_ms().into();
            line["outcome"] = outcome.into();
        }
        line
    };
    handling.log(&line(None));
    let result = match handling.time_limit {
        Some(limit) => match tokio::time::timeout(limit, handling.run(payload, attempt)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Failed(format!("time limit of {limit:?} reached"))),
        },
        None => handling.run(payload, attempt).await,
    };
    match result {
        Ok(value) => {
            handling.log(&line(Some("ok")));
            Ok(value)
        }
        Err(Failure::Malformed(error)) => {
            handling.log(&line(Some(&error)));
            Err(AbortError::new(error).into())
        }
        Err(Failure::Failed(error)) if attempt > handling.retries as usize => {
            handling.log(&line(Some(&error)));
            Err(AbortError::new(format!("gave up after {attempt} attempt(s): {error}")).into())
        }
        Err(Failure::Failed(error)) => {
            handling.log(&line(Some(&error)));
            Err(error.into())
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Reads every worker's run log in `dir`: a start line and, if the run ended, an end line.
pub(crate) fn read_runs(dir: &Path) -> Vec<Run> {
    #[derive(Deserialize)]
    struct Line {
        task: String,
        worker: String,
        #[serde(default)]
        pid: u32,
        attempt: u32,
        started_ms: u64,
        ended_ms: Option<u64>,
        outcome: Option<String>,
        node: Option<String>,
        inputs: Option<usize>,
    }
    let mut runs: Vec<Run> = Vec::new();
    // A run is known by its worker, task, attempt and start: the end line completes it.
    let mut index: std::collections::HashMap<(String, String, u32, u64), usize> =
        std::collections::HashMap::new();
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        // A line cut by a killed worker does not parse: skipped.
        for line in text.lines().filter_map(|line| serde_json::from_str::<Line>(line).ok()) {
            let key = (line.worker.clone(), line.task.clone(), line.attempt, line.started_ms);
            match index.get(&key) {
                Some(&at) => {
                    let run = &mut runs[at];
                    run.ended_ms = line.ended_ms.or(run.ended_ms);
                    run.outcome = line.outcome.or(run.outcome.take());
                }
                None => {
                    index.insert(key, runs.len());
                    runs.push(Run {
                        task: line.task,
                        worker: line.worker,
                        pid: line.pid,
                        attempt: line.attempt,
                        started_ms: line.started_ms,
                        ended_ms: line.ended_ms,
                        outcome: line.outcome,
                        node: line.node,
                        inputs: line.inputs,
                    });
                }
            }
        }
    }
    runs
}
