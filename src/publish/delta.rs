//! Delta Lake tables through delta-rs: open or create a table, replace one `run_date`
//! partition in one transaction, list a partition's files at a version, vacuum.
//!
//! Every replace of day D carries the application transaction `opslake:run_date=D` whose
//! version is the run's claim number ([`super`]'s commit protocol): a table whose day already
//! carries a claim at least as new was replaced by a later run, and this run must not publish
//! over it. delta-rs's own conflict resolution is off (`max_retries = 0`: without datafusion
//! it cannot tell days apart, and two commits that only add files would both pass); on any
//! concurrent commit the table is reloaded and the claim rule decides: retry on the newer
//! version (another day, a vacuum), or lose ([`Error::Superseded`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, DataType, MetadataExt, Remove, StructField, StructType, Transaction};
use deltalake::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError, FilterOp, FilterValue};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::prefix::PrefixStore;

/// The partition column of every table.
pub const RUN_DATE: &str = "run_date";

/// A checkpoint every this many versions: log replay stays short, and vacuumed tombstones
/// leave the state (delta-rs keeps expired tombstones until a checkpoint).
const CHECKPOINT_INTERVAL: &str = "10";

/// Attempts of one replace before giving up on a busy table.
const ATTEMPTS: usize = 10;

/// Failures of a table operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A later run (claim `found`) replaced this day of the table: this run (claim `claim`)
    /// must not publish over it.
    #[error("table {table}: {run_date} was replaced by a later run (claim {found}, this run's {claim})")]
    Superseded {
        /// The table.
        table: String,
        /// The day.
        run_date: NaiveDate,
        /// This run's claim.
        claim: i64,
        /// The claim found on the table.
        found: i64,
    },
    /// The files do not fit the table's columns (a column changed type).
    #[error("table {table}: the new files do not fit its columns: {why}; the table's other days keep their schema")]
    Schema {
        /// The table.
        table: String,
        /// What differs.
        why: String,
    },
    /// delta-rs failed.
    #[error("table {table}: {source}")]
    Delta {
        /// The table.
        table: String,
        /// The delta-rs error.
        source: DeltaTableError,
    },
}

impl Error {
    fn delta(table: &str) -> impl Fn(DeltaTableError) -> Error + '_ {
        move |source| Error::Delta {
            table: table.to_string(),
            source,
        }
    }
}

/// Where a table lives: the store in which the URL's path is the table's key prefix, and that
/// URL. (delta-rs resolves `_delta_log/...` and data paths under the URL's path.)
#[derive(Clone, Debug)]
pub struct TableLocation {
    /// The table's name.
    pub name: String,
    /// The root store.
    pub root: Arc<dyn ObjectStore>,
    /// The table's URL, ending with `/`.
    pub url: url::Url,
}

impl TableLocation {
    /// The table's key prefix in the root store (for `file://`, the absolute path).
    fn prefix(&self) -> Result<object_store::path::Path, DeltaTableError> {
        let invalid = |why: String| DeltaTableError::InvalidTableLocation(why);
        if self.url.scheme() == "file" {
            let path = self.url.to_file_path().map_err(|_| invalid(self.url.to_string()))?;
            object_store::path::Path::from_absolute_path(path).map_err(|e| invalid(e.to_string()))
        } else {
            object_store::path::Path::from_url_path(self.url.path()).map_err(|e| invalid(e.to_string()))
        }
    }

    /// delta-rs's default log store over this location: commits are written with
    /// `PutMode::Create`, so two writers can never both take a version.
    fn log_store(&self) -> Result<LogStoreRef, DeltaTableError> {
        let prefix = self.prefix()?;
        let prefixed: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            self.root.clone()
        } else {
            Arc::new(PrefixStore::new(self.root.clone(), prefix))
        };
        Ok(default_logstore(
            prefixed,
            self.root.clone(),
            &self.url,
            &StorageConfig::default(),
        ))
    }

    /// The table, unloaded.
    fn table(&self) -> Result<DeltaTable, DeltaTableError> {
        Ok(DeltaTable::new(self.log_store()?))
    }

    /// The store of the table's own folder (data paths are relative to it).
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>, DeltaTableError> {
        Ok(self.log_store()?.object_store(None))
    }
}

/// The table at `location`, loaded at its latest version; `None` when there is no table yet.
pub async fn open(location: &TableLocation) -> Result<Option<DeltaTable>, Error> {
    let delta = Error::delta(&location.name);
    if location.url.scheme() == "file" {
        // For file:// the kernel requires the folder to exist (a missing one is an invalid
        // location, not "no table").
        match location.url.to_file_path() {
            Ok(path) if !path.exists() => return Ok(None),
            _ => {}
        }
    }
    let mut table = location.table().map_err(&delta)?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(delta(e)),
    }
}

