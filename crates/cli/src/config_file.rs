//! `statuslab serve --config FILE` (or `STATUSLAB_CONFIG`): a TOML file whose keys are the
//! `serve` flags without their dashes (`listen`, `max-body`, `token`), whose values are written
//! as on the command line (`max-body = "1MiB"`, `idle-timeout = "30s"`).
//!
//! The file fills in only what the command line and the environment left at its default: its
//! values become command-line arguments appended to the ones given, and the whole line is
//! parsed again by the same clap definition, so a value means the same in the file as after its
//! flag. Precedence: flags > environment > file > defaults.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::path::Path;

/// The flags a file cannot set: the file itself, and what only prints something.
const NOT_IN_FILE: &[&str] = &["config", "help", "version"];

/// A file's values for the flags `matches` left at their defaults, as `--flag=value`
/// arguments, and the keys they came from. `Err` is one line naming the file and the key.
pub(crate) fn arguments(
    path: &Path,
    serve: &Command,
    matches: &ArgMatches,
) -> Result<(Vec<OsString>, Vec<String>), String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {file}: {e}"))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e: toml::de::Error| {
        format!("{file} is not valid TOML: {}", one_line(&e.to_string()))
    })?;
    let mut args = Vec::new();
    let mut keys = Vec::new();
    for (key, value) in &table {
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !NOT_IN_FILE.contains(&key.as_str()))
            .ok_or_else(|| unknown_key(&file, key, serve))?;
        // What the command line or the environment set stays; the file fills in the rest.
        let given = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let values: Vec<String> = match value {
            toml::Value::Boolean(on) if switch => {
                if *on && !given {
                    args.push(OsString::from(format!("--{key}")));
                    keys.push(key.clone());
                }
                continue;
            }
            _ if switch => {
                return Err(format!(
                    "{file}: {key} is on or off: write {key} = true or {key} = false"
                ));
            }
            toml::Value::Array(items) if repeatable => items
                .iter()
                .map(|item| scalar(item).ok_or_else(|| not_a_value(&file, key)))
                .collect::<Result<_, _>>()?,
            toml::Value::Array(_) => {
                return Err(format!(
                    "{file}: {key} takes one value, not a list (only token and upstream repeat)"
                ));
            }
            other => vec![scalar(other).ok_or_else(|| not_a_value(&file, key))?],
        };
        if given {
            continue;
        }
        for v in values {
            args.push(OsString::from(format!("--{key}={v}")));
        }
        keys.push(key.clone());
    }
    Ok((args, keys))
}

/// A TOML value as the command line would write it: strings as they are, numbers and
/// booleans in their usual form. `None` for tables, lists and dates.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

fn not_a_value(file: &std::path::Display<'_>, key: &str) -> String {
    format!("{file}: {key} takes a string or a number, as after --{key} on the command line")
}

fn unknown_key(file: &std::path::Display<'_>, key: &str, serve: &Command) -> String {
    let known = |k: &str| {
        serve
            .get_arguments()
            .any(|a| a.get_long() == Some(k) && !NOT_IN_FILE.contains(&k))
    };
    let dashed = key.replace('_', "-");
    let hint = if dashed != key && known(&dashed) {
        format!(": did you mean {dashed}? Keys are written as the flags are, with dashes")
    } else if NOT_IN_FILE.contains(&key) {
        ": it cannot be set in a config file".to_owned()
    } else {
        ": the keys are the serve flags without their dashes (listen, max-body, store, …; \
         see statuslab serve --help)"
            .to_owned()
    };
    format!("{file}: unknown key {key:?}{hint}")
}

/// toml's multi-line report (position, the line, a caret, the reason) as one line.
fn one_line(report: &str) -> String {
    let mut parts = report.lines().map(str::trim).filter(|l| {
        !l.is_empty() && !l.starts_with('|') && !l.starts_with('^') && !l.contains(" | ")
    });
    let first = parts.next().unwrap_or_default().to_owned();
    parts.fold(first, |acc, p| format!("{acc}: {p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_reports_become_one_line() {
        let err = toml::from_str::<toml::Table>("x = ")
            .unwrap_err()
            .to_string();
        let line = one_line(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("line 1"), "{line}");
    }
}
