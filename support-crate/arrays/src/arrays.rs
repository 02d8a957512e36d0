//! Chunked arrays on disk: a 2-D array of `f64` stored as a [zarr](https://zarr.dev) array,
//! one file per chunk, read and written chunk by chunk (notebook 43).
//!
//! This is what `dask.array` computes on, and how it goes out of core: a computation that
//! takes one chunk at a time never holds more than a few chunks, whatever the array's size.
//! The array counts the chunks it reads, so a check can tell how an answer read it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array2, ArrayD, Ix2};
use parcours::display::{Table, format_bytes};
use parcours::rayon::prelude::*;
use zarrs::array::{Array, ArrayBuilder, data_type};
use zarrs::filesystem::FilesystemStore;

/// Why a chunked array could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArrayError {
    /// The store could not be opened or made.
    #[error("zarr store {path}: {message}")]
    Store {
        /// The store's folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A chunk could not be read or written.
    #[error("chunk {chunk:?} of {path}: {message}")]
    Chunk {
        /// The chunk's position in the grid of chunks.
        chunk: [usize; 2],
        /// The store's folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A 2-D array of `f64` on disk, in chunks of `chunk` rows × columns.
pub struct ChunkedArray {
    path: PathBuf,
    array: Array<FilesystemStore>,
    shape: [usize; 2],
    chunk: [usize; 2],
    reads: AtomicUsize,
    log: Mutex<Vec<ChunkRead>>,
}

/// One read of a chunk: which chunk, and which task of a [`TaskGraph`](crate::graph::TaskGraph)
/// read it (none when it was not read by a graph's task).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRead {
    /// The chunk's position in the grid.
    pub chunk: [usize; 2],
    /// The task that read it.
    pub task: Option<usize>,
}

impl ChunkedArray {
    /// Makes an array of `shape` in chunks of `chunk` under `path` (a folder, replaced if it
    /// holds a zarr array already), each element written by `value(row, column)`, chunk by
    /// chunk in parallel: the array is never whole in memory.
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn create(
        path: impl AsRef<Path>,
        shape: [usize; 2],
        chunk: [usize; 2],
        value: impl Fn(usize, usize) -> f64 + Sync,
    ) -> Result<ChunkedArray, ArrayError> {
        let path = path.as_ref().to_path_buf();
        let store_error = |message: String| ArrayError::Store { path: path.clone(), message };
        if path.join("zarr.json").exists() {
            std::fs::remove_dir_all(&path).map_err(|e| store_error(e.to_string()))?;
        }
        std::fs::create_dir_all(&path).map_err(|e| store_error(e.to_string()))?;
        let store = Arc::new(FilesystemStore::new(&path).map_err(|e| store_error(e.to_string()))?);
        let array = ArrayBuilder::new(
            vec![shape[0] as u64, shape[1] as u64],
            vec![chunk[0] as u64, chunk[1] as u64],
            data_type::float64(),
            0.0f64,
        )
        .build(store, "/")
        .map_err(|e| store_error(e.to_string()))?;
        array.store_metadata().map_err(|e| store_error(e.to_string()))?;
        let made = ChunkedArray { path, array, shape, chunk, reads: AtomicUsize::new(0), log: Mutex::new(Vec::new()) };
        made.chunks().into_par_iter().try_for_each(|at| {
            let (rows, columns) = made.chunk_span(at);
            let block = Array2::from_shape_fn((rows.len(), columns.len()), |(r, c)| value(rows.start + r, columns.start + c));
            made.write_chunk(at, &block)
        })?;
        Ok(made)
    }

    /// Opens an array that [`ChunkedArray::create`] made.
    ///
    /// # Errors
    /// When there is no 2-D zarr array of `f64` there.
    pub fn open(path: impl AsRef<Path>) -> Result<ChunkedArray, ArrayError> {
        let path = path.as_ref().to_path_buf();
        let store_error = |message: String| ArrayError::Store { path: path.clone(), message };
        let store = Arc::new(FilesystemStore::new(&path).map_err(|e| store_error(e.to_string()))?);
        let array = Array::open(store, "/").map_err(|e| store_error(format!("{e} (is this a zarr array the course made?)")))?;
        let shape = match array.shape() {
            [rows, columns] => [*rows as usize, *columns as usize],
            other => return Err(store_error(format!("{} dimensions, the course's arrays have 2", other.len()))),
        };
        let chunk = match array.chunk_shape(&[0, 0]) {
            Ok(c) if c.len() == 2 => [c[0].get() as usize, c[1].get() as usize],
            _ => return Err(store_error("not a regular grid of 2-D chunks".into())),
        };
        Ok(ChunkedArray { path, array, shape, chunk, reads: AtomicUsize::new(0), log: Mutex::new(Vec::new()) })
    }

    /// Rows × columns.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// A chunk's rows × columns (the last chunks of a row or column may be cut short).
    pub fn chunk_shape(&self) -> [usize; 2] {
        self.chunk
    }

    /// The array's size in memory, in bytes, were it read whole.
    pub fn bytes(&self) -> u64 {
        (self.shape[0] * self.shape[1] * std::mem::size_of::<f64>()) as u64
    }

    /// The grid of chunks: its rows × columns of chunks.
    pub fn grid(&self) -> [usize; 2] {
        [self.shape[0].div_ceil(self.chunk[0]), self.shape[1].div_ceil(self.chunk[1])]
    }

    /// Every chunk's position in the grid, row by row.
    pub fn chunks(&self) -> Vec<[usize; 2]> {
        let [rows, columns] = self.grid();
        (0..rows).flat_map(|r| (0..columns).map(move |c| [r, c])).collect()
    }

    /// The rows and columns of the array that chunk `at` holds.
    pub fn chunk_span(&self, at: [usize; 2]) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let rows = at[0] * self.chunk[0]..((at[0] + 1) * self.chunk[0]).min(self.shape[0]);
        let columns = at[1] * self.chunk[1]..((at[1] + 1) * self.chunk[1]).min(self.shape[1]);
        (rows, columns)
    }

    /// Reads one chunk (its file) into memory.
    ///
    /// # Errors
    /// When the chunk cannot be read.
    pub fn read_chunk(&self, at: [usize; 2]) -> Result<Array2<f64>, ArrayError> {
        let error = |message: String| ArrayError::Chunk { chunk: at, path: self.path.clone(), message };
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(ChunkRead { chunk: at, task: crate::graph::current_task() });
        let block = self.array.retrieve_chunk::<ArrayD<f64>>(&[at[0] as u64, at[1] as u64]).map_err(|e| error(e.to_string()))?;
        let block = block.into_dimensionality::<Ix2>().map_err(|e| error(e.to_string()))?;
        // zarr stores edge chunks whole; keep the part inside the array.
        let (rows, columns) = self.chunk_span(at);
        if block.dim() == (rows.len(), columns.len()) {
            return Ok(block);
        }
        Ok(block.slice(ndarray::s![..rows.len(), ..columns.len()]).to_owned())
    }

    /// Writes one chunk.
    ///
    /// # Errors
    /// When the block's shape is not the chunk's, or the chunk cannot be written.
    pub fn write_chunk(&self, at: [usize; 2], block: &Array2<f64>) -> Result<(), ArrayError> {
        let error = |message: String| ArrayError::Chunk { chunk: at, path: self.path.clone(), message };
        let (rows, columns) = self.chunk_span(at);
        if block.dim() != (rows.len(), columns.len()) {
            return Err(error(format!("a block of {:?}, the chunk holds {} × {}", block.dim(), rows.len(), columns.len())));
        }
        let indices = [at[0] as u64, at[1] as u64];
        if block.dim() == (self.chunk[0], self.chunk[1]) && block.is_standard_layout() {
            return self.array.store_chunk(&indices, block).map_err(|e| error(e.to_string()));
        }
        let mut whole = Array2::<f64>::zeros((self.chunk[0], self.chunk[1]));
        whole.slice_mut(ndarray::s![..rows.len(), ..columns.len()]).assign(block);
        self.array.store_chunk(&indices, whole).map_err(|e| error(e.to_string()))
    }

    /// The whole array read into memory: every chunk at once (what an answer that does not
    /// work chunk by chunk does).
    ///
    /// # Errors
    /// When a chunk cannot be read.
    pub fn read_all(&self) -> Result<Array2<f64>, ArrayError> {
        let mut whole = Array2::<f64>::zeros((self.shape[0], self.shape[1]));
        for at in self.chunks() {
            let (rows, columns) = self.chunk_span(at);
            whole.slice_mut(ndarray::s![rows, columns]).assign(&self.read_chunk(at)?);
        }
        Ok(whole)
    }

    /// How many chunks were read since the array was opened (or since [`ChunkedArray::reset_reads`]).
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    /// Every chunk read since the array was opened (or since [`ChunkedArray::reset_reads`]),
    /// in order, with the graph's task that read it.
    pub fn read_log(&self) -> Vec<ChunkRead> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the count of chunk reads back to zero, and empties the log.
    pub fn reset_reads(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A table of the array: shape, chunks, sizes.
    pub fn table(&self) -> Table {
        let [gr, gc] = self.grid();
        Table::new(["folder", "shape", "chunk", "chunks", "in memory", "one chunk"]).title("a chunked array on disk (zarr)").row([
            self.path.display().to_string(),
            format!("{} × {}", self.shape[0], self.shape[1]),
            format!("{} × {}", self.chunk[0], self.chunk[1]),
            format!("{gr} × {gc} = {}", gr * gc),
            format_bytes(self.bytes()),
            format_bytes((self.chunk[0] * self.chunk[1] * 8) as u64),
        ])
    }

    /// Shows the array's table in the notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}
