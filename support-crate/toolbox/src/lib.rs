//! # parcours — the course's toolbox, preloaded in every notebook
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
//! Each course module's own code is a crate of its own, loaded by the module's notebooks in
//! their first cell, so that a cell compiles against what its lesson uses and no more
//! (`docs/architecture.md` has the measurements):
//! - `parcours-limits` — Module 1: records and growth laws, the machine, micro-benchmarks,
//!   Amdahl and Gustafson, the server farm's worker.
//! - `parcours-cluster` — Module 2: a pool of worker processes, a first cluster over tarpc.
//! - `parcours-gpu` — Module 3: wgpu kernels, images, password strength.
//!
//! ## Why a `dylib`
//! The kernel (evcxr) compiles each cell into its own shared library and links every
//! dependency *statically into each of them*: every `static` of every crate, rayon's global
//! thread pool included, would exist once per cell. This crate, like each module's crate, is
//! built as `crate-type = ["rlib", "dylib"]`, which makes evcxr link it dynamically: it, and
//! every library it re-exports, exists once per kernel. `docs/kernel.md` has the measurements.
//!
//! ## Index
//! - [`bench`] — timing with warm-up and repeated runs; results display as tables.
//! - [`chart`] — inline SVG charts: lines, points, bars, log scales, several series.
//! - [`display`] — tables and HTML through the kernel's display protocol; human-readable units.
//! - [`progress`] — progress lines for long work (the kernel streams stdout line by line).
//! - [`exercise`] — checks that compare a student's answer with the reference and say what differed,
//!   and that watch how it ran: CPU time per thread, peak memory.
//! - [`diagram`] — pictures of task graphs and of how they ran (Gantt charts), as SVG.
//! - [`launch`] — the course's programs started from a notebook, built when missing, never
//!   outliving the kernel.
//! - [`notebook`] — what the course kernel runs at start-up (a clear message for panics).
//!
//! Libraries re-exported, so that cells share one copy of each. The course kernel also gives
//! cells each of them under its own name (`rayon::join`, `#[derive(serde::Serialize)]`), still
//! from this crate's copy: every `pub use` of a whole crate below becomes one, so keep them in
//! that form (`docs/kernel.md`).
//! - [`rayon`] — data parallelism (parallel iterators, `join`, thread pools).
//! - [`crossbeam`] — channels, scoped threads, lock-free structures.
//! - [`serde`], [`serde_json`] — serialisation.
//! - [`plotters`] — the drawing library behind [`chart`], for plots the toolbox does not cover.
#![warn(missing_docs)]

pub mod bench;
pub mod chart;
pub mod diagram;
pub mod display;
pub mod exercise;
pub mod launch;
pub mod notebook;
pub mod prelude;
pub mod progress;

pub use crossbeam;
pub use plotters;
pub use rayon;
pub use serde;
pub use serde_json;

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
