//! Celery beat: a schedule that pushes a task to a queue at each tick, for the workers to run.
//!
//! The beat is one apalis worker whose backend is apalis-cron's scheduler: it wakes at each
//! time of a cron expression (with seconds: `"*/2 * * * * *"` is every 2 s) and pushes the task.
//! Run exactly one beat per schedule, as Celery says of its own: two would push every task
//! twice. Ticks missed while no beat runs are not made up.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick, timezone::Utc};
use serde_json::Value;

use crate::QueueError;
use crate::broker::Queue;
use crate::tasks::CourseTask;
use crate::runtime::runtime;

/// A cron expression as apalis-cron's schedule (in UTC).
struct CronSchedule(cron::Schedule);

impl apalis_cron::Schedule<Utc> for CronSchedule {
    fn next_tick(&mut self, _: &Utc) -> Option<Tick<Utc>> {
        let next = self.0.upcoming(chrono::Utc).next()?;
        Some(Tick::new(u64::try_from(next.timestamp()).ok()?))
    }
}

/// One push of the beat: the tick's time (Unix seconds) and the task it pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The tick, in seconds since the Unix epoch.
    pub tick: u64,
    /// The id of the task pushed.
    pub task: String,
}

struct BeatState {
    queue: Queue,
    task: Value,
    pushes: Mutex<Vec<Push>>,
}

/// A beat running in this process (the kernel), until [`Beat::stop`].
///
/// ```no_run
/// # use parcours_queue::{beat::Beat, broker::Broker, tasks::CourseTask};
/// let broker = Broker::start().unwrap();
/// let queue = broker.queue("reports");
/// let beat = Beat::start(&queue, "*/2 * * * * *", &CourseTask::Square { n: 7 }).unwrap();
/// std::thread::sleep(std::time::Duration::from_secs(7));
/// let pushes = beat.stop().unwrap();     // 3 or 4 pushes, 2 s apart
/// ```
pub struct Beat {
    state: Arc<BeatState>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<Result<(), QueueError>>>,
}

impl std::fmt::Debug for Beat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beat").field("queue", &self.state.queue.name()).field("task", &self.state.task).finish()
    }
}

impl Beat {
    /// Starts pushing `task` to `queue` at each time of `schedule`, a cron expression with
    /// seconds (`sec min hour day-of-month month day-of-week`, e.g. `"0 */5 * * * *"`: every
    /// five minutes).
    ///
    /// # Errors
    /// A schedule that does not parse, saying why.
    pub fn start(queue: &Queue, schedule: &str, task: &CourseTask) -> Result<Self, QueueError> {
        let parsed = cron::Schedule::from_str(schedule).map_err(|e| {
            QueueError::Beat(format!(
                "{schedule:?} is not a cron expression with seconds (e.g. \"*/2 * * * * *\", every 2 s): {e}"
            ))
        })?;
        let state = Arc::new(BeatState {
            queue: queue.clone(),
            task: serde_json::to_value(task).expect("a course task serializes"),
            pushes: Mutex::new(Vec::new()),
        });
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let shared = Arc::clone(&state);
        let name = format!("beat-{}-{}", queue.name(), std::process::id());
        // A thread that waits on the runtime, as the kernel's workers do (crate::worker).
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                    Ok::<(), std::io::Error>(())
                };
                runtime()
                    .block_on(
                        WorkerBuilder::new(name)
                            .backend(CronScheduler::new(CronSchedule(parsed)))
                            .data(shared)
                            .build(push_at_tick)
                            .run_until(shutdown),
                    )
                    .map_err(|e| QueueError::Beat(e.to_string()))
            })
            .map_err(|e| QueueError::Beat(format!("no thread for the beat: {e}")))?;
        Ok(Beat { state, stop, thread: Some(thread) })
    }

    /// What the beat pushed so far.
    pub fn pushes(&self) -> Vec<Push> {
        self.state.pushes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the beat; returns what it pushed.
    ///
    /// # Errors
    /// What ended the beat, if it ended on an error.
    pub fn stop(mut self) -> Result<Vec<Push>, QueueError> {
        let _ = self.stop.send(true);
        let thread = self.thread.take().expect("a running beat has its thread");
        thread.join().unwrap_or_else(|_| Err(QueueError::Beat("the beat panicked".into())))?;
        Ok(self.pushes())
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn push_at_tick(tick: Tick<Utc>, state: Data<Arc<BeatState>>) -> Result<(), BoxDynError> {
    let ids = state.queue.push_payloads_async(vec![state.task.clone()]).await?;
    let push = Push { tick: tick.get_timestamp(), task: ids.into_iter().next().unwrap_or_default() };
    state.pushes.lock().unwrap_or_else(|e| e.into_inner()).push(push);
    Ok(())
}
