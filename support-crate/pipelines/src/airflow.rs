//! A real Apache Airflow 3, started and stopped by the course, supervised through its REST API.
//!
//! `./course setup` installs Airflow in a virtual environment of its own
//! (`$PARCOURS_HOME/airflow/venv`, pinned by `kernel/airflow-constraints.txt`). [`Airflow::start`]
//! runs three of its components as child processes of the kernel, each in a process group of
//! its own: the API server (the UI and the REST API, on a free loopback port), the scheduler
//! (LocalExecutor, its log server off: it would listen on every interface) and the DAG
//! processor. The metadata database is an SQLite file under `$PARCOURS_HOME/airflow/home`;
//! logging in needs the generated admin password, which stays in a file there (mode 0600).
//!
//! Where memory is short (a 2 GB Binder session), a [`Session`] runs each DAG run in a single
//! process instead ([`dags_test`], no servers) and reads the task instances from the database.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use parcours::diagram::{Bar, Diagram};
use parcours::display::Table;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PipelineError;

/// The pool that caps how many steps run at once (one per core), named in the course's DAGs.
pub const POOL: &str = "parcours_cores";
/// The course's DAG over the event files (`dags/parcours_events.py`).
pub const EVENTS_DAG: &str = "parcours_events";
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const COMPONENTS: [(&str, &[&str]); 3] =
    [("api-server", &["api-server"]), ("scheduler", &["scheduler", "--skip-serve-logs"]), ("dag-processor", &["dag-processor"])];

/// Where Airflow is installed and keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AirflowPaths {
    /// The `airflow` program of its virtual environment.
    pub program: PathBuf,
    /// `AIRFLOW_HOME`: configuration, metadata database, logs, password file.
    pub home: PathBuf,
    /// The folder of DAG files it reads.
    pub dags: PathBuf,
}

impl AirflowPaths {
    /// The course's: `$PARCOURS_HOME/airflow/{venv,home}`, and a DAG folder under the home
    /// into which [`AirflowPaths::install_dags`] copies the course's DAGs and the lessons write
    /// their own.
    pub fn for_course() -> Self {
        let root = parcours::notebook::parcours_home().join("airflow");
        AirflowPaths { program: root.join("venv").join("bin").join("airflow"), home: root.join("home"), dags: root.join("dags") }
    }

    /// Whether Airflow is installed.
    pub fn installed(&self) -> bool {
        self.program.is_file()
    }

    fn require(&self) -> Result<(), PipelineError> {
        if self.installed() {
            return Ok(());
        }
        Err(PipelineError::Airflow(format!(
            "Airflow is not installed ({} is missing): ./course setup installs it in its own environment",
            self.program.display()
        )))
    }

    /// Copies the course's DAGs (`support-crate/pipelines/dags/*.py`) into the DAG folder.
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn install_dags(&self) -> Result<(), PipelineError> {
        fs::create_dir_all(&self.dags).map_err(PipelineError::io("creating", &self.dags))?;
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags");
        for entry in fs::read_dir(&source).map_err(PipelineError::io("reading", &source))?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "py") {
                let text = fs::read(&path).map_err(PipelineError::io("reading", &path))?;
                crate::steps::write_atomically(&self.dags.join(entry.file_name()), &text)?;
            }
        }
        Ok(())
    }

    /// Writes a DAG file of a lesson's own (`name.py`) into the DAG folder, atomically (the DAG
    /// processor never reads half a file).
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn write_dag(&self, name: &str, source: &str) -> Result<PathBuf, PipelineError> {
        fs::create_dir_all(&self.dags).map_err(PipelineError::io("creating", &self.dags))?;
        let path = self.dags.join(format!("{name}.py"));
        crate::steps::write_atomically(&path, source.as_bytes())?;
        Ok(path)
    }

    /// The environment every Airflow command of the course runs with.
    fn environment(&self, port: u16) -> Vec<(String, String)> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let base = format!("http://127.0.0.1:{port}");
        let program = crate::program().map(|p| p.display().to_string()).unwrap_or_else(|_| crate::PROGRAM.into());
        [
            ("AIRFLOW_HOME", self.home.display().to_string()),
            ("AIRFLOW__CORE__DAGS_FOLDER", self.dags.display().to_string()),
            ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".into()),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".into()),
            ("AIRFLOW__CORE__PARALLELISM", cores.to_string()),
            ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin".into()),
            ("AIRFLOW__API__HOST", "127.0.0.1".into()),
            ("AIRFLOW__API__PORT", port.to_string()),
            // Without it the tasks look for the execution API on localhost:8080 and fail.
            ("AIRFLOW__API__BASE_URL", base.clone()),
            ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", format!("{base}/execution/")),
            // New DAG files are read within seconds, not minutes: students write DAGs in cells.
            ("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5".into()),
            ("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "5".into()),
            ("AIRFLOW__API__WORKERS", "1".into()),
            // A task whose process died with a killed scheduler is found within a minute, not
            // five, and retried.
            ("AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL", "10".into()),
            ("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "30".into()),
            ("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL", "5".into()),
            ("AIRFLOW_CONN_FS_DEFAULT", r#"{"conn_type": "fs"}"#.into()),
            ("PARCOURS_PIPELINE_BIN", program),
            ("PARCOURS_HOME", parcours::notebook::parcours_home().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs an `airflow` command (a CLI call, no server needed) and returns its output.
    ///
    /// # Errors
    /// When it fails: the message ends with its last lines.
    pub fn command(&self, args: &[&str]) -> Result<String, PipelineError> {
        self.require()?;
        fs::create_dir_all(&self.home).map_err(PipelineError::io("creating", &self.home))?;
        let output = Command::new(&self.program)
            .args(args)
            .envs(self.environment(0))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| PipelineError::Airflow(format!("cannot run {}: {e}", self.program.display())))?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            return Err(PipelineError::Airflow(format!("`airflow {}` failed ({}):\n{}", args.join(" "), output.status, tail(&text, 25))));
        }
        Ok(text)
    }

    /// Creates or upgrades the metadata database (`airflow db migrate`), once per version.
    fn migrate(&self) -> Result<(), PipelineError> {
        let stamp = self.home.join(".migrated");
        // The constraints the environment was installed with (./course setup keeps a copy).
        let venv = self.program.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        let version = fs::read_to_string(venv.join(".constraints")).unwrap_or_default();
        if fs::read_to_string(&stamp).is_ok_and(|s| s == version) && self.home.join("airflow.db").is_file() {
            return Ok(());
        }
        self.command(&["db", "migrate"])?;
        crate::steps::write_atomically(&stamp, version.as_bytes())
    }

    fn pid_dir(&self) -> PathBuf {
        self.home.join("run")
    }

    /// The components a previous start left running or recorded: (name, pid, alive).
    fn recorded(&self) -> Vec<(String, i32, bool)> {
        let Ok(entries) = fs::read_dir(self.pid_dir()) else { return Vec::new() };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().trim_end_matches(".pid").to_string();
            let Ok(pid) = fs::read_to_string(entry.path()).unwrap_or_default().trim().parse::<i32>() else { continue };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let alive = String::from_utf8_lossy(&cmdline).contains("airflow");
            found.push((name, pid, alive));
        }
        found
    }
}

