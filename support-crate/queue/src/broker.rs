//! The broker the course starts itself, its queues, and the records read back from it.
//!
//! ```no_run
//! use parcours_queue::broker::Broker;
//! use parcours_queue::tasks::CourseTask;
//! let broker = Broker::start().unwrap();                 // Redis, or SQLite (PARCOURS_BROKER)
//! let queue = broker.queue("squares");
//! queue.push_all(&(0..100).map(|n| CourseTask::Square { n }).collect::<Vec<_>>()).unwrap();
//! // ... start workers (parcours_queue::pool), then:
//! let counts = queue.counts().unwrap();
//! println!("{counts}");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ledger::Ledger;
use crate::local_redis::{Fsync, LocalRedis, redis_installed};
use crate::runtime::block_on;
use crate::tasks::CourseTask;
use crate::QueueError;

/// Which broker the lessons run on: `PARCOURS_BROKER=redis|sqlite`; by default Redis where
/// `redis-server` is installed, SQLite elsewhere.
pub const BROKER_ENV: &str = "PARCOURS_BROKER";

/// The two brokers the course runs its queues on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    /// A `redis-server` the course starts: the broker Celery users know.
    Redis,
    /// An SQLite file: no server at all, one machine.
    Sqlite,
}

impl BrokerKind {
    /// The broker named by [`BROKER_ENV`], else Redis if installed, else SQLite.
    ///
    /// # Errors
    /// When the variable names neither.
    pub fn from_env() -> Result<Self, QueueError> {
        match std::env::var(BROKER_ENV).ok().as_deref().map(str::trim) {
            Some("redis") => Ok(BrokerKind::Redis),
            Some("sqlite") => Ok(BrokerKind::Sqlite),
            None | Some("") if redis_installed() => Ok(BrokerKind::Redis),
            None | Some("") => Ok(BrokerKind::Sqlite),
            Some(other) => Err(QueueError::UnknownBroker(other.to_string())),
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokerKind::Redis => "Redis",
            BrokerKind::Sqlite => "SQLite",
        })
    }
}

/// What a worker needs to reach a broker; passed to worker processes as arguments (the
/// password stays in its file, never on a command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerAddress {
    /// `redis-server` on 127.0.0.1:`port`, its password in `password_file`.
    Redis {
        /// The port on 127.0.0.1.
        port: u16,
        /// The file holding the password.
        password_file: PathBuf,
    },
    /// An SQLite database file.
    Sqlite {
        /// The file.
        path: PathBuf,
    },
}

impl BrokerAddress {
    /// The command-line arguments of `parcours-queue-worker` that name this broker.
    pub fn to_args(&self) -> Vec<OsString> {
        match self {
            BrokerAddress::Redis { port, password_file } => vec![
                "--redis-port".into(),
                port.to_string().into(),
                "--password-file".into(),
                password_file.into(),
            ],
            BrokerAddress::Sqlite { path } => vec!["--sqlite".into(), path.into()],
        }
    }

    /// Which kind of broker.
    pub fn kind(&self) -> BrokerKind {
        match self {
            BrokerAddress::Redis { .. } => BrokerKind::Redis,
            BrokerAddress::Sqlite { .. } => BrokerKind::Sqlite,
        }
    }

    pub(crate) async fn connect(&self) -> Result<Connection, QueueError> {
        match self {
            BrokerAddress::Redis { port, password_file } => {
                let password = std::fs::read_to_string(password_file)
                    .map_err(QueueError::io(format!("reading {}", password_file.display())))?;
                let url = format!("redis://:{}@127.0.0.1:{port}/0", password.trim());
                let connection = apalis_redis::connect(url).await.map_err(|e| {
                    QueueError::Broker(format!("cannot reach Redis on 127.0.0.1:{port}: {e}"))
                })?;
                Ok(Connection::Redis(connection))
            }
            BrokerAddress::Sqlite { path } => {
                let url = format!("sqlite:{}?mode=rwc", path.display());
                let pool = SqlitePool::connect(&url).await.map_err(|e| {
                    QueueError::Broker(format!("cannot open {}: {e}", path.display()))
                })?;
                Ok(Connection::Sqlite(pool))
            }
        }
    }
}

/// An open connection to a broker.
#[derive(Clone)]
pub(crate) enum Connection {
    Redis(redis::aio::ConnectionManager),
    Sqlite(SqlitePool),
}