/// The table at `location`, created (version 0, partitioned by `run_date`) with `fields` when
/// there is none.
pub async fn open_or_create(location: &TableLocation, fields: &[StructField]) -> Result<DeltaTable, Error> {
    let delta = Error::delta(&location.name);
    if let Some(table) = open(location).await? {
        return Ok(table);
    }
    if location.url.scheme() == "file" {
        if let Ok(path) = location.url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| delta(DeltaTableError::Generic(e.to_string())))?;
        }
    }
    let mut columns = fields.to_vec();
    columns.push(StructField::not_null(RUN_DATE, DataType::DATE));
    let created = location
        .table()
        .map_err(&delta)?
        .create()
        .with_table_name(location.name.clone())
        .with_columns(columns)
        .with_partition_columns([RUN_DATE])
        .with_configuration_property(deltalake::TableProperty::CheckpointInterval, Some(CHECKPOINT_INTERVAL))
        .with_save_mode(SaveMode::ErrorIfExists)
        .await;
    match created {
        Ok(table) => Ok(table),
        // Another run created it first: use theirs.
        Err(create) => match open(location).await? {
            Some(table) => Ok(table),
            None => Err(delta(create)),
        },
    }
}

/// The application transaction of day `run_date`'s replaces.
fn app_id(run_date: NaiveDate) -> String {
    format!("opslake:{RUN_DATE}={run_date}")
}

/// The claim of the last replace of `run_date` in the table's loaded version (0: never).
async fn day_claim(table: &DeltaTable, run_date: NaiveDate) -> Result<i64, DeltaTableError> {
    let log_store = table.log_store();
    Ok(table
        .snapshot()?
        .transaction_version(log_store.as_ref(), app_id(run_date))
        .await?
        .unwrap_or(0))
}

/// The Add actions of partition `run_date` in the table's loaded version.
async fn partition_adds(table: &DeltaTable, run_date: NaiveDate) -> Result<Vec<Add>, DeltaTableError> {
    let day = run_date.to_string();
    let filter = [(RUN_DATE, FilterOp::Eq, FilterValue::Scalar(day.as_str()))];
    table
        .get_active_add_actions_by_partitions(&filter)
        .map_ok(|view| {
            #[allow(deprecated)]
            view.add_action()
        })
        .try_collect()
        .await
}

/// What a replace did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Replaced {
    /// The version committed.
    pub version: u64,
    /// Files added.
    pub added: usize,
    /// Files removed from the day (their data stays until `vacuum`).
    pub removed: usize,
}

/// The schema after adding `fields` to `current`: new columns are added (nullable); a column
/// that changed type is an error.
fn merged_schema(table: &str, current: &StructType, fields: &[StructField]) -> Result<Option<StructType>, Error> {
    let mut added = Vec::new();
    for f in fields {
        match current.field(f.name()) {
            Some(existing) if existing.data_type() == f.data_type() => {}
            Some(existing) => {
                return Err(Error::Schema {
                    table: table.to_string(),
                    why: format!(
                        "column {} is {} in the table and {} in the files",
                        f.name(),
                        existing.data_type(),
                        f.data_type()
                    ),
                });
            }
            None => added.push(StructField::nullable(f.name(), f.data_type().clone())),
        }
    }
    if added.is_empty() {
        return Ok(None);
    }
    let all: Vec<StructField> = current.fields().cloned().chain(added).collect();
    StructType::try_new(all).map(Some).map_err(|e| Error::Delta {
        table: table.to_string(),
        source: e.into(),
    })
}

/// Replaces partition `run_date` with `adds`, in one transaction carrying the run's `claim`.
/// Files already active and among `adds` stay as they are (a shard's share committed again).
/// `fields` are the files' columns (new ones are added to the table's schema).
pub async fn replace(
    table: &mut DeltaTable,
    run_date: NaiveDate,
    claim: i64,
    fields: &[StructField],
    adds: Vec<Add>,
    run_id: &str,
) -> Result<Replaced, Error> {
    let name = table
        .snapshot()
        .ok()
        .and_then(|s| s.metadata().name().map(str::to_string))
        .unwrap_or_default();
    let delta = Error::delta(&name);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let found = day_claim(table, run_date).await.map_err(&delta)?;
        if found >= claim {
            return Err(Error::Superseded {
                table: name.clone(),
                run_date,
                claim,
                found,
            });
        }
        let active = partition_adds(table, run_date).await.map_err(&delta)?;
        let new: BTreeSet<&str> = adds.iter().map(|a| a.path.as_str()).collect();
        let kept: BTreeSet<&str> = active.iter().map(|a| a.path.as_str()).collect();
        let now = Utc::now().timestamp_millis();
        let removes: Vec<Action> = active
            .iter()
            .filter(|a| !new.contains(a.path.as_str()))
            .map(|a| {
                Action::Remove(Remove {
                    path: a.path.clone(),
                    data_change: true,
                    deletion_timestamp: Some(now),
                    extended_file_metadata: Some(true),
                    partition_values: Some(a.partition_values.clone()),
                    size: Some(a.size),
                    tags: None,
                    deletion_vector: None,
                    base_row_id: None,
                    default_row_commit_version: None,
                })
            })
            .collect();
        let removed = removes.len();
        let fresh: Vec<Action> = adds
            .iter()
            .filter(|a| !kept.contains(a.path.as_str()))
            .cloned()
            .map(Action::Add)
            .collect();
        let added = fresh.len();
        let snapshot = table.snapshot().map_err(&delta)?;
        let mut actions = Vec::with_capacity(added + removed + 1);
        if let Some(schema) = merged_schema(&name, snapshot.schema().as_ref(), fields)? {
            let metadata = snapshot
                .metadata()
                .clone()
                .with_schema(&schema)
                .map_err(|e| delta(e.into()))?;
            actions.push(Action::Metadata(metadata));
        }
        actions.extend(fresh);
        actions.extend(removes);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![RUN_DATE.to_string()]),
            predicate: Some(format!("{RUN_DATE} = '{run_date}'")),
        };
        let properties = CommitProperties::default()
            .with_max_retries(0)
            .with_application_transaction(Transaction::new_with_last_update(app_id(run_date), claim, Some(now)))
            .with_metadata([
                ("runId".to_string(), serde_json::json!(run_id)),
                ("claim".to_string(), serde_json::json!(claim)),
            ]);
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await;
        match committed {
            Ok(done) => {
                let version = done.version();
                table.load_version(version).await.map_err(&delta)?;
                return Ok(Replaced {
                    version,
                    added,
                    removed,
                });
            }
            Err(e) if is_concurrent(&e) && attempt < ATTEMPTS => {
                // Someone committed since the version we read: reload and apply the claim
                // rule again (another day or a vacuum: commit again on the newer version).
                table.update_state().await.map_err(&delta)?;
            }
            Err(e) => return Err(delta(e)),
        }
    }
}