/// A running Airflow: its three components, their port, and a REST client logged in as admin.
pub struct Airflow {
    paths: AirflowPaths,
    port: u16,
    components: Vec<(String, Child)>,
    watchdog: Option<Child>,
    agent: ureq::Agent,
    token: Mutex<Option<String>>,
}

impl fmt::Debug for Airflow {
    // Never the password or the token: a notebook shows what it prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Airflow")
            .field("url", &self.url())
            .field("home", &self.paths.home)
            .field("components", &self.components.iter().map(|(n, c)| format!("{n} (pid {})", c.id())).collect::<Vec<_>>())
            .finish()
    }
}

/// What [`Airflow::stop`] stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// The components that exited on `SIGTERM`.
    pub gracefully: Vec<String>,
    /// The components killed after 20 s.
    pub killed: Vec<String>,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.gracefully.is_empty() && self.killed.is_empty() {
            return write!(f, "Airflow was not running: nothing to stop");
        }
        write!(f, "Airflow stopped: {}", self.gracefully.join(", "))?;
        if !self.killed.is_empty() {
            write!(f, "; killed after {STOP_TIMEOUT:?}: {}", self.killed.join(", "))?;
        }
        Ok(())
    }
}

impl Airflow {
    /// Starts the course's Airflow ([`AirflowPaths::for_course`]) with the course's DAGs.
    ///
    /// # Errors
    /// As [`Airflow::start_with`].
    pub fn start() -> Result<Self, PipelineError> {
        let paths = AirflowPaths::for_course();
        paths.install_dags()?;
        Airflow::start_with(paths)
    }