/// A running broker and its folder (under `$PARCOURS_HOME/queue/`, deleted when dropped).
pub struct Broker {
    address: BrokerAddress,
    dir: PathBuf,
    redis: Mutex<Option<LocalRedis>>,
    connection: Arc<Connector>,
}

/// A connection made once and shared by a broker and its queues (not a borrow: a notebook
/// keeps a queue in a variable of its own).
pub(crate) struct Connector {
    address: BrokerAddress,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.address.fmt(f)
    }
}

impl Connector {
    pub(crate) async fn get(&self) -> Result<Connection, QueueError> {
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            *connection = Some(self.address.connect().await?);
        }
        Ok(connection.clone().expect("connected above"))
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("address", &self.address)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Broker {
    /// Starts the broker of [`BrokerKind::from_env`].
    ///
    /// # Errors
    /// As [`Broker::start_kind`].
    pub fn start() -> Result<Self, QueueError> {
        Self::start_kind(BrokerKind::from_env()?)
    }

    /// Starts a Redis server, or creates an SQLite database, in a new folder under
    /// `$PARCOURS_HOME/queue/`.
    ///
    /// # Errors
    /// When Redis is missing or does not start, or the database cannot be created.
    pub fn start_kind(kind: BrokerKind) -> Result<Self, QueueError> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let brokers = parcours::notebook::parcours_home().join("queue");
        remove_folders_of_dead_processes(&brokers);
        let dir = brokers.join(format!(
            "{}-{}-{}",
            match kind {
                BrokerKind::Redis => "redis",
                BrokerKind::Sqlite => "sqlite",
            },
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        // A folder left by an earlier process that had our id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("runs"))
            .map_err(QueueError::io(format!("creating {}", dir.display())))?;
        let (address, redis) = match kind {
            BrokerKind::Redis => {
                let redis = LocalRedis::start_in(&dir.join("redis"), Fsync::EverySecond)?;
                let address = BrokerAddress::Redis {
                    port: redis.port(),
                    password_file: redis.password_file(),
                };
                (address, Some(redis))
            }
            BrokerKind::Sqlite => {
                let path = dir.join("queue.sqlite");
                let address = BrokerAddress::Sqlite { path };
                (address, None)
            }
        };
        let broker = Broker {
            connection: Arc::new(Connector {
                address: address.clone(),
                connection: tokio::sync::Mutex::new(None),
            }),
            address,
            dir,
            redis: Mutex::new(redis),
        };
        if kind == BrokerKind::Sqlite {
            block_on(async {
                let Connection::Sqlite(pool) = broker.connection.get().await? else {
                    unreachable!("an SQLite address gives an SQLite connection")
                };
                SqliteStorage::setup(&pool)
                    .await
                    .map_err(|e| QueueError::Broker(format!("creating the queue's tables: {e}")))
            })?;
        }
        Ok(broker)
    }

    /// A broker that runs already (started by someone else: a benchmark sharing one Redis
    /// with Celery); nothing is started, and dropping it stops nothing. Its folder keeps the
    /// workers' run logs.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn connect(address: BrokerAddress) -> Result<Self, QueueError> {
        static CONNECTED: AtomicUsize = AtomicUsize::new(0);
        let brokers = parcours::notebook::parcours_home().join("queue");
        remove_folders_of_dead_processes(&brokers);
        let dir = brokers.join(format!(
            "external-{}-{}",
            std::process::id(),
            CONNECTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("runs"))
            .map_err(QueueError::io(format!("creating {}", dir.display())))?;
        Ok(Broker {
            connection: Arc::new(Connector {
                address: address.clone(),
                connection: tokio::sync::Mutex::new(None),
            }),
            address,
            dir,
            redis: Mutex::new(None),
        })
    }

    /// Which broker.
    pub fn kind(&self) -> BrokerKind {
        self.address.kind()
    }

    /// How workers reach it.
    pub fn address(&self) -> &BrokerAddress {
        &self.address
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A queue of this broker (apalis' queue name; nothing is created until a push).
    pub fn queue(&self, name: &str) -> Queue {
        Queue {
            name: name.to_string(),
            runs_dir: self.dir.join("runs").join(name),
            connection: Arc::clone(&self.connection),
        }
    }

    /// A queue of a name not used before in this process: `prefix-1`, `prefix-2`... (a cell
    /// run twice gets a fresh queue).
    pub fn fresh_queue(&self, prefix: &str) -> Queue {
        static QUEUES: AtomicUsize = AtomicUsize::new(1);
        self.queue(&format!("{prefix}-{}", QUEUES.fetch_add(1, Ordering::Relaxed)))
    }

    /// Balances named `name`, kept in this broker (see [`Ledger`]).
    pub fn ledger(&self, name: &str) -> Ledger {
        Ledger::new(name, Arc::clone(&self.connection))
    }

    /// Runs `f` on the Redis server (to stop, kill or restart it in a lesson), or says
    /// there is none.
    ///
    /// # Errors
    /// When the broker is not Redis, or `f` fails.
    pub fn with_redis<T>(
        &self,
        f: impl FnOnce(&mut LocalRedis) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut redis = self.redis.lock().unwrap_or_else(|e| e.into_inner());
        match redis.as_mut() {
            Some(redis) => {
                let result = f(redis);
                // A restarted server needs new connections.
                block_on(async { *self.connection.connection.lock().await = None });
                result
            }
            None => Err(QueueError::Broker(format!(
                "this broker is {}, not Redis",
                self.kind()
            ))),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // The server first: it writes in the folder.
        drop(self.redis.lock().unwrap_or_else(|e| e.into_inner()).take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Brokers' folders are named `<kind>-<pid>-<n>`: those of a process that no longer runs (a
/// kernel killed before it could clean up) are deleted, data and all.
fn remove_folders_of_dead_processes(brokers: &Path) {
    let Ok(entries) = std::fs::read_dir(brokers) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The status apalis records for a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Waiting: pushed, scheduled for later, or put back for a retry.
    Pending,
    /// Taken from the queue by a worker, not started yet.
    Queued,
    /// A worker runs it.
    Running,
    /// Finished with a result.
    Done,
    /// Failed; the broker will offer it again.
    Failed,
    /// Given up: aborted, out of attempts or malformed (a dead letter).
    Killed,
}

impl Status {
    fn parse(text: &str) -> Status {
        match text {
            "Queued" => Status::Queued,
            "Running" => Status::Running,
            "Done" => Status::Done,
            "Failed" => Status::Failed,
            "Killed" => Status::Killed,
            _ => Status::Pending,
        }
    }

    /// Whether the task will not run again.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Done | Status::Killed)
    }
}

/// One task as the broker records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// How many times a worker ran it and reported back (apalis' count).
    pub attempts: u32,
    /// The worker that ran it last.
    pub worker: Option<String>,
    /// The payload as pushed.
    pub payload: Value,
    /// The result: `Ok(value)`, or `Err(the error's text)`; `None` before the first report.
    pub result: Option<Result<Value, String>>,
    /// The step of a flow it runs (its node in apalis-workflow's graph), if it is one.
    #[serde(default)]
    pub node: Option<usize>,
}

/// How many tasks a queue holds in each status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Waiting, or put back for a retry.
    pub pending: usize,
    /// Taken by a worker, or running.
    pub running: usize,
    /// Done.
    pub done: usize,
    /// Failed, to be offered again.
    pub failed: usize,
    /// Killed: dead letters.
    pub killed: usize,
}

impl Counts {
    fn of(records: &[TaskRecord]) -> Counts {
        let mut counts = Counts::default();
        for record in records {
            match record.status {
                Status::Pending => counts.pending += 1,
                Status::Queued | Status::Running => counts.running += 1,
                Status::Done => counts.done += 1,
                Status::Failed => counts.failed += 1,
                Status::Killed => counts.killed += 1,
            }
        }
        counts
    }

    /// Every task.
    pub fn total(&self) -> usize {
        self.pending + self.running + self.done + self.failed + self.killed
    }

    /// Tasks that will not run again (done or killed).
    pub fn finished(&self) -> usize {
        self.done + self.killed
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pending, {} running, {} done, {} failed, {} killed",
            self.pending, self.running, self.done, self.failed, self.killed
        )
    }
}

/// A queue's counts over time, as [`Queue::watch`] saw them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// (seconds since the watch began, counts then).
    pub samples: Vec<(f64, Counts)>,
}

impl Timeline {
    /// The last counts seen.
    pub fn last(&self) -> Counts {
        self.samples.last().map(|(_, counts)| counts.clone()).unwrap_or_default()
    }

    /// How long the watch lasted, in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.last().map_or(0.0, |(t, _)| *t)
    }

    /// Tasks pending, running, done and killed over time.
    pub fn chart(&self, title: &str) -> parcours::chart::Chart {
        let series = |f: fn(&Counts) -> usize| -> Vec<(f64, f64)> {
            self.samples.iter().map(|(t, c)| (*t, f(c) as f64)).collect()
        };
        let mut chart = parcours::chart::Chart::new(title)
            .x_label("seconds")
            .y_label("tasks")
            .line("pending (or waiting to retry)", series(|c| c.pending + c.failed))
            .line("running", series(|c| c.running))
            .line("done", series(|c| c.done));
        if self.samples.iter().any(|(_, c)| c.killed > 0) {
            chart = chart.line("killed", series(|c| c.killed));
        }
        chart
    }
}

/// One run of a task by a worker, from the run log every course worker keeps (apalis counts
/// attempts, not the runs of a worker killed before it reported).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The task's id.
    pub task: String,
    /// The worker's name.
    pub worker: String,
    /// The process the worker ran in.
    pub pid: u32,
    /// apalis' attempt number for this run (1 for the first).
    pub attempt: u32,
    /// When it started, in ms since the Unix epoch.
    pub started_ms: u64,
    /// When it ended; `None` if the worker died first.
    pub ended_ms: Option<u64>,
    /// `ok`, or the error; `None` if the worker died first.
    pub outcome: Option<String>,
    /// The step of a flow it ran ([`crate::canvas`]), if it is one.
    #[serde(default)]
    pub node: Option<String>,
    /// How many inputs that step got.
    #[serde(default)]
    pub inputs: Option<usize>,
}

/// A queue of a [`Broker`]: push tasks, read what the broker records about them.
#[derive(Clone, Debug)]
pub struct Queue {
    name: String,
    runs_dir: PathBuf,
    connection: Arc<Connector>,
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The broker's address (for workers).
    pub fn address(&self) -> &BrokerAddress {
        &self.connection.address
    }

