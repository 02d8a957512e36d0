//! Notebook 36's exercise 3, a keyspace split between the GPU and the CPU's threads, watched
//! as its check watches it: the GPU's share in dispatches, the CPU's in CPU time per thread,
//! on the check's keyspace (5 letters or digits), in a pool of check_parallel's threads (the
//! cores, at least two) and one more for the GPU's wait. The reference answer must read as
//! both; the wrong answers kept for it (GPU alone, CPU alone, the CPU's share on one thread)
//! must not. Its own test binary and one test: the threads and dispatches of other tests
//! running meanwhile would be counted as the work's.

use parcours::exercise::{ThreadUse, observe_threads};
use parcours_gpu::gpu;
use parcours_gpu::passwords::{self, Charset, FastHash};
use rayon::prelude::*;

type Answer = fn([u8; 16], &Charset, usize, f64) -> Option<String>;

/// The notebook's solution: the GPU searches `0..split`, rayon's threads the rest in chunks,
/// both at once.
fn crack_both(
    digest: [u8; 16],
    charset: &Charset,
    length: usize,
    gpu_share: f64,
) -> Option<String> {
    let gpu = gpu::gpu().unwrap();
    let keyspace = passwords::keyspace(charset, length);
    let split = (keyspace as f64 * gpu_share) as u128;
    let chunks = 8 * rayon::current_num_threads() as u128;
    let chunk = (keyspace - split).div_ceil(chunks).max(1);
    let (on_gpu, on_cpu) = rayon::join(
        || {
            gpu.crack_range(FastHash::Md5, &digest, charset, length, 0..split)
                .unwrap()
                .value
        },
        || {
            (0..chunks).into_par_iter().find_map_any(|c| {
                let start = (split + c * chunk).min(keyspace);
                let end = (start + chunk).min(keyspace);
                passwords::crack_range(FastHash::Md5, &digest, charset, length, start..end).unwrap()
            })
        },
    );
    on_gpu.or(on_cpu)
}

/// Wrong: the GPU searches everything, the CPU nothing.
fn gpu_alone(digest: [u8; 16], charset: &Charset, length: usize, _: f64) -> Option<String> {
    let symbols = std::str::from_utf8(charset.symbols()).unwrap();
    let gpu = gpu::gpu().unwrap();
    gpu.crack(FastHash::Md5, &digest, symbols, length)
        .unwrap()
        .value
}

/// Wrong: every core searches everything, the GPU nothing.
fn cpu_alone(digest: [u8; 16], charset: &Charset, length: usize, _: f64) -> Option<String> {
    passwords::crack_md5(digest, charset, length)
}

/// Wrong: the GPU's share and the CPU's at once, but the CPU's on one thread.
fn cpu_share_on_one_thread(
    digest: [u8; 16],
    charset: &Charset,
    length: usize,
    gpu_share: f64,
) -> Option<String> {
    let gpu = gpu::gpu().unwrap();
    let keyspace = passwords::keyspace(charset, length);
    let split = (keyspace as f64 * gpu_share) as u128;
    let (on_gpu, on_cpu) = rayon::join(
        || {
            gpu.crack_range(FastHash::Md5, &digest, charset, length, 0..split)
                .unwrap()
                .value
        },
        || {
            passwords::crack_range(FastHash::Md5, &digest, charset, length, split..keyspace)
                .unwrap()
        },
    );
    on_gpu.or(on_cpu)
}

/// Runs `answer` as the check does: the GPU's share a quarter, the password its last
/// candidate, up to `runs` runs until one reads as parallel (the check gives a right answer
/// three). Returns the dispatches of the last run and how its threads shared the CPU.
fn watch(answer: Answer, runs: usize) -> (u64, ThreadUse) {
    let charset = Charset::lower_digits();
    let keyspace = passwords::keyspace(&charset, 5);
    let split = (keyspace as f64 * 0.25) as u128;
    let password = passwords::candidate(&charset, 5, split - 1);
    let digest = passwords::md5(password.as_bytes());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
        + 1;
    let mut run = 1;
    loop {
        let before = gpu::dispatches();
        let (found, used) = observe_threads(threads, || answer(digest, &charset, 5, 0.25));
        let dispatched = gpu::dispatches() - before;
        assert_eq!(found.as_ref(), Some(&password));
        // Shown when the test fails (the harness keeps a passing test's output).
        println!("{dispatched} dispatches, {used}");
        if used.parallel() || run == runs {
            return (dispatched, used);
        }
        run += 1;
    }
}

#[test]
fn the_split_reads_as_the_gpu_and_every_core_and_its_wrong_answers_do_not() {
    gpu::gpu().unwrap();
    let (dispatched, used) = watch(crack_both, 3);
    assert!(
        dispatched > 0 && used.parallel(),
        "{dispatched} dispatches, {used}"
    );
    let (dispatched, used) = watch(gpu_alone, 1);
    assert!(
        dispatched > 0 && !used.parallel(),
        "GPU alone: {dispatched} dispatches, {used}"
    );
    let (dispatched, _) = watch(cpu_alone, 1);
    assert_eq!(dispatched, 0, "CPU alone");
    let (dispatched, used) = watch(cpu_share_on_one_thread, 1);
    assert!(dispatched > 0 && !used.parallel(), "one CPU thread: {used}");

    // The reference finds passwords on both sides of any split, and none outside the keyspace.
    let charset = Charset::lower_digits();
    let keyspace = passwords::keyspace(&charset, 5);
    let split = |share: f64| (keyspace as f64 * share) as u128;
    let cases = [
        (0.6, 0),
        (0.6, split(0.6) - 1),
        (0.6, split(0.6)),
        (0.3, split(0.3)),
        (0.3, keyspace - 1),
    ];
    for (share, index) in cases {
        let password = passwords::candidate(&charset, 5, index);
        let digest = passwords::md5(password.as_bytes());
        assert_eq!(
            crack_both(digest, &charset, 5, share),
            Some(password),
            "{share} {index}"
        );
    }
    for share in [0.0, 0.5, 1.0] {
        let found = crack_both(passwords::md5(b"abcd"), &Charset::digits(), 4, share);
        assert_eq!(found, None, "{share}");
    }
}
