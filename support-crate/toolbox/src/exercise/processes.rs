//! Did an answer run in other processes? The children seen during one call.
//!
//! A watcher thread lists the process's children every half millisecond
//! (`/proc/self/task/*/children`) and reads each one's CPU time (`/proc/<pid>/stat`, in clock
//! ticks, usually 10 ms) until it is gone; the kernel's account of the children waited for
//! (`getrusage(RUSAGE_CHILDREN)`) completes what the last look missed. Only children count,
//! not their own children: start the workers directly, not through a shell.
//!
//! **The rule** ([`ProcessUse::parallel`]): the work ran in parallel processes when at least
//! two of its children were alive at the same time, the children used at least
//! [`MIN_CHILD_CPU`] of CPU time, at least half of the call's (the rest is the calling
//! process's own), and the busiest child did at most [`BUSIEST_SHARE`] of theirs. Linux only.

use std::collections::HashMap;
use std::fmt;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::threads::{BUSIEST_SHARE, Stop, busiest_share, current_thread_cpu, process_cpu};

/// The least CPU time the children must use for the observation to tell anything (a child's
/// time is counted in clock ticks).
pub const MIN_CHILD_CPU: Duration = Duration::from_millis(20);

const PERIOD: Duration = Duration::from_micros(500);

/// How one call's work was shared between the process and its children.
#[derive(Debug, Clone)]
pub struct ProcessUse {
    /// CPU time of each child seen during the call, the busiest first.
    pub children: Vec<Duration>,
    /// CPU time of the children together (at least the kernel's account of those waited for).
    pub children_total: Duration,
    /// CPU time of the calling process itself during the call (the watcher's left out).
    pub own: Duration,
    /// The most children alive at one look.
    pub most_at_once: usize,
    /// Wall-clock time of the call.
    pub wall: Duration,
}

impl ProcessUse {
    /// The busiest child's share of the children's CPU time, from 0 to 1.
    pub fn busiest_share(&self) -> f64 {
        busiest_share(&self.children, self.children_total)
    }

    /// The children's share of the call's CPU time, from 0 to 1.
    pub fn children_share(&self) -> f64 {
        let all = self.children_total + self.own;
        if all.is_zero() {
            0.0
        } else {
            self.children_total.as_secs_f64() / all.as_secs_f64()
        }
    }

    /// The module's rule: two children alive at once, at least [`MIN_CHILD_CPU`] of their
    /// CPU time and half the call's, the busiest at most [`BUSIEST_SHARE`] of theirs.
    pub fn parallel(&self) -> bool {
        self.most_at_once >= 2
            && self.children_total >= MIN_CHILD_CPU
            && self.children_share() >= 0.5
            && self.busiest_share() <= BUSIEST_SHARE
    }

