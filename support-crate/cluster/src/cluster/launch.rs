//! Starting a manager and workers as child processes, and making sure none outlives us.
//!
//! Three guards, so that no orphan is left whatever happens to the notebook:
//! - [`LocalCluster::stop`] ends everything in order: close the queue, let the workers finish,
//!   stop the manager;
//! - dropping a [`LocalCluster`] kills and reaps whatever still runs (a cell that panicked, a
//!   variable overwritten);
//! - on Linux each child asks the kernel for `SIGKILL` when its parent dies
//!   (`prctl(PR_SET_PDEATHSIG)`), which covers a kernel restarted or killed. The kernel sends it
//!   when the *thread* that forked the child ends, not the process, so every child is started
//!   from one thread that lives as long as the process ([`spawn_tied`], from the toolbox).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::auth::{KEY_ENV, SharedKey};
use super::{Client, ClusterError, WorkerOptions};

/// The manager's binary name.
pub const MANAGER_BIN: &str = "parcours-manager";
/// The worker's binary name.
pub const WORKER_BIN: &str = "parcours-cluster-worker";
/// A directory holding both binaries, to skip the search (see [`ClusterBinaries::locate`]).
pub const BIN_DIR_ENV: &str = "PARCOURS_CLUSTER_BIN";
/// How long the manager may take to say where it listens.
const MANAGER_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the manager and worker executables are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterBinaries {
    /// The `parcours-manager` executable.
    pub manager: PathBuf,
    /// The `parcours-cluster-worker` executable.
    pub worker: PathBuf,
}

impl ClusterBinaries {
    /// Both binaries in `directory`.
    ///
    /// # Errors
    /// When either is missing, naming it.
    pub fn in_dir(directory: &Path) -> Result<Self, ClusterError> {
        let binaries = ClusterBinaries {
            manager: directory.join(MANAGER_BIN),
            worker: directory.join(WORKER_BIN),
        };
        for path in [&binaries.manager, &binaries.worker] {
            if !path.is_file() {
                return Err(ClusterError::Process(format!(
                    "{} does not exist: build it with `cargo build --release --bins -p parcours-cluster` in the course folder",
                    path.display()
                )));
            }
        }
        Ok(binaries)
    }

    /// Finds the binaries, building them if need be:
    /// 1. in the directory named by [`BIN_DIR_ENV`], if set;
    /// 2. beside the running executable or in its parent directory: that is where cargo puts
    ///    them for this crate's own binaries, tests (`target/<profile>/deps`) and examples;
    /// 3. otherwise, [`ClusterBinaries::build`]: the case of a notebook, whose kernel compiled
    ///    this crate as a library only.
    ///
    /// # Errors
    /// When [`BIN_DIR_ENV`] names a directory without them, or the build fails.
    pub fn locate() -> Result<Self, ClusterError> {
        if let Some(directory) = std::env::var_os(BIN_DIR_ENV) {
            return Self::in_dir(Path::new(&directory))
                .map_err(|e| ClusterError::Process(format!("{BIN_DIR_ENV}: {e}")));
        }
        if let Ok(exe) = std::env::current_exe() {
            let found = exe
                .ancestors()
                .skip(1)
                .take(2)
                .find_map(|directory| Self::in_dir(directory).ok());
            if let Some(binaries) = found {
                return Ok(binaries);
            }
        }
        Self::build()
    }

    /// Builds both binaries with cargo, in release mode, from this crate's sources (see
    /// [`build_binaries`]).
    ///
    /// # Errors
    /// When cargo cannot be run or the build fails; the message ends with cargo's last lines.
    pub fn build() -> Result<Self, ClusterError> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let directory = build_binaries(&manifest, &format!("{MANAGER_BIN}, {WORKER_BIN}, ..."))
            .map_err(ClusterError::Process)?;
        Self::in_dir(&directory)
    }
}

pub use parcours::launch::{build_binaries, spawn_tied};
pub use parcours::notebook::parcours_home;

