//! One apalis worker, as the course's `parcours-queue-worker` program runs it.

use std::future::Future;
use std::pin::Pin;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::broker::{BrokerAddress, Connection, Queue};
use crate::canvas::{Aborting, Flow, flow_graph};
use crate::runtime::runtime;
use crate::tasks::{CustomHandler, Failure, Handling, handle};
use crate::QueueError;

/// How a worker runs: the knobs Celery calls `--concurrency`, `autoretry_for`/`retry_backoff`,
/// `time_limit`, and the broker's visibility timeout.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerOptions {
    /// Tasks one worker runs at once.
    pub concurrency: usize,
    /// Attempts after the first, in the worker, before the task is given up (`Killed`).
    pub retries: u32,
    /// The wait before the first retry; it doubles at each retry (plus up to 50 % jitter).
    pub backoff: Duration,
    /// A run longer than this fails (and counts as an attempt).
    pub time_limit: Option<Duration>,
    /// How often the worker tells the broker it is alive.
    pub heartbeat: Duration,
    /// Heartbeats a worker may miss before another worker takes its tasks back: the
    /// visibility timeout is `heartbeat × missed_heartbeats`.
    pub missed_heartbeats: usize,
    /// How often an idle worker looks for new tasks.
    pub poll: Duration,
    /// Tasks taken from the broker in one go.
    pub batch: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            retries: 0,
            backoff: Duration::from_millis(100),
            time_limit: None,
            heartbeat: Duration::from_secs(1),
            missed_heartbeats: 3,
            poll: Duration::from_millis(20),
            batch: 10,
        }
    }
}

impl WorkerOptions {
    /// After how long without a heartbeat a worker's tasks are given to others.
    pub fn visibility_timeout(&self) -> Duration {
        self.heartbeat * self.missed_heartbeats as u32
    }

    /// The options as `parcours-queue-worker` arguments.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--retries".into(),
            self.retries.to_string(),
            "--backoff-ms".into(),
            self.backoff.as_millis().to_string(),
            "--heartbeat-ms".into(),
            self.heartbeat.as_millis().to_string(),
            "--missed-heartbeats".into(),
            self.missed_heartbeats.to_string(),
            "--poll-ms".into(),
            self.poll.as_millis().to_string(),
            "--batch".into(),
            self.batch.to_string(),
        ];
        if let Some(limit) = self.time_limit {
            args.extend(["--time-limit-ms".into(), limit.as_millis().to_string()]);
        }
        args
    }
}

/// Runs one worker named `name` on `queue` until `shutdown` completes (then it finishes the
/// tasks it holds and returns `Ok`).
///
/// # Errors
/// When the broker is lost (a Redis restart: the worker program then starts again under
/// the same name, which takes its tasks back at once).
pub async fn run_worker(
    address: &BrokerAddress,
    queue: &str,
    name: &str,
    options: &WorkerOptions,
    runs_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), QueueError> {
    let handling = Handling::new(name, options.retries, options.time_limit, runs_dir.as_deref())
        .map_err(QueueError::io("opening the worker's run log"))?;
    serve(address, queue, name, Arc::new(handling), options, Box::pin(shutdown)).await
}

/// Runs one worker named `name` that runs the steps of `flow` on `queue` (apalis-workflow),
/// until `shutdown` completes. A failed step is never retried: it ends its flow.
///
/// # Errors
/// A flow that cannot run, or a lost broker (as [`run_worker`]).
pub async fn run_flow_worker(
    address: &BrokerAddress,
    queue: &str,
    name: &str,
    flow: &Flow,
    options: &WorkerOptions,
    runs_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), QueueError> {
    flow.validate()?;
    let handling = Arc::new(
        Handling::new(name, 0, None, runs_dir.as_deref())
            .map_err(QueueError::io("opening the worker's run log"))?,
    );
    let shutdown = async move {
        shutdown.await;
        Ok::<(), std::io::Error>(())
    };
    macro_rules! run_flow_on {
        ($storage:expr) => {
            WorkerBuilder::new(name)
                .backend($storage.poll_with_interval(options.poll))
                .concurrency(options.concurrency)
                .parallelize(tokio::spawn)
                .build(Aborting(flow_graph!(flow, &handling)))
                .run_until(shutdown)
                .await
        };
    }
    let result = match address.connect().await? {
        Connection::Redis(connection) => {
            let config = redis_config(queue, options);
            run_flow_on!(RedisStorage::<Vec<u8>>::new(connection).with_config(config))
        }
        Connection::Sqlite(pool) => {
            let config = sqlite_config(queue, options);
            run_flow_on!(SqliteStorage::<Vec<u8>>::new(&pool).with_config(config))
        }
    };
    result.map_err(|e| QueueError::Broker(format!("worker {name}: {e}")))
}

fn redis_config(queue: &str, options: &WorkerOptions) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(queue)
        .heartbeat_interval(options.heartbeat)
        .missed_heartbeats(options.missed_heartbeats)
        .batch_size(options.batch)
}

fn sqlite_config(queue: &str, options: &WorkerOptions) -> apalis_sqlite::Config {
    apalis_sqlite::Config::default()
        .queue(queue)
        .heartbeat_interval(options.heartbeat)
        .missed_heartbeats(options.missed_heartbeats)
        .batch_size(options.batch)
}