    /// Starts the API server, the scheduler and the DAG processor on a free loopback port, waits
    /// until all three report healthy, logs in, and creates the [`POOL`] (one slot per core).
    /// Pid files left by a kernel that died are cleared (their processes killed) first.
    ///
    /// # Errors
    /// Airflow missing, an Airflow of these paths already running (stop it first), or a
    /// component that does not become healthy within 3 minutes (the end of its log).
    pub fn start_with(paths: AirflowPaths) -> Result<Self, PipelineError> {
        paths.require()?;
        let running: Vec<String> =
            paths.recorded().iter().filter(|(_, _, alive)| *alive).map(|(name, pid, _)| format!("{name} (pid {pid})")).collect();
        if !running.is_empty() {
            return Err(PipelineError::Airflow(format!(
                "an Airflow already runs from {}: {}. Stop it first (`airflow.stop()` in the notebook that started it, or \
                 `Airflow::stop_leftovers()`)",
                paths.home.display(),
                running.join(", ")
            )));
        }
        let stale = Airflow::clear_pid_files(&paths);
        if !stale.is_empty() {
            println!("cleared the pid files of an Airflow that did not stop cleanly: {}", stale.join(", "));
        }
        fs::create_dir_all(paths.pid_dir()).map_err(PipelineError::io("creating", paths.pid_dir()))?;
        fs::create_dir_all(&paths.dags).map_err(PipelineError::io("creating", &paths.dags))?;
        paths.migrate()?;
        let port = free_port()?;
        let logs = paths.home.join("logs");
        fs::create_dir_all(&logs).map_err(PipelineError::io("creating", &logs))?;
        let mut airflow = Airflow {
            agent: ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).http_status_as_error(false).build().into(),
            paths,
            port,
            components: Vec::new(),
            watchdog: None,
            token: Mutex::new(None),
        };
        for (name, args) in COMPONENTS {
            let log = logs.join(format!("{name}.log"));
            let file = fs::File::create(&log).map_err(PipelineError::io("creating", &log))?;
            let mut command = Command::new(&airflow.paths.program);
            command
                .args(args)
                .envs(airflow.paths.environment(port))
                .stdin(Stdio::null())
                .stdout(file.try_clone().map_err(PipelineError::io("opening", &log))?)
                .stderr(file)
                // A group of its own: stopping it reaches the workers and task processes it forks.
                .process_group(0);
            let child = parcours::launch::spawn_tied(command).map_err(|e| PipelineError::Airflow(format!("cannot start {name}: {e}")))?;
            let pid_file = airflow.paths.pid_dir().join(format!("{name}.pid"));
            crate::steps::write_atomically(&pid_file, child.id().to_string().as_bytes())?;
            airflow.components.push((name.to_string(), child));
        }
        airflow.watchdog = Some(watchdog(&airflow.components)?);
        airflow.wait_until_healthy()?;
        airflow.ensure_pool()?;
        Ok(airflow)
    }

    /// Kills what a kernel that died left of an Airflow of the course, and clears its pid files.
    /// Returns what it found.
    pub fn stop_leftovers() -> Vec<String> {
        Airflow::clear_pid_files(&AirflowPaths::for_course())
    }

    fn clear_pid_files(paths: &AirflowPaths) -> Vec<String> {
        let mut found = Vec::new();
        for (name, pid, alive) in paths.recorded() {
            // The leader dies with the kernel (PR_SET_PDEATHSIG), but not what it forked
            // (the executor's workers, the tasks): every Airflow process left in its group goes.
            let left = airflow_processes_in_group(pid);
            for &member in &left {
                // SAFETY: kill(2) on a process of that group whose command line says airflow.
                unsafe { libc::kill(member, libc::SIGKILL) };
            }
            let what = match (alive, left.len()) {
                (_, 0) => "gone".to_string(),
                (true, n) => format!("killed with {} process(es) it started", n - 1),
                (false, n) => format!("gone, {n} process(es) it started killed"),
            };
            found.push(format!("{name} (pid {pid}, {what})"));
            let _ = fs::remove_file(paths.pid_dir().join(format!("{name}.pid")));
        }
        found
    }

    fn wait_until_healthy(&mut self) -> Result<(), PipelineError> {
        let started = Instant::now();
        let mut said = Instant::now();
        println!("starting Airflow on {} (API server, scheduler, DAG processor)...", self.url());
        loop {
            for (name, child) in &mut self.components {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = self.paths.home.join("logs").join(format!("{name}.log"));
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    let message = format!("Airflow's {name} exited ({status}); the end of {}:\n{}", log.display(), tail(&text, 20));
                    self.stop_quietly();
                    return Err(PipelineError::Airflow(message));
                }
            }
            if let Ok(health) = self.get_public("/api/v2/monitor/health") {
                let healthy = |part: &str| health[part]["status"] == "healthy";
                if healthy("metadatabase") && healthy("scheduler") && healthy("dag_processor") {
                    println!("Airflow is up after {:.0} s", started.elapsed().as_secs_f64());
                    return Ok(());
                }
            }
            if started.elapsed() > START_TIMEOUT {
                self.stop_quietly();
                return Err(PipelineError::Airflow(format!(
                    "Airflow was not healthy after {START_TIMEOUT:?}: see the logs in {}",
                    self.paths.home.join("logs").display()
                )));
            }
            if said.elapsed() > Duration::from_secs(15) {
                println!("still starting ({:.0} s)", started.elapsed().as_secs_f64());
                said = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The address of its UI and REST API (loopback only).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its paths.
    pub fn paths(&self) -> &AirflowPaths {
        &self.paths
    }

    /// The file holding the admin's generated password (mode 0600): what to log in with.
    pub fn password_file(&self) -> PathBuf {
        self.paths.home.join("simple_auth_manager_passwords.json.generated")
    }

    /// The components' process ids, by name.
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.components.iter().map(|(name, child)| (name.clone(), child.id())).collect()
    }

    /// Stops every component (`SIGTERM` to its process group, `SIGKILL` after 20 s) and
    /// clears the pid files. Stopping an Airflow that is not running does nothing, and says so.
    pub fn stop(&mut self) -> Stopped {
        let mut stopped = Stopped::default();
        for (_, child) in &self.components {
            // SAFETY: kill(2) on the process groups of our own children, not yet reaped.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for (name, mut child) in self.components.drain(..) {
            let pid = child.id() as i32;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    stopped.gracefully.push(name.clone());
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    stopped.killed.push(name.clone());
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // What the component forked and left behind (LocalExecutor's workers) goes too.
            // SAFETY: as above; the group may be empty already (ESRCH is harmless).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = fs::remove_file(self.paths.pid_dir().join(format!("{name}.pid")));
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        stopped
    }

    fn stop_quietly(&mut self) {
        let _ = self.stop();
    }

    // ---- the REST API ---------------------------------------------------------------------

    fn get_public(&self, path: &str) -> Result<Value, PipelineError> {
        let mut response = self.agent.get(format!("{}{path}", self.url())).call().map_err(http_error)?;
        response.body_mut().read_json().map_err(http_error)
    }

    fn token(&self, fresh: bool) -> Result<String, PipelineError> {
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(token), false) = (token.as_ref(), fresh) {
            return Ok(token.clone());
        }
        let file = self.password_file();
        let _ = fs::set_permissions(&file, fs::Permissions::from_mode(0o600));
        let text = fs::read_to_string(&file).map_err(PipelineError::io("reading", &file))?;
        let passwords: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| PipelineError::Airflow(format!("{}: {e}", file.display())))?;
        let password = passwords.get("admin").ok_or_else(|| PipelineError::Airflow(format!("no admin password in {}", file.display())))?;
        let mut response = self
            .agent
            .post(format!("{}/auth/token", self.url()))
            .send_json(json!({"username": "admin", "password": password}))
            .map_err(http_error)?;
        let answer: Value = response.body_mut().read_json().map_err(http_error)?;
        let fresh = answer["access_token"].as_str().ok_or_else(|| PipelineError::Airflow(format!("login refused: {answer}")))?.to_string();
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    /// One authenticated REST call: `method` on `path` (`/api/v2/...`) with an optional JSON
    /// body; the answer's JSON.
    ///
    /// # Errors
    /// When Airflow cannot be reached or answers with an error status (its message included).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, PipelineError> {
        let url = format!("{}{path}", self.url());
        for attempt in 0..2 {
            let bearer = format!("Bearer {}", self.token(attempt > 0)?);
            let sent = match (method, &body) {
                ("GET", _) => self.agent.get(&url).header("Authorization", &bearer).call(),
                ("DELETE", _) => self.agent.delete(&url).header("Authorization", &bearer).call(),
                ("POST", body) => self.agent.post(&url).header("Authorization", &bearer).send_json(body.clone().unwrap_or(json!({}))),
                ("PATCH", body) => self.agent.patch(&url).header("Authorization", &bearer).send_json(body.clone().unwrap_or(json!({}))),
                ("PUT", body) => self.agent.put(&url).header("Authorization", &bearer).send_json(body.clone().unwrap_or(json!({}))),
                _ => return Err(PipelineError::Airflow(format!("unsupported method {method}"))),
            };
            let mut response = sent.map_err(http_error)?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                continue; // the token expired: log in again
            }
            let text = response.body_mut().read_to_string().map_err(http_error)?;
            if status >= 400 {
                return Err(PipelineError::Airflow(format!("{method} {path}: {status} {}", tail(&text, 10))));
            }
            return Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text).map_err(|e| PipelineError::Airflow(format!("{path}: {e}")))? });
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn ensure_pool(&self) -> Result<(), PipelineError> {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        let body = json!({"name": POOL, "slots": slots, "include_deferred": false, "description": "one slot per core: the course's steps use every core already"});
        match self.api("POST", "/api/v2/pools", Some(body.clone())) {
            Ok(_) => Ok(()),
            Err(_) => self.api("PATCH", &format!("/api/v2/pools/{POOL}"), Some(body)).map(|_| ()),
        }
    }

    /// Waits until the DAG processor has read `dag_id`, and unpauses it (new DAGs start
    /// paused).
    ///
    /// # Errors
    /// The DAG file's import error (a typo in a lesson's DAG shows here), or no such DAG
    /// after 90 s.
    pub fn wait_for_dag(&self, dag_id: &str) -> Result<(), PipelineError> {
        self.wait_for_parse(dag_id, None)
    }

    /// As [`Airflow::wait_for_dag`], for a DAG file written at `since` (seconds since 1970)
    /// with `source`: until the DAG Airflow holds is that source, so that the next run is of
    /// the new version (a parse that began before the file was written ends after it).
    fn wait_for_parse(&self, dag_id: &str, since: Option<(f64, &str)>) -> Result<(), PipelineError> {
        let started = Instant::now();
        let after = |time: Option<&str>| since.is_none_or(|(since, _)| seconds(time).is_some_and(|t| t > since));
        let current = || match since {
            None => self.api("GET", &format!("/api/v2/dags/{dag_id}"), None).is_ok(),
            Some((_, source)) => self
                .api("GET", &format!("/api/v2/dagSources/{dag_id}"), None)
                .is_ok_and(|held| held["content"].as_str().is_some_and(|c| c.trim() == source.trim())),
        };
        loop {
            if current() {
                self.api("PATCH", &format!("/api/v2/dags/{dag_id}"), Some(json!({"is_paused": false})))?;
                return Ok(());
            }
            let errors = self.api("GET", "/api/v2/importErrors", None)?;
            if let Some(error) = errors["import_errors"].as_array().and_then(|list| {
                list.iter().find(|e| {
                    e["filename"].as_str().is_some_and(|f| f.contains(dag_id) || f.ends_with(&format!("{dag_id}.py")))
                        && after(e["timestamp"].as_str())
                })
            }) {
                return Err(PipelineError::Airflow(format!("the DAG file does not load: {}", error["stack_trace"].as_str().unwrap_or_default())));
            }
            if started.elapsed() > Duration::from_secs(90) {
                return Err(PipelineError::Airflow(format!(
                    "no DAG {dag_id:?} read after 90 s: is its file in {} and does it define dag_id={dag_id:?}?",
                    self.paths.dags.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts a run of `dag_id` now, with `conf` (its params); returns the run's id.
    ///
    /// # Errors
    /// When Airflow refuses it (an unknown DAG, bad params).
    pub fn trigger(&self, dag_id: &str, conf: Value) -> Result<String, PipelineError> {
        let run = self.api("POST", &format!("/api/v2/dags/{dag_id}/dagRuns"), Some(json!({"logical_date": null, "conf": conf})))?;
        run["dag_run_id"].as_str().map(str::to_string).ok_or_else(|| PipelineError::Airflow(format!("no run id in {run}")))
    }

    /// A run's state: `queued`, `running`, `success` or `failed`.
    ///
    /// # Errors
    /// When the run is unknown.
    pub fn run_state(&self, dag_id: &str, run_id: &str) -> Result<String, PipelineError> {
        let run = self.api("GET", &format!("/api/v2/dags/{dag_id}/dagRuns/{}", encode(run_id)), None)?;
        Ok(run["state"].as_str().unwrap_or("unknown").to_string())
    }

    /// Waits for a run to end, printing its task instances' states as they change; returns
    /// its task instances.
    ///
    /// # Errors
    /// When the run has not ended after `timeout`, or Airflow cannot be reached.
    pub fn wait(&self, dag_id: &str, run_id: &str, timeout: Duration) -> Result<Vec<TaskInstance>, PipelineError> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let state = self.run_state(dag_id, run_id)?;
            let instances = self.task_instances(dag_id, run_id)?;
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for ti in &instances {
                *counts.entry(ti.state.clone().unwrap_or_else(|| "none".into())).or_default() += 1;
            }
            let line = counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
            if line != last {
                println!("{:>5.1} s  run {state}: {line}", started.elapsed().as_secs_f64());
                last = line;
            }
            if state == "success" || state == "failed" {
                return Ok(instances);
            }
            if started.elapsed() > timeout {
                return Err(PipelineError::Airflow(format!("run {run_id} of {dag_id} still {state} after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(700));
        }
    }

    /// A run's task instances (one per task, one per index of a mapped task).
    ///
    /// # Errors
    /// When the run is unknown.
    pub fn task_instances(&self, dag_id: &str, run_id: &str) -> Result<Vec<TaskInstance>, PipelineError> {
        let answer = self.api("GET", &format!("/api/v2/dags/{dag_id}/dagRuns/{}/taskInstances?limit=1000", encode(run_id)), None)?;
        serde_json::from_value(answer["task_instances"].clone()).map_err(|e| PipelineError::Airflow(format!("task instances: {e}")))
    }

    /// The runs of `dag_id`, oldest first.
    ///
    /// # Errors
    /// When the DAG is unknown.
    pub fn dag_runs(&self, dag_id: &str) -> Result<Vec<DagRun>, PipelineError> {
        let answer = self.api("GET", &format!("/api/v2/dags/{dag_id}/dagRuns?limit=1000&order_by=run_after"), None)?;
        serde_json::from_value(answer["dag_runs"].clone()).map_err(|e| PipelineError::Airflow(format!("DAG runs: {e}")))
    }

    /// The log of one try of a task instance (`map_index` -1 for an unmapped task), as text.
    ///
    /// # Errors
    /// When there is no such try.
    pub fn log(&self, dag_id: &str, run_id: &str, task_id: &str, map_index: i64, try_number: u32) -> Result<String, PipelineError> {
        let path = format!("/api/v2/dags/{dag_id}/dagRuns/{}/taskInstances/{task_id}/logs/{try_number}?map_index={map_index}&full_content=true", encode(run_id));
        let answer = self.api("GET", &path, None)?;
        let lines = match &answer["content"] {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => other["event"].as_str().map_or_else(|| other.to_string(), str::to_string),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(lines)
    }

    /// Creates a backfill: one run per day of the DAG's schedule from `from` to `to`
    /// (`YYYY-MM-DD`, both included), each with `conf`; returns the backfill's id.
    ///
    /// # Errors
    /// When Airflow refuses it (a DAG without a schedule cannot be backfilled).
    pub fn backfill(&self, dag_id: &str, from: &str, to: &str, conf: Value) -> Result<i64, PipelineError> {
        let body = json!({
            "dag_id": dag_id, "from_date": format!("{from}T00:00:00Z"), "to_date": format!("{to}T00:00:00Z"),
            "run_backwards": false, "dag_run_conf": conf, "reprocess_behavior": "none", "max_active_runs": 2,
        });
        // One backfill per DAG at a time: one left unfinished (a cell stopped midway, or one
        // whose runs ended a moment ago) is cancelled first.
        let earlier = self.api("GET", &format!("/api/v2/backfills?dag_id={dag_id}"), None)?;
        for backfill in earlier["backfills"].as_array().into_iter().flatten() {
            if backfill["completed_at"].is_null() && let Some(id) = backfill["id"].as_i64() {
                let _ = self.api("PUT", &format!("/api/v2/backfills/{id}/cancel"), None);
            }
        }
        // On SQLite, Airflow refuses to create a backfill while another component writes
        // (503, "Database is locked"): the DAG processor, just after a new DAG file. Try again.
        let mut tries = 0;
        let answer = loop {
            match self.api("POST", "/api/v2/backfills", Some(body.clone())) {
                Err(PipelineError::Airflow(message)) if message.contains("Database is locked") && tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => break other?,
            }
        };
        answer["id"].as_i64().ok_or_else(|| PipelineError::Airflow(format!("no backfill id in {answer}")))
    }
}

impl Drop for Airflow {
    fn drop(&mut self) {
        if !self.components.is_empty() {
            self.stop_quietly();
        }
    }
}

/// One DAG run, as the REST API describes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DagRun {
    /// Its id.
    pub dag_run_id: String,
    /// `queued`, `running`, `success`, `failed`.
    pub state: String,
    /// `manual`, `scheduled`, `backfill`.
    pub run_type: String,
    /// The date it stands for (None for a manual run started with none).
    pub logical_date: Option<String>,
}

/// One task instance, as the REST API (or the metadata database) describes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TaskInstance {
    /// The task.
    pub task_id: String,
    /// Its index among a mapped task's instances; -1 for an unmapped task.
    pub map_index: i64,
    /// `success`, `failed`, `up_for_retry`, `running`, `queued`, ... (None before scheduling).
    pub state: Option<String>,
    /// Its try: 1 for the first, 2 after one retry.
    pub try_number: u32,
    /// When its last try started (RFC 3339).
    pub start_date: Option<String>,
    /// When its last try ended.
    pub end_date: Option<String>,
}

impl TaskInstance {
    /// `summarize[3]` for a mapped instance, `aggregate` otherwise.
    pub fn name(&self) -> String {
        if self.map_index >= 0 { format!("{}[{}]", self.task_id, self.map_index) } else { self.task_id.clone() }
    }
}

/// A table of task instances: name, state, try, duration.
pub fn table(instances: &[TaskInstance]) -> Table {
    let mut table = Table::new(["task instance", "state", "try", "took (s)"]).title("the run's task instances");
    for ti in instances {
        let took = match (seconds(ti.start_date.as_deref()), seconds(ti.end_date.as_deref())) {
            (Some(a), Some(b)) => format!("{:.1}", b - a),
            _ => "-".into(),
        };
        table.push_row([ti.name(), ti.state.clone().unwrap_or_else(|| "-".into()), ti.try_number.to_string(), took]);
    }
    table
}

/// A run's task instances as a Gantt chart, one lane per task (red: failed or retried).
pub fn gantt(instances: &[TaskInstance]) -> Diagram {
    let origin = instances.iter().filter_map(|ti| seconds(ti.start_date.as_deref())).fold(f64::INFINITY, f64::min);
    let mut bars = Vec::new();
    for ti in instances {
        let (Some(start), Some(end)) = (seconds(ti.start_date.as_deref()), seconds(ti.end_date.as_deref())) else { continue };
        let bar = Bar::new(ti.task_id.clone(), ti.name(), start - origin, end - origin);
        let failed = ti.state.as_deref() == Some("failed") || ti.try_number > 1;
        bars.push(if failed { bar.color(Bar::RED) } else { bar });
    }
    Diagram::gantt("the DAG run: each task instance's last try", &bars)
}

/// Seconds since 1970, now.
fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Seconds since 1970 of an RFC 3339 time (`2026-12-03T15:24:41.078318Z`, or with an offset).
pub fn seconds(time: Option<&str>) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(time?.trim()).ok()?;
    Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6)
}

/// One DAG run and its task instances, however it ran.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The DAG.
    pub dag_id: String,
    /// The run's id.
    pub run_id: String,
    /// The date it stands for, `YYYY-MM-DD` (None for a run started by hand without one).
    pub day: Option<String>,
    /// `success` or `failed`.
    pub state: String,
    /// Its task instances.
    pub instances: Vec<TaskInstance>,
}

impl RunRecord {
    /// The instance of `task_id` (`map_index` -1 for an unmapped task).
    pub fn instance(&self, task_id: &str, map_index: i64) -> Option<&TaskInstance> {
        self.instances.iter().find(|ti| ti.task_id == task_id && ti.map_index == map_index)
    }

    /// The instances of `task_id` (one per index of a mapped task).
    pub fn instances_of(&self, task_id: &str) -> Vec<&TaskInstance> {
        self.instances.iter().filter(|ti| ti.task_id == task_id).collect()
    }

    /// A table of its task instances.
    pub fn table(&self) -> Table {
        table(&self.instances)
    }

    /// Its task instances as a Gantt chart.
    pub fn gantt(&self) -> Diagram {
        gantt(&self.instances)
    }
}

/// How the lessons run DAGs: with Airflow's servers (a scheduler that runs DAG runs, the REST
/// API, the UI), or, where memory is short, one run at a time in a single process
/// (`airflow dags test`: about 0.25 GiB where the servers take 0.6).
#[derive(Debug)]
pub enum Session {
    /// Airflow's API server, scheduler and DAG processor, running.
    Servers(Airflow),
    /// No server: each run is an `airflow dags test`.
    InProcess(AirflowPaths),
}

/// Sets how [`Session::start`] runs DAGs: `servers` or `dags-test`.
pub const MODE_ENV: &str = "PARCOURS_AIRFLOW";

impl Session {
    /// Starts the course's Airflow: its servers, unless [`MODE_ENV`] says `dags-test` or the
    /// session has less than 3 GiB of memory (a hosted Binder has 2).
    ///
    /// # Errors
    /// As [`Airflow::start`].
    pub fn start() -> Result<Self, PipelineError> {
        let paths = AirflowPaths::for_course();
        paths.install_dags()?;
        let mode = std::env::var(MODE_ENV).unwrap_or_default();
        let small = memory_limit().is_some_and(|bytes| bytes < 3 << 30);
        if mode == "dags-test" || (mode != "servers" && small) {
            paths.require()?;
            paths.migrate()?;
            println!("Airflow without servers: each run is an `airflow dags test` (this session has little memory; {MODE_ENV}=servers to change)");
            return Ok(Session::InProcess(paths));
        }
        Ok(Session::Servers(Airflow::start_with(paths)?))
    }

    /// Airflow's paths.
    pub fn paths(&self) -> &AirflowPaths {
        match self {
            Session::Servers(airflow) => airflow.paths(),
            Session::InProcess(paths) => paths,
        }
    }

    /// The running servers, if this session has them.
    pub fn server(&self) -> Option<&Airflow> {
        match self {
            Session::Servers(airflow) => Some(airflow),
            Session::InProcess(_) => None,
        }
    }

    /// Writes a DAG file (`name.py`) and, with servers, waits until the DAG processor has read
    /// the DAG `dag_id` from this version of it (its import error, if it has one).
    ///
    /// # Errors
    /// The file not written, or the DAG not loaded.
    pub fn write_dag(&self, name: &str, dag_id: &str, source: &str) -> Result<(), PipelineError> {
        let written = now();
        self.paths().write_dag(name, source)?;
        match self {
            // The DAG processor reads its folder every few seconds: a run started before it has
            // read the new file would run the old version of the DAG.
            Session::Servers(airflow) => airflow.wait_for_parse(dag_id, Some((written, source))),
            Session::InProcess(_) => Ok(()),
        }
    }

    /// Runs `dag_id` once, now, with `conf`, and waits for it (10 minutes at most).
    ///
    /// # Errors
    /// When it cannot be started or followed. A failed run is not an error: see its state.
    pub fn run(&self, dag_id: &str, conf: Value) -> Result<RunRecord, PipelineError> {
        match self {
            Session::Servers(airflow) => {
                airflow.wait_for_dag(dag_id)?;
                let run_id = airflow.trigger(dag_id, conf)?;
                let instances = airflow.wait(dag_id, &run_id, Duration::from_secs(600))?;
                let state = airflow.run_state(dag_id, &run_id)?;
                Ok(RunRecord { dag_id: dag_id.into(), run_id, day: None, state, instances })
            }
            Session::InProcess(paths) => dags_test(paths, dag_id, None, conf),
        }
    }

    /// Backfills `dag_id` from `from` to `to` (`YYYY-MM-DD`, both included): one run per day,
    /// each standing for its day, in place of any earlier run of that day. With servers, an
    /// Airflow backfill (the scheduler runs them, two at a time); without, one
    /// `airflow dags test` per day. Returns the runs, by day.
    ///
    /// # Errors
    /// When Airflow refuses the backfill (a DAG without a schedule), or the runs cannot be
    /// followed.
    pub fn backfill(&self, dag_id: &str, from: &str, to: &str, conf: Value) -> Result<Vec<RunRecord>, PipelineError> {
        let days = days_between(from, to)?;
        match self {
            Session::Servers(airflow) => {
                airflow.wait_for_dag(dag_id)?;
                // Runs of those days from before (an earlier backfill) go: a backfill skips the
                // days that have one, and these days are to be run again, from scratch.
                for run in airflow.dag_runs(dag_id)? {
                    if run.logical_date.as_deref().is_some_and(|d| days.iter().any(|day| d.starts_with(day.as_str()))) {
                        airflow.api("DELETE", &format!("/api/v2/dags/{dag_id}/dagRuns/{}", encode(&run.dag_run_id)), None)?;
                    }
                }
                airflow.backfill(dag_id, from, to, conf)?;
                let mut records = Vec::new();
                let started = Instant::now();
                for day in days {
                    let run = loop {
                        let runs = airflow.dag_runs(dag_id)?;
                        let found = runs.into_iter().find(|r| r.run_type == "backfill" && r.logical_date.as_deref().is_some_and(|d| d.starts_with(&day)));
                        if let Some(run) = found {
                            break run;
                        }
                        if started.elapsed() > Duration::from_secs(120) {
                            return Err(PipelineError::Airflow(format!("the backfill made no run for {day} within 2 minutes")));
                        }
                        std::thread::sleep(Duration::from_millis(700));
                    };
                    println!("{day}:");
                    let instances = airflow.wait(dag_id, &run.dag_run_id, Duration::from_secs(600))?;
                    let state = airflow.run_state(dag_id, &run.dag_run_id)?;
                    records.push(RunRecord { dag_id: dag_id.into(), run_id: run.dag_run_id, day: Some(day), state, instances });
                }
                Ok(records)
            }
            Session::InProcess(paths) => days.iter().map(|day| dags_test(paths, dag_id, Some(day), conf.clone())).collect(),
        }
    }

    /// The log of one try of a task instance of `run` (`map_index` -1 for an unmapped task):
    /// through the REST API with servers, from Airflow's log folder without.
    ///
    /// # Errors
    /// When there is no such try.
    pub fn log(&self, run: &RunRecord, task_id: &str, map_index: i64, try_number: u32) -> Result<String, PipelineError> {
        if let Session::Servers(airflow) = self {
            return airflow.log(&run.dag_id, &run.run_id, task_id, map_index, try_number);
        }
        let mut folder = self.paths().home.join("logs").join(format!("dag_id={}", run.dag_id)).join(format!("run_id={}", run.run_id)).join(format!("task_id={task_id}"));
        if map_index >= 0 {
            folder = folder.join(format!("map_index={map_index}"));
        }
        let file = folder.join(format!("attempt={try_number}.log"));
        let text = fs::read_to_string(&file).map_err(PipelineError::io("reading", &file))?;
        // Structured lines (JSON, one per event): their messages.
        Ok(text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).ok().and_then(|v| v["event"].as_str().map(str::to_string)).unwrap_or_else(|| line.to_string()))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Stops the servers, if any.
    pub fn stop(&mut self) -> Stopped {
        match self {
            Session::Servers(airflow) => airflow.stop(),
            Session::InProcess(_) => Stopped::default(),
        }
    }
}

/// The memory this session may use: its control group's limit, else the machine's.
fn memory_limit() -> Option<u64> {
    let cgroup = fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse().ok());
    cgroup.or_else(|| {
        let info = fs::read_to_string("/proc/meminfo").ok()?;
        let kib: u64 = info.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    })
}

fn days_between(from: &str, to: &str) -> Result<Vec<String>, PipelineError> {
    let parse = |d: &str| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|e| PipelineError::Airflow(format!("{d:?} is not a date YYYY-MM-DD: {e}")))
    };
    let (mut day, last) = (parse(from)?, parse(to)?);
    let mut days = Vec::new();
    while day <= last {
        days.push(day.format("%Y-%m-%d").to_string());
        day = day.succ_opt().expect("a day after");
    }
    Ok(days)
}

