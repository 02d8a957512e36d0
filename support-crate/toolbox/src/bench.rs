//! Timing: warm-up, repeated runs, and results that display as tables.
//!
//! One run of a piece of code tells little: the first run pays for cold caches, page faults
//! and lazy initialisation, and later runs vary with whatever else the machine does. So
//! [`Bench`] runs the code a few times unmeasured (warm-up), then measures several runs and
//! keeps every sample; a [`Timing`] reports the median (robust to outliers) with the min and
//! max beside it. Code that runs in microseconds is repeated within each sample, so a sample
//! is long enough for the clock to measure.
//!
//! Every speed-up in the course is a ratio of two timings measured in the same run:
//! [`compare`] puts a baseline and its challengers in one table.
//!
//! ```
//! use parcours::prelude::*;
//!
//! let data: Vec<u64> = (0..100_000).collect();
//! let sequential = bench("sequential sum", || data.iter().sum::<u64>());
//! let parallel = bench("parallel sum", || data.par_iter().sum::<u64>());
//! let table = compare([sequential, parallel]);
//! assert_eq!(table.timings().len(), 2);
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::chart::BarChart;
use crate::display::{Table, emit, format_duration};

/// Runs `f` once and returns its result with the time it took.
///
/// ```
/// use parcours::prelude::*;
/// let (sum, elapsed) = time(|| (0..1000u64).sum::<u64>());
/// assert_eq!(sum, 499_500);
/// assert!(elapsed.as_secs() < 1);
/// ```
pub fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Times `f` with the default settings of [`Bench`]: 1 warm-up run, then 5 measured samples.
///
/// ```
/// use parcours::prelude::*;
/// let timing = bench("sort 10k", || {
///     let mut v: Vec<u32> = (0..10_000).rev().collect();
///     v.sort();
///     v
/// });
/// assert_eq!(timing.samples().len(), 5);
/// assert!(timing.min() <= timing.median() && timing.median() <= timing.max());
/// ```
pub fn bench<T>(label: &str, f: impl FnMut() -> T) -> Timing {
    Bench::new().run(label, f)
}

/// How to time a piece of code: warm-up runs, measured samples, and the shortest sample.
///
/// ```
/// use parcours::prelude::*;
/// let timing = Bench::new().warmup(0).samples(3).run("nothing", || ());
/// assert_eq!(timing.samples().len(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct Bench {
    warmup: usize,
    samples: usize,
    min_sample: Duration,
}

impl Default for Bench {
    fn default() -> Self {
        Bench {
            warmup: 1,
            samples: 5,
            min_sample: Duration::from_millis(1),
        }
    }
}

impl Bench {
    /// 1 warm-up run, 5 samples, samples of at least 1 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of unmeasured runs before the samples.
    pub fn warmup(mut self, runs: usize) -> Self {
        self.warmup = runs;
        self
    }

    /// Sets the number of measured samples (at least 1).
    pub fn samples(mut self, samples: usize) -> Self {
        self.samples = samples.max(1);
        self
    }

    /// Sets the shortest sample: code faster than this is repeated within each sample and
    /// the sample divided by the repetitions. `Duration::ZERO` turns repetition off.
    pub fn min_sample(mut self, min_sample: Duration) -> Self {
        self.min_sample = min_sample;
        self
    }

    /// Times `f` and returns every sample as the time of one call.
    pub fn run<T>(&self, label: &str, mut f: impl FnMut() -> T) -> Timing {
        for _ in 0..self.warmup {
            black_box(f());
        }
        let repetitions = self.repetitions(&mut f);
        let samples = (0..self.samples)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..repetitions {
                    black_box(f());
                }
                start.elapsed() / repetitions
            })
            .collect();
        Timing {
            label: label.to_string(),
            samples,
            repetitions,
        }
    }

    /// How many calls make a sample of at least `min_sample`.
    fn repetitions<T>(&self, f: &mut impl FnMut() -> T) -> u32 {
        if self.min_sample.is_zero() {
            return 1;
        }
        let (_, one_call) = time(|| black_box(f()));
        if one_call >= self.min_sample {
            return 1;
        }
        let calls = self.min_sample.as_nanos() / one_call.as_nanos().max(1);
        calls.clamp(1, 1_000_000) as u32
    }
}

/// The samples of one [`Bench`] run, each the time of one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    label: String,
    samples: Vec<Duration>,
    repetitions: u32,
}

impl Timing {
    /// A timing made of samples measured elsewhere (by a script, a process, a GPU).
    ///
    /// # Panics
    /// If `samples` is empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parcours::prelude::*;
    /// let t = Timing::from_samples("external", vec![Duration::from_millis(3), Duration::from_millis(1)]);
    /// assert_eq!(t.min(), Duration::from_millis(1));
    /// ```
    pub fn from_samples(label: impl Into<String>, samples: Vec<Duration>) -> Self {
        let label = label.into();
        assert!(!samples.is_empty(), "timing `{label}` has no samples");
        Timing {
            label,
            samples,
            repetitions: 1,
        }
    }

    /// What was timed.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every sample, in the order measured.
    pub fn samples(&self) -> &[Duration] {
        &self.samples
    }

