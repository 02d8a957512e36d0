//! Dataframes larger than memory: polars' lazy and streaming engines on the db-benchmark
//! group-by data (notebook 44).
//!
//! - [`GroupByData`] describes a dataset in the style of [db-benchmark](https://duckdblabs.github.io/db-benchmark/)'s
//!   group-by set, and [`Dataset::generate`] writes it as parquet files, one file at a time, so
//!   that writing a dataset never holds it all in memory.
//! - [`questions`] are db-benchmark's first five group-by questions as lazy queries.
//! - [`Plan`] shows what polars will run: the plan as written and as optimised, and drawn.
//! - [`streaming`] runs a query on polars' streaming engine, which reads its input in morsels.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use parcours::diagram::{Diagram, Node};
use parcours::display::{Table, escape_html, format_bytes, emit};
use polars::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::DataError;

/// A db-benchmark group-by dataset: `rows` rows, `groups` groups per large key.
///
/// The columns are those of db-benchmark's generator (`groupby-datagen.R`), drawn uniformly
/// with replacement from a seeded PCG64 generator (the same seed gives the same data):
///
/// | column | values | groups |
/// | --- | --- | --- |
/// | `id1`, `id2` | `"id001"`..: one of `groups` strings | `groups` |
/// | `id3` | `"id0000000001"`..: one of `rows / groups` strings | `rows / groups` |
/// | `id4`, `id5` | 1..=`groups` | `groups` |
/// | `id6` | 1..=`rows / groups` | `rows / groups` |
/// | `v1`, `v2` | 1..=5, 1..=15 | |
/// | `v3` | a float in [0, 100), 6 decimals | |
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupByData {
    /// Rows in the whole dataset.
    pub rows: usize,
    /// Groups per large key (`id1`, `id2`, `id4`, `id5`); db-benchmark's K, usually 100.
    pub groups: usize,
    /// The generator's seed.
    pub seed: u64,
}

impl GroupByData {
    /// db-benchmark's shape: K = 100 groups, seed 108 (the seed its R generator uses).
    pub fn new(rows: usize) -> Self {
        GroupByData { rows, groups: 100, seed: 108 }
    }

