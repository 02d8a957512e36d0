//! A Ballista cluster on this machine: one scheduler and N executors, each an OS process of the
//! course's program `parcours-ballista`, on loopback ports, started from a notebook and stopped
//! with it ([`parcours::launch::spawn_tied`]: they die with the kernel, however it ends).
//!
//! The client ([`BallistaCluster::context`]) is DataFusion's `SessionContext`, made remote:
//! the same DataFrame and SQL code plans locally, then the scheduler cuts the plan into stages
//! at each shuffle and hands their tasks (one per partition) to the executors. The scheduler's
//! REST API (same port as its gRPC) shows executors, jobs, stages and a job's graph; **it has
//! no authentication**, nor has the gRPC port: the cluster listens on 127.0.0.1 only.
//!
//! Where each task ran: every executor writes the shuffle output of the tasks it ran into its
//! own work folder (`<work>/<job id>/<stage>/<partition>/`), so [`BallistaCluster::shuffle_files`]
//! counts, per executor, the files a job left there. The REST API's task summaries do not name
//! the executor.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ballista::prelude::SessionContextExt;
use datafusion::prelude::SessionContext;
use serde_json::Value;

use crate::{EngineError, run_for};

/// The program's name.
pub const PROGRAM: &str = "parcours-ballista";
/// Where the program is, when it is not built by the kernel (the crate's tests set it).
pub const PROGRAM_ENV: &str = "PARCOURS_BALLISTA_BIN";
/// How long a scheduler or an executor may take to start and register.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The executors' heartbeat, and how long the scheduler waits without one before it takes an
/// executor for dead and runs its tasks elsewhere (Ballista's defaults: 60 s and 180 s).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// See [`HEARTBEAT`].
pub const EXECUTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// One executor process.
#[derive(Debug)]
pub struct Executor {
    /// Its name, as the scheduler knows it (`executor-1`, ...).
    pub name: String,
    /// Its work folder: the shuffle files of the tasks it ran.
    pub work_dir: PathBuf,
    child: Option<Child>,
}

impl Executor {
    /// Whether its process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

/// A scheduler and its executors; stopped on drop.
#[derive(Debug)]
pub struct BallistaCluster {
    folder: PathBuf,
    port: u16,
    scheduler: Option<Child>,
    executors: Vec<Executor>,
    agent: ureq::Agent,
}

impl BallistaCluster {
    /// Starts a scheduler and `executors` executors of `vcores` task slots each, and waits
    /// until every executor has registered. Logs and work folders go under
    /// `$PARCOURS_HOME/ballista/<scheduler port>/`.
    ///
    /// # Errors
    /// [`EngineError::Cluster`] when the program cannot be built or a process does not come
    /// up within [`START_TIMEOUT`] (the message ends with its log).
    pub fn start(executors: usize, vcores: usize) -> Result<Self, EngineError> {
        let program = program()?;
        let port = free_port()?;
        let folder = parcours::notebook::parcours_home().join("ballista").join(port.to_string());
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).map_err(|e| EngineError::Io(folder.display().to_string(), e))?;
        let mut cluster = BallistaCluster {
            folder,
            port,
            scheduler: None,
            executors: Vec::new(),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .http_status_as_error(false)
                .build()
                .into(),
        };
        let mut command = Command::new(&program);
        command.args(["scheduler", "--port", &port.to_string()]);
        cluster.scheduler = Some(cluster.spawn(command, "scheduler")?);
        cluster.wait_for("the scheduler's REST API", "scheduler", |c| c.get("/api/state").is_ok())?;
        for number in 1..=executors {
            cluster.add_executor(&program, number, vcores)?;
        }
        let wanted = executors;
        cluster.wait_for("every executor to register", "executor-1", |c| {
            c.executors().map(|list| list.len() >= wanted).unwrap_or(false)
        })?;
        Ok(cluster)
    }

