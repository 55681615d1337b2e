//! Paths as clients send them: parsed into validated components relative to a program's
//! file root, before anything touches the disk. A floor module (it imports nothing of
//! warden), so `program` checks `files_root` with it and `files` builds on it.
//!
//! This is the first of two fences. It refuses, by syntax alone, everything that could
//! name a place outside the root on any OS: `..`, absolute paths, Windows drive letters,
//! UNC paths and alternate data streams (any `\` or `:`), percent-encoded separators
//! (which some layer might decode later), and NUL bytes. The second fence is the
//! directory handle every operation is resolved against (see `files`), which also
//! stops symlinks pointing outside — a syntactically clean path can still reach a link.

use std::fmt;
use std::path::PathBuf;

/// Longest accepted path, in bytes.
const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted single name, in bytes (the limit of common file systems).
const MAX_NAME_BYTES: usize = 255;

/// A validated path relative to a file root. Empty means the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelPath {
    parts: Vec<String>,
}

impl RelPath {
    /// Parses a client path. `""`, `"."` and `"./"` mean the root; `a//b` and `a/./b`
    /// mean `a/b`. Everything that could leave the root is an error naming why.
    pub fn parse(input: &str) -> Result<RelPath, String> {
        if input.len() > MAX_PATH_BYTES {
            return Err(format!("is longer than {MAX_PATH_BYTES} bytes"));
        }
        if input.contains('\0') {
            return Err("must not contain NUL bytes".into());
        }
        if input.contains('\\') {
            return Err(
                "must use '/' as separator; '\\' (Windows and UNC paths) is not accepted".into(),
            );
        }
        if input.starts_with('/') {
            return Err("must be relative to the program's file root (no leading '/')".into());
        }
        if input.contains(':') {
            return Err(
                "must not contain ':' (drive letters and alternate data streams are not accepted)"
                    .into(),
            );
        }
        let lower = input.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
            return Err("must not contain percent-encoded separators or NUL bytes".into());
        }
        let mut parts = Vec::new();
        for part in input.split('/') {
            match part {
                "" | "." => continue,
                ".." => return Err("must not contain '..' (it would leave the file root)".into()),
                p if p.len() > MAX_NAME_BYTES => {
                    return Err(format!("has a name longer than {MAX_NAME_BYTES} bytes"));
                }
                p => parts.push(p.to_string()),
            }
        }
        Ok(RelPath { parts })
    }

    /// True for the root itself.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last name, or `None` for the root.
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// Everything but the last name (the root's parent is the root).
    pub fn parent(&self) -> RelPath {
        let mut parts = self.parts.clone();
        parts.pop();
        RelPath { parts }
    }

    /// This path with `other` appended.
    pub fn join(&self, other: &RelPath) -> RelPath {
        let mut parts = self.parts.clone();
        parts.extend(other.parts.iter().cloned());
        RelPath { parts }
    }

    /// True when `other` is this path or lies below it.
    pub fn contains(&self, other: &RelPath) -> bool {
        other.parts.starts_with(&self.parts)
    }

    /// The path for a directory-handle call: `.` for the root.
    pub fn as_fs_path(&self) -> PathBuf {
        if self.parts.is_empty() {
            PathBuf::from(".")
        } else {
            self.parts.iter().collect()
        }
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_parse_and_normalise() {
        assert!(RelPath::parse("").expect("root").is_root());
        assert!(RelPath::parse(".").expect("root").is_root());
        let p = RelPath::parse("config//./server.properties/").expect("ok");
        assert_eq!(p.to_string(), "config/server.properties");
        assert_eq!(p.name(), Some("server.properties"));
        assert_eq!(p.parent().to_string(), "config");
        assert_eq!(p.as_fs_path(), PathBuf::from("config/server.properties"));
        assert_eq!(RelPath::default().as_fs_path(), PathBuf::from("."));
        // Names that merely look odd stay inside the root and are accepted.
        assert!(RelPath::parse("...").is_ok());
        assert!(RelPath::parse("..a/b..").is_ok());
        assert!(RelPath::parse("100%.txt").is_ok());
    }

    #[test]
    fn every_escape_is_refused() {
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "/etc/passwd",
            "//server/share",
            "\\\\server\\share\\x",
            "C:\\Windows",
            "C:/Windows",
            "c:",
            "a/C:x",
            "file.txt:stream",
            "..\\x",
            "a\\..\\..\\x",
            "a\0b",
            "..%2F..%2Fetc",
            "..%2f..%2fetc",
            "a%5Cb",
            "a%00b",
        ] {
            assert!(RelPath::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(RelPath::parse(&"a/".repeat(3000)).is_err());
        assert!(RelPath::parse(&"n".repeat(256)).is_err());
    }

    #[test]
    fn containment() {
        let a = RelPath::parse("a").expect("ok");
        let ab = RelPath::parse("a/b").expect("ok");
        let abc = RelPath::parse("abc").expect("ok");
        assert!(a.contains(&ab));
        assert!(a.contains(&a));
        assert!(!a.contains(&abc));
        assert!(!ab.contains(&a));
        assert!(RelPath::default().contains(&a));
        assert_eq!(a.join(&ab).to_string(), "a/a/b");
    }
}
