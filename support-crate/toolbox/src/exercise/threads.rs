//! Did an answer run in parallel? Per-thread CPU time, observed while it runs.
//!
//! A speed-up threshold would be flaky (a loaded machine, a one-core Binder); CPU time per
//! thread is not. [`observe_threads`] runs the work inside a rayon pool of its own, of at least
//! two threads (so rayon code is split even where the machine has one core), and reads the
//! CPU clock of every thread of the process, every half millisecond and at the end. The
//! work's threads are the pool's and those born during the call: threads that the work
//! spawns and joins itself (`std::thread::scope`) are seen while they live; the CPU time of
//! threads that lived between two looks fills as few threads as it can, none holding more
//! than the call's duration.
//!
//! **The rule** ([`ThreadUse::parallel`]): the work ran in parallel when it used at least
//! [`MIN_CPU`] of CPU time and its busiest thread did at most [`BUSIEST_SHARE`] (3/4) of it,
//! so at least a quarter ran on other threads, side by side or not. Linux only (the kernel's
//! per-thread CPU clocks).

use std::fmt;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The most of a call's CPU time that its busiest thread may do for the call to count as
/// parallel.
pub const BUSIEST_SHARE: f64 = 0.75;

/// The least CPU time a call must use for its threads to tell anything.
pub const MIN_CPU: Duration = Duration::from_millis(5);

const PERIOD: Duration = Duration::from_micros(500);

/// How the threads of the process shared the CPU time of one call.
#[derive(Debug, Clone)]
pub struct ThreadUse {
    /// CPU time of each thread that ran during the call, the busiest first.
    pub threads: Vec<Duration>,
    /// CPU time of those threads together.
    pub total: Duration,
    /// Wall-clock time of the call.
    pub wall: Duration,
}

impl ThreadUse {
    /// The busiest thread's share of the CPU time, from 0 to 1.
    pub fn busiest_share(&self) -> f64 {
        busiest_share(&self.threads, self.total)
    }

    /// The threads that did at least 5 % of the work.
    pub fn working_threads(&self) -> usize {
        let floor = self.total.as_secs_f64() * 0.05;
        self.threads
            .iter()
            .filter(|t| t.as_secs_f64() >= floor)
            .count()
    }

    /// The module's rule: at least [`MIN_CPU`] of CPU time, and the busiest thread did at most
    /// [`BUSIEST_SHARE`] of it.
    pub fn parallel(&self) -> bool {
        self.total >= MIN_CPU && self.busiest_share() <= BUSIEST_SHARE
    }
}

impl fmt::Display for ThreadUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total.as_secs_f64();
        let shares: Vec<String> = self
            .threads
            .iter()
            .take(8)
            .filter(|t| total > 0.0 && t.as_secs_f64() >= total * 0.01)
            .map(|t| format!("{:.0} %", 100.0 * t.as_secs_f64() / total))
            .collect();
        write!(
            f,
            "{:.1} ms of CPU time in {:.1} ms; busiest threads: {}",
            total * 1e3,
            self.wall.as_secs_f64() * 1e3,
            if shares.is_empty() {
                "none".to_string()
            } else {
                shares.join(", ")
            }
        )
    }
}

/// Runs `work` inside a new rayon pool of `threads` threads (at least 2) and says how the
/// process's threads shared its CPU time.
///
/// # Panics
/// When the pool cannot be built, or the platform has no per-thread CPU clocks (not Linux).
///
/// ```standalone_crate
/// // Its own process: the threads and memory of other doctests would count.
/// use parcours::prelude::*;
/// use parcours::exercise::observe_threads;
///
/// let spin = |n: u64| (0..n).fold(0u64, |a, i| a.wrapping_mul(31).wrapping_add(i ^ (a >> 7)));
/// let (_, one) = observe_threads(2, || spin(std::hint::black_box(20_000_000)));
/// assert!(!one.parallel(), "{one}");
/// let (_, many) = observe_threads(2, || {
///     (0..64u64).into_par_iter().map(|i| spin(std::hint::black_box(400_000 + i))).reduce(|| 0, u64::wrapping_add)
/// });
/// assert!(many.parallel(), "{many}");
/// ```
pub fn observe_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> (R, ThreadUse) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(2))
        .thread_name(|i| format!("check-{i}"))
        .build()
        .expect("a thread pool for the check");
    // The pool's threads exist before the clock starts: their start-up is not the work's.
    let pool_threads: Vec<i32> = pool.broadcast(|_| current_tid());
    let done = AtomicBool::new(false);
    let ready = Barrier::new(2);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch(&done, &ready));
        // The watcher's first look is the baseline: the work starts after it.
        ready.wait();
        let started = Instant::now();
        let process_before = process_cpu();
        // Stops the watcher even when the work panics (a `todo!()`): else the scope waits
        // for it forever.
        let stop = Stop(&done);
        let result = pool.install(work);
        let process_after = process_cpu();
        let wall = started.elapsed();
        drop(stop);
        let seen = watcher.join().expect("the thread watcher");
        // The work's threads: the pool's, and those born during the call. Others (the
        // caller, blocked; the kernel's own) are left out.
        let mut threads = seen.newer.clone();
        threads.extend(pool_threads.iter().filter_map(|tid| seen.older.get(tid)));
        let everyone = process_after
            .saturating_sub(process_before)
            .saturating_sub(seen.own);
        let others: Duration = seen
            .older
            .iter()
            .filter(|(tid, _)| !pool_threads.contains(tid))
            .map(|(_, cpu)| *cpu)
            .sum();
        let counted: Duration = threads.iter().sum();
        // Threads that began and ended between two looks: a thread cannot use more CPU time
        // than the call lasted, so their time fills as few threads as it can (the busiest
        // share this allows is the largest).
        let mut unseen = everyone.saturating_sub(others).saturating_sub(counted);
        if unseen > everyone / 50 {
            while !unseen.is_zero() {
                let one = unseen.min(wall.max(Duration::from_micros(1)));
                threads.push(one);
                unseen -= one;
            }
        }
        threads.sort_unstable_by(|a, b| b.cmp(a));
        threads.retain(|t| !t.is_zero());
        let total = threads.iter().sum();
        (
            result,
            ThreadUse {
                threads,
                total,
                wall,
            },
        )
    })
}

