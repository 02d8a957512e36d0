//! Micro-benchmarks of the machine: memory bandwidth (STREAM), memory latency across working
//! sets, processor throughput (scalar, SIMD, all threads), disks, and the roofline they make.
//!
//! The measuring kernels are written here, in plain Rust, because they are the lesson: each
//! is a few lines whose speed is set by one part of the hardware.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use parcours::chart::Chart;
use parcours::display::{Table, emit, format_si};

/// Elements per rayon task in the STREAM kernels: large enough to amortise scheduling.
const CHUNK: usize = 1 << 14;

/// The four STREAM kernels, each `a`, `b`, `c` of the same length. Run in parallel with rayon.
pub mod stream {
    use super::*;

    /// `c = a`
    pub fn copy(c: &mut [f64], a: &[f64]) {
        c.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .for_each(|(c, a)| c.copy_from_slice(a));
    }

    /// `b = q·c`
    pub fn scale(b: &mut [f64], c: &[f64], q: f64) {
        b.par_chunks_mut(CHUNK)
            .zip(c.par_chunks(CHUNK))
            .for_each(|(b, c)| b.iter_mut().zip(c).for_each(|(b, c)| *b = q * c));
    }

    /// `c = a + b`
    pub fn add(c: &mut [f64], a: &[f64], b: &[f64]) {
        c.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(c, (a, b))| {
                c.iter_mut()
                    .zip(a.iter().zip(b))
                    .for_each(|(c, (a, b))| *c = a + b)
            });
    }

    /// `a = b + q·c`, the triad.
    pub fn triad(a: &mut [f64], b: &[f64], c: &[f64], q: f64) {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK).zip(c.par_chunks(CHUNK)))
            .for_each(|(a, (b, c))| {
                a.iter_mut()
                    .zip(b.iter().zip(c))
                    .for_each(|(a, (b, c))| *a = b + q * c)
            });
    }
}

/// Best bandwidth of each STREAM kernel, in bytes per second (as STREAM counts them: each
/// array read or written once per element, 8 bytes each).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamBandwidth {
    /// `c = a`: 16 bytes per element.
    pub copy: f64,
    /// `b = q·c`: 16 bytes per element.
    pub scale: f64,
    /// `c = a + b`: 24 bytes per element.
    pub add: f64,
    /// `a = b + q·c`: 24 bytes per element.
    pub triad: f64,
}

impl StreamBandwidth {
    /// A table in GB/s.
    pub fn to_table(&self) -> Table {
        let mut table =
            Table::new(["kernel", "operation", "bandwidth"]).title("STREAM, best of runs");
        for (name, op, value) in [
            ("copy", "c = a", self.copy),
            ("scale", "b = q·c", self.scale),
            ("add", "c = a + b", self.add),
            ("triad", "a = b + q·c", self.triad),
        ] {
            table.push_row([name, op, &format_si(value, "B/s")]);
        }
        table
    }

