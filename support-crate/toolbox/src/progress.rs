//! Progress feedback for long work, one line at a time.
//!
//! A notebook cannot redraw a progress bar: the kernel streams stdout line by line and has no
//! way to update an output in place. So [`Progress`] prints a new line at most once per
//! interval (1 s by default), and a last line when the work is done. It counts with an
//! atomic, so rayon's worker threads can share one.
//!
//! ```
//! use parcours::prelude::*;
//!
//! let progress = Progress::new("squares", 1_000);
//! let total: u64 = (0..1_000u64)
//!     .into_par_iter()
//!     .map(|i| { progress.inc(1); i * i })
//!     .sum();
//! progress.finish();
//! assert_eq!(progress.done(), 1_000);
//! # assert_eq!(total, 332_833_500);
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::display::format_duration;

/// A counter of work done that prints a progress line now and then.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    interval: Duration,
    last_line: Mutex<Instant>,
    finished: AtomicBool,
}

impl Progress {
    /// Progress over `total` units of work.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Self::with_total(label.into(), Some(total))
    }

    /// Progress over an amount of work not known in advance: lines show counts only.
    pub fn unbounded(label: impl Into<String>) -> Self {
        Self::with_total(label.into(), None)
    }

    fn with_total(label: String, total: Option<u64>) -> Self {
        let now = Instant::now();
        Progress {
            label,
            total,
            done: AtomicU64::new(0),
            started: now,
            interval: Duration::from_secs(1),
            last_line: Mutex::new(now),
            finished: AtomicBool::new(false),
        }
    }

    /// Sets the shortest time between two lines.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parcours::prelude::*;
    /// let p = Progress::new("quiet", 10).interval(Duration::from_secs(60));
    /// p.inc(10);
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Records `n` more units done; prints a line if the interval has passed.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        // try_lock: a thread that finds another printing skips its line rather than wait.
        if let Ok(mut last) = self.last_line.try_lock()
            && last.elapsed() >= self.interval
        {
            *last = Instant::now();
            println!("{}", self.line(done));
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Prints the closing line: units done and the time taken. Prints once, however often called.
    pub fn finish(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) {
            println!(
                "{}: done, {} in {}",
                self.label,
                self.done(),
                format_duration(self.started.elapsed())
            );
        }
    }

    /// The line describing `done` units of work.
    fn line(&self, done: u64) -> String {
        let elapsed = self.started.elapsed();
        match self.total {
            Some(total) if total > 0 => {
                let fraction = done as f64 / total as f64;
                let left = if fraction > 0.0 {
                    format!(
                        ", about {} left",
                        format_duration(elapsed.mul_f64((1.0 - fraction).max(0.0) / fraction))
                    )
                } else {
                    String::new()
                };
                format!(
                    "{}: {:.0}% ({done}/{total}), {} elapsed{left}",
                    self.label,
                    fraction * 100.0,
                    format_duration(elapsed)
                )
            }
            _ => format!(
                "{}: {done} done, {} elapsed",
                self.label,
                format_duration(elapsed)
            ),
        }
    }
}

/// Adds [`progress`](ProgressIteratorExt::progress) to every iterator.
pub trait ProgressIteratorExt: Iterator + Sized {
    /// Reports progress as the iterator is consumed; the total is the iterator's length when
    /// it knows it. Prints the closing line when the iterator ends.
    ///
    /// ```
    /// use parcours::prelude::*;
    /// let squares: Vec<u64> = (0..5u64).progress("squares").map(|i| i * i).collect();
    /// assert_eq!(squares, [0, 1, 4, 9, 16]);
    /// ```
    fn progress(self, label: impl Into<String>) -> ProgressIter<Self> {
        let progress = match self.size_hint() {
            (lo, Some(hi)) if lo == hi => Progress::new(label, hi as u64),
            _ => Progress::unbounded(label),
        };
        ProgressIter {
            inner: self,
            progress,
        }
    }
}

impl<I: Iterator> ProgressIteratorExt for I {}

/// An iterator that reports its progress; made by [`ProgressIteratorExt::progress`].
#[derive(Debug)]
pub struct ProgressIter<I> {
    inner: I,
    progress: Progress,
}

impl<I: Iterator> Iterator for ProgressIter<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        match item {
            Some(_) => self.progress.inc(1),
            None => self.progress.finish(),
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_estimate_time_left() {
        let p = Progress::new("work", 4);
        let line = p.line(1);
        assert!(line.starts_with("work: 25% (1/4), "), "{line}");
        assert!(line.contains("left"), "{line}");
        assert!(Progress::unbounded("n").line(7).starts_with("n: 7 done"));
    }

    #[test]
    fn threads_share_one_counter() {
        let p = Progress::new("shared", 4_000).interval(Duration::from_secs(3600));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1_000).for_each(|_| p.inc(1)));
            }
        });
        assert_eq!(p.done(), 4_000);
    }

    #[test]
    fn iterator_progress_counts_items() {
        let mut it = (0..3).progress("three");
        assert_eq!(it.by_ref().count(), 3);
        assert_eq!(it.progress.done(), 3);
        assert!(it.progress.finished.load(Ordering::Relaxed));
    }
}
