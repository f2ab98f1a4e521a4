//! The command line: one variant per command; the doc comments are the `--help`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::job::{self, JobConfig, Overrides};
use crate::normalize::pii::PiiMode;
use crate::normalize::rejects::RejectsRaw;
use crate::pipeline::{self, RunReport};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (a bug: please report it)
  2  bad configuration: job file, flag, environment variable or command line
  3  a source could not be reached or read
  4  more records rejected than max_reject_ratio allows (nothing published)
  5  publishing to the lake failed (the previous committed run stays visible)
  6  another run committed the same day first (nothing published; re-run to replace it)

Every setting can also be given as an OPSLAKE_* variable (--as-of = OPSLAKE_AS_OF).
The PII key comes from OPSLAKE_PII_KEY or a file (OPSLAKE_PII_KEY_FILE), never a flag.";

/// opslake: telecom back-office ETL and reconciliation.
///
/// Reads installation appointments, customer-care memos, device fees, logistics orders,
/// expeditions, stock and the logistics operator's deliveries (export files or APIs),
/// normalizes them into typed tables, reconciles them, and publishes Parquet to a lake.
#[derive(Debug, Parser)]
#[command(name = "opslake", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Log format on stderr: human on a terminal, JSON otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "OPSLAKE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole job: read the inputs, normalize, reconcile and publish one committed run.
    ///
    /// With no flags it runs the embedded job (jobs/daily.toml): samples/ in, ./lake out.
    Run(RunArgs),
    /// Re-run the reconciliations on a day already published, and commit their tables.
    ///
    /// Reads the committed tables of the day given by --as-of (alias --run-date) and
    /// republishes the recon_* tables atomically; the day's other tables stay as they are.
    Reconcile(RunArgs),
    /// Pull every source from the job's APIs and commit only the raw responses of the day.
    ///
    /// Normalize them later, without the APIs, with `opslake normalize --from-raw DAY`.
    Extract(RunArgs),
    /// Normalize export files into a local folder, or replay a day from its raw API captures.
    ///
    /// With --out, the inputs are normalized into a folder laid out like the lake and nothing
    /// is published. With --from-raw DAY, the day's raw captures are read back from the lake
    /// and every later stage runs and commits, as the API run would have.
    Normalize {
        /// The job settings.
        #[command(flatten)]
        args: RunArgs,
        /// Folder to write the tables into.
        #[arg(long, conflicts_with = "from_raw", required_unless_present = "from_raw")]
        out: Option<PathBuf>,
        /// Replay this day (YYYY-MM-DD) from the lake's raw/ captures.
        #[arg(long, value_name = "RUN_DATE")]
        from_raw: Option<String>,
    },
    /// The fixture API server, for tests and demos.
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// Sample data for tests, demos and benchmarks.
    #[command(subcommand)]
    Samples(SamplesCommand),
    /// What ran: the committed runs recorded in the lake's manifests.
    #[command(subcommand)]
    Runs(RunsCommand),
}

/// The fixture API server.
#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Serve an export folder over the three APIs' paths on 127.0.0.1, until stopped.
    ///
    /// Prints `listening on http://127.0.0.1:PORT` first. Requests need
    /// `Authorization: Bearer KEY`. Faults are drawn from --seed, so a run is repeatable.
    Serve {
        /// The export folder (one sub-folder per source, tenants below).
        #[arg(long)]
        data: PathBuf,
        /// Port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The key clients must send.
        #[arg(
            long,
            env = "OPSLAKE_FIXTURE_API_KEY",
            default_value = "fixture-key",
            hide_env_values = true
        )]
        api_key: String,
        /// Share of requests answered 500 or 503.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Share of requests answered 429 with Retry-After.
        #[arg(long, default_value_t = 0.0)]
        rate_429: f64,
        /// Retry-After seconds on 429.
        #[arg(long, default_value_t = 1)]
        retry_after: u64,
        /// Milliseconds added to every answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Share of successful answers cut short (invalid JSON).
        #[arg(long, default_value_t = 0.0)]
        truncate_rate: f64,
        /// Seed of the fault decisions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Make next_request links point at another host.
        #[arg(long)]
        foreign_next: bool,
    },
}