    /// The folder where the course's workers log their runs of this queue's tasks.
    pub fn runs_dir(&self) -> &Path {
        &self.runs_dir
    }

    /// Pushes one task; returns its id.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn push(&self, task: &CourseTask) -> Result<String, QueueError> {
        Ok(self.push_all(std::slice::from_ref(task))?.remove(0))
    }

    /// Pushes tasks in one batch; returns their ids, in order.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn push_all(&self, tasks: &[CourseTask]) -> Result<Vec<String>, QueueError> {
        let payloads = tasks
            .iter()
            .map(|task| serde_json::to_value(task).expect("a course task serializes"))
            .collect();
        self.push_payloads(payloads)
    }

    /// Pushes values of any serde type as tasks (for a worker of your own,
    /// [`crate::worker::KernelWorker`]); returns their ids, in order.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn push_values<T: Serialize>(&self, values: &[T]) -> Result<Vec<String>, QueueError> {
        let payloads = values
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueueError::Broker(format!("a value does not serialize: {e}")))?;
        self.push_payloads(payloads)
    }

    /// Pushes any JSON as a task: what a producer with a bug would send. The course's workers
    /// dead-letter what they cannot read (status `Killed`, the parse error as the result).
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn push_payloads(&self, payloads: Vec<Value>) -> Result<Vec<String>, QueueError> {
        block_on(self.push_payloads_async(payloads))
    }

    /// [`Queue::push_payloads`], from async code (the beat).
    pub(crate) async fn push_payloads_async(&self, payloads: Vec<Value>) -> Result<Vec<String>, QueueError> {
        let connection = self.connection.get().await?;
        let mut ids = Vec::with_capacity(payloads.len());
        // Monotonic within a millisecond too: the records' order is the order of pushing.
        let mut generator = ulid::Generator::new();
        let mut tasks = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let id = TaskId::from_ulid(generator.generate().map_err(QueueError::broker)?);
            ids.push(id.to_string());
            tasks.push(TaskBuilder::new(payload).task_id(id).build());
        }
        let pushed = match connection {
            Connection::Redis(connection) => {
                let config = apalis_redis::Config::default().queue(&self.name);
                let mut storage = RedisStorage::<Value>::new(connection).with_config(config);
                storage.push_all(futures::stream::iter(tasks)).await.map_err(QueueError::broker)
            }
            Connection::Sqlite(pool) => {
                let config = apalis_sqlite::Config::default().queue(&self.name);
                let mut storage = SqliteStorage::<Value>::new(&pool).with_config(config);
                storage.push_all(futures::stream::iter(tasks)).await.map_err(QueueError::broker)
            }
        };
        pushed.map(|()| ids)
    }

    /// Pushes the task that starts a flow ([`Queue::start_flow`]).
    pub(crate) fn push_start(&self, payload: crate::canvas::StartPayload) -> Result<(), QueueError> {
        use apalis_workflow::WorkflowSink;
        use crate::canvas::StartPayload;
        block_on(async {
            macro_rules! start_on {
                ($storage:expr) => {{
                    let mut storage = $storage;
                    match payload {
                        StartPayload::One(value) => storage.push_start(value).await,
                        StartPayload::FanOut(values) => storage.start_fan_out(values).await,
                    }
                    .map_err(QueueError::broker)
                }};
            }
            match self.connection.get().await? {
                Connection::Redis(connection) => {
                    let config = apalis_redis::Config::default().queue(&self.name);
                    start_on!(RedisStorage::<Value>::new(connection).with_config(config))
                }
                Connection::Sqlite(pool) => {
                    let config = apalis_sqlite::Config::default().queue(&self.name);
                    start_on!(SqliteStorage::<Value>::new(&pool).with_config(config))
                }
            }
        })
    }

    /// Every task of the queue as the broker records it, in the order they were pushed.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn records(&self) -> Result<Vec<TaskRecord>, QueueError> {
        block_on(async {
            let mut records = match self.connection.get().await? {
                Connection::Redis(mut connection) => redis_records(&mut connection, &self.name).await?,
                Connection::Sqlite(pool) => sqlite_records(&pool, &self.name).await?,
            };
            // Ids are ULIDs: their order is the order of pushing.
            records.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(records)
        })
    }

    /// How many tasks in each status.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn counts(&self) -> Result<Counts, QueueError> {
        Ok(Counts::of(&self.records()?))
    }

    /// Waits until every task is done or killed, and stays so for half a second (a flow's
    /// next steps are pushed as a step ends), printing a progress line every 2 s; returns the
    /// final counts.
    ///
    /// # Errors
    /// [`QueueError::Timeout`] with the last counts after `timeout`.
    pub fn wait(&self, timeout: Duration) -> Result<Counts, QueueError> {
        self.watch(timeout).map(|timeline| timeline.last())
    }

    /// As [`Queue::wait`], keeping the counts seen every 100 ms: the queue's life to draw
    /// ([`Timeline::chart`]).
    ///
    /// # Errors
    /// [`QueueError::Timeout`] with the last counts after `timeout`.
    pub fn watch(&self, timeout: Duration) -> Result<Timeline, QueueError> {
        let started = Instant::now();
        let mut last_line = Instant::now();
        let mut timeline = Timeline { samples: Vec::new() };
        // Since when every task seen is finished. A flow's step pushes the next steps' tasks as
        // it ends, so "all finished" can be true for a moment between two steps: it must hold
        // for half a second.
        let mut all_finished_since: Option<Instant> = None;
        loop {
            let counts = self.counts()?;
            timeline.samples.push((started.elapsed().as_secs_f64(), counts.clone()));
            if counts.finished() == counts.total() {
                let since = *all_finished_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(500) {
                    return Ok(timeline);
                }
            } else {
                all_finished_since = None;
            }
            if started.elapsed() > timeout {
                return Err(QueueError::Timeout {
                    what: format!("the tasks of queue {:?} to finish ({counts})", self.name),
                    waited: timeout,
                });
            }
            if last_line.elapsed() >= Duration::from_secs(2) {
                println!(
                    "{}: {}/{} finished ({counts}) after {:.0} s",
                    self.name,
                    counts.finished(),
                    counts.total(),
                    started.elapsed().as_secs_f64()
                );
                last_line = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many tasks are finished (done or killed): one cheap query, for waits that must
    /// see the end within milliseconds (a benchmark), where [`Queue::counts`] reads every record.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn finished(&self) -> Result<usize, QueueError> {
        block_on(async {
            match self.connection.get().await? {
                Connection::Redis(mut connection) => {
                    let config = apalis_redis::Config::default().queue(&self.name);
                    let (done, dead): (usize, usize) = redis::pipe()
                        .cmd("SCARD")
                        .arg(config.done_jobs_set())
                        .cmd("SCARD")
                        .arg(config.dead_jobs_set())
                        .query_async(&mut connection)
                        .await
                        .map_err(QueueError::broker)?;
                    Ok(done + dead)
                }
                Connection::Sqlite(pool) => {
                    let finished: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status IN ('Done', 'Killed')",
                    )
                    .bind(&self.name)
                    .fetch_one(&pool)
                    .await
                    .map_err(QueueError::broker)?;
                    Ok(finished as usize)
                }
            }
        })
    }

    /// The results of the tasks `ids` (as [`Queue::push_all`] returned them), in that order.
    ///
    /// # Errors
    /// When a task is not done, naming it and its status.
    pub fn results<T: serde::de::DeserializeOwned>(&self, ids: &[String]) -> Result<Vec<T>, QueueError> {
        let records: HashMap<String, TaskRecord> = self
            .records()?
            .into_iter()
            .map(|record| (record.id.clone(), record))
            .collect();
        ids.iter()
            .map(|id| match records.get(id) {
                Some(TaskRecord { result: Some(Ok(value)), status: Status::Done, .. }) => {
                    serde_json::from_value(value.clone()).map_err(|e| {
                        QueueError::Broker(format!("task {id}'s result {value} does not read: {e}"))
                    })
                }
                Some(record) => Err(QueueError::Broker(format!(
                    "task {id} is {:?}, not done (result {:?})",
                    record.status, record.result
                ))),
                None => Err(QueueError::Broker(format!("no task {id} in queue {:?}", self.name))),
            })
            .collect()
    }

    /// Every run the course's workers logged for this queue, by start time.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs = crate::tasks::read_runs(&self.runs_dir);
        runs.sort_by_key(|run| run.started_ms);
        runs
    }

    /// How many times each task ran (a task run more than once was delivered again: after a
    /// worker died, or a retry).
    pub fn runs_per_task(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for run in self.runs() {
            *counts.entry(run.task).or_insert(0) += 1;
        }
        counts
    }
}

