//! Every fuzz target's property (`fuzz/src/lib.rs`) run on each input of its corpus
//! (`fuzz/corpus/<target>/`: the committed seeds and whatever `make fuzz` found here), on
//! AWS's published samples (`tests/fixtures/samples/`) and on the sample events
//! (`events/`). A property the library has outgrown no longer compiles here, and one that
//! a real input breaks fails here: at every `make test`, not at the next `make fuzz`.
//! (`make fuzz` is what explores; this only replays.)

#[path = "../../fuzz/src/lib.rs"]
mod properties;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_fuzz_target_holds_on_its_seeds_and_on_aws_samples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut shared = Vec::new();
    files_under(&root.join("tests/fixtures/samples"), &mut shared);
    files_under(&root.join("events"), &mut shared);
    assert!(
        shared.len() >= 20,
        "the samples and events are missing: {shared:?}"
    );
    let mut failed = Vec::new();
    for (target, check) in properties::TARGETS {
        let mut inputs = Vec::new();
        files_under(&root.join("fuzz/corpus").join(target), &mut inputs);
        assert!(
            !inputs.is_empty(),
            "{target}: no seed in fuzz/corpus/{target}"
        );
        inputs.extend(shared.iter().cloned());
        for input in &inputs {
            let data = std::fs::read(input).expect("an input reads");
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let shown = input.strip_prefix(&root).unwrap_or(input);
                failed.push(format!("{target} on {}: {why}", shown.display()));
            }
        }
        println!("{target}: {} inputs", inputs.len());
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