/// Reading the run manifests.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every committed run, by day then commit: figures per run on one line.
    List {
        /// The job settings (the lake is its output).
        #[command(flatten)]
        args: RunArgs,
    },
    /// One run in full: inputs, rows per table, rejects, duration per stage.
    Show {
        /// The run id, as `runs list` prints it.
        run_id: String,
        /// The job settings (the lake is its output).
        #[command(flatten)]
        args: RunArgs,
    },
}

/// Sample data commands.
#[derive(Debug, Subcommand)]
pub enum SamplesCommand {
    /// Write seed-shaped appointments, one per line (the normalize benchmark's input).
    Appointments {
        /// How many.
        #[arg(long)]
        count: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The NDJSON file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a consistent generated universe of exports, in the layout of samples/.
    Generate {
        /// Number of orders; every other source is sized from it.
        #[arg(long, default_value_t = 1000)]
        orders: usize,
        /// Random seed: the same seed gives the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Folder to write into (one sub-folder per source).
        #[arg(long)]
        out: PathBuf,
        /// Leave out the appointments a reschedule superseded: the API serves only the latest
        /// appointment of a work order, so this universe reads the same through the fixtures.
        #[arg(long)]
        no_superseded: bool,
        /// File layout: the same records as many small files (a per-page / per-id API export,
        /// about half a file per order) or as one file per source and tenant.
        #[arg(long, value_enum, default_value_t = crate::samples::Layout::Default)]
        files: crate::samples::Layout,
    },
}

/// Settings of a run; each also reads its OPSLAKE_* variable.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Job file (TOML). Default: the embedded job, the same as jobs/daily.toml.
    #[arg(long, env = "OPSLAKE_JOB")]
    pub job: Option<PathBuf>,
    /// Folder of export files, one sub-folder per source.
    #[arg(long, env = "OPSLAKE_INPUT")]
    pub input: Option<String>,
    /// The lake: a folder, a file:// or a memory:// URL.
    #[arg(long, env = "OPSLAKE_OUTPUT")]
    pub output: Option<String>,
    /// Run date, YYYY-MM-DD or "today": the partition written and the reconciliations' day.
    #[arg(long, visible_alias = "run-date", env = "OPSLAKE_AS_OF")]
    pub as_of: Option<String>,
    /// IANA time zone of timestamps sent without one [default: Europe/Madrid].
    #[arg(long, env = "OPSLAKE_SOURCE_TIMEZONE")]
    pub source_timezone: Option<String>,
    /// Largest share of rejected records before the run fails [default: 0.01].
    #[arg(long, env = "OPSLAKE_MAX_REJECT_RATIO")]
    pub max_reject_ratio: Option<f64>,
    /// Raw text of rejects that are not valid JSON: redact (leave out) or keep.
    #[arg(long, value_enum, env = "OPSLAKE_REJECTS_RAW")]
    pub rejects_raw: Option<RejectsRawArg>,
    /// Days without a status change before an in-progress expedition is stuck [default: 7].
    #[arg(long, env = "OPSLAKE_STUCK_AFTER_DAYS")]
    pub stuck_after_days: Option<u32>,
    /// Worker threads for every stage [default: all cores].
    #[arg(long, env = "OPSLAKE_THREADS")]
    pub threads: Option<usize>,
    /// Input bytes per normalize batch [default: 16 MiB].
    #[arg(long, env = "OPSLAKE_BATCH_BYTES")]
    pub batch_bytes: Option<usize>,
    /// Local folder for the run's package when the lake is remote.
    #[arg(long, env = "OPSLAKE_WORK_DIR")]
    pub work_dir: Option<String>,
    /// Only these sources, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_SOURCES")]
    pub sources: Option<Vec<String>>,
    /// Personal data: hash identifiers with the key, or drop all personal data.
    #[arg(long, value_enum, env = "OPSLAKE_PII")]
    pub pii: Option<PiiArg>,
    /// File holding the PII key (a mounted secret).
    #[arg(long, env = "OPSLAKE_PII_KEY_FILE")]
    pub pii_key_file: Option<String>,
    /// Read and publish only this share of the day, i/n (0-based): the tenants whose stable
    /// hash is i modulo n. Shards commit independently; run `opslake reconcile` when all did.
    #[arg(long, env = "OPSLAKE_SHARD")]
    pub shard: Option<String>,
    /// Only these tables, comma-separated [default: all; a source's main table always].
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_TABLES")]
    pub tables: Option<Vec<String>>,
    /// Only these reconciliations, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', env = "OPSLAKE_RECONCILIATIONS")]
    pub reconciliations: Option<Vec<String>>,
}