    /// Shows the table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

/// Runs the four STREAM kernels over arrays of `len` f64 (use at least 4× the last-level
/// cache), `runs` times each, and keeps the best run of each, as STREAM does.
///
/// ```
/// let bw = parcours_limits::measure::stream_bandwidth(1 << 16, 3);
/// assert!(bw.triad > 1e8, "{bw:?}"); // over 100 MB/s on anything
/// ```
pub fn stream_bandwidth(len: usize, runs: usize) -> StreamBandwidth {
    // Filled in parallel: each page is first touched by the thread that will use it.
    let mut a = vec![0.0f64; len];
    let mut b = vec![0.0f64; len];
    let mut c = vec![0.0f64; len];
    a.par_iter_mut().for_each(|x| *x = 1.0);
    b.par_iter_mut().for_each(|x| *x = 2.0);
    c.par_iter_mut().for_each(|x| *x = 0.0);
    let bytes = (len * 8) as f64;
    let best = |f: &mut dyn FnMut()| {
        (0..runs.max(1))
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .min()
            .expect("one run at least")
            .as_secs_f64()
    };
    let q = 3.0;
    let copy = best(&mut || stream::copy(&mut c, &a));
    let scale = best(&mut || stream::scale(&mut b, &c, q));
    let add = best(&mut || stream::add(&mut c, &a, &b));
    let triad = best(&mut || stream::triad(&mut a, &b, &c, q));
    black_box((&a, &b, &c));
    StreamBandwidth {
        copy: 2.0 * bytes / copy,
        scale: 2.0 * bytes / scale,
        add: 3.0 * bytes / add,
        triad: 3.0 * bytes / triad,
    }
}

/// Nanoseconds per dependent memory access when chasing pointers through a working set of
/// `bytes`, for each size: the steps of the curve are the caches, then main memory.
///
/// Each access reads the index of the next one, in a random cycle through the whole set, so
/// the processor can neither prefetch nor overlap the accesses.
///
/// ```
/// let curve = parcours_limits::measure::memory_latency(&[4 << 10, 64 << 10], 100_000);
/// assert_eq!(curve.len(), 2);
/// assert!(curve.iter().all(|&(_, ns)| ns > 0.0 && ns < 10_000.0));
/// ```
pub fn memory_latency(sizes: &[usize], accesses: usize) -> Vec<(usize, f64)> {
    sizes
        .iter()
        .map(|&bytes| {
            let len = (bytes / std::mem::size_of::<usize>()).max(2);
            let next = random_cycle(len, 0x9E37_79B9_7F4A_7C15 ^ len as u64);
            let mut i = 0;
            for _ in 0..len {
                i = next[i]; // warm the caches with one lap
            }
            let start = Instant::now();
            for _ in 0..accesses {
                i = next[i];
            }
            let elapsed = start.elapsed();
            black_box(i);
            (bytes, elapsed.as_nanos() as f64 / accesses as f64)
        })
        .collect()
}

/// A random permutation of `0..len` made of one single cycle (Sattolo's algorithm).
fn random_cycle(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = seed | 1;
    for i in (1..len).rev() {
        // xorshift64: plenty for shuffling, and no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % i as u64) as usize;
        order.swap(i, j);
    }
    let mut next = vec![0; len];
    for w in 0..len {
        next[order[w]] = order[(w + 1) % len];
    }
    next
}

/// Floating-point throughput, in FLOP/s, of one multiply-add per element (2 FLOP) over an
/// array that stays in the L1 cache.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuThroughput {
    /// One element at a time (each value goes through `black_box`, which stops vectorising).
    pub scalar: f64,
    /// Vectorised by the compiler, for the SIMD units found at run time (AVX2 + FMA when
    /// present, else the baseline SSE2 on x86-64; NEON on Arm).
    pub simd: f64,
    /// The SIMD loop on every thread of rayon's pool at once.
    pub all_threads: f64,
    /// The SIMD instruction set the `simd` figure used.
    pub simd_set: &'static str,
}

impl CpuThroughput {
    /// A table in GFLOP/s.
    pub fn to_table(&self) -> Table {
        Table::new(["", "throughput", "over scalar"])
            .title("f32 multiply-add throughput")
            .row([
                "scalar".to_string(),
                format_si(self.scalar, "FLOP/s"),
                "1.0×".into(),
            ])
            .row([
                format!("SIMD ({})", self.simd_set),
                format_si(self.simd, "FLOP/s"),
                format!("{:.1}×", self.simd / self.scalar),
            ])
            .row([
                format!("SIMD × {} threads", rayon::current_num_threads()),
                format_si(self.all_threads, "FLOP/s"),
                format!("{:.1}×", self.all_threads / self.scalar),
            ])
    }

