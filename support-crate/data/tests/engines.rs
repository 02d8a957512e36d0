//! The data crate's behaviour: generated datasets, plans, partitions, task graphs, chunked arrays.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use parcours_data::DataError;
use parcours_data::arrays::ChunkedArray;
use parcours_data::frames::{self, Dataset, GroupByData, Plan, questions, streaming};
use parcours_data::graph::{GraphError, Task, TaskGraph};
use parcours_data::polars::prelude::*;

fn names(frame: &DataFrame) -> Vec<String> {
    frame.get_column_names().iter().map(|n| n.to_string()).collect()
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parcours-data-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_dataset_is_the_same_for_the_same_seed_and_kept_when_asked_again() {
    let spec = GroupByData::new(20_000);
    let dir = folder("dataset");
    let data = Dataset::generate(&dir, spec, 4).unwrap();
    assert_eq!(data.files.len(), 4);
    let whole = data.read().unwrap();
    assert_eq!(whole.height(), 20_000);
    assert_eq!(names(&whole), ["id1", "id2", "id3", "id4", "id5", "id6", "v1", "v2", "v3"]);
    // Blocks made alone are the rows the files hold.
    let block = spec.frame(5_000, 5_000).unwrap();
    assert!(block.equals(&whole.slice(5_000, 5_000)));
    // db-benchmark's ranges.
    let v2 = whole.column("v2").unwrap().i32().unwrap();
    assert_eq!((v2.min(), v2.max()), (Some(1), Some(15)));
    assert_eq!(whole.column("id1").unwrap().n_unique().unwrap(), 100);
    // Asked again, the files are kept (not rewritten).
    let written = std::fs::metadata(&data.files[0]).unwrap().modified().unwrap();
    let again = Dataset::generate(&dir, spec, 4).unwrap();
    assert_eq!(std::fs::metadata(&again.files[0]).unwrap().modified().unwrap(), written);
    // Another seed gives other data, in place of the old.
    let other = Dataset::generate(&dir, GroupByData { seed: 7, ..spec }, 4).unwrap();
    assert!(!other.read().unwrap().equals(&whole));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_holding_other_files_is_refused_and_left_alone() {
    let dir = folder("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("thesis.tex"), "keep me").unwrap();
    let error = Dataset::generate(&dir, GroupByData::new(1_000), 2).unwrap_err();
    assert!(matches!(error, DataError::Dataset { .. }), "{error}");
    assert!(error.to_string().contains("other files"), "{error}");
    assert_eq!(std::fs::read_to_string(dir.join("thesis.tex")).unwrap(), "keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plans_push_filters_and_columns_into_the_scan_and_engines_agree() {
    let dir = folder("plans");
    let data = Dataset::generate(&dir, GroupByData::new(30_000), 3).unwrap();
    let query = data.scan().unwrap().filter(col("id4").eq(lit(7))).group_by([col("id1")]).agg([col("v1").sum()]);
    let plan = Plan::of(&query).unwrap();
    assert!(plan.scans_files());
    assert!(plan.optimized.contains("PROJECT 3/9 COLUMNS"), "{}", plan.optimized);
    assert!(plan.optimized.contains("SELECTION"), "{}", plan.optimized);
    assert!(plan.naive.contains("FILTER"), "{}", plan.naive);
    let svg = plan.diagram();
    assert!(svg.as_svg().contains("SCAN"), "{}", svg.as_svg());
    // A frame already in memory is no scan of files.
    assert!(!Plan::of(&data.read().unwrap().lazy().select([col("v1")])).unwrap().scans_files());
    // Every question gives the same groups on both engines.
    for question in questions() {
        let sorted = |frame: DataFrame| {
            let keys: Vec<String> = names(&frame).into_iter().filter(|n| n.starts_with("id")).collect();
            frame.sort(keys, Default::default()).unwrap()
        };
        let in_memory = sorted((question.query)(data.scan().unwrap()).collect().unwrap());
        let streamed = sorted(streaming((question.query)(data.scan().unwrap())).unwrap());
        assert_same(&in_memory, &streamed, question.name);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Same columns, same keys, same values (floats to 1e-9: the engines add in other orders).
fn assert_same(a: &DataFrame, b: &DataFrame, what: &str) {
    assert_eq!(names(a), names(b), "{what}");
    assert_eq!(a.height(), b.height(), "{what}");
    for (x, y) in a.columns().iter().zip(b.columns()) {
        if x.dtype() == &DataType::String {
            assert!(x.as_materialized_series().equals(y.as_materialized_series()), "{what}: column {}", x.name());
            continue;
        }
        let (x, y) = (x.cast(&DataType::Float64).unwrap(), y.cast(&DataType::Float64).unwrap());
        for (p, q) in x.f64().unwrap().iter().zip(y.f64().unwrap().iter()) {
            let (p, q) = (p.unwrap(), q.unwrap());
            assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{what}: {p} against {q} in column {}", x.name());
        }
    }
}

#[test]
fn a_partitioned_dataset_reads_back_whole_and_prunes_folders() {
    let dir = folder("partitioned");
    let data = Dataset::generate(dir.join("data"), GroupByData { rows: 20_000, groups: 10, seed: 3 }, 2).unwrap();
    let parts = dir.join("by-id4");
    let files = frames::write_partitioned(data.scan().unwrap(), &parts, "id4").unwrap();
    assert_eq!(files.len(), 10);
    assert!(files.iter().all(|f| f.parent().unwrap().file_name().unwrap().to_string_lossy().starts_with("id4=")));
    let back = frames::scan_partitioned(&parts).unwrap();
    let sums = |frame: LazyFrame| frame.select([col("v1").cast(DataType::Int64).sum()]).collect().unwrap();
    assert!(sums(back.clone()).equals(&sums(data.scan().unwrap())));
    let pruned = back.filter(col("id4").eq(lit(7)));
    let plan = Plan::of(&pruned).unwrap();
    assert!(plan.optimized.contains("id4=7") && !plan.optimized.contains("id4=8"), "{}", plan.optimized);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_task_graph_is_lazy_runs_each_needed_task_once_and_after_its_inputs() {
    let runs = std::sync::Arc::new(AtomicU32::new(0));
    let mut graph = TaskGraph::new();
    let counted = runs.clone();
    let parts: Vec<Task<u64>> = (0..6u64)
        .map(|k| {
            let counted = counted.clone();
            graph.source(format!("part {k}"), move || {
                counted.fetch_add(1, Ordering::SeqCst);
                k + 1
            })
        })
        .collect();
    let doubled: Vec<Task<u64>> = parts.iter().map(|&p| graph.map("double", p, |v: &u64| v * 2)).collect();
    let total = graph.reduce("total", &doubled, |v: &[&u64]| v.iter().copied().sum::<u64>());
    let _unused = graph.source("never needed", || panic!("a task the target does not need ran"));
    assert_eq!(runs.load(Ordering::SeqCst), 0, "building the graph ran tasks");
    let (value, run) = graph.compute(total).unwrap();
    assert_eq!(value, 2 * (1..=6).sum::<u64>());
    assert_eq!(runs.load(Ordering::SeqCst), 6);
    assert_eq!(run.tasks.len(), 13);
    for task in &run.tasks {
        for &input in graph.inputs(task.task) {
            let before = run.tasks.iter().find(|t| t.task == input).unwrap();
            assert!(before.ended <= task.started, "{} started before its input {} ended", task.name, before.name);
        }
    }
    assert!(run.gantt().as_svg().contains("thread"));
}

#[test]
fn a_failing_task_is_retried_then_fails_the_graph_with_its_error() {
    let mut graph = TaskGraph::new();
    let tries = AtomicU32::new(0);
    let flaky = graph.fallible("flaky", 3, move || if tries.fetch_add(1, Ordering::SeqCst) < 2 { Err("not yet".to_string()) } else { Ok(5u32) });
    let (value, run) = graph.compute(flaky).unwrap();
    assert_eq!((value, run.tasks[0].attempts), (5, 3));
    let mut graph = TaskGraph::new();
    let broken = graph.fallible("broken", 2, || Err::<u32, _>("the share is down".to_string()));
    let after = graph.map("after", broken, |v: &u32| *v);
    match graph.compute(after) {
        Err(GraphError::Failed { name, attempts, error, .. }) => assert_eq!((name.as_str(), attempts, error.as_str()), ("broken", 3, "the share is down")),
        other => panic!("expected a failure, got {:?}", other.map(|(v, _)| v)),
    }
}

#[test]
fn a_chunked_array_round_trips_and_logs_who_read_each_chunk() {
    let dir = folder("array.zarr");
    let value = |r: usize, c: usize| (r * 1000 + c) as f64;
    let array = std::sync::Arc::new(ChunkedArray::create(&dir, [250, 130], [100, 50], value).unwrap());
    assert_eq!(array.grid(), [3, 3]);
    let whole = array.read_all().unwrap();
    assert_eq!(whole.dim(), (250, 130));
    assert!(whole.indexed_iter().all(|((r, c), &v)| v == value(r, c)));
    // An edge chunk is cut to the array.
    assert_eq!(array.read_chunk([2, 2]).unwrap().dim(), (50, 30));
    let reopened = ChunkedArray::open(&dir).unwrap();
    assert_eq!((reopened.shape(), reopened.chunk_shape()), ([250, 130], [100, 50]));
    array.reset_reads();
    let mut graph = TaskGraph::new();
    let maxima: Vec<Task<f64>> = array
        .chunks()
        .into_iter()
        .map(|at| {
            let array = array.clone();
            graph.source(format!("{at:?}"), move || array.read_chunk(at).unwrap().fold(f64::MIN, |m, &v| m.max(v)))
        })
        .collect();
    let largest = graph.reduce("max", &maxima, |m: &[&f64]| m.iter().fold(f64::MIN, |a, &&b| a.max(b)));
    assert_eq!(graph.compute(largest).unwrap().0, value(249, 129));
    let log = array.read_log();
    assert_eq!(log.len(), 9);
    let readers: std::collections::BTreeSet<_> = log.iter().map(|read| read.task.expect("read by a task")).collect();
    assert_eq!(readers.len(), 9);
    assert!(ChunkedArray::open(dir.join("missing")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
