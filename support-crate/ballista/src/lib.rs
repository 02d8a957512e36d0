//! Module 4 of the course, Spark DataFrames on a cluster (notebook 45): the same DataFrame and
//! SQL on DataFusion in one process, then on a [Ballista](https://datafusion.apache.org/ballista/)
//! cluster of a scheduler and executors, each its own OS process on loopback, started and
//! stopped from the notebook ([`cluster::BallistaCluster`]).
//!
//! DataFusion's API is async; [`run`] drives a future on this crate's runtime (one per kernel:
//! the crate is a dylib), and [`run_for`] gives up after a time limit, so that a query never
//! hangs a notebook. `datafusion` and `ballista` are re-exported: a cell uses this crate's
//! copy, never one of its own.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

pub use ballista;
pub use datafusion;

pub mod cluster;
pub mod data;
pub mod servers;

/// This crate's errors.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A query or a client call of DataFusion's failed.
    #[error("DataFusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A wait ran past its limit.
    #[error("no answer after {0:?}: {1}")]
    TimedOut(Duration, String),
    /// The cluster's programs could not be built, started or reached.
    #[error("the Ballista cluster: {0}")]
    Cluster(String),
    /// A file of the course's data.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("parcours-ballista")
            .build()
            .expect("a tokio runtime starts")
    })
}

/// Runs `future` to its end on the crate's runtime: `run(async { ctx.sql("...").await?.collect().await })`.
pub fn run<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// [`run`], but gives up after `limit` with [`EngineError::TimedOut`] naming `what`.
///
/// # Errors
/// The future's own error, or [`EngineError::TimedOut`].
pub fn run_for<T, E, F>(limit: Duration, what: &str, future: F) -> Result<T, EngineError>
where
    F: Future<Output = Result<T, E>>,
    EngineError: From<E>,
{
    run(async {
        match tokio::time::timeout(limit, future).await {
            Ok(result) => result.map_err(EngineError::from),
            Err(_) => Err(EngineError::TimedOut(limit, what.to_owned())),
        }
    })
}

/// Runs an SQL query on `ctx` and collects its result, within 120 s. Not generic: a cell that
/// calls it compiles in seconds (a cell's own `async` block makes it compile DataFusion's
/// futures again).
///
/// # Errors
/// DataFusion's, or [`EngineError::TimedOut`].
pub fn sql(
    ctx: &datafusion::prelude::SessionContext,
    query: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>, EngineError> {
    run_for(Duration::from_secs(120), query, async { ctx.sql(query).await?.collect().await })
}

/// The first `limit` rows of a query's result, as the toolbox's table (HTML in a notebook).
pub fn table(batches: &[datafusion::arrow::record_batch::RecordBatch], limit: usize) -> parcours::display::Table {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let Some(first) = batches.first() else {
        return parcours::display::Table::new(["(no rows)"]);
    };
    let schema = first.schema();
    let mut table = parcours::display::Table::new(schema.fields().iter().map(|f| f.name().clone()));
    let options = FormatOptions::default();
    let mut shown = 0;
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options).expect("arrow formats its arrays"))
            .collect();
        for row in 0..batch.num_rows() {
            if shown == limit {
                return table;
            }
            table.push_row(formatters.iter().map(|f| f.value(row).to_string()));
            shown += 1;
        }
    }
    table
}

/// A query's result as text, row by row: to compare two results (the same query locally and
/// on the cluster).
pub fn rows(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> Vec<Vec<String>> {
    table(batches, usize::MAX).rows().to_vec()
}

/// The physical plan DataFusion makes of `frame`: its operators, one per line, indented by
/// depth (`RepartitionExec` is where rows change partition: a shuffle on a cluster).
///
/// # Errors
/// When planning fails.
pub fn physical_plan(frame: datafusion::prelude::DataFrame) -> Result<String, EngineError> {
    let plan = run(frame.create_physical_plan())?;
    Ok(datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string())
}

/// Checks that two results hold the same rows in the same order, and reports the first row
/// that differs. Text and integers must be equal; numbers with a fraction within 1e-9 of each
/// other (relative): a sum depends on the order it adds in, and a cluster's order is not one
/// process'.
///
/// # Panics
/// When they differ (an exercise's check).
#[track_caller]
pub fn check_rows(
    what: &str,
    got: &[datafusion::arrow::record_batch::RecordBatch],
    expected: &[datafusion::arrow::record_batch::RecordBatch],
) {
    let (got, expected) = (rows(got), rows(expected));
    let close = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    };
    // A value within the tolerance is shown as expected's, so only real differences remain.
    let got: Vec<Vec<String>> = got
        .iter()
        .enumerate()
        .map(|(i, row)| match expected.get(i) {
            Some(wanted) if row.len() == wanted.len() => row
                .iter()
                .zip(wanted)
                .map(|(a, b)| if a != b && close(a, b) { b.clone() } else { a.clone() })
                .collect(),
            _ => row.clone(),
        })
        .collect();
    parcours::exercise::check_slice(what, &got, &expected);
}