    /// Rows `start..start + len` of the dataset, as a dataframe. Each block of rows has a
    /// generator of its own (seeded from the seed and the block's start), so blocks can be
    /// made one at a time, or in parallel, and give the same data.
    ///
    /// # Errors
    /// When the columns cannot be made into a dataframe (not expected).
    pub fn frame(&self, start: usize, len: usize) -> Result<DataFrame, DataError> {
        let groups = self.groups.max(1);
        let small = (self.rows / groups).max(1);
        let mut rng = Pcg64::seed_from_u64(self.seed ^ (start as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut draw = |n: usize| -> Vec<u32> { (0..len).map(|_| rng.random_range(1..=n as u32)).collect() };
        let id1 = draw(groups);
        let id2 = draw(groups);
        let id3 = draw(small);
        let id4 = draw(groups);
        let id5 = draw(groups);
        let id6 = draw(small);
        let v1 = draw(5);
        let v2 = draw(15);
        let v3: Vec<f64> = (0..len).map(|_| (rng.random_range(0.0..100.0f64) * 1e6).round() / 1e6).collect();
        let names = |ids: &[u32], width: usize| -> Vec<String> { ids.iter().map(|i| format!("id{i:0width$}")).collect() };
        let int = |ids: Vec<u32>| -> Vec<i32> { ids.into_iter().map(|i| i as i32).collect() };
        let columns = vec![
            Column::new("id1".into(), names(&id1, 3)),
            Column::new("id2".into(), names(&id2, 3)),
            Column::new("id3".into(), names(&id3, 10)),
            Column::new("id4".into(), int(id4)),
            Column::new("id5".into(), int(id5)),
            Column::new("id6".into(), int(id6)),
            Column::new("v1".into(), int(v1)),
            Column::new("v2".into(), int(v2)),
            Column::new("v3".into(), v3),
        ];
        Ok(DataFrame::new(len, columns)?)
    }
}

/// A generated dataset on disk: parquet files of a [`GroupByData`] dataset in one folder.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// What the files hold.
    pub spec: GroupByData,
    /// The files, in order of their rows.
    pub files: Vec<PathBuf>,
}

const DESCRIPTION: &str = "dataset.json";

impl Dataset {
    /// Writes `spec` as `files` parquet files under `dir`, one file at a time (each file is
    /// made, written under a temporary name and renamed: a killed cell leaves no half file).
    /// A folder that already holds this very dataset is kept as it is.
    ///
    /// # Errors
    /// When the folder cannot be written, or holds something else than a course dataset.
    pub fn generate(dir: impl AsRef<Path>, spec: GroupByData, files: usize) -> Result<Dataset, DataError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| DataError::Io { what, path, source }
        };
        let files = files.max(1);
        let names: Vec<PathBuf> = (0..files).map(|k| dir.join(format!("part-{k:03}.parquet"))).collect();
        let description = serde_json::json!({ "spec": spec, "files": files }).to_string();
        let marker = dir.join(DESCRIPTION);
        if fs::read_to_string(&marker).ok().as_deref() == Some(description.as_str()) && names.iter().all(|f| f.exists()) {
            return Ok(Dataset { dir, spec, files: names });
        }
        if dir.exists() {
            let foreign = fs::read_dir(&dir).map_err(io("cannot read", &dir))?.filter_map(Result::ok).any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                !(name == DESCRIPTION || name.starts_with("part-"))
            });
            if foreign {
                return Err(DataError::Dataset {
                    path: dir,
                    problem: "the folder holds other files than a course dataset: choose an empty or new folder".into(),
                });
            }
            fs::remove_dir_all(&dir).map_err(io("cannot clear", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        for (k, name) in names.iter().enumerate() {
            let start = k * spec.rows / files;
            let end = (k + 1) * spec.rows / files;
            let mut frame = spec.frame(start, end - start)?;
            let partial = name.with_extension("parquet.partial");
            let file = fs::File::create(&partial).map_err(io("cannot create", &partial))?;
            ParquetWriter::new(file).finish(&mut frame)?;
            fs::rename(&partial, name).map_err(io("cannot rename", &partial))?;
        }
        fs::write(&marker, description).map_err(io("cannot write", &marker))?;
        Ok(Dataset { dir, spec, files: names })
    }

    /// The dataset as a lazy query: nothing is read until the query runs, and then only the
    /// columns and row groups it needs.
    ///
    /// # Errors
    /// When the files cannot be listed.
    pub fn scan(&self) -> Result<LazyFrame, DataError> {
        let pattern = self.dir.join("part-*.parquet");
        Ok(LazyFrame::scan_parquet(PlRefPath::new(pattern.to_string_lossy().as_ref()), ScanArgsParquet::default())?)
    }

    /// The whole dataset read into memory, every column of every row: pandas' way.
    ///
    /// # Errors
    /// When a file cannot be read.
    pub fn read(&self) -> Result<DataFrame, DataError> {
        Ok(self.scan()?.collect()?)
    }

    /// The files' total size on disk (parquet is compressed), in bytes.
    pub fn bytes_on_disk(&self) -> u64 {
        self.files.iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).sum()
    }

    /// A table of the dataset: files, rows, size on disk.
    pub fn table(&self) -> Table {
        Table::new(["folder", "files", "rows", "groups (K)", "seed", "on disk"])
            .title("a db-benchmark group-by dataset")
            .row([
                self.dir.display().to_string(),
                self.files.len().to_string(),
                self.spec.rows.to_string(),
                self.spec.groups.to_string(),
                self.spec.seed.to_string(),
                format_bytes(self.bytes_on_disk()),
            ])
    }

    /// Shows the dataset's table in the notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// Writes the dataset as one CSV file (for a library that reads CSV, like pandas without
    /// pyarrow), streaming: at no time is the whole dataset in memory.
    ///
    /// # Errors
    /// When the files cannot be read or the CSV written.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<PathBuf, DataError> {
        let path = path.as_ref().to_path_buf();
        let partial = path.with_extension("csv.partial");
        let target = SinkTarget::Path(PlRefPath::new(partial.to_string_lossy().as_ref()));
        let sink = self.scan()?.sink(
            SinkDestination::File { target },
            FileWriteFormat::Csv(CsvWriterOptions::default()),
            UnifiedSinkArgs::default(),
        )?;
        sink.collect_with_engine(Engine::Streaming)?;
        fs::rename(&partial, &path).map_err(|source| DataError::Io { what: "cannot rename", path: partial, source })?;
        Ok(path)
    }
}

