//! Integration tests of the status catalog, one binary: the table, parsing, the registry,
//! wire requirements, advice and differences, serde and `http`, lookup.

mod advice;
mod codes;
mod lookup;
mod registry;
mod serde_http;
mod table;
mod wire;

use std::fmt::Debug;

/// Runs `f` on every case and fails once, listing every case that failed, so one run shows
/// the whole picture instead of the first mismatch.
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

/// `Ok(())` if `got == want`, else a message naming `what`.
pub(crate) fn same<T: PartialEq + Debug + ?Sized>(
    what: &str,
    got: &T,
    want: &T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// One row of `data/status-codes.tsv`, parsed by the test itself (not by the build script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) code: u16,
    pub(crate) message: String,
    pub(crate) description: String,
}

/// The path of the repository's copy of the table.
pub(crate) fn table_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("status-codes.tsv")
}

/// The repository's table, parsed independently of the build script.
pub(crate) fn table_rows() -> Vec<Row> {
    let path = table_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("code\tmessage\tdescription"),
        "table header"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "three columns in {l:?}");
            Row {
                code: cols[0]
                    .parse()
                    .unwrap_or_else(|e| panic!("code in {l:?}: {e}")),
                message: cols[1].to_owned(),
                description: cols[2].to_owned(),
            }
        })
        .collect()
}