/// A manager and its workers, running as child processes of this one.
///
/// ```no_run
/// use std::time::Duration;
/// use parcours_cluster::cluster::{ClusterBinaries, LocalCluster, PrimeCount, PrimeRange, WorkerOptions};
/// let mut cluster = LocalCluster::start(&ClusterBinaries::locate().unwrap()).unwrap();
/// let client = cluster.client().unwrap();
/// let options = WorkerOptions::default();
/// let tasks = client.queue::<PrimeRange>(&options.queue);
/// tasks.put_all(&PrimeRange::split(1_000_000, 20)).unwrap();
/// cluster.start_workers(2, &options).unwrap();
/// assert!(tasks.join(Duration::from_secs(60)).unwrap(), "every task acknowledged");
/// let results = client.results::<u64, PrimeCount>(&options.results).entries().unwrap();
/// assert_eq!(results.iter().map(|(_, r)| r.primes).sum::<u64>(), 78_498);
/// let report = cluster.stop().unwrap();
/// assert_eq!(report.workers_finished, 2);
/// ```
#[derive(Debug)]
pub struct LocalCluster {
    binaries: ClusterBinaries,
    key: SharedKey,
    address: String,
    manager: Option<Child>,
    workers: Vec<Child>,
    /// The queues the workers read, to close on [`LocalCluster::stop`].
    queues: Vec<String>,
}

/// How a [`LocalCluster::stop`] went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Workers that exited on their own, successfully, once their queue was closed.
    pub workers_finished: usize,
    /// Workers that failed or had to be killed.
    pub workers_failed: usize,
}

impl LocalCluster {
    /// Starts a manager on a free loopback port with a fresh random key.
    ///
    /// # Errors
    /// When the manager cannot be started or does not say where it listens.
    pub fn start(binaries: &ClusterBinaries) -> Result<Self, ClusterError> {
        Self::start_with_key(binaries, SharedKey::random())
    }

    /// Starts a manager on a free loopback port with the given key.
    ///
    /// # Errors
    /// When the manager cannot be started or does not say where it listens.
    pub fn start_with_key(
        binaries: &ClusterBinaries,
        key: SharedKey,
    ) -> Result<Self, ClusterError> {
        let mut command = Command::new(&binaries.manager);
        command
            .arg("127.0.0.1:0")
            .env(KEY_ENV, key_text(&key)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut manager = spawn_tied(command).map_err(|e| {
            ClusterError::Process(format!("cannot start {}: {e}", binaries.manager.display()))
        })?;
        let stdout = manager.stdout.take().expect("stdout is piped");
        let (line_sender, line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = line_sender.send(lines.next());
            // Keep reading, so the manager never writes into a closed pipe.
            lines.for_each(drop);
        });
        let address = match line.recv_timeout(MANAGER_START_TIMEOUT) {
            Ok(Some(Ok(line))) => line.strip_prefix("listening on ").map(str::to_string),
            _ => None,
        };
        let Some(address) = address else {
            let _ = manager.kill();
            let status = manager.wait().ok();
            return Err(ClusterError::Process(format!(
                "{} did not print \"listening on ADDRESS\" within {MANAGER_START_TIMEOUT:?} \
                 (it exited with {status:?}; its messages are on the kernel's stderr)",
                binaries.manager.display()
            )));
        };
        Ok(LocalCluster {
            binaries: binaries.clone(),
            key,
            address,
            manager: Some(manager),
            workers: Vec::new(),
            queues: Vec::new(),
        })
    }

    /// The manager's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The key the manager was started with.
    pub fn key(&self) -> &SharedKey {
        &self.key
    }

    /// A new connection to the manager.
    ///
    /// # Errors
    /// See [`Client::connect`].
    pub fn client(&self) -> Result<Client, ClusterError> {
        Client::connect(&self.address, &self.key)
    }

