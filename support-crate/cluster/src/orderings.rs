//! Notebook 22's orderings exercise: a value published through a flag, checked in every
//! execution that [`loom`] allows (every interleaving of the two threads, and every value the
//! memory model lets each load return).
//!
//! Why a function here and not `loom::model` in a cell: `loom::model` is generic, so a cell
//! would compile its body, which reaches loom's thread-local scheduler; a cell's library cannot
//! be loaded with thread-locals of another library in it (the kernel reports "dlopen failed").
//! Here the model is compiled once, in this crate, and the cell passes plain functions.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::atomic::{AtomicBool, AtomicU64};

/// Stores `value` in `data`, then raises `ready`.
pub type Publish = fn(&AtomicU64, &AtomicBool, u64);
/// The published value, or `None` while `ready` is down.
pub type TryRead = fn(&AtomicU64, &AtomicBool) -> Option<u64>;

/// What loom found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exploration {
    /// Executions run before the end, or before the first failure.
    pub executions: usize,
    /// The first failure: what the reader saw, or the panic of `publish` or `try_read`.
    pub failure: Option<String>,
}

/// Runs `publish(.., 42)` on one thread while another calls `try_read`, in every execution loom
/// allows: whenever the reader sees the flag it must see 42, and once the writer has ended the
/// value must be readable.
///
/// ```
/// use parcours_cluster::orderings::explore_publication;
/// use parcours_cluster::loom::sync::atomic::{AtomicBool, AtomicU64};
/// use std::sync::atomic::Ordering::*;
///
/// fn publish(data: &AtomicU64, ready: &AtomicBool, value: u64) {
///     data.store(value, Relaxed);
///     ready.store(true, Release);
/// }
/// fn acquire(data: &AtomicU64, ready: &AtomicBool) -> Option<u64> {
///     ready.load(Acquire).then(|| data.load(Relaxed))
/// }
/// fn relaxed(data: &AtomicU64, ready: &AtomicBool) -> Option<u64> {
///     ready.load(Relaxed).then(|| data.load(Relaxed))
/// }
/// assert_eq!(explore_publication(publish, acquire).failure, None);
/// assert!(explore_publication(publish, relaxed).failure.unwrap().contains("not 42"));
/// // An answer still to write is reported, not an abort of the process.
/// fn unwritten(_: &AtomicU64, _: &AtomicBool, _: u64) { todo!() }
/// fn unread(_: &AtomicU64, _: &AtomicBool) -> Option<u64> { todo!() }
/// assert!(explore_publication(unwritten, unread).failure.unwrap().contains("not yet implemented"));
/// ```
pub fn explore_publication(publish: Publish, try_read: TryRead) -> Exploration {
    let executions = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&executions);
    // A failing execution panics inside loom: the failure is reported as a value, once.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(move || {
        loom::model(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            let data = loom::sync::Arc::new(AtomicU64::new(0));
            let ready = loom::sync::Arc::new(AtomicBool::new(false));
            // A panic while another loom thread lives aborts the process: both sides catch
            // their own, and the first thread raises it once the writer has ended.
            let writer = {
                let (data, ready) = (data.clone(), ready.clone());
                loom::thread::spawn(move || {
                    catch_unwind(AssertUnwindSafe(|| publish(&data, &ready, 42))).map_err(message)
                })
            };
            let read = catch_unwind(AssertUnwindSafe(|| try_read(&data, &ready))).map_err(message);
            if let Err(panic) = writer.join().expect("the writer thread") {
                panic!("{panic}");
            }
            let read = read.unwrap_or_else(|panic| panic!("{panic}"));
            if let Some(seen) = read {
                assert_eq!(
                    seen, 42,
                    "the reader saw the flag raised, and the value {seen}, not 42"
                );
            }
            assert_eq!(
                try_read(&data, &ready),
                Some(42),
                "after the writer ended, the value must be readable"
            );
        });
    });
    std::panic::set_hook(hook);
    Exploration {
        executions: executions.load(Ordering::Relaxed),
        failure: outcome.err().map(message),
    }
}

/// A panic's message.
fn message(panic: Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}
