//! # parcours-limits — Module 1 of the course: hardware and the limits of parallelism
//!
//! Loaded by the first cell of each Module 1 notebook (`:dep parcours-limits = ...`); the
//! toolbox ([`parcours`]) is preloaded in every notebook.
//!
//! - [`history`] — growth rates fitted to records (the TOP500 over thirty years).
//! - [`hardware`] — what the machine is made of: processor, caches, SIMD, NUMA, memory, disks.
//! - [`measure`] — micro-benchmarks: STREAM bandwidth, memory latency, FLOP/s, disks, roofline.
//! - [`laws`] — Amdahl, Gustafson, Karp–Flatt, and speed-ups measured on pools of 1..N threads.
//! - [`farm`] — the worker that the Ansible lesson deploys to a server farm, its client, and the
//!   folder of its own that each run of the lesson deploys into.
//!
//! Re-exported, so that cells share one copy: [`core_affinity`], pinning threads to cores.
#![warn(missing_docs)]

pub mod farm;
pub mod hardware;
pub mod history;
pub mod laws;
pub mod measure;

pub use core_affinity;
