//! Module 4 of the course, data engines: the ideas of Dask (blocked algorithms, chunked arrays,
//! dataframes larger than memory) on Rust's own engines.
//!
//! - [`graph`] — task graphs: a computation split into tasks, built first, run lazily on
//!   rayon's threads, drawn and recorded (notebook 43).
//! - [`arrays`] — chunked arrays on disk (zarr), read and written chunk by chunk (notebook 43).
//! - [`frames`] — polars' lazy and streaming engines on the db-benchmark group-by data:
//!   generated parquet datasets, query plans drawn, memory observed (notebook 44).
//!
//! The crate re-exports [`polars`] and [`ndarray`] so that a notebook's cells use the one copy this dylib holds
//! (docs/architecture.md).

pub mod arrays;
pub mod frames;
pub mod graph;

pub use ndarray;
pub use polars;

/// A folder of the user's own for a lesson's data: `$PARCOURS_HOME/data/<name>` (by default
/// under `~/.cache/parcours`), never a folder shared with other users.
pub fn scratch(name: &str) -> std::path::PathBuf {
    parcours::notebook::parcours_home().join("data").join(name)
}

/// What went wrong with a dataset or a query, said so that a student knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the course was doing.
        what: &'static str,
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// polars refused a query or a file.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// A dataset's description does not match what is on disk.
    #[error("dataset {path}: {problem}")]
    Dataset {
        /// The dataset's folder.
        path: std::path::PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
}
