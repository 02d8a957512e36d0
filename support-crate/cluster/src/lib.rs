//! # parcours-cluster — Module 2 of the course: threads, processes and a first cluster
//!
//! Loaded by the first cell of each Module 2 notebook (`:dep parcours-cluster = ...`); the
//! toolbox ([`parcours`]) is preloaded in every notebook.
//!
//! - [`processes`] — a pool of worker processes fed through pipes with serde messages.
//! - [`orderings`] — a value published through a flag, checked by [`loom`] in every execution
//!   the memory model allows (notebook 22).
//! - [`cluster`] — a manager process of shared queues, result maps and counters, reached through
//!   typed proxies over tarpc with a shared key; worker processes started and stopped from a cell.
//!
//! Re-exported, so that cells share one copy (one runtime per kernel, not per cell):
//! [`tokio`], asynchronous tasks and I/O, the runtime behind the cluster's proxies; and
//! [`loom`], which runs a small concurrent program in every interleaving and every reordering
//! the memory model allows (notebook 22's orderings exercise).
#![warn(missing_docs)]

pub mod cluster;
pub mod orderings;
pub mod processes;

pub use loom;
pub use tokio;