/// `--rejects-raw`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RejectsRawArg {
    /// Leave the raw text out.
    Redact,
    /// Keep it.
    Keep,
}

/// `--pii`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PiiArg {
    /// Hash joinable identifiers with the key, drop names and streets.
    Hash,
    /// Drop all personal data (no key needed).
    Drop,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            input: self.input.clone(),
            output: self.output.clone(),
            as_of: self.as_of.clone(),
            source_timezone: self.source_timezone.clone(),
            max_reject_ratio: self.max_reject_ratio,
            rejects_raw: self.rejects_raw.map(|r| match r {
                RejectsRawArg::Redact => RejectsRaw::Redact,
                RejectsRawArg::Keep => RejectsRaw::Keep,
            }),
            stuck_after_days: self.stuck_after_days,
            threads: self.threads,
            batch_bytes: self.batch_bytes,
            work_dir: self.work_dir.clone(),
            sources: self.sources.clone(),
            pii: self.pii.map(|p| match p {
                PiiArg::Hash => PiiMode::Hash,
                PiiArg::Drop => PiiMode::Drop,
            }),
            pii_key_file: self.pii_key_file.clone(),
            shard: self.shard.clone(),
            tables: self.tables.clone(),
            reconciliations: self.reconciliations.clone(),
        }
    }

    /// The resolved job.
    pub fn job(&self) -> Result<job::Job, crate::Error> {
        let config = JobConfig::load(self.job.as_deref())?;
        let env = |k: &str| std::env::var(k).ok();
        Ok(job::resolve(config, &env, &self.overrides())?)
    }

    /// The resolved job, its API sections ignored (a replay needs no API).
    pub fn job_without_apis(&self) -> Result<job::Job, crate::Error> {
        let mut config = JobConfig::load(self.job.as_deref())?;
        config.api = None;
        let env = |k: &str| std::env::var(k).ok();
        Ok(job::resolve(config, &env, &self.overrides())?)
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.clamp(1, 4))
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Sizes polars' thread pool (read once, from this variable, on first use) and the allocator.
fn limit_threads(threads: usize) {
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        // SAFETY: called before any thread is started (no runtime, no polars pool yet).
        unsafe { std::env::set_var("POLARS_MAX_THREADS", threads.to_string()) };
    }
    limit_malloc_arenas(threads);
}

