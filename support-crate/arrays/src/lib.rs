//! Module 4 of the course, chunked arrays and task graphs (the Dask array lesson, notebook 43):
//!
//! - [`graph`] — task graphs: a computation split into tasks, built first, run lazily on
//!   rayon's threads, drawn and recorded.
//! - [`arrays`] — chunked arrays on disk (zarr), read and written chunk by chunk, each read
//!   logged with the graph task that made it.
//!
//! The crate re-exports [`ndarray`] so that a notebook's cells use the one copy this dylib
//! holds (docs/architecture.md).

pub mod arrays;
pub mod graph;

pub use ndarray;
