//! The catalog holds the table's 41 rows exactly.

use crate::{check, same, table_path, table_rows};
use statuslab_catalog::{Source, Status, table};

#[test]
fn table_file_has_41_ascending_rows() {
    let rows = table_rows();
    assert_eq!(rows.len(), 41, "the table has 41 rows");
    assert!(
        rows.windows(2).all(|w| w[0].code < w[1].code),
        "codes ascend"
    );
    assert!(
        rows.iter()
            .all(|r| !r.message.is_empty() && !r.description.is_empty()),
        "no empty cell"
    );
}

#[test]
fn catalog_table_equals_the_file() {
    let want = table_rows();
    let got = table();
    assert_eq!(got.len(), want.len(), "row count");
    check(got.iter().zip(&want), |(g, w)| {
        same("code", &g.code, &w.code)?;
        same("message", g.message, w.message.as_str())?;
        same("description", g.description, w.description.as_str())
    });
}

#[test]
fn every_table_row_resolves_through_status() {
    check(table_rows(), |row| {
        let s = Status::new(row.code).map_err(|e| e.to_string())?;
        same("code", &s.code(), &row.code)?;
        same("message", s.message(), row.message.as_str())?;
        same("description", s.description(), row.description.as_str())?;
        same("source", &s.source(), &Source::Table)?;
        let t = s.table_row().ok_or("no table_row")?;
        same("table_row.message", t.message, row.message.as_str())?;
        let info = s.info();
        same("info.message", info.message, row.message.as_str())?;
        same(
            "info.description",
            info.description,
            row.description.as_str(),
        )
    });
}

#[test]
fn only_the_table_codes_have_source_table() {
    let codes: Vec<u16> = table_rows().iter().map(|r| r.code).collect();
    check(100..=599u16, |&n| {
        let s = Status::new(n).map_err(|e| e.to_string())?;
        same(
            "is Table",
            &(s.source() == Source::Table),
            &codes.contains(&n),
        )?;
        same(
            "has table_row",
            &s.table_row().is_some(),
            &codes.contains(&n),
        )
    });
}

#[test]
fn catalog_lists_every_table_row_and_200() {
    let all: Vec<u16> = statuslab_catalog::all().map(|s| s.code()).collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "all() ascends: {all:?}"
    );
    check(table_rows(), |row| {
        same("listed", &all.contains(&row.code), &true)
    });
    assert!(all.contains(&200), "200 is in the catalog");
    assert_eq!(
        Status::new(200).unwrap().source(),
        Source::Registry,
        "200 is not from the table"
    );
}

/// The shared specification's copy of the table (`shared/spec/status-codes.tsv` beside the
/// repository, where CI puts it).
fn shared_spec_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/status-codes.tsv")
}

/// Whether this run is CI's (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The repository's copy of the table must equal the shared specification's. The repository's
/// copy is compared with the compiled table first, always; then the specification: in CI (where
/// `shared/` sits beside the clone) a missing specification fails the test, elsewhere it is
/// noted and the repository copy is authoritative.
#[test]
fn repository_table_equals_shared_spec() {
    // Always: the compiled table is the repository's file, row for row.
    let ours_rows = table_rows();
    assert_eq!(
        table().len(),
        ours_rows.len(),
        "compiled rows vs the repository file"
    );
    check(table().iter().zip(&ours_rows), |(g, w)| {
        same("code", &g.code, &w.code)?;
        same("message", g.message, w.message.as_str())?;
        same("description", g.description, w.description.as_str())
    });

    let shared = shared_spec_path();
    if !shared.exists() {
        assert!(
            !in_ci(),
            "{} is missing, and CI (CI is set) must compare the table with the shared \
             specification: lay shared/ beside the clone",
            shared.display()
        );
        println!(
            "note: {} not found; the repository copy is authoritative (CI fails here)",
            shared.display()
        );
        return;
    }
    let ours = std::fs::read(table_path()).expect("read repository table");
    let theirs = std::fs::read(&shared).expect("read shared table");
    assert!(
        ours == theirs,
        "{} differs from {} ({} vs {} bytes)",
        table_path().display(),
        shared.display(),
        ours.len(),
        theirs.len()
    );
    // And the compiled table is the specification's rows (same bytes, but said row by row).
    let text = String::from_utf8(theirs).expect("the specification is UTF-8");
    let spec: Vec<(u16, &str, &str)> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "three columns in the specification's {l:?}");
            (cols[0].parse().expect("code"), cols[1], cols[2])
        })
        .collect();
    assert_eq!(
        table().len(),
        spec.len(),
        "compiled rows vs the specification"
    );
    check(
        table().iter().zip(&spec),
        |(g, (code, message, description))| {
            same("code", &g.code, code)?;
            same("message", g.message, *message)?;
            same("description", g.description, *description)
        },
    );
}
