//! The `statuslab` command line: parses arguments and wires the library crates together.
//!
//! `main.rs` only calls [`main`]; tests call [`run`] in-process with their own output buffers.

mod catalog_cmd;
mod config_file;
mod docs_cmd;
mod probe_cmd;
mod serve_cmd;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::Write;

/// Make the HTTP status-code table executable.
#[derive(Debug, Parser)]
#[command(name = "statuslab", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  statuslab serve                      # every status code on 127.0.0.1:8080\n  statuslab explain 504                # what 504 means and what a client should do\n  statuslab explain too large          # find codes by words: every match is listed\n  statuslab list --class 4xx --json"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// statuslab's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain a status code: the table's message and description, the RFC meaning, what a
    /// client should do next, the headers the response carries, and where the table and the RFC differ.
    #[command(
        after_help = "Examples:\n  statuslab explain 404\n  statuslab explain NotFound        # by the table's message, any case\n  statuslab explain too large        # by words: every code whose text has them all\n  statuslab explain 504 --json"
    )]
    Explain(catalog_cmd::ExplainArgs),
    /// List the catalog as an aligned table.
    #[command(
        after_help = "Examples:\n  statuslab list\n  statuslab list --class 4xx\n  statuslab list --table-only --json"
    )]
    List(catalog_cmd::ListArgs),
    /// Serve every status code over HTTP/1.1 and HTTP/2 (h2c).
    #[command(after_help = serve_cmd::after_help())]
    Serve(Box<serve_cmd::ServeArgs>),
    /// Probe another server: check its answers against the table and RFC 9110, per check.
    #[command(after_help = probe_cmd::AFTER_HELP)]
    Probe(Box<probe_cmd::ProbeArgs>),
    /// Print a shell completion script for statuslab.
    #[command(after_help = docs_cmd::COMPLETIONS_HELP)]
    Completions(docs_cmd::CompletionsArgs),
    /// Print the manual page (roff) of statuslab and its commands.
    #[command(after_help = docs_cmd::MAN_HELP)]
    Man(docs_cmd::ManArgs),
}

/// A failure the user caused (exit code 2) or the environment caused (exit code 1).
#[derive(Debug)]
pub enum Failure {
    /// Bad input: a one-line message, exit code 2.
    Usage(String),
    /// The command could not do its work: exit code 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Runtime(e)
    }
}

/// Runs a parsed command, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Failure> {
    match cli.command {
        Command::Explain(args) => catalog_cmd::explain(&args, out),
        Command::List(args) => catalog_cmd::list(&args, out),
        Command::Serve(args) => serve_cmd::serve(*args),
        Command::Probe(args) => probe_cmd::probe(&args, out),
        Command::Completions(args) => docs_cmd::completions(&args, out),
        Command::Man(args) => docs_cmd::man(&args, out),
    }
}

/// Why the command line could not be parsed.
#[derive(Debug)]
pub enum ParseError {
    /// clap's own error (also `--help` and `--version`, which are not failures).
    Clap(clap::Error),
    /// A bad `serve --config` file or value in it: one line naming the file and the key.
    Config(String),
}

/// Parses the command line like `Cli::try_parse_from`, then fills in `serve`'s values that
/// neither a flag nor a variable set from its `--config` file (or `STATUSLAB_CONFIG`).
pub fn parse_from(args: &[std::ffi::OsString]) -> Result<Cli, ParseError> {
    let cmd = Cli::command();
    let mut matches = cmd
        .clone()
        .try_get_matches_from(args)
        .map_err(ParseError::Clap)?;
    if let Some(("serve", sub)) = matches.subcommand()
        && let Some(path) = sub.get_one::<std::path::PathBuf>("config")
    {
        let serve = cmd.find_subcommand("serve").expect("serve is a command");
        let from = if sub.value_source("config") == Some(clap::parser::ValueSource::EnvVariable) {
            " (from STATUSLAB_CONFIG)"
        } else {
            ""
        };
        let (extra, keys) = config_file::arguments(path, serve, sub)
            .map_err(|e| ParseError::Config(format!("{e}{from}")))?;
        if !extra.is_empty() {
            let mut all = args.to_vec();
            all.extend(extra);
            matches =
                cmd.try_get_matches_from(&all)
                    .map_err(|e| match value_error_line(&e, &all) {
                        Some(line) => ParseError::Config(in_file(line, &e, &keys, path)),
                        None => ParseError::Clap(e),
                    })?;
        }
    }
    Cli::from_arg_matches(&matches).map_err(ParseError::Clap)
}

