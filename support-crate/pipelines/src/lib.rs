//! Module 5 of the course, data pipelines (notebooks 51 and 52):
//!
//! - [`events`] — the workflow's input: a set of large JSON-lines files of synthetic events,
//!   one folder per day, generated reproducibly (sized by `PARCOURS_SMALL`).
//! - [`steps`] — the pipeline's steps: summarise one file, aggregate the summaries, report;
//!   and partition one file by a key (many outputs, made complete by a manifest written last).
//!   Each writes its output under a temporary name and renames it (a killed step leaves no
//!   half-written file) and skips work whose output is complete (a re-run is cheap). The
//!   binary `parcours-pipeline` runs them for Luigi and Airflow.
//! - [`luigi`] — the same pipeline as Luigi tasks, run by Luigi's local scheduler: targets
//!   decide what runs.
//! - [`airflow`] — a real Apache Airflow started by the course (loopback, a generated
//!   password), its DAG runs triggered and followed through the REST API, drawn as Gantt charts.

pub mod airflow;
pub mod events;
pub mod luigi;
pub mod steps;

use std::path::PathBuf;

/// What went wrong in a pipeline, said so that a student knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A file or folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the course was doing.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// An input file holds a line that is not an event: its file and line number.
    #[error("{path}:{line}: {problem}")]
    BadInput {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A fault planted by a lesson or a test ([`steps::plant_fault`]), as a flaky disk would.
    #[error("{path}: a planted fault ({left} more to come)")]
    Planted {
        /// The input file whose step failed.
        path: PathBuf,
        /// How many more tries will fail.
        left: u32,
    },
    /// The same input appears twice among the summaries to aggregate.
    #[error("{0} is summarised twice: the aggregate would count it twice")]
    Duplicate(String),
    /// A course program or tool is missing, or failed.
    #[error("{0}")]
    Program(String),
    /// Airflow refused a request, or could not be reached.
    #[error("airflow: {0}")]
    Airflow(String),
}

impl PipelineError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| PipelineError::Io { what, path, source }
    }
}

/// The program that runs the steps for the schedulers.
pub const PROGRAM: &str = "parcours-pipeline";
/// A folder holding [`PROGRAM`], to skip the search (see [`program`]).
pub const BIN_DIR_ENV: &str = "PARCOURS_PIPELINES_BIN";

/// Finds `parcours-pipeline`: in [`BIN_DIR_ENV`]; beside the running program (this crate's
/// tests); else built with cargo into `$PARCOURS_HOME/target`, where `./course setup` built it.
///
/// # Errors
/// When it is nowhere and cannot be built.
pub fn program() -> Result<PathBuf, PipelineError> {
    let found = |dir: &std::path::Path| Some(dir.join(PROGRAM)).filter(|path| path.is_file());
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return found(std::path::Path::new(&dir))
            .ok_or_else(|| PipelineError::Program(format!("{BIN_DIR_ENV}: no {PROGRAM} in {dir:?}")));
    }
    if let Some(path) = std::env::current_exe().ok().and_then(|exe| exe.ancestors().skip(1).take(2).find_map(found)) {
        return Ok(path);
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let dir = parcours::launch::build_binaries(&manifest, PROGRAM).map_err(PipelineError::Program)?;
    found(&dir).ok_or_else(|| PipelineError::Program(format!("cargo built no {PROGRAM} in {}", dir.display())))
}
