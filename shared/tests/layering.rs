//! The dependency rule of docs/architecture.md, checked on the sources: only the adapters
//! name the AWS SDK, nothing else names an adapter (the function crates wire them), and
//! the decision tables stay pure (no ports, no adapters, no async).

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code, without comment lines (doc links may name any module).
fn code(path: &Path) -> String {
    fs::read_to_string(path)
        .expect("readable source")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn library() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, code(p))
        })
        .collect()
}

/// Library files (path under `src/`) whose code matches `breaks`.
fn offenders(breaks: impl Fn(&str, &str) -> bool) -> Vec<String> {
    library()
        .into_iter()
        .filter(|(rel, text)| breaks(rel, text))
        .map(|(rel, _)| rel)
        .collect()
}

#[test]
fn only_the_adapters_name_the_aws_sdk() {
    let found = offenders(|rel, text| {
        !rel.starts_with("adapters/") && (text.contains("aws_sdk_") || text.contains("aws_config"))
    });
    assert!(
        found.is_empty(),
        "AWS SDK named outside adapters/: {found:?}"
    );
}

#[test]
fn nothing_but_the_entry_point_names_an_adapter() {
    let found = offenders(|rel, text| {
        !rel.starts_with("adapters/") && rel != "lib.rs" && text.contains("adapters::")
    });
    assert!(
        found.is_empty(),
        "adapters named outside adapters/: {found:?}"
    );
}

#[test]
fn the_decision_tables_are_pure() {
    for (rel, text) in library() {
        if !rel.ends_with("decide.rs") && rel != "post_traffic/stats.rs" {
            continue;
        }
        for word in ["ports::", "adapters::", "async fn", ".await", "tokio"] {
            assert!(
                !text.contains(word),
                "{rel} names {word}: decisions take data and return evidence"
            );
        }
    }
}

/// Non-test functions longer than `MAX_LINES` in the library, the function crates and the CLI:
/// `(file, line, name, length)`. Read on rustfmt's layout: a body ends at the first `}` at
/// the indentation of its `fn`; a signature that ends in `;` declares and has no body.
/// Test modules (`#[cfg(test)]` at the top level, `*_tests.rs`) are not counted.
fn long_functions(max_lines: usize) -> Vec<(String, usize, String, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join("../functions"), &mut files);
    sources(&root.join("../cli/src"), &mut files);
    let fn_start = regex::Regex::new(
        r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)",
    )
    .unwrap();
    let mut found = Vec::new();
    for path in files {
        let name = path.to_string_lossy().replace('\\', "/");
        if name.ends_with("_tests.rs") || name.contains("/target/") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable source");
        let lines: Vec<&str> = text.lines().collect();
        let end = lines
            .iter()
            .position(|l| l.starts_with("#[cfg(test)]"))
            .unwrap_or(lines.len());
        for i in 0..end {
            let Some(m) = fn_start.captures(lines[i]) else {
                continue;
            };
            let indent = m.get(1).unwrap().as_str();
            let Some(open) = (i..end).find(|&j| {
                let t = lines[j].trim_end();
                t.ends_with('{') || t.ends_with(';')
            }) else {
                continue;
            };
            if lines[open].trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(last) = (open..end).find(|&j| lines[j].trim_end() == close) else {
                continue;
            };
            let length = last - i + 1;
            if length > max_lines {
                let rel = name
                    .rsplit_once("shared/")
                    .map_or(name.as_str(), |(_, r)| r);
                found.push((rel.to_owned(), i + 1, m[2].to_owned(), length));
            }
        }
    }
    found
}

#[test]
fn no_function_is_longer_than_80_lines() {
    let found = long_functions(80);
    assert!(
        found.is_empty(),
        "split these into named steps (file, line, fn, lines): {found:#?}"
    );
}

#[test]
fn the_length_rule_sees_long_functions() {
    // The rule must be able to fail: at a tenth of the limit it finds plenty.
    assert!(long_functions(8).len() > 20);
}

#[test]
fn every_main_is_wiring_only() {
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut long = Vec::new();
    for entry in fs::read_dir(&functions).expect("functions/") {
        let main = entry.expect("entry").path().join("src/main.rs");
        let Ok(text) = fs::read_to_string(&main) else {
            continue;
        };
        let lines = text.lines().count();
        if lines > 60 {
            long.push((main.display().to_string(), lines));
        }
    }
    assert!(long.is_empty(), "main.rs over 60 lines: {long:?}");
}

/// The top-level modules of the library each file's code names (`crate::<module>`), by
/// the top-level module the file belongs to. Test code, fakes and comments aside.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    let reference = regex::Regex::new(r"crate::(\w+)").unwrap();
    for (rel, text) in library() {
        if rel == "lib.rs" || rel.ends_with("_tests.rs") || rel.ends_with("fakes.rs") {
            continue;
        }
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let edges = graph.entry(top.clone()).or_default();
        for m in reference.captures_iter(code) {
            if m[1] != top && m[1] != *"Result" && m[1] != *"Error" {
                edges.insert(m[1].to_owned());
            }
        }
    }
    graph
}

#[test]
fn no_module_cycle() {
    let graph = module_graph();
    // Depth-first search from every module; a path back to it is a cycle.
    for start in graph.keys() {
        let mut stack = vec![vec![start.clone()]];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in graph.get(last).into_iter().flatten() {
                assert!(
                    next != start,
                    "module cycle: {} -> {start}",
                    path.join(" -> ")
                );
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
}

#[test]
fn the_module_graph_is_read() {
    let graph = module_graph();
    assert!(graph["post_traffic"].contains("hook"), "{graph:?}");
    assert!(graph["adapters"].contains("ports"), "{graph:?}");
}
