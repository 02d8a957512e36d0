//! The tokio runtime behind the brokers' clients and the workers of this process: one per
//! process (one per kernel in a notebook, this crate being a `dylib`), with two threads, for the
//! work is waiting on sockets.
//!
//! Module 2's crate has one of its own, made the same way. This crate does not use that one:
//! a kernel that loads this crate would then build Module 2's crate as well, as another build
//! than the one notebooks 21-26 load, and compile one or the other again in the first cell of
//! each notebook that follows one of the other module (docs/architecture.md, "Features").

use std::sync::OnceLock;

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("parcours-queue")
            .enable_io()
            .enable_time()
            .build()
            .expect("the task queues' runtime starts")
    })
}

/// Runs `future` on the runtime and waits for it. Inside a runtime already (a cell's `async`
/// block), on a thread of its own: tokio refuses to start a runtime from within one.
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
            .name("parcours-queue-call".into())
            .spawn_scoped(scope, || runtime().block_on(future))
            .expect("a thread starts for a broker call")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