/// Whether a commit failed because another commit took the version first.
fn is_concurrent(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(_)
                    | TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
}

/// A file of a partition, for reading it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionFile {
    /// Relative to the table's folder (`run_date=2025-06-30/....parquet`).
    pub path: String,
    /// Bytes.
    pub size: i64,
    /// Rows, from the file's statistics.
    pub rows: Option<i64>,
}

/// The files of partition `run_date` at `version` (latest when `None`), and the version;
/// `None` when there is no table.
pub async fn partition_files(
    location: &TableLocation,
    run_date: NaiveDate,
    version: Option<u64>,
) -> Result<Option<(u64, Vec<PartitionFile>)>, Error> {
    let delta = Error::delta(&location.name);
    let Some(mut table) = open(location).await? else {
        return Ok(None);
    };
    if let Some(v) = version {
        table.load_version(v).await.map_err(&delta)?;
    }
    let day = run_date.to_string();
    let filter = [(RUN_DATE, FilterOp::Eq, FilterValue::Scalar(day.as_str()))];
    let mut files: Vec<PartitionFile> = table
        .get_active_add_actions_by_partitions(&filter)
        .map_ok(|view| PartitionFile {
            path: view.path().into_owned(),
            size: view.size(),
            rows: view.num_records().map(|n| n as i64),
        })
        .try_collect()
        .await
        .map_err(&delta)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let loaded = table.version().unwrap_or(0);
    Ok(Some((loaded, files)))
}

/// What a vacuum did to one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vacuumed {
    /// Files deleted (or that would be, in a dry run).
    pub files: Vec<String>,
}

/// Deletes the table's files that no version newer than `retention` ago needs: files removed
/// from the table (replaced days) and files no version references (a crashed run's), both
/// only when older than the retention; then writes a checkpoint, so expired tombstones leave
/// the table's state.
pub async fn vacuum(location: &TableLocation, retention: chrono::Duration, dry_run: bool) -> Result<Vacuumed, Error> {
    let delta = Error::delta(&location.name);
    let Some(table) = open(location).await? else {
        return Ok(Vacuumed::default());
    };
    let (table, metrics) = table
        .vacuum()
        .with_retention_period(retention)
        // The table's own minimum is 7 days; a shorter retention is the operator's decision.
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(dry_run)
        .await
        .map_err(&delta)?;
    if !dry_run && !metrics.files_deleted.is_empty() {
        deltalake::checkpoints::create_checkpoint(&table, None)
            .await
            .map_err(&delta)?;
    }
    Ok(Vacuumed {
        files: metrics.files_deleted,
    })
}

/// The Delta columns of a Parquet file written by polars (through its embedded Arrow schema:
/// strings of any Arrow flavour are `string`, `Datetime(us, UTC)` is `timestamp`, decimals keep
/// precision and scale).
pub fn fields_of(metadata: &deltalake::parquet::file::metadata::ParquetMetaData) -> Result<Vec<StructField>, String> {
    use deltalake::kernel::engine::arrow_conversion::TryFromArrow;
    let file = metadata.file_metadata();
    let arrow = deltalake::parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| e.to_string())?;
    arrow
        .fields()
        .iter()
        .map(|f| {
            StructField::try_from_arrow(f.as_ref())
                .map(|d| StructField::nullable(d.name(), d.data_type().clone()))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The partition values of a file of day `run_date`.
pub fn partition_values(run_date: NaiveDate) -> HashMap<String, Option<String>> {
    HashMap::from([(RUN_DATE.to_string(), Some(run_date.to_string()))])
}
