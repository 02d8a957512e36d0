//! A CPU-bound workload with no serial part, timed on rayon pools of 1 and N threads:
//! `speedup [--threads N] [--rounds R] [--steps S]` prints the speed-up of N threads over 1
//! (default 2), one figure per round and their min, median and max.
//! `tests/bench/module1.py` runs it.
//!
//! Each pool runs exactly one work item per thread (`broadcast`), so nothing is left to
//! balance: a pool of N does N items in the time one thread does one, if nothing else
//! interferes. The two pools alternate, round after round, so that a noisy neighbour or a
//! change of clock speed falls on both; each round's speed-up compares its own two timings.

use std::time::{Duration, Instant};

use rayon::ThreadPoolBuilder;

const USAGE: &str = "usage: speedup [--threads N] [--rounds R] [--steps S]";

/// A chain of `steps` dependent multiply-adds: pure computation, no memory traffic.
fn unit_of_work(steps: u64) -> u64 {
    let chain = (0..std::hint::black_box(steps)).fold(1u64, |acc, i| {
        acc.wrapping_mul(6364136223846793005).wrapping_add(i)
    });
    chain >> 60
}

/// The time `pool` takes to run one work item on each of its threads.
fn time_one_item_per_thread(pool: &rayon::ThreadPool, steps: u64) -> Duration {
    let started = Instant::now();
    std::hint::black_box(pool.broadcast(|_| unit_of_work(steps)));
    started.elapsed()
}

fn main() {
    let (mut threads, mut rounds, mut steps) = (2usize, 15usize, 1_000_000_000u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().expect(USAGE);
        match flag.as_str() {
            "--threads" => threads = value.parse().expect(USAGE),
            "--rounds" => rounds = value.parse().expect(USAGE),
            "--steps" => steps = value.parse().expect(USAGE),
            _ => panic!("{USAGE}"),
        }
    }
    assert!(threads >= 2 && rounds >= 1, "{USAGE}: N >= 2, R >= 1");
    let pool = |n| {
        ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("a thread pool")
    };
    let (one, many) = (pool(1), pool(threads));
    // Warm-up: the threads start and the clock settles before anything is kept.
    time_one_item_per_thread(&one, steps);
    time_one_item_per_thread(&many, steps);

    println!("threads {threads}");
    println!("rounds {rounds}");
    println!("steps_per_item {steps}");
    let mut speedups = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Alternate which pool goes first, so that neither always follows the other.
        let (t1, tn) = if round % 2 == 0 {
            let t1 = time_one_item_per_thread(&one, steps);
            (t1, time_one_item_per_thread(&many, steps))
        } else {
            let tn = time_one_item_per_thread(&many, steps);
            (time_one_item_per_thread(&one, steps), tn)
        };
        // N items in `tn` against 1 item in `t1`: the rate of N threads over that of one.
        let speedup = threads as f64 * t1.as_secs_f64() / tn.as_secs_f64();
        println!(
            "round {round} 1_thread_seconds {:.6} {threads}_threads_seconds {:.6} speedup {speedup:.4}",
            t1.as_secs_f64(),
            tn.as_secs_f64()
        );
        speedups.push(speedup);
    }
    speedups.sort_by(f64::total_cmp);
    let median = if rounds % 2 == 1 {
        speedups[rounds / 2]
    } else {
        (speedups[rounds / 2 - 1] + speedups[rounds / 2]) / 2.0
    };
    println!("speedup_min {}", speedups[0]);
    println!("speedup_median {median}");
    println!("speedup_max {}", speedups[rounds - 1]);
}