/// Runs one DAG run of `dag_id` in a single process, without servers (`airflow dags test`),
/// for `day` (its logical date) or now, then reads its task instances from the metadata
/// database.
///
/// # Errors
/// Airflow missing, or its database unreadable. A failed run is not an error here: see
/// [`RunRecord::state`].
pub fn dags_test(paths: &AirflowPaths, dag_id: &str, day: Option<&str>, conf: Value) -> Result<RunRecord, PipelineError> {
    paths.require()?;
    paths.migrate()?;
    // Runs made before this one are not its: only a run newer than these counts.
    let before = read_runs(paths, dag_id, -1)?.last_id;
    let conf = conf.to_string();
    let mut command = Command::new(&paths.program);
    command.args(["dags", "test", dag_id]);
    if let Some(day) = day {
        command.arg(day);
    }
    let output = command
        .args(["--conf", &conf])
        .envs(paths.environment(0))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PipelineError::Airflow(format!("cannot run {}: {e}", paths.program.display())))?;
    let found = read_runs(paths, dag_id, before)?;
    let Some(run_id) = found.run_id else {
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        return Err(PipelineError::Airflow(format!("`airflow dags test {dag_id}` made no run:\n{}", tail(&text, 25))));
    };
    Ok(RunRecord {
        dag_id: dag_id.into(),
        run_id,
        day: day.map(str::to_string),
        state: found.state.unwrap_or_else(|| if output.status.success() { "success".into() } else { "failed".into() }),
        instances: found.instances,
    })
}