    /// Starts `count` more worker processes with these options.
    ///
    /// # Errors
    /// When a worker cannot be started.
    pub fn start_workers(
        &mut self,
        count: usize,
        options: &WorkerOptions,
    ) -> Result<(), ClusterError> {
        for _ in 0..count {
            let mut command = Command::new(&self.binaries.worker);
            command
                .arg(&self.address)
                .args(["--queue", &options.queue])
                .args(["--results", &options.results])
                .args(["--counter", &options.counter])
                .args(["--lease-ms", &options.lease.as_millis().to_string()])
                .args(["--pause-ms", &options.pause.as_millis().to_string()])
                .args(["--name", &format!("worker-{}", self.workers.len() + 1)])
                .env(KEY_ENV, key_text(&self.key)?)
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let worker = spawn_tied(command).map_err(|e| {
                ClusterError::Process(format!(
                    "cannot start {}: {e}",
                    self.binaries.worker.display()
                ))
            })?;
            self.workers.push(worker);
        }
        if !self.queues.contains(&options.queue) {
            self.queues.push(options.queue.clone());
        }
        Ok(())
    }

    /// The manager's process id.
    pub fn manager_pid(&self) -> Option<u32> {
        self.manager.as_ref().map(Child::id)
    }

    /// The process ids of the workers started so far, in order (finished ones included).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.workers.iter().map(Child::id).collect()
    }

    /// Kills worker number `index` (from 0) with `SIGKILL`, as a crash would: to watch its
    /// leased task go back to the queue.
    ///
    /// # Errors
    /// When there is no such worker.
    pub fn kill_worker(&mut self, index: usize) -> Result<(), ClusterError> {
        let count = self.workers.len();
        let worker = self.workers.get_mut(index).ok_or_else(|| {
            ClusterError::Process(format!("no worker {index}: {count} were started"))
        })?;
        let _ = worker.kill();
        let _ = worker.wait();
        Ok(())
    }

    /// Stops in order: closes the workers' queues, waits for the workers to finish (at most
    /// `worker_timeout`, then kills them), then asks the manager to stop and waits for it.
    ///
    /// # Errors
    /// When the manager cannot be reached to close the queues (the processes are killed anyway).
    pub fn stop_within(mut self, worker_timeout: Duration) -> Result<StopReport, ClusterError> {
        let closing = self.client().and_then(|client| {
            for queue in &self.queues {
                client.queue::<serde_json::Value>(queue).close()?;
            }
            Ok(client)
        });
        let client = match closing {
            Ok(client) => client,
            Err(error) => {
                self.kill_all();
                return Err(error);
            }
        };
        let deadline = Instant::now() + worker_timeout;
        let mut report = StopReport::default();
        for worker in &mut self.workers {
            let status = loop {
                match worker.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => break None,
                }
            };
            match status {
                Some(status) if status.success() => report.workers_finished += 1,
                Some(_) => report.workers_failed += 1,
                None => {
                    let _ = worker.kill();
                    let _ = worker.wait();
                    report.workers_failed += 1;
                }
            }
        }
        self.workers.clear();
        let _ = client.shutdown_manager();
        drop(client);
        if let Some(mut manager) = self.manager.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(manager.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = manager.kill();
            let _ = manager.wait();
        }
        Ok(report)
    }

    /// [`stop_within`](LocalCluster::stop_within) with a minute for the workers.
    ///
    /// # Errors
    /// See [`stop_within`](LocalCluster::stop_within).
    pub fn stop(self) -> Result<StopReport, ClusterError> {
        self.stop_within(Duration::from_secs(60))
    }

    fn kill_all(&mut self) {
        for mut child in self.workers.drain(..).chain(self.manager.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn key_text(key: &SharedKey) -> Result<&str, ClusterError> {
    key.as_text().ok_or_else(|| {
        ClusterError::Config(format!(
            "the key must be UTF-8 text to reach the child processes through {KEY_ENV}"
        ))
    })
}
