//! A CPU-bound workload with no serial part, timed on rayon pools of 1 and 2 threads:
//! `speedup ITEMS` prints the speed-up of 2 threads over 1. `tests/bench/module1.py` runs it.

use parcours::laws::Scaling;
use rayon::prelude::*;

/// A chain of dependent multiply-adds: pure computation, no memory traffic.
fn unit_of_work(units: u64) -> u64 {
    let chain = (0..std::hint::black_box(units)).fold(1u64, |acc, i| {
        acc.wrapping_mul(6364136223846793005).wrapping_add(i)
    });
    chain >> 60
}

fn main() {
    let items: u64 = std::env::args()
        .nth(1)
        .map_or(400, |a| a.parse().expect("usage: speedup ITEMS"));
    let scaling = Scaling::measure("computing", [1, 2], || {
        let total: u64 = (0..items)
            .into_par_iter()
            .map(|_| unit_of_work(200_000))
            .sum();
        std::hint::black_box(total);
    });
    for (threads, timing) in scaling.runs() {
        println!(
            "threads_{threads}_seconds {}",
            timing.median().as_secs_f64()
        );
    }
    println!("speedup_2_over_1 {}", scaling.speedups()[1].1);
}