/// What the metadata database holds of `dag_id`'s runs: the newest run's id (database row),
/// and, if it is newer than `after`, its run id, state and task instances.
#[derive(Deserialize)]
struct StoredRun {
    last_id: i64,
    run_id: Option<String>,
    state: Option<String>,
    instances: Vec<TaskInstance>,
}

/// Reads the runs of `dag_id` from the SQLite file, with the Python of Airflow's environment.
fn read_runs(paths: &AirflowPaths, dag_id: &str, after: i64) -> Result<StoredRun, PipelineError> {
    let python = paths.program.with_file_name("python");
    let query = r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
dag, after = sys.argv[2], int(sys.argv[3])
run = db.execute("select id, run_id, state from dag_run where dag_id = ? order by id desc limit 1", (dag,)).fetchone()
found = run is not None and run[0] > after
rows = db.execute(
    "select task_id, map_index, state, try_number, start_date, end_date from task_instance where dag_id = ? and run_id = ?",
    (dag, run[1])).fetchall() if found else []
def iso(t): return None if t is None else str(t).replace(" ", "T") + ("" if "+" in str(t) else "+00:00")
print(json.dumps({"last_id": -1 if run is None else run[0], "run_id": run[1] if found else None,
    "state": run[2] if found else None,
    "instances": [dict(task_id=r[0], map_index=r[1], state=r[2], try_number=r[3], start_date=iso(r[4]), end_date=iso(r[5])) for r in rows]}))
"#;
    let read = Command::new(&python)
        .args(["-c", query])
        .arg(paths.home.join("airflow.db"))
        .arg(dag_id)
        .arg(after.to_string())
        .output()
        .map_err(|e| PipelineError::Airflow(format!("cannot run {}: {e}", python.display())))?;
    serde_json::from_slice(&read.stdout)
        .map_err(|e| PipelineError::Airflow(format!("reading the DAG runs: {e}: {}", String::from_utf8_lossy(&read.stderr))))
}

