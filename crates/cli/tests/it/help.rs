//! `--help` and `--version`, and clap's own consistency checks.

use crate::{check, statuslab};
use clap::CommandFactory;
use statuslab::Cli;

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn help_has_examples() {
    check(
        [
            &["--help"][..],
            &["explain", "--help"][..],
            &["list", "--help"][..],
            &["serve", "--help"][..],
            &["probe", "--help"][..],
            &["help", "list"][..],
        ],
        |args| {
            let o = statuslab(args);
            if o.code != Some(0) {
                return Err(format!("exit {:?}, stderr {:?}", o.code, o.stderr));
            }
            if !o.stdout.contains("Examples") {
                return Err(format!("no Examples in {:?}", o.stdout));
            }
            if !o.stdout.contains("Usage: statuslab") {
                return Err("no usage line".into());
            }
            if !o.stderr.is_empty() {
                Err(format!("stderr {:?}", o.stderr))
            } else {
                Ok(())
            }
        },
    );
}

#[test]
fn top_level_help_names_the_commands() {
    let out = statuslab(&["--help"]).stdout;
    for cmd in ["explain", "list", "serve", "probe"] {
        assert!(out.contains(cmd), "{cmd} in {out}");
    }
}

#[test]
fn version_prints_the_version() {
    let want = format!("statuslab {}\n", env!("CARGO_PKG_VERSION"));
    check([&["--version"][..], &["-V"][..]], |args| {
        let o = statuslab(args);
        if o.code != Some(0) || o.stdout != want || !o.stderr.is_empty() {
            return Err(format!("{o:?}"));
        }
        Ok(())
    });
}
