//! Processes for Module 2: a pool of worker processes fed through pipes with serde messages.
//!
//! A process shares nothing with its parent: work goes in as bytes (here one JSON line per
//! task on the child's stdin) and results come back the same way. That costs a start-up
//! (milliseconds, against microseconds for a thread) and a serialisation per message, and buys
//! isolation: a crash, a leak or a `static` in one worker cannot touch the others.
//!
//! ```no_run
//! use parcours_cluster::cluster::PrimeRange;
//! use parcours_cluster::processes::ProcessPool;
//!
//! let mut pool = ProcessPool::start(2).unwrap();
//! let counts = pool.map(&PrimeRange::split(100_000, 8)).unwrap();
//! assert_eq!(counts.iter().map(|c| c.primes).sum::<u64>(), 9_592);
//! pool.stop().unwrap();
//! ```

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cluster::{ClusterBinaries, ClusterError, PrimeCount, PrimeRange, spawn_tied};

/// The pipe worker's binary name.
pub const PIPE_WORKER_BIN: &str = "parcours-pipe-worker";
/// The shared counter's binary name (notebook 24: locks and memory between processes).
pub const SHARED_COUNTER_BIN: &str = "parcours-shared-counter";

/// What went wrong with a pool or one of its workers, with a message that says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The course's binaries could not be found or built.
    #[error(transparent)]
    Binaries(#[from] ClusterError),
    /// A course program (the pipe worker, the shared counter) is not beside the other binaries.
    #[error("{} does not exist: run `./course setup`, which builds every binary", .path.display())]
    MissingWorker {
        /// Where it should be.
        path: PathBuf,
    },
    /// A worker process could not be started.
    #[error(
        "cannot start {}: {source} (is it executable? run `./course setup` to rebuild it)",
        .path.display()
    )]
    Start {
        /// The worker's executable.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The pool was stopped.
    #[error("the pool is stopped: start a new one with ProcessPool::start")]
    Stopped,
    /// A worker no longer reads its pipe: it has exited.
    #[error("worker {pid} no longer reads its pipe ({source}): it has exited; start a new pool")]
    Pipe {
        /// The worker's process id.
        pid: u32,
        /// The write's error.
        source: std::io::Error,
    },
    /// A worker's pipe closed before it answered: it died (killed, or crashed).
    #[error(
        "worker {pid} died before answering (its pipe closed): start a new pool; its own \
         message, if any, is on the kernel's stderr"
    )]
    Died {
        /// The worker's process id.
        pid: u32,
    },
    /// A worker answered something that is not a result.
    #[error(
        "worker {pid} answered garbage ({source}): is {PIPE_WORKER_BIN} from another version \
         of the course? run `./course setup`"
    )]
    Garbage {
        /// The worker's process id.
        pid: u32,
        /// Why the answer is not a result.
        source: serde_json::Error,
    },
    /// A worker refused a task, with its reason.
    #[error("worker {pid} refused a task: {reason}")]
    Refused {
        /// The worker's process id.
        pid: u32,
        /// The worker's message.
        reason: String,
    },
    /// A worker could not be waited for.
    #[error("cannot wait for worker {pid}: {source}")]
    Wait {
        /// The worker's process id.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A worker ended with a failure once its input was closed.
    #[error("worker {pid} ended with {status}: its messages are on the kernel's stderr")]
    Failed {
        /// The worker's process id.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
}

/// The `parcours-pipe-worker` executable, found (or built, the first time) beside the cluster's
/// binaries: see [`ClusterBinaries::locate`].
///
/// # Errors
/// [`PoolError::Binaries`] when the binaries cannot be found or built,
/// [`PoolError::MissingWorker`] when the pipe worker is not among them.
pub fn pipe_worker() -> Result<PathBuf, PoolError> {
    course_program(PIPE_WORKER_BIN)
}

/// The `parcours-shared-counter` executable (a counter that processes share through a file,
/// unlocked, under a file lock, or in shared memory), found as [`pipe_worker`] is.
///
/// # Errors
/// As [`pipe_worker`].
pub fn shared_counter() -> Result<PathBuf, PoolError> {
    course_program(SHARED_COUNTER_BIN)
}

fn course_program(name: &str) -> Result<PathBuf, PoolError> {
    let binaries = ClusterBinaries::locate()?;
    let directory = binaries
        .worker
        .parent()
        .expect("a binary lives in a directory");
    let path = directory.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(PoolError::MissingWorker { path })
    }
}

struct PipeWorker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl PipeWorker {
    fn ask(&mut self, range: &PrimeRange) -> Result<PrimeCount, PoolError> {
        let pid = self.child.id();
        let stdin = self.stdin.as_mut().ok_or(PoolError::Stopped)?;
        let request = serde_json::to_string(range).expect("a range serialises");
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .map_err(|source| PoolError::Pipe { pid, source })?;
        let mut reply = String::new();
        match self.stdout.read_line(&mut reply) {
            Ok(0) | Err(_) => Err(PoolError::Died { pid }),
            // The pipe's format: one JSON `Result<PrimeCount, String>` per line.
            Ok(_) => serde_json::from_str::<Result<PrimeCount, String>>(&reply)
                .map_err(|source| PoolError::Garbage { pid, source })?
                .map_err(|reason| PoolError::Refused { pid, reason }),
        }
    }
}

