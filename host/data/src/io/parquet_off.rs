//! Parquet when this build has no `parquet` feature: the same interface as
//! the real module, refusing every file with an error that says how to get it.

use super::{BatchSource, ReadError, Schema, SourceBatch};
use crate::Batch;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Why a .parquet file is refused.
pub(super) fn disabled(path: &Path) -> ReadError {
    ReadError::Unsupported {
        file: path.to_path_buf(),
        message: "this keel was built without parquet support: use .csv or .jsonl, or rebuild with --features parquet".into(),
    }
}

/// Never built: [`ParquetSource::new`] always refuses.
pub(super) enum ParquetSource {}

impl ParquetSource {
    pub(super) fn new(
        path: &Path,
        _file: File,
        _given: Option<&Schema>,
        _batch_size: usize,
    ) -> Result<ParquetSource, ReadError> {
        Err(disabled(path))
    }
}

impl BatchSource for ParquetSource {
    fn schema(&self) -> &Schema {
        match *self {}
    }
    fn bytes_read(&self) -> u64 {
        match *self {}
    }
    fn path(&self) -> &Path {
        match *self {}
    }
    fn next_batch(&mut self) -> Result<Option<SourceBatch>, ReadError> {
        match *self {}
    }
}

/// A sink that refuses the first batch (and the footer).
pub(super) struct ParquetSink;

impl ParquetSink {
    pub(super) fn new(_sink: Box<dyn Write + Send>) -> ParquetSink {
        ParquetSink
    }

    pub(super) fn write(&mut self, _batch: &Batch, path: &Path) -> Result<(), ReadError> {
        Err(disabled(path))
    }

    pub(super) fn finish(self, path: &Path) -> Result<(), ReadError> {
        Err(disabled(path))
    }
}
