//! One apalis worker, as the course's `parcours-queue-worker` program runs it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use serde_json::Value;

use crate::broker::{BrokerAddress, Connection};
use crate::tasks::{Handling, handle};
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
    let handling = Arc::new(handling);
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
    // One builder per backend: apalis' types differ, the worker is the same.
    let result = match connection {
        Connection::Redis(connection) => {
            let config = apalis_redis::Config::default()
                .queue(queue)
                .heartbeat_interval(options.heartbeat)
                .missed_heartbeats(options.missed_heartbeats)
                .batch_size(options.batch);
            let storage = RedisStorage::<Value>::new(connection).with_config(config);
            WorkerBuilder::new(name)
                .backend(storage.poll_with_interval(options.poll))
                .data(handling)
                .retry(retry)
                .concurrency(options.concurrency)
                .parallelize(tokio::spawn)
                .build(handle)
                .run_until(shutdown)
                .await
        }
        Connection::Sqlite(pool) => {
            let config = apalis_sqlite::Config::default()
                .queue(queue)
                .heartbeat_interval(options.heartbeat)
                .missed_heartbeats(options.missed_heartbeats)
                .batch_size(options.batch);
            let storage = SqliteStorage::<Value>::new(&pool).with_config(config);
            WorkerBuilder::new(name)
                .backend(storage.poll_with_interval(options.poll))
                .data(handling)
                .retry(retry)
                .concurrency(options.concurrency)
                .parallelize(tokio::spawn)
                .build(handle)
                .run_until(shutdown)
                .await
        }
    };
    result.map_err(|e| QueueError::Broker(format!("worker {name}: {e}")))
}