/// glibc gives up to 8 arenas per core, and each keeps the memory its threads freed: the
/// reconciliation's joins peaked 25% higher that way. One arena per worker thread costs the
/// normalize stage nothing measurable. An explicit `MALLOC_ARENA_MAX` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas(threads: usize) {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let arenas = libc::c_int::try_from(threads.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator tunable; arenas already created stay valid.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas(_threads: usize) {}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            let job = args.job()?;
            limit_threads(job.threads);
            if job.development_key {
                tracing::warn!(
                    "hashing personal data with the public DEVELOPMENT key: set OPSLAKE_PII_KEY for real data"
                );
            }
            let rt = runtime(job.threads)?;
            let report = pipeline::run(&job, &rt)?;
            print_summary(&report, &job);
            Ok(())
        }
        Command::Reconcile(args) => {
            let job = args.job()?;
            limit_threads(job.threads);
            let rt = runtime(job.threads)?;
            let (manifest, report) = pipeline::reconcile_day(&job, &rt)?;
            let mut o = String::new();
            use std::fmt::Write as _;
            let _ = writeln!(
                o,
                "opslake reconcile {} — {} committed (commit #{} of the day)",
                manifest.run_id, job.as_of, manifest.commit
            );
            write_recon_summary(&mut o, &report);
            std::io::stdout().lock().write_all(o.as_bytes())?;
            Ok(())
        }
        Command::Extract(args) => {
            let job = args.job()?;
            limit_threads(job.threads);
            let rt = runtime(job.threads)?;
            let manifest = pipeline::extract_day(&job, &rt)?;
            let mut o = String::new();
            use std::fmt::Write as _;
            let _ = writeln!(
                o,
                "opslake extract {} — {} raw captures committed (commit #{})",
                manifest.run_id, job.as_of, manifest.commit
            );
            write_extract(&mut o, manifest.extract.as_ref());
            std::io::stdout().lock().write_all(o.as_bytes())?;
            Ok(())
        }
        Command::Normalize {
            args,
            out: None,
            from_raw: Some(day),
        } => {
            let mut args = args;
            args.as_of = Some(day);
            let job = args.job_without_apis()?;
            limit_threads(job.threads);
            let rt = runtime(job.threads)?;
            let report = pipeline::run_from_raw(&job, &rt)?;
            print_summary(&report, &job);
            Ok(())
        }
        Command::Fixtures(FixturesCommand::Serve {
            data,
            port,
            api_key,
            error_rate,
            rate_429,
            retry_after,
            latency_ms,
            truncate_rate,
            seed,
            foreign_next,
        }) => {
            let rt = runtime(2)?;
            rt.block_on(async {
                let options = crate::fixtures::Options {
                    data: data.clone(),
                    port,
                    api_key,
                    error_rate,
                    rate_429,
                    retry_after_secs: retry_after,
                    latency_ms,
                    truncate_rate,
                    seed,
                    foreign_next,
                };
                let (base, server) = crate::fixtures::serve(options)
                    .await
                    .with_context(|| format!("cannot serve {}", data.display()))?;
                println!("listening on {base}");
                std::io::stdout().flush()?;
                server.await.context("the fixture server stopped")
            })
        }
        Command::Normalize { args, out, .. } => {
            let out = out.context("--out DIR or --from-raw DAY is required")?;
            let job = args.job()?;
            limit_threads(job.threads);
            let report = pipeline::normalize_into(&job, &out)?;
            let mut o = std::io::stdout().lock();
            for s in &report.sources {
                writeln!(
                    o,
                    "{:<20} read {:>9}  written {:>9}  rejects {:>6}  duplicates {:>6}",
                    s.name, s.records_read, s.rows_written, s.rejects, s.duplicates
                )?;
            }
            writeln!(o, "tables written under {}", out.display())?;
            Ok(())
        }
        Command::Runs(RunsCommand::List { args }) => {
            let job = args.job()?;
            let rt = runtime(1)?;
            let lake = crate::publish::Lake::open(&job.output)?;
            let runs = rt
                .block_on(crate::publish::all_runs(&lake))
                .map_err(crate::Error::from)?;
            std::io::stdout().lock().write_all(runs_table(&runs).as_bytes())?;
            Ok(())
        }
        Command::Runs(RunsCommand::Show { run_id, args }) => {
            let job = args.job()?;
            let rt = runtime(1)?;
            let lake = crate::publish::Lake::open(&job.output)?;
            let runs = rt
                .block_on(crate::publish::all_runs(&lake))
                .map_err(crate::Error::from)?;
            let run = runs
                .iter()
                .find(|r| r.run_id == run_id)
                .with_context(|| format!("no committed run {run_id} in {}: see `opslake runs list`", lake.url))?;
            std::io::stdout().lock().write_all(run_details(run).as_bytes())?;
            Ok(())
        }
        Command::Samples(SamplesCommand::Appointments { count, seed, out }) => {
            let stats = crate::samples::write_appointments(count, seed, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {count} appointments ({} bytes) to {}",
                stats.bytes,
                out.display()
            );
            Ok(())
        }
        Command::Samples(SamplesCommand::Generate {
            orders,
            seed,
            out,
            no_superseded,
            files,
        }) => {
            let universe = crate::samples::Universe {
                orders,
                seed,
                superseded: !no_superseded,
            };
            let stats = crate::samples::generate_as(&universe, files, &out)
                .with_context(|| format!("cannot write samples into {}", out.display()))?;
            println!(
                "wrote {} files ({} bytes) for {orders} orders under {}",
                stats.files,
                stats.bytes,
                out.display()
            );
            Ok(())
        }
    }
}

