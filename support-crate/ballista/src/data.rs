//! The lesson's data: db-benchmark's group-by table (columns `id1`..`id6`, `v1`..`v3`, with
//! `K` groups in `id1`, `id2`, `id4`, `id5` and `rows / K` in `id3`, `id6`), generated from a
//! seed and written as a folder of parquet files, one per partition: what a Spark or Ballista
//! job reads as its input splits. (Notebook 44 generates the same layout for polars.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

use crate::EngineError;

/// The table to write: `rows` rows in `files` parquet files, `groups` groups (db-benchmark's K).
#[derive(Clone, Copy, Debug)]
pub struct GroupBy {
    /// Rows in all.
    pub rows: usize,
    /// Groups in `id1`, `id2`, `id4`, `id5` (db-benchmark's K: 100).
    pub groups: usize,
    /// Parquet files (partitions).
    pub files: usize,
    /// The generator's seed: the same seed writes the same table.
    pub seed: u64,
}

impl GroupBy {
    /// The table's schema.
    pub fn schema() -> Arc<Schema> {
        let text = |name| Field::new(name, DataType::Utf8, false);
        let int = |name| Field::new(name, DataType::Int64, false);
        Arc::new(Schema::new(vec![
            text("id1"),
            text("id2"),
            text("id3"),
            int("id4"),
            int("id5"),
            int("id6"),
            int("v1"),
            int("v2"),
            Field::new("v3", DataType::Float64, false),
        ]))
    }

    /// Writes the table into `folder` (`part-000.parquet`, ...), each file under a temporary
    /// name first, then renamed: a folder never holds half a file. Returns the files.
    ///
    /// # Errors
    /// [`EngineError::Io`] naming the file that could not be written.
    pub fn write(&self, folder: &Path) -> Result<Vec<PathBuf>, EngineError> {
        let failed = |path: &Path, e: std::io::Error| EngineError::Io(path.display().to_string(), e);
        std::fs::create_dir_all(folder).map_err(|e| failed(folder, e))?;
        let per_file = self.rows.div_ceil(self.files.max(1));
        let mut written = Vec::new();
        for file in 0..self.files.max(1) {
            let start = file * per_file;
            let end = (start + per_file).min(self.rows);
            let path = folder.join(format!("part-{file:03}.parquet"));
            let partial = folder.join(format!(".part-{file:03}.parquet.partial"));
            let batch = self.batch(start..end);
            let out = std::fs::File::create(&partial).map_err(|e| failed(&partial, e))?;
            let mut writer = ArrowWriter::try_new(out, batch.schema(), None)
                .map_err(|e| failed(&partial, std::io::Error::other(e)))?;
            writer.write(&batch).map_err(|e| failed(&partial, std::io::Error::other(e)))?;
            writer.close().map_err(|e| failed(&partial, std::io::Error::other(e)))?;
            std::fs::rename(&partial, &path).map_err(|e| failed(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }

    /// Rows `range` of the table: each row's values come from its index and the seed alone.
    fn batch(&self, range: std::ops::Range<usize>) -> RecordBatch {
        let k = self.groups.max(1) as u64;
        let n_k = (self.rows as u64 / k).max(1);
        let mut columns: [Vec<i64>; 8] = Default::default();
        let mut v3 = Vec::with_capacity(range.len());
        for row in range {
            let mut state = self.seed ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut next = || splitmix64(&mut state);
            let draws = [next() % k, next() % k, next() % n_k, next() % k, next() % k, next() % n_k];
            for (column, draw) in columns.iter_mut().zip(draws) {
                column.push(draw as i64 + 1);
            }
            columns[6].push((next() % 5) as i64 + 1);
            columns[7].push((next() % 15) as i64 + 1);
            v3.push((next() % 100_000_000) as f64 / 1e6); // 0 to 100, six decimals
        }
        let ids = |values: &[i64], width: usize| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(values.iter().map(|v| format!("id{v:0width$}"))))
        };
        let ints = |values: &[i64]| -> ArrayRef { Arc::new(Int64Array::from(values.to_vec())) };
        RecordBatch::try_new(
            Self::schema(),
            vec![
                ids(&columns[0], 3),
                ids(&columns[1], 3),
                ids(&columns[2], 10),
                ints(&columns[3]),
                ints(&columns[4]),
                ints(&columns[5]),
                ints(&columns[6]),
                ints(&columns[7]),
                Arc::new(Float64Array::from(v3)),
            ],
        )
        .expect("the columns match the schema")
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a fixed, documented stream, no dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
