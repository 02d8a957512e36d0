//! The course's STREAM triad, as a program: `stream_triad LEN RUNS [THREADS]` prints the best
//! triad bandwidth in bytes/s over RUNS runs on arrays of LEN f64, on a rayon pool of THREADS
//! threads (default: the CPUs this process may run on, its affinity mask, as
//! `std::thread::available_parallelism` reads it). It prints the thread count it used.
//! `tests/bench/module1.py` runs it beside a C triad compiled with `gcc -O3 -fopenmp`, given
//! the same count through `OMP_NUM_THREADS`.
//!
//! It runs the same steps as the C program: the three arrays first touched in parallel, then
//! the triad alone, timed RUNS times.

use std::time::Instant;

use parcours_limits::measure::stream;
use rayon::prelude::*;

const USAGE: &str = "usage: stream_triad LEN RUNS [THREADS]";

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect(USAGE))
        .collect();
    let (len, runs, threads) = match args[..] {
        [len, runs] => (len, runs, None),
        [len, runs, threads] => (len, runs, Some(threads)),
        _ => panic!("{USAGE}"),
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .expect("the number of CPUs this process may use")
            .get()
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let best = pool.install(|| {
        // Each page is first touched by a thread of the pool, as the C program's threads do.
        let mut a = vec![0.0f64; len];
        let mut b = vec![0.0f64; len];
        let mut c = vec![0.0f64; len];
        a.par_iter_mut().for_each(|x| *x = 1.0);
        b.par_iter_mut().for_each(|x| *x = 2.0);
        c.par_iter_mut().for_each(|x| *x = 0.0);
        let best = (0..runs.max(1))
            .map(|_| {
                let started = Instant::now();
                stream::triad(&mut a, &b, &c, 3.0);
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        std::hint::black_box((&a, &b, &c));
        best
    });
    println!("threads {}", pool.current_num_threads());
    // STREAM's count: 24 bytes per element (two reads, one write).
    println!("triad_bytes_per_second {:e}", 24.0 * len as f64 / best);
}
