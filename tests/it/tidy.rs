//! House rules the build cannot check by itself: every source file says what it owns in a
//! `//!` module doc, as rust-analyzer's tidy test demands.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_has_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src",
        "crates/demo-game/src",
        "crates/game-proto/src",
        "tests",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    // The walk must have found the tree, or this test would pass on nothing.
    assert!(files.len() > 100, "found only {} source files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("read source file");
            !text.lines().any(|line| line.starts_with("//!"))
        })
        .map(|path| {
            path.strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "these files have no `//!` line saying what they own: {missing:?}"
    );
}
