//! The demonstration worker: counts the primes in ranges taken from a queue.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Client, ClusterError, Taken};

/// A task of the demonstration: count the primes in `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimeRange {
    /// First number of the range.
    pub start: u64,
    /// One past the last number.
    pub end: u64,
}

/// A result of the demonstration, stored in the result map under its task's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimeCount {
    /// The range counted.
    pub range: PrimeRange,
    /// How many primes it holds.
    pub primes: u64,
}

impl PrimeRange {
    /// Splits `0..end` into `parts` ranges of nearly equal length.
    ///
    /// ```
    /// use parcours_cluster::cluster::PrimeRange;
    /// let parts = PrimeRange::split(10, 3);
    /// assert_eq!(parts.len(), 3);
    /// assert_eq!((parts[0].start, parts[2].end), (0, 10));
    /// ```
    pub fn split(end: u64, parts: u64) -> Vec<PrimeRange> {
        let parts = parts.max(1);
        (0..parts)
            .map(|i| PrimeRange {
                start: end * i / parts,
                end: end * (i + 1) / parts,
            })
            .collect()
    }

    /// The primes in the range, by trial division: deliberately CPU-bound, and slower for
    /// larger numbers, so the tasks are uneven.
    ///
    /// ```
    /// use parcours_cluster::cluster::PrimeRange;
    /// assert_eq!(PrimeRange { start: 0, end: 100 }.count_primes(), 25);
    /// ```
    pub fn count_primes(&self) -> u64 {
        (self.start..self.end).filter(|&n| is_prime(n)).count() as u64
    }
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut divisor = 3;
    while divisor * divisor <= n {
        if n.is_multiple_of(divisor) {
            return false;
        }
        divisor += 2;
    }
    true
}

/// What a worker reads and writes, and how it behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerOptions {
    /// The queue of [`PrimeRange`] tasks.
    pub queue: String,
    /// The map where it puts a [`PrimeCount`] under each task's id.
    pub results: String,
    /// The counter it increments once per new result.
    pub counter: String,
    /// How long a task stays leased without an acknowledgement.
    pub lease: Duration,
    /// A pause before each task, to watch leases at work (kill a worker while it sleeps).
    pub pause: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            queue: "tasks".into(),
            results: "primes".into(),
            counter: "done".into(),
            lease: super::DEFAULT_LEASE,
            pause: Duration::ZERO,
        }
    }
}

/// What a worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Tasks it computed and acknowledged.
    pub tasks: u64,
    /// Results it sent that the map already had (another worker computed the task first).
    pub duplicates: u64,
    /// Time spent computing.
    pub busy: Duration,
}

/// The worker's loop: take a task, count its primes, store the result, acknowledge; until the
/// queue is closed and every task acknowledged.
///
/// The order matters for reliability: the result goes in before the acknowledgement, so a
/// worker that dies in between leaves a result and a task that will be computed again, and
/// the map's idempotent insert ignores the second result. Never a lost task, never a double
/// count.
///
/// ```
/// use parcours_cluster::cluster::{Manager, ManagerConfig, PrimeCount, PrimeRange, SharedKey, WorkerOptions, run_worker};
/// let key = SharedKey::random();
/// let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
/// let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
/// let options = WorkerOptions::default();
/// let tasks = client.queue::<PrimeRange>(&options.queue);
/// tasks.put_all(&PrimeRange::split(1_000, 4)).unwrap();
/// tasks.close().unwrap();
/// let report = run_worker(&client, &options).unwrap();
/// assert_eq!(report.tasks, 4);
/// let results = client.results::<u64, PrimeCount>(&options.results).entries().unwrap();
/// assert_eq!(results.iter().map(|(_, r)| r.primes).sum::<u64>(), 168);
/// ```
///
/// # Errors
/// When the manager goes away or refuses a call.
pub fn run_worker(client: &Client, options: &WorkerOptions) -> Result<WorkerReport, ClusterError> {
    let tasks = client.queue::<PrimeRange>(&options.queue);
    let results = client.results::<u64, PrimeCount>(&options.results);
    let done = client.counter(&options.counter);
    let mut report = WorkerReport::default();
    loop {
        let task = match tasks.get_leased(Duration::from_secs(10), options.lease)? {
            Taken::Task(task) => task,
            Taken::Empty => continue,
            Taken::Closed => return Ok(report),
        };
        std::thread::sleep(options.pause);
        let started = Instant::now();
        let primes = task.value.count_primes();
        report.busy += started.elapsed();
        let count = PrimeCount {
            range: task.value,
            primes,
        };
        if results.insert(&task.id, &count)? {
            done.add(1)?;
        } else {
            report.duplicates += 1;
        }
        tasks.ack(task.id)?;
        report.tasks += 1;
    }
}
