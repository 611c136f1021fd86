//! `statuslab list`.

use crate::{check, json, run_ok, statuslab, table_rows};

fn data_codes(out: &str) -> Vec<u16> {
    out.lines()
        .skip(1)
        .map(|l| {
            l[..3]
                .parse()
                .unwrap_or_else(|e| panic!("code in {l:?}: {e}"))
        })
        .collect()
}

/// The offsets at which the header's columns start.
fn column_starts(header: &str) -> Vec<usize> {
    let cols = ["CODE", "MESSAGE", "RFC REASON", "SOURCE", "NEXT STEP"];
    cols.iter()
        .map(|c| {
            header
                .find(c)
                .unwrap_or_else(|| panic!("{c} in header {header:?}"))
        })
        .collect()
}

fn assert_aligned(out: &str) {
    let mut lines = out.lines();
    let header = lines.next().expect("a header line");
    let starts = column_starts(header);
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "header columns in order: {header:?}"
    );
    check(lines, |line| {
        let chars: Vec<char> = line.chars().collect();
        for &at in &starts {
            let here = chars.get(at).copied().unwrap_or(' ');
            let before = if at == 0 { ' ' } else { chars[at - 1] };
            if here == ' ' || before != ' ' {
                return Err(format!("no column starts at {at}"));
            }
        }
        Ok(())
    });
}

#[test]
fn list_is_an_aligned_table() {
    let o = statuslab(&["list"]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stderr.is_empty(), "{o:?}");
    assert_aligned(&o.stdout);
    let codes = data_codes(&o.stdout);
    let all: Vec<u16> = statuslab_catalog::all().map(|s| s.code()).collect();
    assert_eq!(codes, all, "every registered code, ascending");
    for row in table_rows() {
        assert!(codes.contains(&row.code), "{} listed", row.code);
    }
}

#[test]
fn list_filters_stay_aligned() {
    check(
        [
            &["list", "--class", "4xx"][..],
            &["list", "--class", "1xx"][..],
            &["list", "--table-only"][..],
            &["list", "--class", "5xx", "--table-only"][..],
        ],
        |args| {
            let out = run_ok(args);
            assert_aligned(&out);
            Ok(())
        },
    );
}

#[test]
fn list_class_4xx_only_4xx() {
    check(["4xx", "4XX", "client-error", "4"], |&class| {
        let codes = data_codes(&run_ok(&["list", "--class", class]));
        if codes.is_empty() || codes.iter().any(|c| !(400..500).contains(c)) {
            return Err(format!("{codes:?}"));
        }
        if !codes.contains(&404) || !codes.contains(&429) {
            Err(format!("404 and 429 missing: {codes:?}"))
        } else {
            Ok(())
        }
    });
}

#[test]
fn list_class_4xx_json_only_4xx() {
    let v = json(&statuslab(&["list", "--class", "4xx", "--json"]).stdout);
    let items = v.as_array().expect("an array");
    assert!(items.len() > 20, "the 4xx codes: {}", items.len());
    for i in items {
        let code = i["code"].as_u64().expect("code");
        assert!((400..500).contains(&code), "{code}");
        assert_eq!(i["class"], "client-error");
    }
}

#[test]
fn list_table_only_json_is_the_table() {
    let rows = table_rows();
    assert_eq!(rows.len(), 41);
    let v = json(&statuslab(&["list", "--table-only", "--json"]).stdout);
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), 41, "exactly the table's rows");
    check(items.iter().zip(&rows), |(i, r)| {
        if i["code"] != r.code
            || i["message"] != r.message.as_str()
            || i["description"] != r.description.as_str()
        {
            return Err(format!("row {} vs {i}", r.code));
        }
        if i["source"] != "table" {
            Err(format!("source {}", i["source"]))
        } else {
            Ok(())
        }
    });
}

#[test]
fn list_table_only_text_is_the_table() {
    let want: Vec<u16> = table_rows().iter().map(|r| r.code).collect();
    assert_eq!(data_codes(&run_ok(&["list", "--table-only"])), want);
}
