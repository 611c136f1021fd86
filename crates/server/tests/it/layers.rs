//! The server crate's architecture invariants, checked on its source: no module imports a
//! module above it, and no route handler reaches back into the dispatcher.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The server's top-level modules from the bottom layer up; a module may import only itself
/// and the modules before it. `lib.rs` (the accept loop) sits above them all, and `testing.rs`
/// above it.
const LAYERS: &[&str] = &[
    "metrics", "store", "content", "config", "wire", "ctx", "problem", "edge", "gateway", "probe",
    "routes",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first path segment after each `prefix` (`crate::wire::h1` → `wire`; `crate::{a, b::c}`
/// → `a`, `b`).
fn targets(text: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            found.extend(list[..end].split(',').map(ident).filter(|s| !s.is_empty()));
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// The source without its comment lines: a doc comment that names a module is no import.
fn code_only(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_module_imports_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "found the server's sources");
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a path")
            .trim_end_matches(".rs")
            .to_owned();
        let Some(own) = rank(&top) else {
            // `testing` (a server for Rust tests) sits above lib.rs and may use all of it.
            assert!(
                ["lib", "testing"].contains(&top.as_str()),
                "{} is in no layer: add it to LAYERS",
                rel.display()
            );
            continue;
        };
        // A module's own unit tests (`tests.rs`) may start a whole server.
        let is_tests = file.file_name().is_some_and(|n| n == "tests.rs");
        let text = code_only(&std::fs::read_to_string(file).expect("readable source"));
        for target in targets(&text, "crate::") {
            match rank(&target) {
                Some(r) if r > own => violations.push(format!(
                    "{} imports crate::{target}, a layer above {top}",
                    rel.display()
                )),
                Some(_) => {}
                None if is_tests => {}
                None => violations.push(format!(
                    "{} uses crate::{target} from lib.rs, the top of the crate",
                    rel.display()
                )),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn route_handlers_never_reach_back_into_the_dispatcher() {
    let routes = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut files = Vec::new();
    sources(&routes, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.file_stem()?.to_str().map(str::to_owned))
        .filter(|m| m != "mod")
        .collect();
    assert!(modules.len() >= 8, "found the route families: {modules:?}");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut violations = Vec::new();
    for file in &files {
        let name = file.file_stem().and_then(|s| s.to_str()).expect("a name");
        if name == "mod" {
            continue;
        }
        let text = code_only(&std::fs::read_to_string(file).expect("readable source"));
        for target in targets(&text, "super::") {
            if modules.contains(&target) {
                graph.entry(name.to_owned()).or_default().insert(target);
            } else {
                violations.push(format!(
                    "routes/{name}.rs uses super::{target} from the dispatcher (routes/mod.rs)"
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The handler modules' imports of one another have no cycle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        assert!(
            !path.iter().any(|p| p == m),
            "import cycle: {} -> {m}",
            path.join(" -> ")
        );
        path.push(m.to_owned());
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_checker_sees_imports() {
    assert_eq!(
        targets(
            "use crate::wire::h1;\nuse crate::{ctx::Ctx, problem};",
            "crate::"
        ),
        ["wire", "ctx", "problem"]
    );
    assert_eq!(
        targets("x_crate::y super::on_demand::dress", "super::"),
        ["on_demand"]
    );
    assert!(targets("statuslab_crate::x", "crate::").is_empty());
}
