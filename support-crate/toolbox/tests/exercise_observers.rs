//! The checks that observe how an answer ran, against answers that do and do not use the
//! technique. Their own test binary, each test holding a lock: the threads, children and memory
//! of other tests running meanwhile would be counted as the work's.

use std::sync::Mutex;
use std::time::Duration;

use std::process::{Child, Command};

use parcours::exercise::{
    check_memory_below, check_parallel, check_processes, observe_memory, observe_processes,
    observe_threads,
};
use parcours::prelude::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn spin(n: u64) -> u64 {
    (0..n).fold(0u64, |a, i| a.wrapping_mul(31).wrapping_add(i ^ (a >> 7)))
}

const WORK: u64 = 30_000_000;

#[test]
fn sequential_work_is_not_parallel() {
    let _alone = alone();
    let (_, used) = observe_threads(4, || spin(std::hint::black_box(WORK)));
    assert!(!used.parallel(), "{used}");
    assert!(used.busiest_share() > 0.9, "{used}");
}

#[test]
fn rayon_work_in_the_checks_pool_is_parallel() {
    let _alone = alone();
    let (_, used) = observe_threads(2, || {
        (0..200u64)
            .into_par_iter()
            .map(|i| spin(std::hint::black_box(WORK / 200 + i)))
            .reduce(|| 0, u64::wrapping_add)
    });
    assert!(used.parallel(), "{used}");
    assert!(used.working_threads() >= 2, "{used}");
}

#[test]
fn scoped_threads_that_end_are_counted() {
    let _alone = alone();
    let (_, used) = observe_threads(2, || {
        std::thread::scope(|s| {
            let a = s.spawn(|| spin(std::hint::black_box(WORK / 2)));
            let b = s.spawn(|| spin(std::hint::black_box(WORK / 2)));
            a.join().unwrap().wrapping_add(b.join().unwrap())
        })
    });
    assert!(used.parallel(), "{used}");
}

#[test]
fn many_short_threads_are_counted() {
    let _alone = alone();
    let (_, used) = observe_threads(2, || {
        (0..8)
            .map(|_| {
                std::thread::scope(|s| {
                    let a = s.spawn(|| spin(std::hint::black_box(WORK / 32)));
                    let b = s.spawn(|| spin(std::hint::black_box(WORK / 32)));
                    a.join().unwrap().wrapping_add(b.join().unwrap())
                })
            })
            .fold(0, u64::wrapping_add)
    });
    assert!(used.total >= Duration::from_millis(5), "{used}");
}

#[test]
fn one_spawned_thread_doing_everything_is_not_parallel() {
    let _alone = alone();
    let (_, used) = observe_threads(2, || {
        std::thread::spawn(|| spin(std::hint::black_box(WORK)))
            .join()
            .unwrap()
    });
    assert!(!used.parallel(), "{used}");
}

#[test]
fn busy_threads_outside_the_work_are_not_counted() {
    let _alone = alone();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::black_box(spin(1000));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        let (_, used) = observe_threads(2, || spin(std::hint::black_box(WORK)));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(!used.parallel(), "{used}");
    });
}

#[test]
fn too_little_work_tells_nothing() {
    let _alone = alone();
    let (_, used) = observe_threads(2, || 1 + 1);
    assert!(!used.parallel(), "{used}");
}

#[test]
fn a_panicking_answer_panics_the_check_and_does_not_hang_it() {
    let _alone = alone();
    let refused = std::panic::catch_unwind(|| check_parallel("a stub", || -> u64 { todo!() }));
    assert!(refused.is_err());
}

#[test]
fn check_parallel_refuses_sequential_work() {
    let _alone = alone();
    let refused = std::panic::catch_unwind(|| {
        check_parallel("sequential", || spin(std::hint::black_box(WORK)))
    });
    assert!(refused.is_err());
    let accepted = check_parallel("rayon", || {
        (0..200u64)
            .into_par_iter()
            .map(|i| spin(std::hint::black_box(WORK / 200 + i)))
            .reduce(|| 0, u64::wrapping_add)
    });
    assert_ne!(accepted, 0);
}