/// Raises its flag when dropped: a watcher stops even when the work panics (a `todo!()`),
/// else the scope would wait for it forever.
pub(super) struct Stop<'a>(pub(super) &'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs the student's `work` as [`observe_threads`] does, on as many threads as the machine
/// has (at least 2), prints what it saw and checks the rule ([`ThreadUse::parallel`]).
///
/// A busy machine can hide a short-lived thread from the watcher, whose CPU time then counts as
/// one thread's: a parallel answer may look sequential, never the reverse. So the work runs up
/// to [`ATTEMPTS`] times, until one run shows the rule met.
///
/// # Panics
/// When no run was parallel, after saying how the threads of the last one shared the CPU.
#[track_caller]
pub fn check_parallel<R: Send>(what: &str, work: impl Fn() -> R + Sync) -> R {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let (mut result, mut used) = observe_threads(threads, &work);
    for _ in 1..ATTEMPTS {
        if used.parallel() {
            break;
        }
        (result, used) = observe_threads(threads, &work);
    }
    let hint = if used.total < MIN_CPU {
        format!(
            "{used}: too little work to tell ({} ms of CPU time at least); did it do the work?",
            MIN_CPU.as_millis()
        )
    } else {
        format!(
            "{used}: one thread did {:.0} % of the work (at most {:.0} % for parallel work); \
             split it with rayon or threads",
            100.0 * used.busiest_share(),
            100.0 * BUSIEST_SHARE
        )
    };
    let what = if used.parallel() {
        format!("{what} ({used})")
    } else {
        what.to_string()
    };
    super::check_that(&what, used.parallel(), &hint);
    result
}

/// How many times [`check_parallel`] runs an answer before it calls it sequential.
pub const ATTEMPTS: usize = 3;

/// What the watcher saw: the CPU time each thread used while it watched.
struct Seen {
    /// Threads that existed at its first look, by id.
    older: std::collections::HashMap<i32, Duration>,
    /// Threads born while it watched (those that ended included, up to their last look).
    newer: Vec<Duration>,
    /// Its own CPU time.
    own: Duration,
}

/// Reads every thread's CPU clock until `done`; signals `ready` after its first look.
fn watch(done: &AtomicBool, ready: &Barrier) -> Seen {
    let me = current_tid();
    let mut start = std::collections::HashMap::new();
    let mut last = std::collections::HashMap::new();
    let mut newer = Vec::new();
    let mut first = true;
    loop {
        let finishing = done.load(Ordering::Acquire);
        for tid in tids().into_iter().filter(|&tid| tid != me) {
            let Some(now) = thread_cpu(tid) else { continue };
            if first {
                start.insert(tid, now);
            }
            match last.insert(tid, now) {
                // A clock that went back is a new thread under a reused id.
                Some(before) if now < before => {
                    let begin = start.insert(tid, Duration::ZERO).unwrap_or_default();
                    newer.push(before.saturating_sub(begin));
                }
                None if !first => {
                    start.insert(tid, Duration::ZERO);
                }
                _ => {}
            }
        }
        if first {
            ready.wait();
            first = false;
        }
        if finishing {
            break;
        }
        std::thread::sleep(PERIOD);
    }
    let mut older = std::collections::HashMap::new();
    for (tid, now) in last {
        let begin = start[&tid];
        if begin.is_zero() {
            newer.push(now);
        } else {
            older.insert(tid, now.saturating_sub(begin));
        }
    }
    Seen {
        older,
        newer,
        own: thread_cpu(me).unwrap_or_default(),
    }
}

fn tids() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task: per-thread CPU time needs Linux")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// A thread's CPU time, from the kernel's per-thread clock (what `pthread_getcpuclockid`
/// returns: `CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD_MASK` over the negated id); None once gone.
fn thread_cpu(tid: i32) -> Option<Duration> {
    clock((!tid << 3) | 6)
}

pub(super) fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID).expect("the process's CPU clock")
}

/// The first (busiest) of `each`'s share of `total`, from 0 to 1; 1 when there is nothing.
pub(super) fn busiest_share(each: &[Duration], total: Duration) -> f64 {
    match each.first() {
        Some(busiest) if !total.is_zero() => (busiest.as_secs_f64() / total.as_secs_f64()).min(1.0),
        _ => 1.0,
    }
}

/// The calling thread's CPU time.
pub(super) fn current_thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID).expect("the thread's CPU clock")
}

fn clock(id: libc::clockid_t) -> Option<Duration> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid timespec for the call to write.
    let status = unsafe { libc::clock_gettime(id, &mut time) };
    (status == 0).then(|| Duration::new(time.tv_sec as u64, time.tv_nsec as u32))
}