    /// Why the call does not meet the rule, in words a student can act on (None when it does).
    pub fn shortfall(&self) -> Option<String> {
        if self.most_at_once < 2 {
            Some(format!(
                "{} child process(es) alive at once: start at least two workers before waiting for any",
                self.most_at_once
            ))
        } else if self.children_total < MIN_CHILD_CPU {
            Some(format!(
                "the children used {:.0} ms of CPU time (at least {} ms): did they do the work?",
                self.children_total.as_secs_f64() * 1e3,
                MIN_CHILD_CPU.as_millis()
            ))
        } else if self.children_share() < 0.5 {
            Some(format!(
                "this process did {:.0} % of the CPU time itself: the work belongs in the children",
                100.0 * (1.0 - self.children_share())
            ))
        } else if self.busiest_share() > BUSIEST_SHARE {
            Some(format!(
                "one child did {:.0} % of the children's work (at most {:.0} %): share it out",
                100.0 * self.busiest_share(),
                100.0 * BUSIEST_SHARE
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for ProcessUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.children_total.as_secs_f64();
        let shares: Vec<String> = self
            .children
            .iter()
            .take(8)
            .filter(|c| total > 0.0 && !c.is_zero())
            .map(|c| format!("{:.0} %", 100.0 * c.as_secs_f64() / total))
            .collect();
        write!(
            f,
            "{} children, up to {} at once, {:.0} ms of CPU time ({:.0} ms in this process) in {:.0} ms; busiest: {}",
            self.children.len(),
            self.most_at_once,
            total * 1e3,
            self.own.as_secs_f64() * 1e3,
            self.wall.as_secs_f64() * 1e3,
            if shares.is_empty() {
                "none".to_string()
            } else {
                shares.join(", ")
            }
        )
    }
}

/// Runs `work` and says which child processes it ran in, and how they shared its CPU time.
///
/// # Panics
/// When the platform has no `/proc` (not Linux).
///
/// ```standalone_crate
/// // Its own process: the children of other doctests would count.
/// use parcours::exercise::observe_processes;
/// use std::process::Command;
///
/// let spin = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
/// let (_, one) = observe_processes(|| Command::new("sh").args(["-c", spin]).status().unwrap());
/// assert!(!one.parallel(), "{one}");
/// let (_, two) = observe_processes(|| {
///     let children: Vec<_> = (0..2).map(|_| Command::new("sh").args(["-c", spin]).spawn().unwrap()).collect();
///     children.into_iter().map(|mut c| c.wait().unwrap()).collect::<Vec<_>>()
/// });
/// assert!(two.parallel(), "{two}");
/// ```
pub fn observe_processes<R>(work: impl FnOnce() -> R) -> (R, ProcessUse) {
    let done = AtomicBool::new(false);
    let ready = Barrier::new(2);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch(&done, &ready));
        ready.wait();
        let started = Instant::now();
        let process_before = process_cpu();
        let waited_before = waited_children_cpu();
        let stop = Stop(&done);
        let result = work();
        let process_after = process_cpu();
        let waited = waited_children_cpu().saturating_sub(waited_before);
        let wall = started.elapsed();
        drop(stop);
        let seen = watcher.join().expect("the process watcher");
        let mut children: Vec<Duration> = seen.children.into_values().collect();
        children.sort_unstable_by(|a, b| b.cmp(a));
        let children_total = children.iter().sum::<Duration>().max(waited);
        (
            result,
            ProcessUse {
                children,
                children_total,
                own: process_after
                    .saturating_sub(process_before)
                    .saturating_sub(seen.own),
                most_at_once: seen.most_at_once,
                wall,
            },
        )
    })
}

/// Runs the student's `work` as [`observe_processes`] does, prints what it saw and checks the
/// rule ([`ProcessUse::parallel`]).
///
/// # Panics
/// When the rule is not met, after saying what the children did.
#[track_caller]
pub fn check_processes<R>(what: &str, work: impl FnOnce() -> R) -> R {
    let (result, used) = observe_processes(work);
    match used.shortfall() {
        None => super::check_that(&format!("{what} ({used})"), true, ""),
        Some(why) => super::check_that(what, false, &format!("{used}: {why}")),
    }
    result
}

/// What the watcher saw.
struct Seen {
    /// The last CPU time read of every child, by process id.
    children: HashMap<u32, Duration>,
    most_at_once: usize,
    /// Its own CPU time.
    own: Duration,
}

/// Looks at the children until `done`; signals `ready` after its first look. Children alive
/// at the first look are not the work's.
fn watch(done: &AtomicBool, ready: &Barrier) -> Seen {
    let before: Vec<u32> = children();
    ready.wait();
    let mut seen = HashMap::new();
    let mut most_at_once = 0;
    loop {
        let finishing = done.load(Ordering::Acquire);
        let mut alive = 0;
        for pid in children().into_iter().filter(|pid| !before.contains(pid)) {
            if let Some((running, cpu)) = child_stat(pid) {
                alive += usize::from(running);
                seen.insert(pid, cpu);
            }
        }
        most_at_once = most_at_once.max(alive);
        if finishing {
            break;
        }
        std::thread::sleep(PERIOD);
    }
    Seen {
        children: seen,
        most_at_once,
        own: current_thread_cpu(),
    }
}

/// The process ids of the children of every thread of this process.
fn children() -> Vec<u32> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task: watching child processes needs Linux");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether a child is still running (not a zombie waiting to be reaped), and its CPU time.
fn child_stat(pid: u32) -> Option<(bool, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, in parentheses: state, ppid, ... utime (14th field), stime (15th).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((fields[0] != "Z", ticks_to_time(ticks)))
}

fn ticks_to_time(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// CPU time of the children waited for so far, as the kernel accounts it.
fn waited_children_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid, and getrusage writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for the call to write.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}
