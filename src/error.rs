//! The run-level error: one variant per stage, and the only place exit codes live.
//!
//! A bad record is data, not an error (it becomes a [`crate::normalize::Reject`]); only
//! failures that stop a run are represented here.

use std::process::ExitCode;

/// Everything that can stop a run, by the stage that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job file, a flag or an environment variable is wrong.
    #[error(transparent)]
    Config(#[from] crate::job::Error),
    /// An input could not be read at all (a missing folder, an unreadable file system).
    #[error(transparent)]
    Extract(#[from] crate::extract::Error),
    /// Normalizing failed as a whole (not a bad record: those are rejects).
    #[error(transparent)]
    Normalize(#[from] crate::normalize::Error),
    /// A reconciliation could not run.
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::Error),
    /// Writing or committing to the object store failed.
    #[error(transparent)]
    Publish(#[from] crate::publish::Error),
}

/// Exit codes, documented in README.md and `opslake --help`: this is the only place they live.
pub mod exit {
    /// The run succeeded.
    pub const OK: u8 = 0;
    /// An unexpected internal failure.
    pub const INTERNAL: u8 = 1;
    /// Bad configuration: job file, flag, environment variable or command line.
    pub const CONFIG: u8 = 2;
    /// A source could not be reached or read.
    pub const SOURCE_UNREACHABLE: u8 = 3;
    /// More records were rejected than the job's `max_reject_ratio` allows.
    pub const REJECTS_ABOVE_RATIO: u8 = 4;
    /// Publishing to the object store failed; the previous committed run stays visible.
    pub const PUBLISH: u8 = 5;
    /// Another run committed the same day first; this run published nothing.
    pub const CONFLICT: u8 = 6;

    /// Every code with what it means, as `--help` and README.md list them.
    pub const MEANINGS: &[(u8, &str)] = &[
        (OK, "success"),
        (INTERNAL, "internal error (a bug: please report it)"),
        (
            CONFIG,
            "bad configuration: job file, flag, environment variable or command line",
        ),
        (SOURCE_UNREACHABLE, "a source could not be reached or read"),
        (
            REJECTS_ABOVE_RATIO,
            "more records rejected than max_reject_ratio allows (nothing published)",
        ),
        (
            PUBLISH,
            "publishing to the lake failed (the previous committed run stays visible)",
        ),
        (
            CONFLICT,
            "another run committed the same day first (nothing published; re-run to replace it)",
        ),
    ];

    /// The `--help` footer: exit codes, variables, logging.
    pub fn help() -> String {
        let mut text = String::from("Exit codes:\n");
        for (code, meaning) in MEANINGS {
            text.push_str(&format!("  {code}  {meaning}\n"));
        }
        text.push_str(
            "\nEvery setting can also be given as an OPSLAKE_* variable (--as-of = OPSLAKE_AS_OF).\n\
             The PII key comes from OPSLAKE_PII_KEY or a file (OPSLAKE_PII_KEY_FILE), never a flag.\n\
             Logs: --log or OPSLAKE_LOG take RUST_LOG-style filters (e.g. \"opslake=debug\"); without\n\
             them RUST_LOG is honoured, else \"info\". A filter that does not parse exits 2.\n",
        );
        text
    }
}

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => exit::CONFIG,
            Error::Extract(e) | Error::Normalize(crate::normalize::Error::Extract(e)) if e.is_config() => exit::CONFIG,
            Error::Extract(_) | Error::Normalize(crate::normalize::Error::Extract(_)) => exit::SOURCE_UNREACHABLE,
            Error::Normalize(crate::normalize::Error::TooManyRejects { .. }) => exit::REJECTS_ABOVE_RATIO,
            // The package is the first half of publishing: a full disk there is a publish failure.
            Error::Normalize(crate::normalize::Error::Write { .. }) => exit::PUBLISH,
            Error::Normalize(_) | Error::Reconcile(_) => exit::INTERNAL,
            Error::Publish(crate::publish::Error::RunAlreadyCommitted { .. }) => exit::CONFLICT,
            Error::Publish(_) => exit::PUBLISH,
        }
    }

    /// The exit code as a [`ExitCode`].
    pub fn exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

/// A `Result` with the run-level [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn io() -> std::io::Error {
        std::io::Error::other("disk")
    }

    #[test]
    fn each_failure_maps_to_its_documented_code() {
        let read = || crate::extract::Error::Read {
            path: PathBuf::from("/in/stock/a.json"),
            source: io(),
        };
        let cases: Vec<(Error, u8)> = vec![
            (crate::job::Error::MissingPiiKey.into(), exit::CONFIG),
            (
                crate::job::Error::NothingCommitted {
                    run_date: chrono::NaiveDate::from_ymd_opt(2025, 6, 29).unwrap_or_default(),
                    url: "file:///lake".into(),
                    what: "",
                }
                .into(),
                exit::CONFIG,
            ),
            (
                crate::extract::Error::MissingInput {
                    path: PathBuf::from("/in"),
                }
                .into(),
                exit::CONFIG,
            ),
            (read().into(), exit::SOURCE_UNREACHABLE),
            // Inside the normalize stage, an input error keeps its meaning.
            (
                crate::normalize::Error::Extract(read()).into(),
                exit::SOURCE_UNREACHABLE,
            ),
            (
                crate::normalize::Error::Write {
                    path: PathBuf::from("/lake/_staging/part-0.parquet"),
                    source: io(),
                }
                .into(),
                exit::PUBLISH,
            ),
            (
                crate::normalize::Error::Unbalanced {
                    source_name: "stock".into(),
                    read: 2,
                    written: 1,
                    rejects: 0,
                    duplicates: 0,
                }
                .into(),
                exit::INTERNAL,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }
}