    fn add_executor(&mut self, program: &Path, number: usize, vcores: usize) -> Result<(), EngineError> {
        let name = format!("executor-{number}");
        let work_dir = self.folder.join(&name);
        std::fs::create_dir_all(&work_dir).map_err(|e| EngineError::Io(work_dir.display().to_string(), e))?;
        let mut command = Command::new(program);
        command
            .args(["executor", "--name", &name, "--scheduler-port", &self.port.to_string()])
            .args(["--port", &free_port()?.to_string(), "--grpc-port", &free_port()?.to_string()])
            .args(["--vcores", &vcores.max(1).to_string(), "--work-dir"])
            .arg(&work_dir);
        let child = self.spawn(command, &name)?;
        self.executors.push(Executor { name, work_dir, child: Some(child) });
        Ok(())
    }

    fn spawn(&self, mut command: Command, name: &str) -> Result<Child, EngineError> {
        let log = self.folder.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|e| EngineError::Io(log.display().to_string(), e))?;
        let copy = file.try_clone().map_err(|e| EngineError::Io(log.display().to_string(), e))?;
        command.stdin(Stdio::null()).stdout(file).stderr(copy);
        parcours::launch::spawn_tied(command)
            .map_err(|e| EngineError::Cluster(format!("cannot start the {name}: {e}")))
    }

    fn wait_for(&mut self, what: &str, log: &str, ready: impl Fn(&Self) -> bool) -> Result<(), EngineError> {
        let started = Instant::now();
        loop {
            if ready(self) {
                return Ok(());
            }
            let died = self.scheduler.as_mut().and_then(|c| c.try_wait().ok().flatten()).is_some()
                || self.executors.iter_mut().any(|e| !e.is_running());
            if died || started.elapsed() > START_TIMEOUT {
                let why = if died { "a process of the cluster exited" } else { "timed out" };
                return Err(EngineError::Cluster(format!(
                    "waiting for {what}: {why} after {:.0} s. The end of {}:\n{}",
                    started.elapsed().as_secs_f64(),
                    self.log_path(log).display(),
                    self.log_tail(log, 12)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The scheduler's address for clients: `df://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// The scheduler's REST API: `http://127.0.0.1:<port>/api/...`.
    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
    }

    /// A DataFusion session whose queries run on the cluster.
    ///
    /// # Errors
    /// When the scheduler cannot be reached.
    pub fn context(&self) -> Result<SessionContext, EngineError> {
        run_for(Duration::from_secs(30), "connecting to the scheduler", SessionContext::remote(&self.url()))
    }

    /// `GET /api/<path>` as JSON.
    ///
    /// # Errors
    /// When the scheduler does not answer, or answers with an error.
    pub fn get(&self, path: &str) -> Result<Value, EngineError> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut response = self.agent.get(&url).call().map_err(|e| EngineError::Cluster(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(EngineError::Cluster(format!("GET {url}: {} {body}", response.status())));
        }
        let text = response.body_mut().read_to_string().map_err(|e| EngineError::Cluster(format!("GET {url}: {e}")))?;
        serde_json::from_str(&text).or(Ok(Value::String(text)))
    }

    /// The executors the scheduler knows (`/api/executors`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn executors(&self) -> Result<Vec<Value>, EngineError> {
        Ok(self.get("/api/executors")?.as_array().cloned().unwrap_or_default())
    }

    /// Every job the scheduler has run or runs (`/api/jobs`), oldest first.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn jobs(&self) -> Result<Vec<Value>, EngineError> {
        let mut jobs = self.get("/api/jobs")?.as_array().cloned().unwrap_or_default();
        jobs.sort_by_key(|job| job["start_time"].as_u64().unwrap_or(0));
        Ok(jobs)
    }

    /// A job's stages in order, with their plans and tasks (`/api/job/<id>/stages`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn stages(&self, job: &str) -> Result<Vec<Value>, EngineError> {
        let mut stages = self.get(&format!("/api/job/{job}/stages"))?["stages"].as_array().cloned().unwrap_or_default();
        stages.sort_by_key(|stage| stage["stage_id"].as_str().and_then(|id| id.parse::<u64>().ok()).or(stage["stage_id"].as_u64()));
        Ok(stages)
    }

    /// A job's graph of stages, in Graphviz' DOT (`/api/job/<id>/dot`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn dot(&self, job: &str) -> Result<String, EngineError> {
        match self.get(&format!("/api/job/{job}/dot"))? {
            Value::String(text) => Ok(text),
            other => Ok(other.to_string()),
        }
    }

    /// Per executor, how many shuffle files `job` left in its work folder: which executors ran
    /// its tasks.
    pub fn shuffle_files(&self, job: &str) -> BTreeMap<String, usize> {
        self.executors
            .iter()
            .map(|executor| (executor.name.clone(), count_files(&executor.work_dir.join(job))))
            .collect()
    }

    /// The executors, in the order they were started.
    pub fn executor_processes(&mut self) -> &mut [Executor] {
        &mut self.executors
    }

    /// Kills executor `number` (1, 2, ...) with SIGKILL, as a machine that fails.
    ///
    /// # Errors
    /// When there is no such executor.
    pub fn kill_executor(&mut self, number: usize) -> Result<(), EngineError> {
        let executor = self
            .executors
            .get_mut(number.wrapping_sub(1))
            .ok_or_else(|| EngineError::Cluster(format!("no executor {number}")))?;
        if let Some(mut child) = executor.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// The process ids of the scheduler and the executors still running.
    pub fn pids(&mut self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.scheduler.iter().map(Child::id).collect();
        pids.extend(self.executors.iter().filter_map(|e| e.child.as_ref().map(Child::id)));
        pids
    }

    /// The last `lines` lines of a process' log (`scheduler`, `executor-1`, ...).
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.folder.join(format!("{name}.log"))
    }

    /// Stops the executors, then the scheduler (SIGTERM, then SIGKILL after 5 s), and waits
    /// for each.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let children = self.executors.iter_mut().filter_map(|e| e.child.take()).chain(self.scheduler.take());
        for mut child in children {
            // SAFETY: kill(2) on the pid of a child not yet waited for.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for BallistaCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn count_files(folder: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => count_files(&entry.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

fn free_port() -> Result<u16, EngineError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| EngineError::Cluster(format!("no free port on 127.0.0.1: {e}")))
}

