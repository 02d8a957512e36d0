//! # parcours-queue — Module 4 of the course: task queues (the Celery lesson)
//!
//! Loaded by the first cell of each task-queue notebook (`:dep parcours-queue = ...`); the
//! toolbox ([`parcours`]) is preloaded in every notebook.
//!
//! - [`broker`] — the broker the course starts itself: a real `redis-server` (from Debian) on
//!   loopback with a generated password, or an SQLite file; [`broker::Queue`] pushes tasks and
//!   reads the broker's own records back (which worker ran each task, how many attempts, the
//!   result).
//! - [`tasks`] — the task kinds the course's worker program knows ([`tasks::CourseTask`]), and
//!   the handler that runs them: parse, run under a time limit, retry with back-off, give up.
//! - [`worker`] — one apalis worker, as the course's `parcours-queue-worker` program runs it;
//!   [`worker::KernelWorker`], a worker in the kernel that runs a handler of your own.
//! - [`canvas`] — Celery's canvas: chains, groups and chords of steps ([`canvas::Flow`]), run
//!   by worker processes with apalis-workflow, each step a task in the broker.
//! - [`ledger`] — balances kept in the broker, to see at-least-once delivery twice apply a
//!   deposit, and an idempotency key prevent it.
//! - [`pool`] — a pool of worker *processes* started from a cell, each under a unique name.
//! - [`beat`] — Celery beat: a schedule (cron) that pushes a task at each tick.
//!
//! The workers are [apalis](https://docs.rs/apalis) 1.0 workers; what apalis 1.0 does and does
//! not do on each broker (and what the course does about it) is in `docs/queue.md`.
//!
//! Re-exported, so that cells share one copy: [`apalis`], [`apalis_redis`], [`apalis_sqlite`].
#![warn(missing_docs)]

pub mod beat;
pub mod broker;
pub mod canvas;
mod error;
pub mod ledger;
mod local_redis;
pub mod pool;
mod runtime;
pub mod tasks;
pub mod worker;

pub use apalis;
pub use apalis_redis;
pub use apalis_sqlite;
pub use error::QueueError;
pub use local_redis::{Fsync, LocalRedis};
