//! The limits of parallelism: Amdahl's and Gustafson's laws, the Karp–Flatt metric, and
//! speed-ups measured on thread pools of growing size.
//!
//! A program spends a fraction `s` of its one-worker time in work that cannot be split.
//! - **Amdahl** (fixed problem): with `n` workers the time is `s + (1 − s)/n`, so the
//!   speed-up is at most `1/s`, however many workers.
//! - **Gustafson** (problem grows with the machine): the parallel part grows with `n`, so the
//!   speed-up on the larger problem is `n − s·(n − 1)`.
//! - **Karp–Flatt**: from a measured speed-up, the serial fraction that explains it,
//!   `e = (1/S − 1/n) / (1 − 1/n)`. If `e` grows with `n`, overheads grow too.
//!
//! ```
//! use parcours_limits::laws::*;
//! assert_eq!(amdahl(0.0, 8.0), 8.0);
//! assert!((amdahl(0.1, 1e9) - 10.0).abs() < 1e-6); // never more than 1/s
//! assert_eq!(gustafson(0.1, 8.0), 7.3);
//! assert!((karp_flatt(amdahl(0.25, 4.0), 4.0) - 0.25).abs() < 1e-12);
//! ```

use std::time::Duration;

use parcours::bench::{Bench, Timing};
use parcours::chart::Chart;
use parcours::display::{Table, emit, format_duration};

/// Amdahl's speed-up of a fixed problem with serial fraction `serial` on `workers` workers.
pub fn amdahl(serial: f64, workers: f64) -> f64 {
    1.0 / (serial + (1.0 - serial) / workers)
}

/// Gustafson's scaled speed-up: the parallel part grows with the number of workers.
pub fn gustafson(serial: f64, workers: f64) -> f64 {
    workers - serial * (workers - 1.0)
}

/// The Karp–Flatt metric: the serial fraction implied by a `speedup` on `workers` workers.
///
/// # Panics
/// If `workers` is not above 1 (one worker says nothing about the serial fraction).
pub fn karp_flatt(speedup: f64, workers: f64) -> f64 {
    assert!(
        workers > 1.0,
        "Karp–Flatt needs more than one worker, not {workers}"
    );
    (1.0 / speedup - 1.0 / workers) / (1.0 - 1.0 / workers)
}

/// The serial fraction that best fits measured `(workers, speedup)` points under Amdahl's
/// law (least squares on `1/S − 1/n = s·(1 − 1/n)`), clamped to [0, 1]. Points with one worker
/// carry no information and are ignored.
///
/// ```
/// use parcours_limits::laws::*;
/// let points: Vec<(usize, f64)> = [1, 2, 4, 8].iter().map(|&n| (n, amdahl(0.2, n as f64))).collect();
/// assert!((fit_serial_fraction(&points) - 0.2).abs() < 1e-12);
/// ```
pub fn fit_serial_fraction(points: &[(usize, f64)]) -> f64 {
    let (mut xy, mut xx) = (0.0, 0.0);
    for &(workers, speedup) in points.iter().filter(|p| p.0 > 1) {
        let n = workers as f64;
        let x = 1.0 - 1.0 / n;
        let y = 1.0 / speedup - 1.0 / n;
        xy += x * y;
        xx += x * x;
    }
    if xx == 0.0 {
        return 0.0;
    }
    (xy / xx).clamp(0.0, 1.0)
}

/// A workload that sleeps: it "scales" on any machine, even with one core, because sleeping
/// threads leave the processor free. Each of `items` items sleeps `per_item`; `serial` more is
/// slept once, by one thread, before the parallel part.
///
/// ```
/// use std::time::Duration;
/// use parcours_limits::laws::sleepy_workload;
/// sleepy_workload(4, Duration::from_micros(10), Duration::ZERO);
/// ```
pub fn sleepy_workload(items: usize, per_item: Duration, serial: Duration) {
    use rayon::prelude::*;
    std::thread::sleep(serial);
    (0..items)
        .into_par_iter()
        .for_each(|_| std::thread::sleep(per_item));
}

/// Timings of one workload on thread pools of several sizes.
///
/// ```
/// use std::time::Duration;
/// use parcours_limits::laws::{Scaling, sleepy_workload};
/// // Sleeps long enough that a loaded machine's scheduling delays (milliseconds) do not hide
/// // the second thread.
/// let scaling = Scaling::measure("sleeps", [1, 2], || {
///     sleepy_workload(4, Duration::from_millis(20), Duration::ZERO)
/// });
/// let speedups = scaling.speedups();
/// assert_eq!(speedups[0], (1, 1.0));
/// assert!(speedups[1].1 > 1.3, "{speedups:?}");
/// ```
#[derive(Clone, Debug)]
pub struct Scaling {
    label: String,
    runs: Vec<(usize, Timing)>,
}