/// A process outside the kernel that kills the components' process groups when the kernel's
/// process dies: `PR_SET_PDEATHSIG` kills the components themselves, but not what they forked
/// (the executor's workers, the tasks), which would outlive a kernel that was killed.
fn watchdog(components: &[(String, Child)]) -> Result<Child, PipelineError> {
    let groups: Vec<u32> = components.iter().map(|(_, child)| child.id()).collect();
    watch(std::process::id(), &groups)
}

/// Starts `sh`, which kills process groups `groups` once process `owner` is gone.
fn watch(owner: u32, groups: &[u32]) -> Result<Child, PipelineError> {
    // `kill -KILL -PGID`: Debian's sh (dash) refuses `kill -KILL -- -PGID` and kills nothing.
    let groups: Vec<String> = groups.iter().map(|group| format!("-{group}")).collect();
    let script = format!(
        "while kill -0 {owner} 2>/dev/null; do sleep 1; done; kill -KILL {groups} 2>/dev/null",
        groups = groups.join(" ")
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| PipelineError::Airflow(format!("cannot start the watchdog (sh): {e}")))
}

/// The processes of process group `group` whose command line mentions airflow.
fn airflow_processes_in_group(group: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let pgrp = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<i32>().ok());
            pgrp == Some(group) && String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).contains("airflow")
        })
        .collect()
}