    /// Shows the table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

const L1_FLOATS: usize = 2048; // 8 KiB of f32: inside any L1 data cache
const A: f32 = 0.999_9;
const B: f32 = 0.000_1;

fn multiply_add_scalar(xs: &mut [f32], rounds: usize) {
    for _ in 0..rounds {
        for x in xs.iter_mut() {
            *x = black_box(*x) * A + B;
        }
    }
}

fn multiply_add_portable(xs: &mut [f32], rounds: usize) {
    for _ in 0..rounds {
        for x in xs.iter_mut() {
            *x = *x * A + B;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn multiply_add_avx2(xs: &mut [f32], rounds: usize) {
    for _ in 0..rounds {
        for x in xs.iter_mut() {
            *x = x.mul_add(A, B);
        }
    }
}

/// The SIMD loop for the best instruction set this processor has, and its name.
fn multiply_add_simd() -> (fn(&mut [f32], usize), &'static str) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has AVX2 and FMA, checked just above.
        return (
            |xs, rounds| unsafe { multiply_add_avx2(xs, rounds) },
            "AVX2 + FMA",
        );
    }
    let name = if cfg!(target_arch = "x86_64") {
        "SSE2"
    } else if cfg!(target_arch = "aarch64") {
        "NEON"
    } else {
        "baseline"
    };
    (multiply_add_portable, name)
}

/// Measures [`CpuThroughput`], each figure over about `duration`.
///
/// ```
/// use std::time::Duration;
/// let t = parcours_limits::measure::cpu_throughput(Duration::from_millis(20));
/// assert!(t.simd > t.scalar, "{t:?}");
/// ```
pub fn cpu_throughput(duration: Duration) -> CpuThroughput {
    let (simd_loop, simd_set) = multiply_add_simd();
    let rate = |f: fn(&mut [f32], usize)| {
        let mut xs = vec![1.0f32; L1_FLOATS];
        let rounds = calibrate(|r| f(&mut xs, r), duration);
        let start = Instant::now();
        f(&mut xs, rounds);
        let seconds = start.elapsed().as_secs_f64();
        black_box(&xs);
        (2 * L1_FLOATS * rounds) as f64 / seconds
    };
    let scalar = rate(multiply_add_scalar);
    let simd = rate(simd_loop);
    let threads = rayon::current_num_threads();
    let rounds = {
        let mut xs = vec![1.0f32; L1_FLOATS];
        calibrate(|r| simd_loop(&mut xs, r), duration)
    };
    let start = Instant::now();
    (0..threads).into_par_iter().for_each(|_| {
        let mut xs = vec![1.0f32; L1_FLOATS];
        simd_loop(&mut xs, rounds);
        black_box(&xs);
    });
    let all_threads = (2 * L1_FLOATS * rounds * threads) as f64 / start.elapsed().as_secs_f64();
    CpuThroughput {
        scalar,
        simd,
        all_threads,
        simd_set,
    }
}

/// How many rounds of `f` take about `target`.
fn calibrate(mut f: impl FnMut(usize), target: Duration) -> usize {
    let mut rounds = 1;
    loop {
        let start = Instant::now();
        f(rounds);
        let elapsed = start.elapsed();
        if elapsed >= target / 4 || rounds >= 1 << 30 {
            let scale = target.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
            return ((rounds as f64 * scale) as usize).max(1);
        }
        rounds *= 4;
    }
}

/// What [`disk`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiskSpeed {
    /// Sequential write in 1 MiB blocks, then `fsync`, in bytes/s.
    pub sequential_write: f64,
    /// Sequential read of the same file, in bytes/s, from where [`DiskSpeed::reads_from`] says.
    pub sequential_read: f64,
    /// Random 4 KiB reads in the file, per second.
    pub random_reads: f64,
    /// One 4 KiB write followed by `fsync`: the time to make data durable.
    pub fsync: Duration,
    /// Whether the reads reached the device or came from the page cache.
    pub reads_from: ReadsFrom,
}

/// Where the reads of [`disk`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadsFrom {
    /// The file system, bypassing the page cache (`O_DIRECT`): on a disk, the device itself
    /// (on a tmpfs, which lives in memory, memory all the same).
    Direct,
    /// The operating system's page cache (memory): the file system refused `O_DIRECT`, so a
    /// file just written is read from memory.
    PageCache,
}

impl DiskSpeed {
    /// A table with units.
    pub fn to_table(&self) -> Table {
        let from = match self.reads_from {
            ReadsFrom::Direct => "O_DIRECT, past the page cache",
            ReadsFrom::PageCache => "the page cache: O_DIRECT refused here",
        };
        Table::new(["", "measured"])
            .title("Disk (a file in the folder given)")
            .row([
                "sequential write + fsync",
                &format_si(self.sequential_write, "B/s"),
            ])
            .row([
                format!("sequential read ({from})").as_str(),
                &format_si(self.sequential_read, "B/s"),
            ])
            .row([
                format!("random 4 KiB reads ({from})").as_str(),
                &format_si(self.random_reads, "reads/s"),
            ])
            .row([
                "4 KiB write + fsync",
                &parcours::display::format_duration(self.fsync),
            ])
    }