fn write_recon_summary(o: &mut String, r: &crate::reconcile::ReconcileReport) {
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "\n{:<26} {:<18} {:>10} {:>16} {:>10}",
        "reconciliation", "state", "count", "amount (EUR)", "quantity"
    );
    for s in &r.summary {
        let _ = writeln!(
            o,
            "{:<26} {:<18} {:>10} {:>16} {:>10}",
            s.reconciliation,
            s.state,
            s.count,
            s.amount.as_deref().map(money).unwrap_or_default(),
            s.quantity.map(|q| q.to_string()).unwrap_or_default()
        );
    }
}

/// Two decimals for the terminal (the tables keep four).
fn money(text: &str) -> String {
    match text.split_once('.') {
        Some((units, frac)) => format!("{units}.{:0<2}", &frac[..frac.len().min(2)]),
        None => format!("{text}.00"),
    }
}

fn write_extract(o: &mut String, r: Option<&crate::extract::http::ExtractReport>) {
    use std::fmt::Write as _;
    let Some(r) = r else { return };
    let _ = writeln!(
        o,
        "\n{:<20} {:<14} {:>10} {:>10} {:>8}",
        "extracted", "api", "responses", "not found", "tenants"
    );
    for s in &r.sources {
        let _ = writeln!(
            o,
            "{:<20} {:<14} {:>10} {:>10} {:>8}",
            s.source,
            s.api,
            s.responses,
            s.not_found,
            s.tenants.len()
        );
    }
    for (api, s) in &r.apis {
        let _ = writeln!(
            o,
            "{api}: {} requests, {} retried (429: {}, 5xx: {}, network: {}, bad body: {})",
            s.requests, s.retries, s.retried_429, s.retried_5xx, s.retried_network, s.retried_invalid_body
        );
    }
}

fn print_summary(report: &RunReport, job: &job::Job) {
    let m = &report.manifest;
    let mut o = String::new();
    let total = |f: fn(&crate::normalize::SourceReport) -> u64| report.normalize.sources.iter().map(f).sum::<u64>();
    let read = total(|s| s.records_read);
    let rejects = total(|s| s.rejects);
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "opslake run {} — {} {} committed (commit #{} of the day)",
        m.run_id, m.job, job.as_of, m.commit
    );
    write_extract(&mut o, m.extract.as_ref());
    write_sources(&mut o, &m.sources);
    write_tables(&mut o, &m.tables);
    write_recon_summary(&mut o, &report.reconcile);
    let ratio = if read > 0 {
        100.0 * rejects as f64 / read as f64
    } else {
        0.0
    };
    let _ = writeln!(
        o,
        "\nrejects: {rejects} of {read} records ({ratio:.2}%, allowed {:.2}%) — see the _rejects table",
        100.0 * job.max_reject_ratio
    );
    for w in &m.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    let seconds: f64 = m.stages.iter().map(|s| s.seconds).sum();
    let _ = writeln!(
        o,
        "published to {} (run_date={}) in {seconds:.1}s; personal data: {}",
        m.output, job.as_of, m.pii.key
    );
    let _ = std::io::stdout().lock().write_all(o.as_bytes());
}

