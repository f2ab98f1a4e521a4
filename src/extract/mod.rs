//! Extract: where records come from.
//!
//! Export files are listed per source folder, decompressed as they stream (`.gz`, `.zst`),
//! and cut into chunks of whole records ([`files`]); each record is then unwrapped from
//! whatever page or envelope holds it ([`shape`]). Nothing here names a source: a source
//! states its folder and envelopes, and this module finds its records.

pub mod files;
pub mod http;
pub mod raw;
pub mod shape;

use std::path::PathBuf;

/// Failures that stop extraction as a whole (a bad record is a reject, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input folder does not exist.
    #[error("input folder {path} does not exist: pass --input DIR or set input in the job file")]
    MissingInput {
        /// The folder.
        path: PathBuf,
    },
    /// Extraction from an API failed.
    #[error(transparent)]
    Api(#[from] http::ExtractError),
    /// An API section of the job is wrong (checked before the run starts).
    #[error(transparent)]
    ApiConfig(#[from] http::Error),
    /// A job's `ids_file` could not be read.
    #[error("cannot read the ids file {url}: {why}")]
    IdsFile {
        /// Its URL (without password).
        url: String,
        /// Why.
        why: String,
    },
    /// A folder (or a special file) is named like an export file.
    #[error("{path} is not a file: an export file was expected there; move it out of the input or rename it")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A source's folder is a file.
    #[error("{path} is not a folder: a source's exports go in a folder of that name")]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// A folder or file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the failure is the operator's configuration rather than the source.
    pub fn is_config(&self) -> bool {
        match self {
            Error::MissingInput { .. } => true,
            Error::Api(e) => e.is_config(),
            Error::ApiConfig(e) => e.is_config(),
            Error::Read { .. } | Error::IdsFile { .. } | Error::NotAFile { .. } | Error::NotAFolder { .. } => false,
        }
    }
}