async fn redis_records(
    connection: &mut redis::aio::ConnectionManager,
    queue: &str,
) -> Result<Vec<TaskRecord>, QueueError> {
    // apalis-redis 1.0's listing APIs do not work (docs/queue.md): read its keys.
    let config = apalis_redis::Config::default().queue(queue);
    let payloads: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(config.job_data_hash())
        .query_async(connection)
        .await
        .map_err(QueueError::broker)?;
    if payloads.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    let ids: Vec<&String> = payloads.keys().collect();
    for id in &ids {
        pipe.cmd("HGETALL").arg(format!("{}:{id}", config.job_meta_hash()));
    }
    let metas: Vec<HashMap<String, String>> =
        pipe.query_async(connection).await.map_err(QueueError::broker)?;
    Ok(ids
        .into_iter()
        .zip(metas)
        .map(|(id, meta)| TaskRecord {
            id: id.clone(),
            status: Status::parse(meta.get("status").map_or("Pending", String::as_str)),
            attempts: meta.get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
            worker: meta.get("locked_by").filter(|w| !w.is_empty()).cloned(),
            payload: serde_json::from_slice(&payloads[id]).unwrap_or(Value::Null),
            result: meta.get("result").map(|text| read_result(text)),
            node: meta.get(FLOW_NODE_KEY).and_then(|node| node.parse().ok()),
        })
        .collect())
}

