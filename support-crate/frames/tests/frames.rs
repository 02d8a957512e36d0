//! The frames crate's behaviour: generated datasets, plans, engines, partitions.

use std::path::PathBuf;

use parcours_frames::DataError;
use parcours_frames::frames::{self, Dataset, GroupByData, Plan, questions, streaming};
use parcours_frames::polars::prelude::*;

fn names(frame: &DataFrame) -> Vec<String> {
    frame.get_column_names().iter().map(|n| n.to_string()).collect()
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parcours-frames-test-{}-{name}", std::process::id()));
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
