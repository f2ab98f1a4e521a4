//! The `opslake` binary: parse, set up logging, run, map the error to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use opslake::cli::{self, Cli, LogFormat};

fn main() -> ExitCode {
    // The matches are kept: they tell which settings were given (they beat the job file).
    let matches = Cli::command().try_get_matches().unwrap_or_else(|e| exit_with(e));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Err(why) = init_tracing(cli.log_format, cli.log.as_deref()) {
        eprintln!("error: {why}");
        return ExitCode::from(opslake::error::exit::CONFIG);
    }
    match cli::run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            let code = e
                .downcast_ref::<opslake::Error>()
                .map_or(opslake::error::exit::INTERNAL, opslake::Error::exit_code);
            ExitCode::from(code)
        }
    }
}

/// The error and its causes, each once: many messages already quote their cause.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// The default log filter: opslake's own events and object storage's retries from `info`,
/// other crates' from `warn`. The Delta kernel logs ~30 lines per table committed at `info`,
/// and an `error` each time it finds that a table has no log yet, which is how every table
/// of a new lake starts (opslake then creates it; a real failure reaches opslake as an error
/// and is reported as one).
const DEFAULT_LOG: &str = "warn,opslake=info,object_store=info,buoyant_kernel::snapshot::builder=off";

/// Logs on stderr, filtered by `--log`/`OPSLAKE_LOG`, else `RUST_LOG` (the habit of every Rust
/// tool's operators), else [`DEFAULT_LOG`]. A filter that does not parse is a configuration
/// error: silently logging at another level would hide what the operator asked to see.
fn init_tracing(format: LogFormat, log: Option<&str>) -> Result<(), String> {
    let (directives, origin) = match (log, std::env::var("RUST_LOG")) {
        (Some(l), _) => (l.to_string(), "--log / OPSLAKE_LOG"),
        (None, Ok(r)) if !r.trim().is_empty() => (r, "RUST_LOG"),
        _ => (DEFAULT_LOG.to_string(), "the default"),
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| {
            format!("bad log filter {directives:?} (from {origin}): {e}; e.g. \"info\" or \"opslake=debug\"")
        })?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_target(false).compact().init();
    }
    Ok(())
}

/// Exits for a command-line error; a bad setting value reads as it does from the job file
/// (`bad as_of "yesterday": ...`), naming the setting.
fn exit_with(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::ValueValidation {
        let context = |kind| match e.get(kind) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        if let (Some(arg), Some(value)) = (context(ContextKind::InvalidArg), context(ContextKind::InvalidValue)) {
            let setting = arg
                .trim_start_matches('-')
                .split([' ', '='])
                .next()
                .unwrap_or_default()
                .replace('-', "_");
            let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
            eprintln!("error: bad {setting} {value:?}: {why} (from {arg})");
            std::process::exit(i32::from(opslake::error::exit::CONFIG));
        }
    }
    e.exit()
}