fn free_port() -> Result<u16, PipelineError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(PipelineError::io("finding a free port on", "127.0.0.1"))
}

fn http_error(error: ureq::Error) -> PipelineError {
    PipelineError::Airflow(format!("the REST API: {error}"))
}

/// A run id in a URL path (`manual__2026-12-03T15:24:39.831131+00:00`: `+` and `:`).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // A zombie is gone for this purpose: it runs nothing.
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
    }

    #[test]
    fn the_watchdog_kills_every_process_of_the_groups_once_their_owner_dies() {
        let mut owner = Command::new("sleep").arg("300").spawn().unwrap();
        // A group leader that forks a member, as the scheduler forks its executor's workers.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(leader.stdout.take().unwrap()), &mut line).unwrap();
        let member: u32 = line.trim().parse().unwrap();
        let mut watchdog = watch(owner.id(), &[leader.id()]).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(alive(leader.id()) && alive(member), "the watchdog killed the group while its owner lived");
        owner.kill().unwrap();
        owner.wait().unwrap();
        let started = std::time::Instant::now();
        while alive(member) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let survived = alive(member);
        // SAFETY: kill(2) on the process group of our own child, so that a failure leaves nothing.
        unsafe { libc::kill(-(leader.id() as i32), libc::SIGKILL) };
        leader.wait().unwrap();
        assert!(!survived, "a member of the group outlived its owner by 10 s");
        assert!(watchdog.wait().unwrap().success(), "the watchdog's kill failed");
    }
}
