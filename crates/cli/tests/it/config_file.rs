//! `statuslab serve --config FILE` / `STATUSLAB_CONFIG`: keys are the serve flags, values are
//! written as after the flags; flags beat variables, variables beat the file, the file beats
//! the defaults; unknown keys and bad values exit 2 naming the key and the file.

use crate::check;
use crate::live::{Served, fetch};
use crate::serve::refused;
use std::path::{Path, PathBuf};

/// A config file with `text` in a temporary folder (kept while the folder lives).
fn config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("statuslab.toml");
    std::fs::write(&path, text).expect("write the config file");
    path
}

/// The `Retry-After` a server started with `args` and `envs` sends on 503: its
/// `--default-retry-after`.
fn retry_after(args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut all = vec!["--store", "memory", "--no-access-log"];
    all.extend_from_slice(args);
    let served = Served::start(&all, envs);
    let r = fetch(served.addr, "GET", "/status/503", b"");
    assert_eq!(r.status, 503, "{r:?}");
    r.header("retry-after").expect("Retry-After").to_owned()
}

/// What a precedence case is: its name, the arguments, the variables, the Retry-After wanted.
type Case<'a> = (&'a str, Vec<&'a str>, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn flags_beat_the_environment_which_beats_the_file_which_beats_defaults() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = config(
        &dir,
        "listen = \"127.0.0.1:0\"\ndefault-retry-after = \"5\"\n",
    );
    let file = file.to_str().expect("a UTF-8 path");
    let env = [("STATUSLAB_DEFAULT_RETRY_AFTER", "6")];
    let cases: Vec<Case<'_>> = vec![
        ("default", vec!["--listen", "127.0.0.1:0"], &[], "1"),
        ("file", vec!["--config", file], &[], "5"),
        ("env over file", vec!["--config", file], &env, "6"),
        (
            "flag over env and file",
            vec!["--config", file, "--default-retry-after", "7"],
            &env,
            "7",
        ),
        (
            "flag over file",
            vec!["--config", file, "--default-retry-after", "2m"],
            &[],
            "120",
        ),
    ];
    check(&cases, |(what, args, envs, want)| {
        let got = retry_after(args, envs);
        (got == *want)
            .then_some(())
            .ok_or_else(|| format!("{what}: Retry-After {got}, want {want}"))
    });
    // STATUSLAB_CONFIG names the file too.
    assert_eq!(retry_after(&[], &[("STATUSLAB_CONFIG", file)]), "5");
}

/// On/off keys take true or false (a variable set to off still wins); lists repeat a flag.
#[test]
fn switches_and_lists_from_the_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = config(
        &dir,
        "listen = \"127.0.0.1:0\"\nstore = \"memory\"\nno-access-log = true\n\
         maintenance = true\ntoken = [\"reader:read\", \"admin-secret:admin\"]\n",
    );
    let file = file.to_str().expect("a UTF-8 path");
    let served = Served::start(&["--config", file], &[]);
    assert_eq!(fetch(served.addr, "GET", "/status/200", b"").status, 503);
    drop(served);
    let served = Served::start(&["--config", file], &[("STATUSLAB_MAINTENANCE", "off")]);
    assert_eq!(fetch(served.addr, "GET", "/status/200", b"").status, 200);
    let r = fetch(served.addr, "GET", "/resources", b"");
    assert_eq!(r.status, 401, "tokens from the file guard resources: {r:?}");
}

#[test]
fn unknown_keys_and_bad_values_exit_2_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cases: &[(&str, &str)] = &[
        (
            "max_body = \"1MiB\"",
            "unknown key \"max_body\": did you mean max-body?",
        ),
        ("colour = \"blue\"", "unknown key \"colour\""),
        ("config = \"other.toml\"", "unknown key \"config\""),
        (
            "max-body = \"2TiB\"",
            "invalid value '2TiB' for max-body in ",
        ),
        ("max-delay = \"30\"", "for max-delay in "),
        ("idle-timeout = \"soon\"", "for idle-timeout in "),
        ("log-format = \"xml\"", "for log-format in "),
        ("max-connections = 0", "for max-connections in "),
        ("proxy = \"yes\"", "proxy is on or off"),
        (
            "listen = [\"127.0.0.1:0\"]",
            "listen takes one value, not a list",
        ),
        (
            "max-body = { size = 1 }",
            "max-body takes a string or a number",
        ),
        ("max-body = ", "is not valid TOML"),
    ];
    check(cases, |(text, says)| {
        let path = config(&dir, text);
        let file = path.to_str().expect("a UTF-8 path");
        refused(&["--config", file], &[], 2, says)?;
        refused(&["--config", file], &[], 2, file)
    });
    // A token's value stays hidden, as in its variable.
    let path = config(&dir, "token = [\"s3cret:bogus\"]");
    let file = path.to_str().expect("a UTF-8 path");
    refused(&["--config", file], &[], 2, "for token in ").expect("refused");
    refused(&["--config", file], &[], 2, "(hidden)").expect("hidden");
    // A missing file, named by the flag or by the variable.
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().expect("a UTF-8 path");
    refused(&["--config", missing], &[], 2, "cannot read").expect("missing");
    refused(
        &[],
        &[("STATUSLAB_CONFIG", missing)],
        2,
        "(from STATUSLAB_CONFIG)",
    )
    .expect("missing, from the variable");
}

/// The example in the repository starts a server (its port and folder overridden by flags),
/// and names every serve flag, set or commented out.
#[test]
fn the_example_config_file_works_and_names_every_flag() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statuslab.example.toml");
    let text = std::fs::read_to_string(&example).expect("statuslab.example.toml");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    let served = Served::start(
        &[
            "--config",
            example.to_str().expect("a UTF-8 path"),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().expect("a UTF-8 path"),
            "--no-access-log",
        ],
        &[],
    );
    assert_eq!(fetch(served.addr, "GET", "/readyz", b"").status, 200);
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches("# ").trim_start())
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .collect();
    let cli = <statuslab::Cli as clap::CommandFactory>::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let missing: Vec<&str> = serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !["help", "config"].contains(l) && !keys.contains(l))
        .collect();
    assert!(missing.is_empty(), "the example lacks {missing:?}");
}
