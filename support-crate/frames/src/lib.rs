//! Module 4 of the course, dataframes larger than memory (the Dask dataframe lesson, notebook 44):
//!
//! - [`frames`] — polars' lazy and streaming engines on the db-benchmark group-by data:
//!   generated parquet datasets, query plans drawn, memory observed.
//!
//! The crate re-exports [`polars`] so that a notebook's cells use the one copy this dylib
//! holds (docs/architecture.md).

pub mod frames;

pub use polars;

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
