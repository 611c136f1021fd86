//! Turns `data/status-codes.tsv` (the user's status-code table) into Rust data, so the
//! catalog is compiled from the table itself and can never drift from it.

use std::fmt::Write as _;
use std::{env, fs, path::PathBuf};

fn main() {
    let src = "data/status-codes.tsv";
    println!("cargo::rerun-if-changed={src}");
    let text = fs::read_to_string(src).expect("read data/status-codes.tsv");
    let mut lines = text.lines();
    let header = lines.next().expect("table header");
    assert_eq!(
        header, "code\tmessage\tdescription",
        "unexpected table header"
    );

    let mut out =
        String::from("/// The table's rows: code, message, description, in table order.\n");
    let mut rows = 0usize;
    let mut body = String::new();
    let mut last = 0u16;
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(code), Some(message), Some(description), None) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            panic!("{src}:{}: expected three tab-separated columns", i + 2);
        };
        let code: u16 = code
            .parse()
            .unwrap_or_else(|_| panic!("{src}:{}: bad code {code:?}", i + 2));
        assert!(
            (100..=599).contains(&code),
            "{src}:{}: code {code} out of range",
            i + 2
        );
        assert!(code > last, "{src}:{}: codes must be ascending", i + 2);
        last = code;
        writeln!(
            body,
            "    TableRow {{ code: {code}, message: {message:?}, description: {description:?} }},"
        )
        .unwrap();
        rows += 1;
    }
    writeln!(
        out,
        "pub(crate) static TABLE_ROWS: [TableRow; {rows}] = [\n{body}];"
    )
    .unwrap();
    let dest = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("table.rs");
    fs::write(dest, out).expect("write table.rs");
}
