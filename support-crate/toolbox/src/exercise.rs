//! Exercise checks: compare a student's answer with the reference and say what differed.
//!
//! Each check prints one line, `✔ what` or `✘ what` followed by what was expected and what
//! came, and a failed check then panics, so the cell stops there. (The kernel reports a
//! panicking cell as a success; the course's notebook runner reads the panic itself, see
//! `tests/notebooks.py`.) The panic's location is the notebook cell that called the check.
//!
//! ```
//! use parcours::prelude::*;
//!
//! check("the answer", &(6 * 7), &42);
//! check_close("π, roughly", 355.0 / 113.0, std::f64::consts::PI, 1e-6);
//! check_slice("sorted", &[1, 2, 3], &[1, 2, 3]);
//! check_that("two threads at least", 2 >= 2, "ask rayon for two threads");
//! ```
//!
//! Some checks observe *how* an answer ran, not only what it returned: [`check_parallel`]
//! (CPU time per thread, see [`threads`]), [`check_processes`] (the child processes that did the
//! work, see [`processes`]) and [`check_memory_below`] (the call's peak memory, see [`memory`]). Module 3's crate counts GPU dispatches (`parcours_gpu::gpu::dispatches`).
//!
//! A failing check panics:
//!
//! ```should_panic
//! use parcours::prelude::*;
//! check("the answer", &41, &42);
//! ```

use std::fmt::Debug;

pub mod memory;
pub mod processes;
pub mod threads;

pub use memory::{MemoryUse, check_memory_below, observe_memory};
pub use processes::{ProcessUse, check_processes, observe_processes};
pub use threads::{ThreadUse, check_parallel, observe_threads};

const PASS: &str = "\x1b[32m✔\x1b[0m";
const FAIL: &str = "\x1b[31m✘\x1b[0m";

/// The longest rendering of a value in a failure message.
const SHOWN: usize = 300;

/// Checks that `got` equals `expected`.
///
/// # Panics
/// When they differ, after printing both.
#[track_caller]
pub fn check<T: PartialEq + Debug + ?Sized>(what: &str, got: &T, expected: &T) {
    if got == expected {
        pass(what);
    } else {
        fail(
            what,
            &format!("expected {}\n   got      {}", shown(expected), shown(got)),
        );
    }
}

/// Checks that `got` is within a relative tolerance `rel_tol` of `expected`
/// (an absolute one when `expected` is zero).
///
/// # Panics
/// When it is not, or when `got` is not a number.
///
/// ```should_panic
/// parcours::exercise::check_close("ratio", 1.2, 1.0, 0.1);
/// ```
#[track_caller]
pub fn check_close(what: &str, got: f64, expected: f64, rel_tol: f64) {
    if close(got, expected, rel_tol) {
        pass(what);
    } else {
        fail(
            what,
            &format!(
                "expected {expected} (± {:.1}%)\n   got      {got}",
                rel_tol * 100.0
            ),
        );
    }
}

/// Checks two slices element by element, and reports the length or the first difference.
///
/// # Panics
/// When they differ.
///
/// ```should_panic
/// parcours::exercise::check_slice("primes", &[2, 3, 5, 9], &[2, 3, 5, 7]);
/// ```
#[track_caller]
pub fn check_slice<T: PartialEq + Debug>(what: &str, got: &[T], expected: &[T]) {
    if got.len() != expected.len() {
        fail(
            what,
            &format!(
                "expected {} elements\n   got      {} elements",
                expected.len(),
                got.len()
            ),
        );
    } else if let Some(i) = (0..got.len()).find(|&i| got[i] != expected[i]) {
        let wrong = (0..got.len()).filter(|&i| got[i] != expected[i]).count();
        fail(
            what,
            &format!(
                "{wrong} of {} elements differ; the first at index {i}:\n   expected {}\n   got      {}",
                got.len(),
                shown(&expected[i]),
                shown(&got[i])
            ),
        );
    } else {
        pass(what);
    }
}

/// Checks a condition; `hint` tells the student what to look at when it fails.
///
/// # Panics
/// When `ok` is false.
#[track_caller]
pub fn check_that(what: &str, ok: bool, hint: &str) {
    if ok {
        pass(what);
    } else {
        fail(what, &format!("hint: {hint}"));
    }
}

fn close(got: f64, expected: f64, rel_tol: f64) -> bool {
    // An infinite or NaN value matches only itself: a tolerance scaled by infinity would
    // accept anything.
    if !got.is_finite() || !expected.is_finite() {
        return got == expected || (got.is_nan() && expected.is_nan());
    }
    let scale = if expected == 0.0 { 1.0 } else { expected.abs() };
    (got - expected).abs() <= rel_tol * scale
}

fn shown<T: Debug + ?Sized>(value: &T) -> String {
    let text = format!("{value:?}");
    if text.chars().count() <= SHOWN {
        text
    } else {
        let head: String = text.chars().take(SHOWN).collect();
        format!("{head}… ({} characters in all)", text.chars().count())
    }
}

fn pass(what: &str) {
    println!("{PASS} {what}");
}

#[track_caller]
fn fail(what: &str, details: &str) -> ! {
    println!("{FAIL} {what}\n   {details}");
    panic!("check failed: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let error = std::panic::catch_unwind(f).unwrap_err();
        error.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn failures_name_the_check() {
        assert_eq!(failure(|| check("n", &1, &2)), "check failed: n");
        assert_eq!(failure(|| check_that("c", false, "h")), "check failed: c");
    }

    #[test]
    fn tolerance_is_relative_except_at_zero() {
        assert!(close(101.0, 100.0, 0.02));
        assert!(!close(103.0, 100.0, 0.02));
        assert!(close(0.001, 0.0, 0.01));
        assert!(!close(f64::NAN, 1.0, 0.5));
        assert!(!close(f64::INFINITY, 1.0, 0.5));
        assert!(
            !close(1e300, f64::INFINITY, 0.5),
            "a finite value is not infinity"
        );
        assert!(!close(-f64::INFINITY, f64::INFINITY, 0.5));
        assert!(close(f64::INFINITY, f64::INFINITY, 0.0));
        assert!(close(f64::NAN, f64::NAN, 0.0));
        assert!(!close(1.0, f64::NAN, 0.5));
    }

    #[test]
    fn long_values_are_shortened() {
        let long = vec![0u8; 1000];
        let text = shown(&long);
        assert!(text.ends_with("characters in all)"), "{text}");
        assert!(text.chars().count() < SHOWN + 40);
    }

    #[test]
    fn slices_report_lengths_and_first_difference() {
        let lengths = failure(|| check_slice("a", &[1, 2], &[1, 2, 3]));
        assert_eq!(lengths, "check failed: a");
        let same: [i32; 0] = [];
        check_slice("empty", &same, &same);
    }
}