// Not generic (a boxed future, a shared handler): a cell that starts a worker compiles none of
// apalis' worker stack, which the course's dylib holds once.
async fn serve(
    address: &BrokerAddress,
    queue: &str,
    name: &str,
    handling: Arc<Handling>,
    options: &WorkerOptions,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Result<(), QueueError> {
    let backoff = ExponentialBackoffMaker::new(
        options.backoff,
        options.backoff.saturating_mul(64).max(Duration::from_millis(1)),
        0.5,
        HasherRng::default(),
    )
    .map_err(|e| QueueError::Workers(format!("back-off: {e:?}")))?
    .make_backoff();
    let retry = RetryPolicy::retries(options.retries as usize).with_backoff(backoff);
    let shutdown = async move {
        shutdown.await;
        Ok::<(), std::io::Error>(())
    };
    let connection = address.connect().await?;
    // The same worker on either backend; apalis' types differ, hence a macro, not a function.
    macro_rules! run_on {
        ($storage:expr) => {
            WorkerBuilder::new(name)
                .backend($storage.poll_with_interval(options.poll))
                .data(handling)
                .retry(retry)
                .concurrency(options.concurrency)
                .parallelize(tokio::spawn)
                .build(handle)
                .run_until(shutdown)
                .await
        };
    }
    let result = match connection {
        Connection::Redis(connection) => {
            let config = redis_config(queue, options);
            run_on!(RedisStorage::<Value>::new(connection).with_config(config))
        }
        Connection::Sqlite(pool) => {
            let config = sqlite_config(queue, options);
            run_on!(SqliteStorage::<Value>::new(&pool).with_config(config))
        }
    };
    result.map_err(|e| QueueError::Broker(format!("worker {name}: {e}")))
}

/// A worker inside this process (the kernel) that runs a handler of your own on the payloads
/// of a queue: the same apalis worker, options and run log as the course's worker program.
///
/// ```no_run
/// # use parcours_queue::{broker::Broker, worker::{KernelWorker, WorkerOptions}};
/// let broker = Broker::start().unwrap();
/// let queue = broker.queue("doubles");
/// queue.push_values(&[1u64, 2, 3]).unwrap();
/// let worker = KernelWorker::start(&queue, "doubler", &WorkerOptions::default(),
///     |n: u64, _attempt| Ok(2 * n)).unwrap();
/// queue.wait(std::time::Duration::from_secs(30)).unwrap();
/// worker.stop().unwrap();
/// ```
#[derive(Debug)]
pub struct KernelWorker {
    name: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<std::thread::JoinHandle<Result<(), QueueError>>>,
}

impl KernelWorker {
    /// Starts a worker named `name` (made unique: a suffix is added) on `queue`; `handler`
    /// gets each payload as a `T` and the attempt number (1 for the first run). A payload that
    /// is not a `T` is a dead letter; an `Err` is retried as `options` say.
    ///
    /// # Errors
    /// When the run log cannot be created.
    pub fn start<T, R, F>(
        queue: &Queue,
        name: &str,
        options: &WorkerOptions,
        handler: F,
    ) -> Result<Self, QueueError>
    where
        T: DeserializeOwned,
        R: Serialize,
        F: Fn(T, usize) -> Result<R, String> + Send + Sync + 'static,
    {
        let custom = move |payload: Value, attempt: usize| -> Result<Value, Failure> {
            let task: T = serde_json::from_value(payload.clone())
                .map_err(|e| Failure::Malformed(format!("malformed payload {payload}: {e}")))?;
            let result = handler(task, attempt).map_err(Failure::Failed)?;
            serde_json::to_value(result)
                .map_err(|e| Failure::Failed(format!("the result does not serialize: {e}")))
        };
        Self::start_custom(queue, name, options, Arc::new(custom))
    }

    fn start_custom(
        queue: &Queue,
        name: &str,
        options: &WorkerOptions,
        custom: Arc<CustomHandler>,
    ) -> Result<Self, QueueError> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{name}-{}-{}", std::process::id(), STARTED.fetch_add(1, Ordering::Relaxed));
        let handling = Handling::new(&name, options.retries, options.time_limit, Some(queue.runs_dir()))
            .map_err(QueueError::io("opening the worker's run log"))?
            .with_custom(custom);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let address = queue.address().clone();
        let queue_name = queue.name().to_string();
        let options = options.clone();
        let worker_name = name.clone();
        // A thread that waits on the runtime (the worker's future is not provably `Send` for
        // `spawn`: a higher-ranked lifetime inside apalis' types); its tasks run on the runtime.
        let task = std::thread::Builder::new()
            .name(format!("worker {name}"))
            .spawn(move || {
                let shutdown = Box::pin(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                });
                let handling = Arc::new(handling);
                runtime().block_on(serve(&address, &queue_name, &worker_name, handling, &options, shutdown))
            })
            .map_err(|e| QueueError::Workers(format!("no thread for the worker: {e}")))?;
        Ok(KernelWorker { name, stop, task: Some(task) })
    }

    /// Its name, as the broker records it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops it: it finishes the tasks it holds first.
    ///
    /// # Errors
    /// What ended the worker, if it ended on an error.
    pub fn stop(mut self) -> Result<(), QueueError> {
        let _ = self.stop.send(true);
        let task = self.task.take().expect("a running worker has its task");
        task.join().unwrap_or_else(|_| Err(QueueError::Workers("the worker panicked".into())))
    }
}

impl Drop for KernelWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