/// A value error about a flag whose value came from the config file names the key and the
/// file instead of the flag: `invalid value 'x' for max-body in statuslab.toml: …`.
fn in_file(line: String, e: &clap::Error, keys: &[String], path: &std::path::Path) -> String {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return line;
    };
    let Some(key) = arg
        .split_whitespace()
        .next()
        .and_then(|flag| flag.strip_prefix("--"))
        .filter(|key| keys.iter().any(|k| k == key))
    else {
        return line;
    };
    line.replacen(
        &format!("'{arg}'"),
        &format!("{key} in {}", path.display()),
        1,
    )
}

/// The whole program: parse, run, map failures to exit codes (2 for bad input, 1 otherwise).
pub fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match parse_from(&args) {
        Ok(cli) => cli,
        Err(ParseError::Config(line)) => {
            eprintln!("error: {line}");
            return std::process::ExitCode::from(2);
        }
        Err(ParseError::Clap(e)) => {
            if let Some(line) = value_error_line(&e, &args) {
                eprintln!("error: {line}");
                return std::process::ExitCode::from(2);
            }
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let mut stdout = std::io::stdout().lock();
    match run(cli, &mut stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            std::process::ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// A bad value for a flag (or its environment variable) as one line without the `error: `
/// prefix: clap's first line, the accepted values when clap lists them on further lines, and
/// the variable the value came from when it was not on the command line. `None` for other
/// errors (an unknown flag, a missing argument), which keep clap's usage hint.
fn value_error_line(e: &clap::Error, args: &[std::ffi::OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let rendered = e.render().to_string();
    let mut line = rendered
        .lines()
        .next()?
        .strip_prefix("error: ")?
        .trim_end()
        .to_owned();
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue)
        && let [init @ .., last] = valid.as_slice()
    {
        let expected = if init.is_empty() {
            last.clone()
        } else {
            format!("{} or {last}", init.join(", "))
        };
        line.push_str(&format!(": expected {expected}"));
    }
    let (flag, quoted) = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(a)) => (
            a.split_whitespace().next().unwrap_or_default(),
            format!("'{a}'"),
        ),
        _ => return Some(line),
    };
    let Some(long) = flag.strip_prefix("--") else {
        return Some(line);
    };
    let on_command_line = args.iter().skip(1).any(|a| {
        a.to_str().is_some_and(|a| {
            a.strip_prefix(flag)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        })
    });
    let cmd = <Cli as clap::CommandFactory>::command();
    let arg = std::iter::once(&cmd)
        .chain(cmd.get_subcommands())
        .flat_map(clap::Command::get_arguments)
        .find(|a| a.get_long() == Some(long));
    if let Some(arg) = arg {
        if arg.is_hide_env_values_set()
            && let Some(ContextValue::String(v)) = e.get(ContextKind::InvalidValue)
        {
            line = line.replace(&format!("'{v}'"), "(hidden)");
        }
        if let Some(var) = arg.get_env()
            && !on_command_line
            && std::env::var_os(var).is_some()
        {
            let from = format!("{quoted} (from {})", var.to_string_lossy());
            line = line.replacen(&quoted, &from, 1);
        }
    }
    Some(line)
}

/// A reader that went away (`statuslab list | head`) is not an error worth reporting.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