/// Per source: files, records read and written, rejects, duplicates collapsed.
fn write_sources(o: &mut String, sources: &[crate::publish::manifest::SourceManifest]) {
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "\n{:<20} {:>6} {:>10} {:>10} {:>8} {:>6}",
        "source", "files", "read", "written", "rejects", "dups"
    );
    for s in sources {
        let _ = writeln!(
            o,
            "{:<20} {:>6} {:>10} {:>10} {:>8} {:>6}",
            s.name,
            s.files.len(),
            s.records_read,
            s.rows_written,
            s.rejects,
            s.duplicates
        );
    }
}

/// Per table: rows and parts.
fn write_tables(o: &mut String, tables: &std::collections::BTreeMap<String, crate::publish::manifest::TableManifest>) {
    use std::fmt::Write as _;
    let _ = writeln!(o, "\n{:<38} {:>10} {:>6}", "table", "rows", "parts");
    for (name, t) in tables {
        let _ = writeln!(o, "{:<38} {:>10} {:>6}", name, t.rows, t.parts.len());
    }
}

fn runs_table(runs: &[crate::publish::RunManifest]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<11} {:>6}  {:<22} {:<10} {:<20} {:>9} {:>11} {:>8} {:>7} {:>8}",
        "run_date", "commit", "run_id", "job", "committed (UTC)", "seconds", "rows", "rejects", "dups", "warnings"
    );
    for r in runs {
        let rows: u64 = r.tables.values().map(|t| t.rows).sum();
        let seconds: f64 = r.stages.iter().map(|s| s.seconds).sum();
        let _ = writeln!(
            o,
            "{:<11} {:>6}  {:<22} {:<10} {:<20} {:>9.1} {:>11} {:>8} {:>7} {:>8}",
            r.run_date.map(|d| d.to_string()).unwrap_or_default(),
            r.commit,
            r.run_id,
            match &r.shard {
                Some(s) => format!("{} {s}", r.job),
                None => r.job.clone(),
            },
            r.committed_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            seconds,
            rows,
            r.rejects,
            r.duplicates,
            r.warnings.len()
        );
    }
    if runs.is_empty() {
        o.push_str("(no committed runs)\n");
    }
    o
}

fn run_details(r: &crate::publish::RunManifest) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "run {}  job {}  run_date {}  commit #{}",
        r.run_id,
        r.job,
        r.run_date.map(|d| d.to_string()).unwrap_or_default(),
        r.commit
    );
    let _ = writeln!(
        o,
        "started {}  committed {}  code {}",
        r.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        r.committed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        r.code_version
    );
    let _ = writeln!(
        o,
        "input {}\noutput {}\npersonal data: {} ({})",
        r.input, r.output, r.pii.mode, r.pii.key
    );
    let _ = writeln!(o, "\n{:<12} {:>10} {:>8}", "stage", "seconds", "rows");
    for s in &r.stages {
        let _ = writeln!(o, "{:<12} {:>10.2} {:>8}", s.name, s.seconds, s.rows);
    }
    write_sources(&mut o, &r.sources);
    let _ = writeln!(o, "\ninputs:");
    for s in &r.sources {
        for f in &s.files {
            let _ = writeln!(
                o,
                "  {:<60} {:>12} bytes {:>9} records  {}",
                f.name, f.bytes, f.records, f.checksum
            );
        }
    }
    write_tables(&mut o, &r.tables);
    let _ = writeln!(o, "\nrejects {}  duplicates {}", r.rejects, r.duplicates);
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}
