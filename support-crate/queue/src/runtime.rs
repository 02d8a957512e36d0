//! The tokio runtime behind the blocking API: one per process (one per kernel: this crate is a
//! dylib there).

use std::future::Future;
use std::sync::OnceLock;

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("parcours-queue")
            .enable_all()
            .build()
            .expect("the task queues' runtime starts")
    })
}

/// Runs `future` on the runtime and waits for it. From inside a runtime (a student's `async`
/// block) it waits on a thread of its own: tokio refuses to block a thread that runs async code.
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime().block_on(future);
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .spawn_scoped(scope, || runtime().block_on(future))
            .expect("a thread to wait on")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
