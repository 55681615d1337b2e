//! Walking a program's directory and deciding what a backup covers: include/exclude
//! globs, where a matching directory covers everything under it, in a stable (sorted)
//! order. Symbolic links are listed, never followed.

use std::path::{Path, PathBuf};

use super::error::BackupError;
use super::settings::Filter;

/// What a walked entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A regular file and its size when listed.
    File {
        /// Bytes.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link and its target.
    Symlink {
        /// The link's target, verbatim.
        target: String,
    },
}

/// One walked entry.
#[derive(Debug, Clone)]
pub struct Item {
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    /// Absolute path.
    pub abs: PathBuf,
    /// Kind.
    pub kind: ItemKind,
    /// Covered by the include/exclude globs.
    pub in_scope: bool,
}

/// The result of a walk.
#[derive(Debug, Default)]
pub struct Walk {
    /// Entries, parents before children.
    pub items: Vec<Item>,
    /// Entries that cannot be archived (non-UTF-8 names, sockets, devices), in words.
    pub skipped: Vec<String>,
}

/// How to walk.
pub struct WalkOptions<'a> {
    /// Also list (and descend into) what the globs do not cover, marked `in_scope: false`.
    pub everything: bool,
    /// Directories never entered nor listed (the backup's own destination).
    pub skip: &'a [PathBuf],
    /// Checked between directories; a true answer stops the walk with `Cancelled`.
    pub cancelled: &'a dyn Fn() -> bool,
}

/// Walks `root` (which must be a directory).
pub fn walk(root: &Path, filter: &Filter, opts: &WalkOptions<'_>) -> Result<Walk, BackupError> {
    let mut out = Walk::default();
    // (absolute dir, relative dir, covered by an included ancestor, under an excluded one)
    let mut stack: Vec<(PathBuf, String, bool, bool)> =
        vec![(root.to_path_buf(), String::new(), false, false)];
    while let Some((dir, rel_dir, parent_in, parent_out)) = stack.pop() {
        if (opts.cancelled)() {
            return Err(BackupError::Cancelled);
        }
        let mut entries = std::fs::read_dir(&dir)
            .and_then(|rd| rd.collect::<Result<Vec<_>, _>>())
            .map_err(|e| BackupError::io("cannot list directory", &dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            let abs = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                out.skipped.push(format!(
                    "{}: the name is not valid UTF-8",
                    abs.to_string_lossy()
                ));
                continue;
            };
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let excluded = parent_out || filter.excludes(&rel);
            let included = parent_in || filter.includes(&rel);
            let in_scope = included && !excluded;
            let ft = entry
                .file_type()
                .map_err(|e| BackupError::io("cannot read the type of", &abs, e))?;
            let kind = if ft.is_dir() {
                if opts.skip.iter().any(|s| s == &abs) {
                    continue;
                }
                if !excluded || opts.everything {
                    subdirs.push((abs.clone(), rel.clone(), included, excluded));
                }
                ItemKind::Dir
            } else if ft.is_file() {
                let meta = entry
                    .metadata()
                    .map_err(|e| BackupError::io("cannot read the size of", &abs, e))?;
                ItemKind::File { size: meta.len() }
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&abs)
                    .map_err(|e| BackupError::io("cannot read the symlink", &abs, e))?;
                match target.to_str() {
                    Some(t) => ItemKind::Symlink {
                        target: t.to_string(),
                    },
                    None => {
                        out.skipped
                            .push(format!("{rel}: the link target is not valid UTF-8"));
                        continue;
                    }
                }
            } else {
                if in_scope {
                    out.skipped
                        .push(format!("{rel}: not a file, directory or symlink"));
                }
                continue;
            };
            if in_scope || opts.everything {
                out.items.push(Item {
                    rel,
                    abs,
                    kind,
                    in_scope,
                });
            }
        }
        // Reversed so the stack pops them in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path();
        for dir in ["world/region", "logs", "empty", "cache/tmp"] {
            std::fs::create_dir_all(p.join(dir)).expect("mkdir");
        }
        for f in [
            "world/level.dat",
            "world/region/r.0.0.mca",
            "logs/latest.log",
            "server.properties",
            "cache/tmp/x.tmp",
            "server.jar",
        ] {
            std::fs::write(p.join(f), f).expect("write");
        }
        d
    }

    fn rels(w: &Walk, in_scope: bool) -> Vec<&str> {
        w.items
            .iter()
            .filter(|i| i.in_scope == in_scope)
            .map(|i| i.rel.as_str())
            .collect()
    }

    #[test]
    fn a_matching_directory_covers_its_subtree_and_excludes_prune() {
        let d = tree();
        let f = Filter::new(
            &["world".into(), "*.properties".into(), "cache".into()],
            &["**/*.tmp".into()],
        )
        .expect("filter");
        let opts = WalkOptions {
            everything: false,
            skip: &[],
            cancelled: &|| false,
        };
        let w = walk(d.path(), &f, &opts).expect("walk");
        assert_eq!(
            rels(&w, true),
            vec![
                "cache",
                "server.properties",
                "world",
                "cache/tmp",
                "world/level.dat",
                "world/region",
                "world/region/r.0.0.mca"
            ]
        );
        let all = walk(
            d.path(),
            &f,
            &WalkOptions {
                everything: true,
                ..opts
            },
        )
        .expect("walk");
        let out = rels(&all, false);
        for p in [
            "server.jar",
            "logs",
            "logs/latest.log",
            "empty",
            "cache/tmp/x.tmp",
        ] {
            assert!(out.contains(&p), "{p} missing from {out:?}");
        }
    }

    #[test]
    fn skipped_directories_are_not_entered() {
        let d = tree();
        let f = Filter::new(&["**".into()], &[]).expect("filter");
        let skip = vec![d.path().join("logs")];
        let w = walk(
            d.path(),
            &f,
            &WalkOptions {
                everything: false,
                skip: &skip,
                cancelled: &|| false,
            },
        )
        .expect("walk");
        assert!(w.items.iter().all(|i| !i.rel.starts_with("logs")));
        assert!(w.items.iter().any(|i| i.rel == "empty"));
    }
}