impl Scaling {
    /// Runs `work` in a rayon pool of each size in `threads` (3 samples after a warm-up).
    /// The first size is the baseline; use 1.
    ///
    /// # Panics
    /// If `threads` is empty or a pool cannot be built.
    pub fn measure<F>(label: &str, threads: impl IntoIterator<Item = usize>, work: F) -> Self
    where
        F: Fn() + Sync,
    {
        let bench = Bench::new().samples(3).min_sample(Duration::ZERO);
        let runs: Vec<(usize, Timing)> = threads
            .into_iter()
            .map(|n| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .expect("a thread pool");
                (
                    n,
                    pool.install(|| bench.run(&format!("{n} threads"), &work)),
                )
            })
            .collect();
        assert!(
            !runs.is_empty(),
            "Scaling::measure needs at least one pool size"
        );
        Scaling {
            label: label.to_string(),
            runs,
        }
    }

    /// The pool sizes and their timings.
    pub fn runs(&self) -> &[(usize, Timing)] {
        &self.runs
    }

    /// `(threads, speed-up over the first run)` for each run.
    pub fn speedups(&self) -> Vec<(usize, f64)> {
        let baseline = &self.runs[0].1;
        self.runs
            .iter()
            .map(|(n, t)| (*n, t.speedup_over(baseline)))
            .collect()
    }

    /// The serial fraction that fits the measured speed-ups (see [`fit_serial_fraction`]).
    /// Pools larger than the machine's hardware threads are left out: their threads take
    /// turns, which says nothing about the serial part.
    pub fn serial_fraction(&self) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let fitted: Vec<(usize, f64)> = self
            .speedups()
            .into_iter()
            .filter(|&(n, _)| n <= cores)
            .collect();
        fit_serial_fraction(&fitted)
    }

    /// Threads, median time, speed-up, efficiency and the Karp–Flatt serial fraction.
    pub fn to_table(&self) -> Table {
        let mut table = Table::new([
            "threads",
            "median",
            "speed-up",
            "efficiency",
            "Karp–Flatt e",
        ])
        .title(self.label.clone());
        for ((n, timing), (_, speedup)) in self.runs.iter().zip(self.speedups()) {
            let e = if *n > 1 {
                format!("{:.3}", karp_flatt(speedup, *n as f64))
            } else {
                String::new()
            };
            table.push_row([
                n.to_string(),
                format_duration(timing.median()),
                format!("{speedup:.2}×"),
                format!("{:.0}%", 100.0 * speedup / *n as f64),
                e,
            ]);
        }
        table
    }

    /// The measured speed-ups against the ideal and Amdahl's law for the fitted serial fraction.
    pub fn to_chart(&self) -> Chart {
        let s = self.serial_fraction();
        let max = self.runs.iter().map(|r| r.0).max().unwrap_or(1);
        let ns: Vec<f64> = (1..=max).map(|n| n as f64).collect();
        Chart::new(format!("{}: speed-up", self.label))
            .x_label("threads")
            .y_label("speed-up over 1 thread")
            .line("ideal", ns.iter().map(|&n| (n, n)))
            .line(
                format!("Amdahl, s = {s:.3}"),
                ns.iter().map(|&n| (n, amdahl(s, n))),
            )
            .line_points("measured", self.speedups())
    }

    /// Shows the table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laws_agree_at_the_edges() {
        assert_eq!(amdahl(1.0, 64.0), 1.0);
        assert_eq!(gustafson(0.0, 64.0), 64.0);
        assert_eq!(gustafson(1.0, 64.0), 1.0);
        assert!((karp_flatt(8.0, 8.0)).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "more than one worker")]
    fn karp_flatt_refuses_one_worker() {
        karp_flatt(1.0, 1.0);
    }

    #[test]
    fn fit_is_clamped_and_ignores_one_worker() {
        assert_eq!(fit_serial_fraction(&[(1, 1.0)]), 0.0);
        // Superlinear speed-ups would give a negative fraction.
        assert_eq!(fit_serial_fraction(&[(2, 2.5)]), 0.0);
        assert_eq!(fit_serial_fraction(&[(4, 0.5)]), 1.0);
    }

    #[test]
    fn scaling_table_and_chart() {
        let scaling = Scaling::measure("sleeps", [1, 2], || {
            sleepy_workload(4, Duration::from_millis(1), Duration::ZERO)
        });
        assert_eq!(scaling.to_table().len(), 2);
        assert!(scaling.to_chart().to_svg().unwrap().contains("Amdahl"));
    }
}
