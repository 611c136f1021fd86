//! Integration tests of the `statuslab` command line, one binary: the built executable (exit
//! codes, stdout, stderr) and the in-process API (`statuslab::run`).

mod config_file;
mod configuration;
mod container;
mod crash;
mod errors;
mod explain;
mod help;
mod list;
mod live;
mod probe;
mod project_files;
mod redis;
mod secrets;
mod serve;

use clap::Parser;
use statuslab::{Cli, Failure};
use std::fmt::Debug;

/// Runs `f` on every case and fails once, listing every case that failed.
#[track_caller]
pub(crate) fn check<T: Debug>(
    cases: impl IntoIterator<Item = T>,
    f: impl Fn(&T) -> Result<(), String>,
) {
    let mut failures = Vec::new();
    let mut n = 0usize;
    for case in cases {
        n += 1;
        if let Err(why) = f(&case) {
            failures.push(format!("  {case:?}: {why}"));
        }
    }
    assert!(n > 0, "check() was given no cases");
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What a run of the built `statuslab` binary produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the built `statuslab` executable with `args`.
pub(crate) fn statuslab(args: &[&str]) -> Outcome {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_statuslab"))
        .args(args)
        // A panic would print its backtrace, which the error tests look for.
        .env("RUST_BACKTRACE", "1")
        .env_remove("STATUSLAB_LISTEN")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("run statuslab");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `statuslab ARGS` in-process and returns what it wrote.
pub(crate) fn run(args: &[&str]) -> Result<String, Failure> {
    let cli = Cli::try_parse_from(std::iter::once("statuslab").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("parsing {args:?}: {e}"));
    let mut out = Vec::new();
    statuslab::run(cli, &mut out)?;
    Ok(String::from_utf8(out).expect("output is UTF-8"))
}

/// Like [`run`], for commands that must succeed.
pub(crate) fn run_ok(args: &[&str]) -> String {
    match run(args) {
        Ok(s) => s,
        Err(e) => panic!("statuslab {args:?} failed: {e:?}"),
    }
}

/// One row of the user's table, read from the catalog's TSV file by the test itself.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) code: u16,
    pub(crate) message: String,
    pub(crate) description: String,
}

/// The table's rows, in table order.
pub(crate) fn table_rows() -> Vec<Row> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog/data/status-codes.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "three columns in {l:?}");
            Row {
                code: cols[0].parse().expect("code"),
                message: cols[1].into(),
                description: cols[2].into(),
            }
        })
        .collect()
}

/// Parses JSON output.
pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}
