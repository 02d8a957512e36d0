//! Module 2, a first cluster: a manager process holds named shared objects — task queues,
//! result maps, counters — and clients in other processes use them through typed proxies.
//! The counterpart of Python's `multiprocessing.managers`.
//!
//! - The manager ([`Manager`], or the `parcours-manager` binary) serves the objects over
//!   [tarpc](https://docs.rs/tarpc): bincode frames on TCP, at most
//!   [`MAX_FRAME_BYTES`] each. It listens on loopback unless told otherwise.
//! - A [`Client`] first proves it knows the shared key by a challenge/response, like Python's
//!   `authkey` (see [`auth`]); a wrong key is refused with a message that says so.
//! - **Authenticated, not encrypted.** The handshake proves that both ends know the key; the
//!   frames after it travel in clear, so anyone on the path can read them, and alter them.
//!   Hence loopback by default: [`ManagerConfig::allow_remote`] (`--allow-remote`) is for a
//!   network you trust, or for a manager reached through an SSH tunnel or WireGuard.
//! - Proxies are typed and blocking: [`QueueProxy<T>`], [`MapProxy<K, V>`], [`CounterProxy`],
//!   and [`ObjectProxy<T>`] for a type of your own that the manager was built with
//!   ([`Shared`], [`ManagerConfig::register`]); values travel as JSON. They may be called from async code too (each call then waits on a
//!   thread of its own); a refusal is a typed [`Refusal`].
//! - A task taken from a queue is *leased*: it goes back to the queue if its worker does not
//!   acknowledge it in time or its connection closes, and result maps ignore duplicates, so a
//!   worker that dies loses no task and counts none twice.
//! - [`LocalCluster`] starts the manager and `parcours-cluster-worker` processes from a
//!   notebook, stops them in order, and leaves no orphan (see [`launch`]). It finds the binaries
//!   with [`ClusterBinaries::locate`], which builds them with cargo the first time in a notebook.
//!
//! ```
//! use std::time::Duration;
//! use parcours_cluster::cluster::{Manager, ManagerConfig, SharedKey, Taken};
//!
//! let key = SharedKey::random();
//! let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
//! let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
//! let tasks = client.queue::<u64>("numbers");
//! let squares = client.results::<u64, u64>("squares");
//! tasks.put_all(&[1, 2, 3]).unwrap();
//! tasks.close().unwrap();
//! while let Taken::Task(task) = tasks.get(Duration::from_secs(1)).unwrap() {
//!     squares.insert(&task.value, &(task.value * task.value)).unwrap();
//!     tasks.ack(task.id).unwrap();
//! }
//! assert_eq!(squares.entries().unwrap(), vec![(1, 1), (2, 4), (3, 9)]);
//!
//! let wrong = SharedKey::new("not the key at all").unwrap();
//! let refused = Manager::connect(&manager.address().to_string(), &wrong).unwrap_err();
//! assert!(refused.to_string().contains("rejected the key"), "{refused}");
//! ```

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub mod auth;
mod client;
pub mod launch;
mod manager;
mod protocol;
mod registry;
mod worker;

pub use auth::{KEY_ENV, MIN_KEY_BYTES, SharedKey, authenticate};
pub use client::{Client, CounterProxy, DEFAULT_LEASE, MapProxy, ObjectProxy, QueueProxy};
pub use launch::{ClusterBinaries, LocalCluster, StopReport, build_binaries, parcours_home, spawn_tied};
pub use manager::{MAX_LEASE, MAX_WAIT, Manager, ManagerConfig};
pub use protocol::{MAX_FRAME_BYTES, Refusal};
pub use registry::Shared;
pub use worker::{PrimeCount, PrimeRange, WorkerOptions, WorkerReport, run_worker};

/// What went wrong, with a message that says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// A setting is refused: a short key, a non-loopback address without consent, ...
    #[error("{0}")]
    Config(String),
    /// No manager answers at the address.
    #[error("{0}")]
    Unreachable(String),
    /// The manager refused the key.
    #[error("{0}")]
    Rejected(String),
    /// The other end does not speak this protocol (or this version of it).
    #[error("{0}")]
    Protocol(String),
    /// The connection broke, or the manager did not answer in time.
    #[error("{0}")]
    Disconnected(String),
    /// The manager refused an operation: a put on a closed queue, an unknown task, ...
    #[error("the manager at {address} refused: {refusal}")]
    Refused {
        /// The manager's address.
        address: String,
        /// Why.
        refusal: Refusal,
    },
    /// A value could not be serialised, or was not of the proxy's type.
    #[error("{0}")]
    Encoding(String),
    /// A child process could not be built, started or stopped.
    #[error("{0}")]
    Process(String),
}

/// A task taken from a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task<T> {
    /// Its id in the queue, given by [`QueueProxy::put`]: the key to acknowledge it, and a good
    /// key for its result.
    pub id: u64,
    /// The task itself.
    pub value: T,
    /// 1 the first time it is taken, 2 when a lease expired or a worker died before, ...
    pub attempt: u32,
}

/// The answer of [`QueueProxy::get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken<T> {
    /// A task, leased to the caller until it acknowledges it.
    Task(Task<T>),
    /// Nothing came within the wait; tasks may still come (or come back from a dead worker).
    Empty,
    /// The queue is closed and every task acknowledged: no task will ever come.
    Closed,
}

impl<T> Taken<T> {
    /// The task, if one was taken.
    pub fn into_task(self) -> Option<Task<T>> {
        match self {
            Taken::Task(task) => Some(task),
            Taken::Empty | Taken::Closed => None,
        }
    }
}

/// A queue's counts, from [`QueueProxy::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Tasks waiting for a worker.
    pub pending: u64,
    /// Tasks taken and not yet acknowledged.
    pub leased: u64,
    /// Tasks acknowledged.
    pub acked: u64,
    /// Leases that came back to the queue: expired, or their worker's connection closed.
    pub returned: u64,
    /// Whether the queue is closed.
    pub closed: bool,
}

impl QueueStats {
    /// Whether every task put so far is acknowledged.
    pub fn is_done(&self) -> bool {
        self.pending == 0 && self.leased == 0
    }
}

/// The tokio runtime behind every manager and client of this process: one per process (and,
/// in a notebook, one per kernel, since this crate is a `dylib`), with two threads — the work
/// is waiting on sockets, not computing.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("parcours-cluster")
            .enable_io()
            .enable_time()
            .build()
            .expect("the cluster's runtime starts")
    })
}

/// Runs `future` on the cluster's runtime and waits for it: what makes the proxies blocking.
///
/// Tokio panics ("Cannot start a runtime from within a runtime") when a thread that is already
/// running async code blocks on a runtime, and a student who has just met tokio may well call
/// a proxy from an `async` block or a task. So inside a runtime the call waits on a thread of
/// its own. The caller's thread is still blocked meanwhile, as by any blocking call: in async
/// code, prefer `tokio::task::spawn_blocking` around proxy calls.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime().block_on(future);
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("parcours-cluster-call".into())
            .spawn_scoped(scope, || runtime().block_on(future))
            .expect("a thread starts for a cluster call")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