/// The program `parcours-ballista`: [`PROGRAM_ENV`] when set; in the course kernel, built in
/// the kernel's own build folder with the kernel's flags, so that cargo reuses the kernel's
/// build of DataFusion and Ballista (seconds, where a build of its own takes 20 minutes).
///
/// # Errors
/// [`EngineError::Cluster`] outside the kernel without [`PROGRAM_ENV`], or when cargo fails.
pub fn program() -> Result<PathBuf, EngineError> {
    if let Some(path) = std::env::var_os(PROGRAM_ENV) {
        return Ok(PathBuf::from(path));
    }
    let Some(build) = std::env::var_os("EVCXR_TMPDIR").map(PathBuf::from) else {
        return Err(EngineError::Cluster(format!(
            "{PROGRAM} is built by the course kernel; elsewhere, set {PROGRAM_ENV} to the program \
             (`cargo build -p parcours-ballista` builds it)"
        )));
    };
    let host = host_triple()?;
    let started = Instant::now();
    // As evcxr runs cargo for a cell: same folder, target, flags and profile.
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--target", &host, "-p", "parcours-ballista", "--bin", PROGRAM])
        .current_dir(&build)
        .env("CARGO_TARGET_DIR", "target")
        .env("CARGO_BUILD_BUILD_DIR", "target")
        .env("RUSTFLAGS", "-Cprefer-dynamic")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| EngineError::Cluster(format!("cannot run cargo: {e} (is it on the PATH?)")))?;
    if !output.status.success() {
        return Err(EngineError::Cluster(format!(
            "building {PROGRAM} in {} failed:\n{}",
            build.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    if started.elapsed() > Duration::from_secs(20) {
        println!("built {PROGRAM} in {:.0} s", started.elapsed().as_secs_f64());
    }
    Ok(build.join("target").join(host).join("debug").join(PROGRAM))
}

fn host_triple() -> Result<String, EngineError> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| EngineError::Cluster(format!("cannot run rustc: {e}")))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| EngineError::Cluster("rustc -vV names no host".into()))
}
