//! Parquet files as opslake writes them: zstd, full statistics, row groups sized for scans.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use polars::prelude::*;

/// Rows per row group: large enough for scans, small enough to bound a writer's memory.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Writes `frame` to `path` (creating parent folders); returns the file's size in bytes.
pub fn write(path: &Path, frame: &mut DataFrame) -> std::io::Result<u64> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = File::create(path)?;
    ParquetWriter::new(BufWriter::with_capacity(1 << 20, file))
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        // Batches are already written in parallel; one thread per file avoids oversubscription.
        .set_parallel(false)
        .finish(frame)
        .map_err(std::io::Error::other)
}

/// Reads a whole Parquet file.
pub fn read(path: &Path) -> std::io::Result<DataFrame> {
    let file = File::open(path)?;
    ParquetReader::new(file).finish().map_err(std::io::Error::other)
}
