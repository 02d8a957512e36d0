//! The course's password crackers, as a program: `hash_rate [SECONDS] [--every-simd] [--slow]`
//! prints how many MD5 and SHA-256 digests per second they test on all cores (about SECONDS
//! each, default 2) with the best SIMD this processor has; with `--every-simd`, with each it
//! has; with `--slow`, the rates of bcrypt (cost 10) and Argon2id (default parameters) too.
//! `tests/bench/module3_passwords.py` runs it beside hashcat's own benchmark.

use std::time::Duration;

use parcours_gpu::passwords::{FastHash, Simd, argon2_rate, bcrypt_rate, hash_rate};

const USAGE: &str = "usage: hash_rate [SECONDS] [--every-simd] [--slow]";

fn main() {
    let mut seconds = 2.0;
    let (mut every_simd, mut slow) = (false, false);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--every-simd" => every_simd = true,
            "--slow" => slow = true,
            _ => seconds = arg.parse().expect(USAGE),
        }
    }
    let duration = Duration::from_secs_f64(seconds);
    let threads = parcours::rayon::current_num_threads();
    println!("threads {threads}");
    println!("simd {}", Simd::best());
    let fast = [(FastHash::Md5, "md5"), (FastHash::Sha256, "sha256")];
    for (hash, name) in fast {
        println!(
            "{name}_hashes_per_second {:.0}",
            hash_rate(hash, Simd::best(), duration)
        );
    }
    if every_simd {
        for simd in Simd::available() {
            for (hash, name) in fast {
                let rate = hash_rate(hash, simd, duration);
                println!("{name}_hashes_per_second[{simd}] {rate:.0}");
            }
        }
    }
    if slow {
        println!(
            "bcrypt_cost10_hashes_per_second {:.1}",
            bcrypt_rate(10, 8 * threads)
        );
        println!("argon2id_hashes_per_second {:.1}", argon2_rate(8 * threads));
    }
}