/// Runs a query on polars' streaming engine: the input is read in morsels (batches of rows)
/// that flow through the plan, so a query over a dataset larger than memory can run.
///
/// # Errors
/// When polars refuses the query.
pub fn streaming(query: LazyFrame) -> Result<DataFrame, DataError> {
    Ok(query.collect_with_engine(Engine::Streaming)?.unwrap_single())
}

/// Writes the rows of `query` as parquet files under `dir`, one folder per value of `key`
/// (`dir/key=value/...`, the "hive" layout Spark and Dask use), on the streaming engine.
/// Returns the files written, sorted.
///
/// # Errors
/// When polars refuses the query or the files cannot be written.
pub fn write_partitioned(query: LazyFrame, dir: impl AsRef<Path>, key: &str) -> Result<Vec<PathBuf>, DataError> {
    let dir = dir.as_ref();
    let destination = SinkDestination::Partitioned {
        base_path: PlRefPath::new(dir.to_string_lossy().as_ref()),
        file_path_provider: None,
        partition_strategy: PartitionStrategy::Keyed { keys: vec![col(key)], include_keys: false, keys_pre_grouped: false },
        max_rows_per_file: IdxSize::MAX,
        approximate_bytes_per_file: u64::MAX,
    };
    let format = FileWriteFormat::Parquet(Arc::new(ParquetWriteOptions::default()));
    query.sink(destination, format, UnifiedSinkArgs { mkdir: true, ..Default::default() })?.collect_with_engine(Engine::Streaming)?;
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = fs::read_dir(&folder).map_err(|source| DataError::Io { what: "cannot read", path: folder.clone(), source })?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() { folders.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    Ok(files)
}

/// A lazy scan of a partitioned folder written by [`write_partitioned`]: the key comes back
/// as a column, read from the folders' names, and a filter on it skips whole folders.
///
/// # Errors
/// When the folder cannot be listed.
pub fn scan_partitioned(dir: impl AsRef<Path>) -> Result<LazyFrame, DataError> {
    let pattern = dir.as_ref().join("**").join("*.parquet");
    let hive = HiveOptions::new_enabled();
    let args = ScanArgsParquet { hive_options: hive, ..Default::default() };
    Ok(LazyFrame::scan_parquet(PlRefPath::new(pattern.to_string_lossy().as_ref()), args)?)
}

/// One of db-benchmark's group-by questions.
#[derive(Clone, Copy)]
pub struct Question {
    /// Its name in db-benchmark (`q1`..).
    pub name: &'static str,
    /// What it asks, in db-benchmark's words.
    pub text: &'static str,
    /// The question as a lazy query over the dataset.
    pub query: fn(LazyFrame) -> LazyFrame,
}

/// db-benchmark's group-by questions q1 to q5.
pub fn questions() -> Vec<Question> {
    vec![
        Question {
            name: "q1",
            text: "sum v1 by id1",
            query: |df| df.group_by([col("id1")]).agg([col("v1").sum().alias("v1")]),
        },
        Question {
            name: "q2",
            text: "sum v1 by id1:id2",
            query: |df| df.group_by([col("id1"), col("id2")]).agg([col("v1").sum().alias("v1")]),
        },
        Question {
            name: "q3",
            text: "sum v1 mean v3 by id3",
            query: |df| df.group_by([col("id3")]).agg([col("v1").sum().alias("v1"), col("v3").mean().alias("v3")]),
        },
        Question {
            name: "q4",
            text: "mean v1:v3 by id4",
            query: |df| df.group_by([col("id4")]).agg([col("v1").mean(), col("v2").mean(), col("v3").mean()]),
        },
        Question {
            name: "q5",
            text: "sum v1:v3 by id6",
            query: |df| df.group_by([col("id6")]).agg([col("v1").sum(), col("v2").sum(), col("v3").sum()]),
        },
    ]
}

/// What polars will run for a query: its plan as written and as optimised.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The plan as the query wrote it.
    pub naive: String,
    /// The plan polars' optimiser made of it (pushdowns, simplifications).
    pub optimized: String,
    dot: String,
}

