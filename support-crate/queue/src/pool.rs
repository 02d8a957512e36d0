//! A pool of worker processes, started from a cell: Celery's `celery worker`, N times.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parcours::launch::{build_binaries, spawn_tied};

use crate::broker::Queue;
use crate::canvas::Flow;
use crate::worker::WorkerOptions;
use crate::QueueError;

/// The worker program's name.
pub const WORKER_BIN: &str = "parcours-queue-worker";
/// A folder holding the worker program, to skip the search.
pub const BIN_DIR_ENV: &str = "PARCOURS_QUEUE_BIN";
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Finds `parcours-queue-worker`: in [`BIN_DIR_ENV`]; beside the running program (this
/// crate's tests); else built with cargo into `$PARCOURS_HOME/target` (a notebook).
///
/// # Errors
/// When it is nowhere and cannot be built.
pub fn worker_program() -> Result<PathBuf, QueueError> {
    let found = |dir: &Path| Some(dir.join(WORKER_BIN)).filter(|path| path.is_file());
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return found(Path::new(&dir)).ok_or_else(|| {
            QueueError::Workers(format!("{BIN_DIR_ENV}: no {WORKER_BIN} in {dir:?}"))
        });
    }
    if let Some(path) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().skip(1).take(2).find_map(found))
    {
        return Ok(path);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let dir = build_binaries(&manifest, WORKER_BIN).map_err(QueueError::Workers)?;
    found(&dir).ok_or_else(|| QueueError::Workers(format!("cargo built no {WORKER_BIN} in {}", dir.display())))
}

/// One worker process of a pool.
#[derive(Debug)]
pub struct WorkerProcess {
    /// Its name, unique on the broker (apalis refuses a second live worker under a name).
    pub name: String,
    child: Option<Child>,
}

impl WorkerProcess {
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// How a pool's [`WorkerPool::stop`] went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolReport {
    /// Workers that finished their tasks and exited when asked.
    pub stopped: usize,
    /// Workers that had exited on their own (killed, or failed) before.
    pub exited_before: usize,
    /// Workers that did not stop in time and were killed.
    pub killed: usize,
}

/// Worker processes of the course's `parcours-queue-worker`, all on one queue. Dropping the
/// pool kills them; each also dies with the process that started it (the kernel).
#[derive(Debug)]
pub struct WorkerPool {
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    prefix: String,
    workers: Vec<WorkerProcess>,
}

impl WorkerPool {
    /// Starts `workers` worker processes on `queue`.
    ///
    /// # Errors
    /// When the program cannot be found, built or started.
    pub fn start(queue: &Queue, workers: usize, options: &WorkerOptions) -> Result<Self, QueueError> {
        Self::start_with(queue, workers, options, Vec::new())
    }

    /// Starts `workers` worker processes that run the steps of `flow` on `queue` (start a run
    /// with [`Queue::start_flow`]). Only `concurrency`, `batch`, the heartbeat and the polling
    /// of `options` apply: a failed step ends its flow, it is not retried.
    ///
    /// # Errors
    /// A flow that cannot run ([`Flow::validate`]), or workers that cannot be started.
    pub fn start_flow(queue: &Queue, flow: &Flow, workers: usize, options: &WorkerOptions) -> Result<Self, QueueError> {
        flow.validate()?;
        // The workers read the flow from a file: each process builds the same graph.
        let mut path = queue.runs_dir().as_os_str().to_owned();
        path.push(".flow.json");
        let path = std::path::PathBuf::from(path);
        let text = serde_json::to_string_pretty(flow).map_err(|e| QueueError::Flow(e.to_string()))?;
        std::fs::create_dir_all(queue.runs_dir()).map_err(QueueError::io("creating the run logs' folder"))?;
        std::fs::write(&path, text).map_err(QueueError::io(format!("writing {}", path.display())))?;
        Self::start_with(queue, workers, options, vec!["--flow".into(), path.into()])
    }

    fn start_with(
        queue: &Queue,
        workers: usize,
        options: &WorkerOptions,
        extra: Vec<std::ffi::OsString>,
    ) -> Result<Self, QueueError> {
        static POOLS: AtomicUsize = AtomicUsize::new(0);
        let mut args = queue.address().to_args();
        args.extend(extra);
        args.extend(["--queue".into(), queue.name().into()]);
        args.extend(["--runs-dir".into(), queue.runs_dir().into()]);
        args.extend(options.to_args().into_iter().map(Into::into));
        let mut pool = WorkerPool {
            program: worker_program()?,
            args,
            // Unique per kernel and pool: a name is refused while its last heartbeat is fresh.
            prefix: format!("w{}-{}", std::process::id(), POOLS.fetch_add(1, Ordering::Relaxed)),
            workers: Vec::new(),
        };
        for _ in 0..workers {
            pool.add()?;
        }
        Ok(pool)
    }

    /// Starts one more worker; returns its name.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn add(&mut self) -> Result<String, QueueError> {
        let name = format!("{}-{}", self.prefix, self.workers.len());
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .args(["--name", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = spawn_tied(command)
            .map_err(|e| QueueError::Workers(format!("cannot start {}: {e}", self.program.display())))?;
        self.workers.push(WorkerProcess { name: name.clone(), child: Some(child) });
        Ok(name)
    }

    /// The workers, in the order they were started.
    pub fn workers(&self) -> &[WorkerProcess] {
        &self.workers
    }

    /// The workers' names.
    pub fn names(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.name.clone()).collect()
    }

    /// How many workers still run.
    pub fn alive(&mut self) -> usize {
        self.workers
            .iter_mut()
            .filter_map(|w| w.child.as_mut())
            .map(|child| matches!(child.try_wait(), Ok(None)))
            .filter(|alive| *alive)
            .count()
    }

    /// Kills worker `index` with `SIGKILL`, as a crash or the OOM killer would: it finishes
    /// nothing, and tells the broker nothing.
    ///
    /// # Errors
    /// When there is no such running worker.
    pub fn kill(&mut self, index: usize) -> Result<(), QueueError> {
        let worker = self
            .workers
            .get_mut(index)
            .ok_or_else(|| QueueError::Workers(format!("no worker {index}")))?;
        let mut child = worker
            .child
            .take()
            .ok_or_else(|| QueueError::Workers(format!("worker {} is not running", worker.name)))?;
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// Asks every worker to stop (`SIGTERM`: it finishes the tasks it holds and returns the
    /// ones it had not started), waits, kills those still running after 20 s.
    ///
    /// # Errors
    /// Never at present; kept for a future wait that can fail.
    pub fn stop(mut self) -> Result<PoolReport, QueueError> {
        let mut report = PoolReport::default();
        for worker in &mut self.workers {
            if let Some(child) = worker.child.as_mut() {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    report.exited_before += 1;
                    worker.child = None;
                } else {
                    // SAFETY: kill(2) on our own child, not yet reaped.
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                }
            }
        }
        let started = Instant::now();
        for worker in &mut self.workers {
            let Some(mut child) = worker.child.take() else { continue };
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => {
                        report.stopped += 1;
                        break;
                    }
                    Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        report.killed += 1;
                        break;
                    }
                }
            }
        }
        Ok(report)
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            if let Some(mut child) = worker.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
