//! The documented command lines run as tests (trycmd): every ```console block of the README,
//! and the `--help` screens snapshotted in `tests/cmd/*.toml` with their `.stdout` files.
//!
//! After changing a help text, `TRYCMD=overwrite cargo test -p statuslab --test cli_docs`
//! rewrites the snapshots; review the diff like any other change.

#[test]
fn readme_and_help_screens() {
    trycmd::TestCases::new()
        .register_bin(
            "statuslab",
            std::path::Path::new(env!("CARGO_BIN_EXE_statuslab")),
        )
        // Help is wrapped to the terminal's width, or to $COLUMNS when there is no terminal.
        .env("COLUMNS", "100")
        .case("tests/cmd/*.toml")
        .case("../../README.md");
}