    /// Shows the table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

/// Measures a disk through a scratch file of `bytes` in `dir`, removed afterwards.
///
/// # Errors
/// Any I/O error, with the file's path (the scratch file is removed in every case).
///
/// ```
/// let speed = parcours_limits::measure::disk(&std::env::temp_dir(), 4 << 20).unwrap();
/// assert!(speed.sequential_write > 0.0 && speed.random_reads > 0.0);
/// ```
pub fn disk(dir: &Path, bytes: usize) -> std::io::Result<DiskSpeed> {
    let path = dir.join(format!("parcours-disk-test-{}.bin", std::process::id()));
    let result = measure_disk(&path, bytes.max(1 << 20));
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn measure_disk(path: &Path, bytes: usize) -> std::io::Result<DiskSpeed> {
    const BLOCK: usize = 1 << 20;
    let block = vec![0xA5u8; BLOCK];
    let blocks = bytes / BLOCK;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    let start = Instant::now();
    for _ in 0..blocks {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let sequential_write = (blocks * BLOCK) as f64 / start.elapsed().as_secs_f64();

    // Reads bypass the page cache where the file system allows it (O_DIRECT: aligned buffers
    // and offsets), else they come from memory, and the result says which.
    let pages = (blocks * BLOCK / 4096) as u64;
    let mut aligned = vec![0u8; BLOCK + 4096];
    let start_at = aligned.as_ptr().align_offset(4096);
    let buffer = &mut aligned[start_at..start_at + BLOCK];
    let (sequential_read, random_reads, reads_from) = match open_direct(path)
        .and_then(|mut direct| read_speeds(&mut direct, blocks, pages, buffer))
    {
        Ok((sequential, random)) => (sequential, random, ReadsFrom::Direct),
        Err(_) => {
            let (sequential, random) = read_speeds(&mut file, blocks, pages, buffer)?;
            (sequential, random, ReadsFrom::PageCache)
        }
    };
    let page = [0u8; 4096];

    let syncs = 20;
    let start = Instant::now();
    for _ in 0..syncs {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&page)?;
        file.sync_data()?;
    }
    let fsync = start.elapsed() / syncs;
    Ok(DiskSpeed {
        sequential_write,
        sequential_read,
        random_reads,
        fsync,
        reads_from,
    })
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &Path) -> std::io::Result<std::fs::File> {
    Err(std::io::Error::other("O_DIRECT is Linux's"))
}

/// Sequential reads of `blocks` blocks of `buffer`'s size, then 2 000 random 4 KiB reads:
/// (bytes/s, reads/s).
fn read_speeds(
    file: &mut std::fs::File,
    blocks: usize,
    pages: u64,
    buffer: &mut [u8],
) -> std::io::Result<(f64, f64)> {
    file.seek(SeekFrom::Start(0))?;
    let start = Instant::now();
    for _ in 0..blocks {
        file.read_exact(buffer)?;
    }
    let sequential = (blocks * buffer.len()) as f64 / start.elapsed().as_secs_f64();
    let reads = 2_000;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let start = Instant::now();
    for _ in 0..reads {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        file.seek(SeekFrom::Start((state % pages) * 4096))?;
        file.read_exact(&mut buffer[..4096])?;
    }
    Ok((sequential, reads as f64 / start.elapsed().as_secs_f64()))
}

/// The roofline of a machine: attainable FLOP/s = min(peak, arithmetic intensity × bandwidth).
///
/// ```
/// use parcours_limits::measure::Roofline;
/// let roof = Roofline { peak_flops: 100e9, bandwidth: 20e9 };
/// assert_eq!(roof.ridge(), 5.0);                // FLOP per byte where the roof turns flat
/// assert_eq!(roof.attainable(0.5), 10e9);       // memory-bound
/// assert_eq!(roof.attainable(50.0), 100e9);     // compute-bound
/// let chart = roof.to_chart("This machine", &[("triad", 2.0 / 24.0)]);
/// assert!(chart.to_svg().unwrap().contains("triad"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roofline {
    /// Peak floating-point throughput, FLOP/s.
    pub peak_flops: f64,
    /// Main-memory bandwidth, bytes/s.
    pub bandwidth: f64,
}

impl Roofline {
    /// The arithmetic intensity (FLOP/byte) at which compute becomes the limit.
    pub fn ridge(&self) -> f64 {
        self.peak_flops / self.bandwidth
    }

