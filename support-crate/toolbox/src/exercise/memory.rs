//! Was an answer lazy, streamed, bounded? The peak memory of one call.
//!
//! The kernel keeps a process's peak resident memory (`VmHWM`) for the process's whole life;
//! writing `5` to `/proc/self/clear_refs` sets it back to the memory resident now, so the
//! peak read after the call is the call's (Linux 4.0 and later).

use std::fmt;

/// The process's resident memory around one call.
#[derive(Debug, Clone, Copy)]
pub struct MemoryUse {
    /// Resident memory when the call began, in bytes.
    pub before: u64,
    /// The highest resident memory during the call, in bytes.
    pub peak: u64,
}

impl MemoryUse {
    /// How far the call raised the process's resident memory, in bytes.
    pub fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }
}

impl fmt::Display for MemoryUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peak {:.1} MiB above the {:.1} MiB resident before",
            self.growth() as f64 / 1048576.0,
            self.before as f64 / 1048576.0
        )
    }
}

/// Why memory cannot be observed here.
#[derive(Debug)]
pub struct MemoryError {
    what: &'static str,
    source: std::io::Error,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot observe the peak memory ({}): {}; this needs Linux's /proc",
            self.what, self.source
        )
    }
}

impl std::error::Error for MemoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Runs `work` and says how far it raised the process's resident memory at its peak.
///
/// ```standalone_crate
/// // Its own process: the threads and memory of other doctests would count.
/// use parcours::exercise::observe_memory;
///
/// let (_, small) = observe_memory(|| (0..1_000_000u64).sum::<u64>()).unwrap();
/// let (_, big) = observe_memory(|| vec![1u8; 64 << 20].iter().map(|&b| b as u64).sum::<u64>()).unwrap();
/// assert!(small.growth() < 8 << 20, "{small}");
/// assert!(big.growth() >= 60 << 20, "{big}");
/// ```
pub fn observe_memory<R>(work: impl FnOnce() -> R) -> Result<(R, MemoryUse), MemoryError> {
    // Memory freed before the call but kept by the allocator (glibc keeps freed heap pages of
    // every thread's arena) would serve the call without raising the peak: give it back first.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").map_err(|source| MemoryError {
        what: "resetting the peak",
        source,
    })?;
    let before = status_kib("VmRSS")?;
    let result = work();
    let peak = status_kib("VmHWM")?;
    Ok((
        result,
        MemoryUse {
            before: before * 1024,
            peak: peak.max(before) * 1024,
        },
    ))
}

/// Runs the student's `work`, prints its peak memory and checks that it raised the
/// process's resident memory by at most `limit` bytes.
///
/// A reading over the limit is taken again once, and the lower one judged: threads and the
/// allocator make one reading vary (notebook 44's streamed answer read 35 to 49 MiB from run to
/// run), while an answer that holds the data reads high every time.
///
/// # Panics
/// When it went over twice, or when memory cannot be observed here.
#[track_caller]
pub fn check_memory_below<R>(what: &str, limit: u64, work: impl Fn() -> R) -> R {
    let observe = || observe_memory(&work).unwrap_or_else(|error| panic!("{error}"));
    let (mut result, mut used) = observe();
    let mut readings = String::new();
    if used.growth() > limit {
        readings = format!("; a first run read {:.1} MiB", used.growth() as f64 / 1048576.0);
        let (again, used_again) = observe();
        if used_again.growth() < used.growth() {
            (result, used) = (again, used_again);
        }
    }
    let below = used.growth() <= limit;
    super::check_that(
        &if below {
            format!("{what} ({used}{readings})")
        } else {
            what.to_string()
        },
        below,
        &format!(
            "{used}, over the {:.1} MiB allowed, twice: stream the data, or work chunk by chunk",
            limit as f64 / 1048576.0
        ),
    );
    result
}

fn status_kib(field: &'static str) -> Result<u64, MemoryError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|source| MemoryError {
        what: "reading /proc/self/status",
        source,
    })?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| MemoryError {
            what: field,
            source: std::io::Error::other(format!("no {field} line in /proc/self/status")),
        })
}
