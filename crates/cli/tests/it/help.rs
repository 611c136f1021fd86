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
    for cmd in ["explain", "list", "serve"] {
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

/// Every help screen, long form, as printed without a terminal.
fn help_screens() -> Vec<(Vec<&'static str>, String)> {
    [
        &["--help"][..],
        &["explain", "--help"][..],
        &["list", "--help"][..],
        &["serve", "--help"][..],
    ]
    .into_iter()
    .map(|args| (args.to_vec(), statuslab(args).stdout))
    .collect()
}

/// The texts a command's help is made of.
fn help_sources(cmd: &clap::Command) -> Vec<String> {
    let mut texts: Vec<String> = [
        cmd.get_about(),
        cmd.get_long_about(),
        cmd.get_after_help(),
        cmd.get_after_long_help(),
    ]
    .into_iter()
    .flatten()
    .map(ToString::to_string)
    .collect();
    for arg in cmd.get_arguments() {
        texts.extend(
            [arg.get_help(), arg.get_long_help()]
                .into_iter()
                .flatten()
                .map(ToString::to_string),
        );
    }
    for sub in cmd.get_subcommands() {
        texts.extend(help_sources(sub));
    }
    texts
}

/// clap reads `{n}` in help text as a line break; every `{...}` placeholder the help texts
/// write (routes such as `/rate-limit/{n}/{period}`) must be printed as written.
#[test]
fn braces_in_help_texts_are_printed_as_written() {
    let printed: String = help_screens().into_iter().map(|(_, out)| out).collect();
    let mut tokens: Vec<String> = Vec::new();
    for text in help_sources(&Cli::command()) {
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            tokens.push(rest[open..open + close + 1].to_owned());
            rest = &rest[open + close + 1..];
        }
    }
    assert!(tokens.contains(&"{n}".to_owned()), "{tokens:?}");
    check(tokens, |t| {
        if printed.contains(t.as_str()) {
            Ok(())
        } else {
            Err("not printed".into())
        }
    });
    let serve = statuslab(&["serve", "--help"]).stdout;
    assert!(
        serve
            .lines()
            .any(|l| l.trim_start().starts_with("/rate-limit/{n}/{period}  429")),
        "{serve}"
    );
}

/// `/bearer` answers 200 or 401, never 403: the help must not say otherwise.
#[test]
fn serve_help_gives_bearer_its_real_codes() {
    let serve = statuslab(&["serve", "--help"]).stdout;
    let line = serve
        .lines()
        .find(|l| l.contains("/bearer"))
        .unwrap_or_else(|| panic!("/bearer in {serve}"));
    assert!(line.contains("401"), "{line}");
    assert!(!line.contains("403"), "{line}");
}

/// There is no probe command yet, so no help screen promises one.
#[test]
fn help_mentions_no_probe() {
    check(help_screens(), |(args, out)| {
        if out.to_ascii_lowercase().contains("probe") {
            Err(format!("{args:?} mentions a probe:\n{out}"))
        } else {
            Ok(())
        }
    });
}
