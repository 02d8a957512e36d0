//! The arrays crate's behaviour: task graphs (lazy, ordered, retried) and chunked arrays on disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use parcours_arrays::arrays::ChunkedArray;
use parcours_arrays::graph::{GraphError, Task, TaskGraph};

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parcours-arrays-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
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
