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
