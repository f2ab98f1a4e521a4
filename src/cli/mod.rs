//! The command line: one variant per command; the doc comments are the `--help`. A command
//! resolves its job, starts a [`Run`] and calls the pipeline; printing lives in [`report`].

mod report;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser, Subcommand, ValueEnum};

use crate::job::{AsOf, Job, JobArgs};
use crate::pipeline::{self, Run};
use crate::sources::SOURCES;

/// opslake: telecom back-office ETL and reconciliation.
///
/// Reads installation appointments, customer-care memos, device fees, logistics orders,
/// expeditions, stock and the logistics operator's deliveries (export files or APIs),
/// normalizes them into typed tables, reconciles them, and publishes Parquet to a lake.
#[derive(Debug, Parser)]
#[command(name = "opslake", version, after_help = crate::error::exit::help())]
pub struct Cli {
    /// Log format on stderr: human on a terminal, JSON otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "OPSLAKE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Which logs to write: RUST_LOG-style directives ("info", "opslake=debug,warn").
    /// Without it or OPSLAKE_LOG, RUST_LOG is honoured, else opslake's and object storage's
    /// "info" and other crates' "warn".
    #[arg(long, global = true, env = "OPSLAKE_LOG", value_name = "FILTER")]
    pub log: Option<String>,

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
    Run(JobArgs),
    /// Re-run the reconciliations on a day already published, and commit their tables.
    ///
    /// Reads the committed tables of the day given by --as-of (alias --run-date) and
    /// republishes the recon_* tables atomically; the day's other tables stay as they are.
    Reconcile(JobArgs),
    /// Pull every source from the job's APIs and commit only the raw responses of the day.
    ///
    /// Normalize them later, without the APIs, with `opslake normalize --from-raw DAY`.
    Extract(JobArgs),
    /// Normalize export files into a local folder, or replay a day from its raw API captures.
    ///
    /// With --out, the inputs are normalized into a folder laid out like the lake and nothing
    /// is published. With --from-raw DAY, the day's raw captures are read back from the lake
    /// and every later stage runs and commits, as the API run would have.
    Normalize {
        /// The job settings.
        #[command(flatten)]
        args: JobArgs,
        /// Folder to write the tables into.
        #[arg(long, conflicts_with = "from_raw", required_unless_present = "from_raw")]
        out: Option<PathBuf>,
        /// Replay this day (YYYY-MM-DD) from the lake's raw/ captures.
        #[arg(long, value_name = "RUN_DATE")]
        from_raw: Option<NaiveDate>,
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
    /// Delete the lake's files that no table version newer than the retention needs.
    ///
    /// Replaced days' files, and files a killed run uploaded but never committed, are kept
    /// until they are older than --retention-hours (7 days by default, as Delta does), so a
    /// reader of an older version ("the lake as of yesterday's run") keeps working.
    Vacuum {
        /// The job settings (the lake is its output).
        #[command(flatten)]
        args: JobArgs,
        /// Keep files replaced or written less than this many hours ago.
        #[arg(long, default_value_t = 168)]
        retention_hours: u32,
        /// List what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
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
        /// Announce this total_pages on every numbered page.
        #[arg(long)]
        total_pages: Option<u64>,
        /// Serve the first N requests for a numbered page past the first from a collection
        /// shifted by one item (as when an item is inserted while a client pages).
        #[arg(long, default_value_t = 0)]
        shift_pages: u64,
        /// Make next_request links never end (new offsets, items cycling).
        #[arg(long)]
        endless_next: bool,
    },
}

/// Reading the run manifests.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every committed run, by day then commit: figures per run on one line.
    List {
        /// The job settings (the lake is its output).
        #[command(flatten)]
        args: JobArgs,
    },
    /// One run in full: inputs, rows per table, rejects, duration per stage.
    Show {
        /// The run id, as `runs list` prints it.
        run_id: String,
        /// The job settings (the lake is its output).
        #[command(flatten)]
        args: JobArgs,
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
        /// Role lists in random orders, role names in random spellings and aliases, unknown
        /// roles, instants with offsets or as local time.
        #[arg(long)]
        varied: bool,
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

/// The job of a command: its file's keys under the flags and variables given (`matches` are
/// the command line's, from which the given ones are known).
fn resolve(args: &JobArgs, matches: &ArgMatches, also_given: &[&str]) -> anyhow::Result<Job> {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    let given = |id: &str| {
        also_given.contains(&id)
            || (leaf.ids().any(|i| i.as_str() == id)
                && matches!(
                    leaf.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                ))
    };
    Ok(args
        .resolve(&given, &|k| std::env::var(k).ok())
        .map_err(crate::Error::from)?)
}

/// `args` for a command that reads no personal data (the run records): it needs no PII key.
fn no_personal_data(mut args: JobArgs) -> JobArgs {
    args.settings.pii = crate::schema::pii::PiiMode::Drop;
    args
}

/// Starts a run of `job` (every check that needs no work first).
fn start(job: Job) -> anyhow::Result<Run> {
    let run = Run::start(job, SOURCES)?;
    if run.job.development_key {
        tracing::warn!("hashing personal data with the public DEVELOPMENT key: set OPSLAKE_PII_KEY for real data");
    }
    Ok(run)
}

/// Runs a parsed command line; `matches` tell which settings were given.
pub fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    let mut text = String::new();
    match cli.command {
        Command::Run(args) => {
            let run = start(resolve(&args, matches, &[])?)?;
            let report = pipeline::run(&run, None)?;
            report::summary(&mut text, &report, &run.job);
        }
        Command::Reconcile(args) => {
            let run = start(resolve(&args, matches, &[])?)?;
            let (manifest, reconciled) = pipeline::reconcile_day(&run)?;
            report::reconciled(&mut text, &manifest, &reconciled);
        }
        Command::Extract(args) => {
            let run = start(resolve(&args, matches, &[])?)?;
            let manifest = pipeline::extract_day(&run)?;
            report::extracted(&mut text, &manifest);
        }
        Command::Normalize {
            mut args,
            out: None,
            from_raw: Some(day),
        } => {
            // A replay reads the day's raw captures: it needs no API, only the lake.
            args.settings.as_of = AsOf::Day(day);
            let mut job = resolve(&args, matches, &["as_of"])?;
            // Raw captures are real data, whatever the job's input folder holds.
            if job.development_key && !job.settings.allow_development_key {
                return Err(crate::Error::from(crate::job::Error::MissingPiiKey).into());
            }
            job.settings.api.clear();
            let run = start(job)?;
            let report = pipeline::replay(&run)?;
            report::summary(&mut text, &report, &run.job);
        }
        Command::Normalize { args, out: dir, .. } => {
            let dir = dir.context("--out DIR or --from-raw DAY is required")?;
            let job = resolve(&args, matches, &[])?;
            let report = pipeline::normalize_into(&job, SOURCES, &dir)?;
            report::normalized(&mut text, &report, &dir);
        }
        Command::Vacuum {
            args,
            retention_hours,
            dry_run,
        } => {
            let job = resolve(&args, matches, &[])?;
            let lake = pipeline::open_lake(&job.settings.output)?;
            let retention = chrono::Duration::hours(i64::from(retention_hours));
            let deleted = pipeline::runtime(1)?
                .block_on(crate::publish::vacuum(&lake, retention, dry_run))
                .map_err(crate::Error::from)?;
            report::vacuumed(&mut text, &deleted, dry_run);
        }
        Command::Runs(RunsCommand::List { args }) => {
            let job = resolve(&no_personal_data(args), matches, &["pii"])?;
            let lake = pipeline::open_lake(&job.settings.output)?;
            let runs = pipeline::runtime(1)?
                .block_on(pipeline::record::all(&lake))
                .map_err(crate::Error::from)?;
            report::runs(&mut text, &runs);
        }
        Command::Runs(RunsCommand::Show { run_id, args }) => {
            let job = resolve(&no_personal_data(args), matches, &["pii"])?;
            let lake = pipeline::open_lake(&job.settings.output)?;
            let runs = pipeline::runtime(1)?
                .block_on(pipeline::record::all(&lake))
                .map_err(crate::Error::from)?;
            let Some(run) = runs.iter().find(|r| r.run_id == run_id) else {
                return Err(crate::Error::from(crate::job::Error::UnknownRun {
                    run_id,
                    url: lake.url.clone(),
                })
                .into());
            };
            report::run_details(&mut text, run);
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
            total_pages,
            shift_pages,
            endless_next,
        }) => {
            pipeline::runtime(2)?.block_on(async {
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
                    total_pages,
                    shift_pages,
                    endless_next,
                };
                let (base, server) = crate::fixtures::serve(options)
                    .await
                    .with_context(|| format!("cannot serve {}", data.display()))?;
                println!("listening on {base}");
                std::io::stdout().flush()?;
                server.await.context("the fixture server stopped")
            })?;
        }
        Command::Samples(SamplesCommand::Appointments {
            count,
            seed,
            varied,
            out,
        }) => {
            let stats = crate::samples::write_appointments(count, seed, varied, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {count} appointments ({} bytes) to {}",
                stats.bytes,
                out.display()
            );
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
        }
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
