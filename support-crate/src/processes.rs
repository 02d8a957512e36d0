//! Processes for Module 2: a pool of worker processes fed through pipes with serde messages.
//!
//! A process shares nothing with its parent: work goes in as bytes (here one JSON line per
//! task on the child's stdin) and results come back the same way. That costs a start-up
//! (milliseconds, against microseconds for a thread) and a serialisation per message, and buys
//! isolation: a crash, a leak or a `static` in one worker cannot touch the others.
//!
//! ```no_run
//! use parcours::cluster::PrimeRange;
//! use parcours::processes::ProcessPool;
//!
//! let mut pool = ProcessPool::start(2).unwrap();
//! let counts = pool.map(&PrimeRange::split(100_000, 8)).unwrap();
//! assert_eq!(counts.iter().map(|c| c.primes).sum::<u64>(), 9_592);
//! pool.stop().unwrap();
//! ```

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cluster::{ClusterBinaries, PrimeCount, PrimeRange, spawn_tied};

/// The pipe worker's binary name.
pub const PIPE_WORKER_BIN: &str = "parcours-pipe-worker";

/// The `parcours-pipe-worker` executable, found (or built, the first time) beside the cluster's
/// binaries: see [`ClusterBinaries::locate`].
pub fn pipe_worker() -> Result<PathBuf, String> {
    let binaries = ClusterBinaries::locate().map_err(|e| e.to_string())?;
    let directory = binaries
        .worker
        .parent()
        .expect("a binary lives in a directory");
    let path = directory.join(PIPE_WORKER_BIN);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: run `./course setup`, which builds every binary",
            path.display()
        ))
    }
}

struct PipeWorker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl PipeWorker {
    fn ask(&mut self, range: &PrimeRange) -> Result<PrimeCount, String> {
        let pid = self.child.id();
        let stdin = self.stdin.as_mut().ok_or("the pool is stopped")?;
        let request = serde_json::to_string(range).expect("a range serialises");
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("worker {pid} no longer reads its pipe: {e}"))?;
        let mut reply = String::new();
        match self.stdout.read_line(&mut reply) {
            Ok(0) | Err(_) => Err(format!(
                "worker {pid} died before answering (its pipe closed)"
            )),
            Ok(_) => serde_json::from_str::<Result<PrimeCount, String>>(&reply)
                .map_err(|e| format!("worker {pid} answered garbage: {e}"))?,
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
    pub fn start(size: usize) -> Result<ProcessPool, String> {
        let binary = pipe_worker()?;
        let workers = (0..size.max(1))
            .map(|_| {
                let mut command = Command::new(&binary);
                command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit());
                let mut child = spawn_tied(command)
                    .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
                let stdin = child.stdin.take();
                let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
                Ok(Mutex::new(PipeWorker {
                    child,
                    stdin,
                    stdout,
                }))
            })
            .collect::<Result<_, String>>()?;
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
    pub fn map(&mut self, tasks: &[PrimeRange]) -> Result<Vec<PrimeCount>, String> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<PrimeCount>>> =
            tasks.iter().map(|_| Mutex::new(None)).collect();
        let failures: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .workers
                .iter()
                .map(|worker| {
                    let (next, results) = (&next, &results);
                    scope.spawn(move || -> Result<(), String> {
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
    pub fn stop(mut self) -> Result<(), String> {
        for worker in &mut self.workers {
            let worker = worker.get_mut().unwrap();
            drop(worker.stdin.take());
            let status = worker.child.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("worker {} ended with {status}", worker.child.id()));
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
            error.contains("died") || error.contains("no longer"),
            "{error}"
        );
    }
}
