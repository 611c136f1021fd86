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
            &["completions", "--help"][..],
            &["man", "--help"][..],
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
    for cmd in ["explain", "list", "serve", "probe", "completions", "man"] {
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

/// The top-level help lists the probe command, now that there is one.
#[test]
fn help_lists_the_probe() {
    let top = help_screens()
        .into_iter()
        .find(|(args, _)| args.as_slice() == ["--help"])
        .map(|(_, out)| out)
        .expect("the top-level help screen");
    assert!(
        top.lines().any(|l| l.trim_start().starts_with("probe ")),
        "{top}"
    );
}

/// The README's flag table lists every `serve` flag with its variable and default, as clap
/// has them, and nothing else.
#[test]
fn readme_flag_table_matches_serve_flags() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = readme
        .split("### Flags")
        .nth(1)
        .expect("a Flags section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    // flag -> (variable, default cell)
    let mut rows = std::collections::BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (flags, vars) = (ticked(cells[0]), ticked(cells[1]));
        assert_eq!(flags.len(), vars.len(), "{line}");
        for (flag, var) in flags.into_iter().zip(vars) {
            rows.insert(flag, (var, cells[2].trim().to_owned()));
        }
    }
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let mut flags = std::collections::BTreeMap::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let var = arg
            .get_env()
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("--{long} has no variable"));
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        flags.insert(format!("--{long}"), (var, default));
    }
    let listed: Vec<&String> = rows.keys().collect();
    let real: Vec<&String> = flags.keys().collect();
    assert_eq!(listed, real, "README flags vs serve flags");
    check(flags, |(flag, (var, default))| {
        let (readme_var, readme_default) = &rows[flag];
        if readme_var != var {
            return Err(format!("README says {readme_var}, clap {var}"));
        }
        match default.as_slice() {
            // On/off flags default to off.
            [d] if d == "false" => (readme_default == "off")
                .then_some(())
                .ok_or_else(|| format!("default {readme_default}, want off")),
            [d] => (readme_default == &format!("`{d}`"))
                .then_some(())
                .ok_or_else(|| format!("default {readme_default}, clap {d}")),
            _ => (!readme_default.starts_with('`'))
                .then_some(())
                .ok_or_else(|| format!("README default {readme_default}, clap none")),
        }
    });
}

/// `statuslab completions SHELL`: a script for each shell clap_complete knows, naming the
/// commands and the flags.
#[test]
fn completions_name_the_commands_and_flags() {
    let bash = statuslab(&["completions", "bash"]);
    assert_eq!(bash.code, Some(0), "{bash:?}");
    assert!(bash.stderr.is_empty(), "{bash:?}");
    for word in ["serve", "probe", "--max-body", "--config", "complete -F"] {
        assert!(bash.stdout.contains(word), "{word} in the bash script");
    }
    check(["zsh", "fish", "powershell", "elvish"], |shell| {
        let o = statuslab(&["completions", shell]);
        if o.code != Some(0) || !o.stdout.contains("max-body") || !o.stdout.contains("serve") {
            return Err(format!("{o:?}"));
        }
        Ok(())
    });
    let o = statuslab(&["completions", "tcsh"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(
        o.stderr.contains("bash"),
        "the error lists the shells: {o:?}"
    );
}

/// `statuslab man`: roff for man(1) whose title is statuslab(1) and which names every command;
/// `man serve` is serve's page with its flags; `--dir` writes every page.
#[test]
fn man_pages_are_roff_and_name_the_commands() {
    let o = statuslab(&["man"]);
    assert_eq!(o.code, Some(0), "{o:?}");
    // clap_mangen opens with a string definition for apostrophes, then the title.
    let first_macro = o
        .stdout
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .unwrap_or_default();
    assert!(first_macro.starts_with(".TH statuslab 1"), "{first_macro}");
    for cmd in ["explain", "list", "serve", "probe", "completions", "man"] {
        assert!(
            o.stdout.contains(&format!("statuslab\\-{cmd}(1)")),
            "statuslab-{cmd}(1) in the page"
        );
    }
    assert!(!o.stdout.contains('\x1b'), "no terminal escapes in a page");
    let serve = statuslab(&["man", "serve"]).stdout;
    assert!(
        serve.contains(".TH statuslab-serve 1") || serve.contains(".TH statuslab\\-serve 1"),
        "{serve}"
    );
    assert!(serve.contains("\\-\\-max\\-body"), "serve's flags");
    assert!(serve.contains("STATUSLAB_MAX_BODY"), "and their variables");
    let o = statuslab(&["man", "nonsense"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.stderr.contains("serve"), "{o:?}");

    let dir = tempfile::tempdir().expect("a temporary folder");
    let o = statuslab(&["man", "--dir", dir.path().to_str().expect("UTF-8")]);
    assert_eq!(o.code, Some(0), "{o:?}");
    for page in ["statuslab.1", "statuslab-serve.1", "statuslab-probe.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}");
    }
}