#[test]
fn memory_growth_is_the_calls_own() {
    let _alone = alone();
    let (sum, eager) = observe_memory(|| {
        let all: Vec<u64> = (0..8_000_000u64).collect(); // 64 MB at once
        all.iter().sum::<u64>()
    })
    .unwrap();
    let (streamed_sum, streamed) = observe_memory(|| (0..8_000_000u64).sum::<u64>()).unwrap();
    assert_eq!(sum, streamed_sum);
    assert!(eager.growth() >= 60 << 20, "{eager}");
    assert!(streamed.growth() < 8 << 20, "{streamed}");
}

#[test]
fn check_memory_below_refuses_an_eager_answer() {
    let _alone = alone();
    let eager = std::panic::catch_unwind(|| {
        check_memory_below("under 16 MB", 16 << 20, || {
            let all: Vec<u64> = (0..8_000_000u64).collect();
            all.iter().sum::<u64>()
        })
    });
    assert!(eager.is_err());
    let streamed = check_memory_below("under 16 MB", 16 << 20, || (0..8_000_000u64).sum::<u64>());
    assert_eq!(streamed, 8_000_000 * 7_999_999 / 2);
}

/// A child process that computes for about a tenth of a second (a shell's loop).
fn busy_child() -> Child {
    Command::new("sh")
        .args(["-c", "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"])
        .spawn()
        .expect("sh")
}

fn idle_child() -> Child {
    Command::new("sleep").arg("0.3").spawn().expect("sleep")
}

fn wait_all(children: Vec<Child>) {
    for mut child in children {
        child.wait().unwrap();
    }
}

#[test]
fn children_working_side_by_side_are_parallel_processes() {
    let _alone = alone();
    let (_, used) = observe_processes(|| wait_all(vec![busy_child(), busy_child(), busy_child()]));
    assert!(used.parallel(), "{used}");
    assert_eq!(used.children.len(), 3, "{used}");
    assert!(used.most_at_once >= 2, "{used}");
}

#[test]
fn children_one_after_another_are_not_parallel() {
    let _alone = alone();
    let (_, used) = observe_processes(|| {
        for _ in 0..3 {
            wait_all(vec![busy_child()]);
        }
    });
    assert_eq!(used.most_at_once, 1, "{used}");
    assert!(!used.parallel(), "{used}");
    assert!(used.shortfall().unwrap().contains("alive at once"));
}

#[test]
fn work_done_in_this_process_beside_idle_children_is_not_theirs() {
    let _alone = alone();
    let (_, used) = observe_processes(|| {
        let children = vec![idle_child(), idle_child()];
        std::hint::black_box(spin(WORK * 2));
        wait_all(children);
    });
    assert!(!used.parallel(), "{used}");
    assert!(used.children_share() < 0.5, "{used}");
}

#[test]
fn one_busy_child_beside_an_idle_one_is_not_parallel() {
    let _alone = alone();
    let (_, used) = observe_processes(|| wait_all(vec![busy_child(), idle_child()]));
    assert!(used.most_at_once >= 2, "{used}");
    assert!(!used.parallel(), "{used}");
    assert!(used.busiest_share() > 0.75, "{used}");
}

#[test]
fn check_processes_refuses_work_done_in_threads() {
    let _alone = alone();
    let threads = std::panic::catch_unwind(|| {
        check_processes("in processes", || {
            (0..64u64)
                .into_par_iter()
                .map(|i| spin(WORK / 64 + i))
                .reduce(|| 0, u64::wrapping_add)
        })
    });
    assert!(threads.is_err());
    check_processes("in processes", || {
        wait_all(vec![busy_child(), busy_child()])
    });
}