async fn sqlite_records(pool: &SqlitePool, queue: &str) -> Result<Vec<TaskRecord>, QueueError> {
    type Row = (String, String, i64, Option<String>, Vec<u8>, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, status, attempts, lock_by, job, last_result, metadata FROM Jobs WHERE job_type = ?1",
    )
    .bind(queue)
    .fetch_all(pool)
    .await
    .map_err(QueueError::broker)?;
    Ok(rows
        .into_iter()
        .map(|(id, status, attempts, worker, payload, result, metadata)| TaskRecord {
            id,
            status: Status::parse(&status),
            attempts: attempts.max(0) as u32,
            worker: worker.filter(|w| !w.is_empty()),
            payload: serde_json::from_slice(&payload).unwrap_or(Value::Null),
            result: result.map(|text| read_result(&text)),
            node: metadata
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|meta| match meta.get(FLOW_NODE_KEY)? {
                    Value::String(node) => node.parse().ok(),
                    other => other.as_u64().map(|n| n as usize),
                }),
        })
        .collect())
}

/// Where apalis-workflow keeps a task's node in the task's metadata.
const FLOW_NODE_KEY: &str = "apalis_workflow.graph.current_node";

/// apalis stores a result as serde's `{"Ok": value}` or `{"Err": "text"}`.
fn read_result(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut map)) if map.contains_key("Ok") => Ok(map.remove("Ok").unwrap_or_default()),
        Ok(Value::Object(mut map)) if map.contains_key("Err") => Err(match map.remove("Err") {
            Some(Value::String(error)) => error,
            Some(other) => other.to_string(),
            None => String::new(),
        }),
        _ => Err(format!("unreadable result {text:?}")),
    }
}