    /// The best FLOP/s a kernel of this arithmetic intensity (FLOP/byte) can reach.
    pub fn attainable(&self, intensity: f64) -> f64 {
        self.peak_flops.min(intensity * self.bandwidth)
    }

    /// The roof on log-log axes, in GFLOP/s, with named kernels placed under it.
    pub fn to_chart(&self, title: &str, kernels: &[(&str, f64)]) -> Chart {
        let points: Vec<(f64, f64)> = (-12..=24)
            .map(|i| 2f64.powf(i as f64 / 2.0))
            .map(|ai| (ai, self.attainable(ai) / 1e9))
            .collect();
        let mut chart = Chart::new(title)
            .x_label("arithmetic intensity (FLOP/byte)")
            .y_label("attainable GFLOP/s")
            .log_x()
            .log_y()
            .legend_lower_right()
            .line("roof: min(peak, intensity × bandwidth)", points);
        for (name, intensity) in kernels {
            chart = chart.points(*name, [(*intensity, self.attainable(*intensity) / 1e9)]);
        }
        chart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_kernels_compute_what_they_say() {
        let n = CHUNK * 2 + 3;
        let a = vec![1.0; n];
        let b = vec![2.0; n];
        let mut c = vec![0.0; n];
        stream::add(&mut c, &a, &b);
        assert!(c.iter().all(|&x| x == 3.0));
        let mut t = vec![0.0; n];
        stream::triad(&mut t, &b, &c, 2.0);
        assert!(t.iter().all(|&x| x == 8.0));
        stream::scale(&mut t, &c, 0.5);
        assert!(t.iter().all(|&x| x == 1.5));
        stream::copy(&mut t, &a);
        assert_eq!(t, a);
    }

    #[test]
    fn the_cycle_visits_every_element_once() {
        let next = random_cycle(1000, 42);
        let (mut i, mut seen) = (0, vec![false; 1000]);
        for _ in 0..1000 {
            assert!(!seen[i]);
            seen[i] = true;
            i = next[i];
        }
        assert_eq!(i, 0);
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn disk_reads_say_where_they_came_from() {
        let speed = disk(&std::env::temp_dir(), 4 << 20).unwrap();
        assert!(
            speed.sequential_read > 0.0 && speed.random_reads > 0.0,
            "{speed:?}"
        );
        let shown = speed.to_table().to_html();
        let said = match speed.reads_from {
            ReadsFrom::Direct => "O_DIRECT, past the page cache",
            ReadsFrom::PageCache => "the page cache",
        };
        assert!(shown.contains(said), "{shown}");
    }

    #[test]
    fn the_disk_scratch_file_is_removed() {
        let dir = std::env::temp_dir().join(format!("parcours-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        disk(&dir, 2 << 20).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
        let missing = disk(Path::new("/nonexistent/folder"), 1 << 20).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/folder"),
            "{missing}"
        );
    }
}
