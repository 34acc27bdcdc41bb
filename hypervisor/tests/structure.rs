//! The EL2 core's shape, checked on its source: no import cycle among the modules
//! of hypervisor/src, no function over 80 lines, no file over 600 lines (tests
//! aside). A layering that drifts fails here with the names of the culprits.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest function body, in lines, outside tests.
const MAX_FUNCTION_LINES: usize = 80;
/// Longest file, in lines, outside tests.
const MAX_FILE_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The top-level module a file of hypervisor/src belongs to (`state/ioreq.rs`
/// -> `state`); `None` for lib.rs and main.rs.
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// A file's text without what is under `#[cfg(test)]` (from that line on: test
/// modules sit at the end of their files) and without files in a tests folder.
fn production_text(file: &Path) -> Option<String> {
    if file.components().any(|c| c.as_os_str() == "tests") {
        return None;
    }
    let text = fs::read_to_string(file).unwrap();
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    Some(text[..end].to_string())
}

/// The top-level modules a file names through `crate::`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c, d}`: the first segment of each item.
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Module -> modules it uses, over hypervisor/src (production code only).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src()) {
        let (Some(module), Some(text)) = (module_of(&file), production_text(&file)) else {
            continue;
        };
        let uses = crate_references(&text);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(uses.into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn no_module_of_the_el2_core_imports_one_that_imports_it_back() {
    let graph = module_graph();
    assert!(
        graph.contains_key("state"),
        "the scan found the state layer"
    );
    assert!(
        graph["guest_trap"].contains("state"),
        "the scan sees imports"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_state_layer_uses_no_shell_module() {
    let graph = module_graph();
    let shell = [
        "apply",
        "cpu",
        "current",
        "guest_trap",
        "guest_view",
        "heap",
        "inject",
        "irq",
        "loader",
        "logger",
        "pages",
        "panic",
        "restart",
        "selftest",
        "sgi",
        "smp",
        "start",
        "sysreg_trap",
        "system",
        "trap",
        "vcpu",
    ];
    for module in [
        "state", "vgic", "vuart", "vpsci", "policy", "mmio", "esr", "sysregs",
    ] {
        let bad: Vec<&String> = graph[module]
            .iter()
            .filter(|m| shell.contains(&m.as_str()))
            .collect();
        assert!(bad.is_empty(), "{module} uses shell modules {bad:?}");
    }
}

#[test]
fn the_state_layer_forbids_unsafe_code() {
    for file in ["state/mod.rs", "sysregs.rs"] {
        let text = fs::read_to_string(src().join(file)).unwrap();
        assert!(text.contains("#![forbid(unsafe_code)]"), "{file}");
    }
}

/// Functions of a file's production text, as (name, first line, lines long).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let Some(at) = t.find("fn ") else { continue };
        let head = &t[..at];
        let is_item = head.split_whitespace().all(|w| {
            matches!(
                w,
                "pub" | "pub(crate)" | "const" | "unsafe" | "extern" | "\"C\"" | "async"
            )
        });
        if !is_item || t.starts_with("//") {
            continue;
        }
        let name: String = t[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // From the line with the opening brace to the matching close.
        let mut depth = 0i32;
        let mut opened = false;
        for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
            if opened && depth == 0 {
                out.push((name.clone(), i + 1, j - i + 1));
                break;
            }
        }
    }
    out
}

#[test]
fn the_function_scan_measures_bodies() {
    let text = "fn a() {\n    x;\n}\npub fn b(\n    y: u8,\n) -> u8 {\n    if y { 1 } else { 2 }\n}\nfn decl();\n";
    let f = functions(text);
    assert_eq!(f, [("a".to_string(), 1, 3), ("b".to_string(), 4, 5)]);
}

#[test]
fn no_function_of_the_el2_core_is_over_80_lines() {
    let mut long = Vec::new();
    for file in rust_files(&src()) {
        let Some(text) = production_text(&file) else {
            continue;
        };
        for (name, line, len) in functions(&text) {
            if len > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line} {name}: {len} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_file_of_the_el2_core_is_over_600_lines() {
    let mut long = Vec::new();
    for file in rust_files(&src()) {
        let Some(text) = production_text(&file) else {
            continue;
        };
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            long.push(format!("{}: {n} lines", file.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}
