//! The files a user or packager looks for at the top of the repository: the licenses the
//! manifest declares, the changelog, and no made-up metadata.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    let path = root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn the_declared_licenses_are_in_the_repository() {
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("license = \"MIT OR Apache-2.0\""),
        "the workspace declares MIT OR Apache-2.0"
    );
    let mit = read("LICENSE-MIT");
    assert!(mit.starts_with("MIT License\n"), "{mit}");
    assert!(
        mit.contains("Copyright (c) The statuslab developers\n"),
        "{mit}"
    );
    assert!(
        mit.contains(
            "Permission is hereby granted, free of charge, to any person obtaining a copy"
        ),
        "the standard MIT text"
    );
    let apache = read("LICENSE-APACHE");
    for line in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "9. Accepting Warranty or Additional Liability.",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(apache.contains(line), "LICENSE-APACHE lacks {line:?}");
    }
    let readme = read("README.md");
    for file in ["LICENSE-MIT", "LICENSE-APACHE", "CHANGELOG.md"] {
        assert!(readme.contains(&format!("({file})")), "README links {file}");
    }
}

#[test]
fn crates_inherit_the_workspace_license() {
    for krate in ["catalog", "server", "cli", "loadgen"] {
        let manifest = read(&format!("crates/{krate}/Cargo.toml"));
        assert!(
            manifest.contains("license.workspace = true"),
            "crates/{krate} inherits the license"
        );
    }
}

#[test]
fn manifests_name_no_invented_host() {
    for name in [
        "Cargo.toml",
        "crates/catalog/Cargo.toml",
        "crates/server/Cargo.toml",
        "crates/cli/Cargo.toml",
        "crates/loadgen/Cargo.toml",
    ] {
        let text = read(name);
        assert!(
            !text.contains("example.invalid"),
            "{name} names a placeholder host"
        );
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("repository"))
            .collect();
        assert!(keys.is_empty(), "{name}: {keys:?}");
    }
}

#[test]
fn changelog_keeps_a_changelog() {
    let log = read("CHANGELOG.md");
    assert!(log.starts_with("# Changelog\n"), "title");
    assert!(log.contains("Keep a Changelog"), "names its format");
    let versions: Vec<&str> = log.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    assert_eq!(
        versions.first().copied(),
        Some("[Unreleased]"),
        "Unreleased first: {versions:?}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        versions
            .iter()
            .any(|v| v.starts_with(&format!("[{version}] - "))),
        "an entry for {version}: {versions:?}"
    );
    // Every section under a version is one of Keep a Changelog's kinds.
    let kinds = [
        "Added",
        "Changed",
        "Deprecated",
        "Removed",
        "Fixed",
        "Security",
    ];
    for l in log.lines().filter_map(|l| l.strip_prefix("### ")) {
        assert!(kinds.contains(&l), "section {l:?}");
    }
    let unreleased = log.split("\n## ").nth(1).expect("an Unreleased section");
    assert!(
        unreleased.contains("\n- "),
        "Unreleased lists changes:\n{unreleased}"
    );
}
