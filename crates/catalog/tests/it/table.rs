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

/// The repository's copy of the table must equal the shared specification's, where that exists
/// (in CI `shared/` sits beside the clone; without it the repository copy is authoritative).
#[test]
fn repository_table_equals_shared_spec() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/status-codes.tsv");
    if !shared.exists() {
        println!(
            "note: {} not found; the repository copy is authoritative",
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
}