    /// How many calls each sample averaged over.
    pub fn repetitions(&self) -> u32 {
        self.repetitions
    }

    /// The median sample: the figure the course reports.
    pub fn median(&self) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        let mid = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2
        }
    }

    /// The fastest sample.
    pub fn min(&self) -> Duration {
        *self.samples.iter().min().expect("a timing has samples")
    }

    /// The slowest sample.
    pub fn max(&self) -> Duration {
        *self.samples.iter().max().expect("a timing has samples")
    }

    /// The mean of the samples.
    pub fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }

    /// How many times faster this is than `baseline`, by medians (2.0: twice as fast).
    ///
    /// ```
    /// use std::time::Duration;
    /// use parcours::prelude::*;
    /// let slow = Timing::from_samples("slow", vec![Duration::from_millis(10)]);
    /// let fast = Timing::from_samples("fast", vec![Duration::from_millis(4)]);
    /// assert_eq!(fast.speedup_over(&slow), 2.5);
    /// ```
    pub fn speedup_over(&self, baseline: &Timing) -> f64 {
        baseline.median().as_secs_f64() / self.median().as_secs_f64()
    }

    /// `items` processed per second, by the median (items/s, bytes/s, FLOP/s, ...).
    pub fn throughput(&self, items: f64) -> f64 {
        items / self.median().as_secs_f64()
    }

    /// The timing as a one-row table.
    pub fn to_table(&self) -> Table {
        compare([self.clone()]).to_table()
    }

    /// Shows the timing as a table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: median {} (min {}, max {}, {} samples)",
            self.label,
            format_duration(self.median()),
            format_duration(self.min()),
            format_duration(self.max()),
            self.samples.len()
        )
    }
}

/// Timings of the same work done different ways; the first is the baseline.
///
/// ```
/// use std::time::Duration;
/// use parcours::prelude::*;
/// let one = Timing::from_samples("1 thread", vec![Duration::from_millis(8)]);
/// let two = Timing::from_samples("2 threads", vec![Duration::from_millis(4)]);
/// let comparison = compare([one, two]);
/// assert_eq!(comparison.speedups(), vec![1.0, 2.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    timings: Vec<Timing>,
}

/// Compares timings against the first one, the baseline.
///
/// # Panics
/// If `timings` is empty.
pub fn compare(timings: impl IntoIterator<Item = Timing>) -> Comparison {
    let timings: Vec<Timing> = timings.into_iter().collect();
    assert!(!timings.is_empty(), "compare needs at least one timing");
    Comparison { timings }
}

impl Comparison {
    /// The timings, baseline first.
    pub fn timings(&self) -> &[Timing] {
        &self.timings
    }

    /// Each timing's speed-up over the baseline (the baseline's is 1).
    pub fn speedups(&self) -> Vec<f64> {
        let baseline = &self.timings[0];
        self.timings
            .iter()
            .map(|t| t.speedup_over(baseline))
            .collect()
    }

    /// A table: median, min, max and speed-up over the baseline.
    pub fn to_table(&self) -> Table {
        let mut table = Table::new(["", "median", "min", "max", "samples", "speed-up"]);
        for (timing, speedup) in self.timings.iter().zip(self.speedups()) {
            table.push_row([
                timing.label.clone(),
                format_duration(timing.median()),
                format_duration(timing.min()),
                format_duration(timing.max()),
                timing.samples.len().to_string(),
                format!("{speedup:.2}×"),
            ]);
        }
        table
    }

    /// The medians as a bar chart.
    pub fn to_chart(&self, title: &str) -> BarChart {
        let mut chart = BarChart::new(title).y_label("median time (ms)");
        for timing in &self.timings {
            chart = chart.bar(&timing.label, timing.median().as_secs_f64() * 1e3);
        }
        chart
    }

    /// Shows the comparison as a table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_table().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(
            Timing::from_samples("odd", ms(&[9, 1, 5])).median(),
            Duration::from_millis(5)
        );
        assert_eq!(
            Timing::from_samples("even", ms(&[1, 2, 4, 100])).median(),
            Duration::from_millis(3)
        );
    }

    #[test]
    fn fast_code_is_repeated_within_a_sample() {
        let timing = Bench::new().samples(2).run("tiny", || 1 + 1);
        assert!(timing.repetitions() > 1, "{timing:?}");
    }

    #[test]
    fn slow_code_runs_once_per_sample() {
        let mut calls = 0;
        let timing = Bench::new().warmup(1).samples(3).run("sleep", || {
            calls += 1;
            std::thread::sleep(Duration::from_millis(2));
        });
        assert_eq!(timing.repetitions(), 1);
        // warm-up + the call that sizes samples + 3 samples
        assert_eq!(calls, 5);
        assert!(timing.min() >= Duration::from_millis(2));
    }

    #[test]
    fn comparison_table_has_a_row_per_timing() {
        let table = compare([
            Timing::from_samples("a", ms(&[10])),
            Timing::from_samples("b", ms(&[5])),
        ])
        .to_table();
        assert_eq!(table.rows()[1][5], "2.00×");
    }
}