/// Worker processes, each fed one task at a time through its pipes; dropped, it kills them.
/// They also die with the kernel that started them (see [`spawn_tied`]).
pub struct ProcessPool {
    workers: Vec<Mutex<PipeWorker>>,
}

impl ProcessPool {
    /// Starts `size` worker processes.
    ///
    /// # Errors
    /// When the pipe worker cannot be found (see [`pipe_worker`]) or started.
    pub fn start(size: usize) -> Result<ProcessPool, PoolError> {
        let binary = pipe_worker()?;
        let workers = (0..size.max(1))
            .map(|_| {
                let mut command = Command::new(&binary);
                command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit());
                let mut child = spawn_tied(command).map_err(|source| PoolError::Start {
                    path: binary.clone(),
                    source,
                })?;
                let stdin = child.stdin.take();
                let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
                Ok(Mutex::new(PipeWorker {
                    child,
                    stdin,
                    stdout,
                }))
            })
            .collect::<Result<_, PoolError>>()?;
        Ok(ProcessPool { workers })
    }

    /// The number of worker processes.
    pub fn size(&self) -> usize {
        self.workers.len()
    }

    /// The workers' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.workers
            .iter()
            .map(|w| w.lock().unwrap().child.id())
            .collect()
    }

    /// Counts the primes of every range, the workers taking the next range as soon as they are
    /// free (dynamic scheduling); results in the order of `tasks`.
    ///
    /// # Errors
    /// The first worker's failure: a worker that died, or answered what is not a result.
    pub fn map(&mut self, tasks: &[PrimeRange]) -> Result<Vec<PrimeCount>, PoolError> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<PrimeCount>>> =
            tasks.iter().map(|_| Mutex::new(None)).collect();
        let failures: Vec<PoolError> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .workers
                .iter()
                .map(|worker| {
                    let (next, results) = (&next, &results);
                    scope.spawn(move || -> Result<(), PoolError> {
                        let mut worker = worker.lock().unwrap();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(task) = tasks.get(index) else {
                                return Ok(());
                            };
                            *results[index].lock().unwrap() = Some(worker.ask(task)?);
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("a pool thread panicked").err())
                .collect()
        });
        if let Some(failure) = failures.into_iter().next() {
            return Err(failure);
        }
        Ok(results
            .into_iter()
            .map(|r| r.into_inner().unwrap().expect("every task was answered"))
            .collect())
    }

    /// Closes the workers' input, so that they finish and exit, and waits for them.
    ///
    /// # Errors
    /// When a worker cannot be waited for, or ends with a failure.
    pub fn stop(mut self) -> Result<(), PoolError> {
        for worker in &mut self.workers {
            let worker = worker.get_mut().unwrap();
            drop(worker.stdin.take());
            let pid = worker.child.id();
            let status = worker
                .child
                .wait()
                .map_err(|source| PoolError::Wait { pid, source })?;
            if !status.success() {
                return Err(PoolError::Failed { pid, status });
            }
        }
        Ok(())
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let worker = worker.get_mut().unwrap_or_else(|e| e.into_inner());
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_counts_primes_and_stops() {
        let mut pool = ProcessPool::start(2).unwrap();
        let counts = pool.map(&PrimeRange::split(100_000, 7)).unwrap();
        assert_eq!(counts.iter().map(|c| c.primes).sum::<u64>(), 9_592);
        assert_eq!(counts[0].range.start, 0);
        pool.stop().unwrap();
    }

    /// A pipe worker played by a shell script that reads one line and prints `reply`.
    fn scripted_worker(reply: &str) -> PipeWorker {
        let mut child = Command::new("sh")
            .args(["-c", &format!("read line; echo '{reply}'")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        PipeWorker {
            child,
            stdin,
            stdout,
        }
    }

    #[test]
    fn a_worker_s_refusal_and_its_garbage_are_told_apart() {
        let range = PrimeRange { start: 0, end: 10 };
        let mut refusing = scripted_worker(r#"{"Err":"not a PrimeRange"}"#);
        let refused = refusing.ask(&range).unwrap_err();
        assert!(
            matches!(&refused, PoolError::Refused { reason, .. } if reason == "not a PrimeRange"),
            "{refused:?}"
        );
        let mut babbling = scripted_worker("hello");
        let garbage = babbling.ask(&range).unwrap_err();
        assert!(matches!(garbage, PoolError::Garbage { .. }), "{garbage:?}");
        assert!(garbage.to_string().contains("./course setup"), "{garbage}");
        let mut answering = scripted_worker(r#"{"Ok":{"range":{"start":0,"end":10},"primes":4}}"#);
        assert_eq!(answering.ask(&range).unwrap().primes, 4);
        for mut worker in [refusing, babbling, answering] {
            worker.child.wait().unwrap();
        }
    }

    #[test]
    fn a_killed_worker_is_reported_not_hung() {
        let mut pool = ProcessPool::start(1).unwrap();
        let pid = pool.pids()[0];
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        let error = pool.map(&PrimeRange::split(1_000, 2)).unwrap_err();
        assert!(
            matches!(error, PoolError::Died { pid: p } | PoolError::Pipe { pid: p, .. } if p == pid),
            "{error:?}"
        );
        assert!(error.to_string().contains("start a new pool"), "{error}");
    }
}