impl Plan {
    /// The plans of `query` (the query itself does not run).
    ///
    /// # Errors
    /// When polars cannot plan the query (a column that does not exist...).
    pub fn of(query: &LazyFrame) -> Result<Plan, DataError> {
        Ok(Plan { naive: query.explain(false)?, optimized: query.explain(true)?, dot: query.to_dot(true)? })
    }

    /// Whether the optimised plan reads its data from files (a parquet or CSV scan), not
    /// from a dataframe already in memory.
    pub fn scans_files(&self) -> bool {
        self.optimized.contains("SCAN [") && !self.optimized.contains("DF [")
    }

    /// The optimised plan as a picture, data flowing left to right.
    pub fn diagram(&self) -> Diagram {
        let (labels, edges) = parse_dot(&self.dot);
        // polars' DOT points from a node to its input; draw inputs first.
        let mut order: Vec<usize> = Vec::new();
        let mut placed = vec![false; labels.len()];
        while order.len() < labels.len() {
            let before = order.len();
            for k in 0..labels.len() {
                let ready = edges.iter().filter(|&&(from, _)| from == k).all(|&(_, input)| placed[input]);
                if !placed[k] && ready {
                    placed[k] = true;
                    order.push(k);
                }
            }
            if order.len() == before {
                break; // a cycle: not a plan
            }
        }
        let position = |k: usize| order.iter().position(|&o| o == k).unwrap_or(0);
        let nodes: Vec<Node> = order
            .iter()
            .map(|&k| {
                let after: Vec<usize> = edges.iter().filter(|&&(from, _)| from == k).map(|&(_, input)| position(input)).collect();
                Node::new(labels[k].clone(), after)
            })
            .collect();
        Diagram::layered("the optimised plan (data flows left to right)", &nodes)
    }

    /// Shows both plans side by side.
    pub fn evcxr_display(&self) {
        let mut html = String::from(r#"<div style="display:flex;gap:2em"><div><b>as written</b><pre>"#);
        html.push_str(&escape_html(&self.naive));
        html.push_str("</pre></div><div><b>as polars will run it</b><pre>");
        html.push_str(&escape_html(&self.optimized));
        let _ = write!(html, "</pre></div></div>");
        emit("text/html", &html);
    }
}

/// The nodes (labels) and edges (from, to) of a DOT graph as polars writes it.
fn parse_dot(dot: &str) -> (Vec<String>, Vec<(usize, usize)>) {
    let mut ids: Vec<String> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut edges = Vec::new();
    let index = |id: &str, ids: &mut Vec<String>, labels: &mut Vec<String>| -> usize {
        if let Some(k) = ids.iter().position(|i| i == id) {
            return k;
        }
        ids.push(id.to_string());
        labels.push(id.trim_matches('"').to_string());
        ids.len() - 1
    };
    for line in dot.lines().map(str::trim) {
        let statement = line.trim_end_matches(';');
        if let Some((from, to)) = statement.split_once(" -- ").or_else(|| statement.split_once(" -> ")) {
            let from = index(from.trim(), &mut ids, &mut labels);
            let to = index(to.trim(), &mut ids, &mut labels);
            edges.push((from, to));
        } else if let Some((id, rest)) = statement.split_once('[') {
            if let Some(label) = rest.split_once("label=\"").and_then(|(_, l)| l.rsplit_once('"')).map(|(l, _)| l) {
                let k = index(id.trim(), &mut ids, &mut labels);
                labels[k] = label.replace("\\n", "\n").replace("\\\"", "\"");
            }
        }
    }
    (labels, edges)
}
