//! # parcours — the support crate of the course on parallel computing in Rust
//!
//! Every notebook of the course runs on a Jupyter kernel that preloads this crate and its
//! [`prelude`], so a notebook's first cell can already time, plot, tabulate and check:
//!
//! ```
//! use parcours::prelude::*;
//!
//! let sum: u64 = (1..=1_000u64).into_par_iter().sum();
//! check("sum of 1..=1000", &sum, &500_500);
//! ```
//!
//! ## Why a support crate, and why a `dylib`
//! The kernel (evcxr) compiles each cell into its own shared library and links every
//! dependency *statically into each of them*: every `static` of every crate, rayon's global
//! thread pool included, would exist once per cell. This crate is built as
//! `crate-type = ["rlib", "dylib"]`, which makes evcxr link it dynamically: it, and every
//! library it re-exports, exists once per kernel. So notebooks use rayon, crossbeam, serde
//! and plotters **through this crate** (`parcours::rayon`, ... or the prelude), never with a
//! `:dep` of their own. `docs/kernel.md` in the repository has the measurements.
//!
//! ## Index
//! The notebook toolbox, used by every module:
//! - [`bench`] — timing with warm-up and repeated runs; results display as tables.
//! - [`chart`] — inline SVG charts: lines, points, bars, log scales, several series.
//! - [`display`] — tables and HTML through the kernel's display protocol; human-readable units.
//! - [`progress`] — progress lines for long work (the kernel streams stdout line by line).
//! - [`exercise`] — checks that compare a student's answer with the reference and say what differed.
//! - [`notebook`] — what the course kernel runs at start-up (a clear message for panics).
//!
//! Module 1 — the state of the art and the limits of parallelism:
//! - [`history`] — growth rates fitted to records (the TOP500 over thirty years).
//! - [`hardware`] — what the machine is made of: processor, caches, SIMD, NUMA, memory, disks.
//! - [`measure`] — micro-benchmarks: STREAM bandwidth, memory latency, FLOP/s, disks, roofline.
//! - [`farm`] — the worker that the Ansible lesson deploys to a server farm, its client, and the
//!   folder of its own that each run of the lesson deploys into.
//! - [`laws`] — Amdahl, Gustafson, Karp–Flatt, and speed-ups measured on pools of 1..N threads.
//!
//! Module 2 — threads, processes, synchronisation, a first cluster:
//! - [`processes`] — a pool of worker processes fed through pipes with serde messages.
//! - [`cluster`] — a manager process of shared queues, result maps and counters, reached through
//!   typed proxies over tarpc with a shared key; worker processes started and stopped from a cell.
//!
//! Module 3 — GPU computing:
//! - [`gpu`] — wgpu on the best adapter (lavapipe without a GPU): WGSL kernels for maps,
//!   reductions, matrix products, images and password hashes, timed, with CPU references.
//! - [`images`] — grey images: a generated scene, PNG in and out, shown inline.
//! - [`passwords`] — testing the strength of a password: keyspaces, times to crack, MD5 and
//!   SHA-256 cracked with SIMD on every core, and the slow hashes (bcrypt, Argon2) that resist.
//!
//! Libraries re-exported, so that cells share one copy of each. The course kernel also gives
//! cells each of them under its own name (`rayon::join`, `#[tokio::main]`,
//! `#[derive(serde::Serialize)]`), still from this crate's copy: every `pub use` of a whole
//! crate below becomes one, so keep them in that form (`docs/kernel.md`).
//! - [`rayon`] — data parallelism (parallel iterators, `join`, thread pools).
//! - [`core_affinity`] — pinning threads to cores.
//! - [`crossbeam`] — channels, scoped threads, lock-free structures.
//! - [`tokio`] — asynchronous tasks and I/O (the runtime behind the cluster's proxies).
//! - [`serde`], [`serde_json`] — serialisation.
//! - [`plotters`] — the drawing library behind [`chart`], for plots the toolbox does not cover.
#![warn(missing_docs)]

pub mod bench;
pub mod chart;
pub mod cluster;
pub mod display;
pub mod exercise;
pub mod farm;
pub mod gpu;
pub mod hardware;
pub mod history;
pub mod images;
pub mod laws;
pub mod measure;
pub mod notebook;
pub mod passwords;
pub mod prelude;
pub mod processes;
pub mod progress;

pub use core_affinity;
pub use crossbeam;
pub use plotters;
pub use rayon;
pub use serde;
pub use serde_json;
pub use tokio;

/// The version of this crate, shown by [`welcome`].
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Prints one line saying the course kernel is ready: the crate's version and the number of
/// threads rayon will use. Each notebook calls it in its first cell.
///
/// ```
/// parcours::welcome();
/// ```
pub fn welcome() {
    println!(
        "parcours {VERSION} ready: rayon uses {} threads on this machine.",
        rayon::current_num_threads()
    );
}
