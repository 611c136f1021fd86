//! Bad input: exit code 2, one `error:` line on stderr, nothing on stdout, never a panic.

use crate::{check, run, statuslab};
use statuslab::Failure;

fn refused(args: &[&str], one_line: bool) -> Result<(), String> {
    let o = statuslab(args);
    if o.code != Some(2) {
        return Err(format!("exit {:?}", o.code));
    }
    if !o.stdout.is_empty() {
        return Err(format!("stdout {:?}", o.stdout));
    }
    let lower = o.stderr.to_ascii_lowercase();
    if lower.contains("panicked") || lower.contains("backtrace") {
        return Err(format!("panic: {:?}", o.stderr));
    }
    let first = o.stderr.lines().next().unwrap_or_default();
    if !first.starts_with("error:") || first.len() <= "error: ".len() {
        return Err(format!("first stderr line {first:?}"));
    }
    let error_lines = o.stderr.lines().filter(|l| l.starts_with("error:")).count();
    if error_lines != 1 {
        return Err(format!("{error_lines} error lines: {:?}", o.stderr));
    }
    if one_line && o.stderr != format!("{first}\n") {
        return Err(format!("more than one line: {:?}", o.stderr));
    }
    Ok(())
}

/// Errors statuslab reports itself: exactly one line.
#[test]
fn bad_codes_and_queries() {
    check(
        [
            &["explain", "99"][..],
            &["explain", "999"][..],
            &["explain", "600"][..],
            &["explain", "0"][..],
            &["explain", "abc"][..],
            &["explain", "zzzz"][..],
            &["explain", "99999999999999999999"][..],
            &["explain", "--json", "999"][..],
            &["explain", "-"][..],
            // Bad values for a flag: clap's error, on one line.
            &["list", "--class", "7xx"][..],
            &["list", "--class", ""][..],
            &["list", "--class=9xx"][..],
        ],
        |args| refused(args, true),
    );
}

/// Errors in the shape of the command line: one `error:` line, then clap's usage hints.
#[test]
fn bad_arguments() {
    check(
        [
            &["explain"][..],
            &["explain", "--json"][..],
            &["frobnicate"][..],
            &["list", "--bogus"][..],
            &["list", "extra"][..],
        ],
        |args| refused(args, false),
    );
}

/// No command at all: clap shows the help (on stderr, exit code 2) rather than one error line.
#[test]
fn no_command_shows_help() {
    let o = statuslab(&[]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    assert!(
        o.stderr.contains("Usage: statuslab") && o.stderr.contains("Examples"),
        "{o:?}"
    );
}

#[test]
fn messages_name_the_problem() {
    check(
        [
            (&["explain", "99"][..], "99"),
            (&["explain", "999"][..], "100-599"),
            (&["explain", "abc"][..], "abc"),
            (
                &["explain", "99999999999999999999"][..],
                "99999999999999999999",
            ),
            (&["list", "--class", "7xx"][..], "7xx"),
            (&["list", "--class", "7xx"][..], "--class"),
            (&["list", "--class", "7xx"][..], "1xx, 2xx, 3xx, 4xx or 5xx"),
            (&["frobnicate"][..], "frobnicate"),
        ],
        |&(args, word)| {
            let e = statuslab(args).stderr;
            if e.lines().next().unwrap_or_default().contains(word) {
                Ok(())
            } else {
                Err(format!("{e:?}"))
            }
        },
    );
}

#[test]
fn in_process_usage_failures() {
    check(["99", "999", "abc", "zzzz"], |&q| {
        match run(&["explain", q]) {
            Err(Failure::Usage(msg)) if !msg.is_empty() && !msg.contains('\n') => Ok(()),
            Err(Failure::Usage(msg)) => Err(format!("message {msg:?}")),
            Err(Failure::Runtime(e)) => Err(format!("runtime failure {e:#}")),
            Ok(out) => Err(format!("succeeded: {out:?}")),
        }
    });
}

/// An output that cannot be written is the environment's failure: exit code 1, one line.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_stdout_is_a_runtime_error() {
    check(
        [
            &["list"][..],
            &["explain", "504"][..],
            &["explain", "504", "--json"][..],
        ],
        |args| {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .map_err(|e| e.to_string())?;
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_statuslab"))
                .args(*args)
                .env("RUST_BACKTRACE", "1")
                .stdout(full)
                .output()
                .map_err(|e| e.to_string())?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(1) {
                return Err(format!("exit {:?}", out.status.code()));
            }
            if !stderr.starts_with("error:")
                || stderr.lines().count() != 1
                || stderr.contains("panicked")
            {
                return Err(format!("stderr {stderr:?}"));
            }
            Ok(())
        },
    );
}

/// `statuslab list | head`: a reader that goes away is not an error.
#[test]
fn closed_stdout_is_not_an_error() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_statuslab"))
        .args(["list", "--json"])
        .env("RUST_BACKTRACE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn statuslab");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for statuslab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}, stderr {stderr:?}",
        out.status.code()
    );
    assert!(stderr.is_empty(), "stderr {stderr:?}");
}
