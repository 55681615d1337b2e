//! The manifest written beside every archive: what was backed up (each entry with its size
//! and BLAKE3), of which program, when, by which warden, and the archive's own checksum.
//! Verification and restore trust nothing in an archive that the manifest does not list.

use std::collections::HashMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Version of the manifest format; readers refuse versions they do not know.
pub const FORMAT: u32 = 1;

/// The file name of the manifest inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Kind of an archived entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (stored, never followed).
    Symlink,
}

/// One archived entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ManifestEntry {
    /// Path relative to the source directory, `/`-separated.
    pub path: String,
    /// Entry kind.
    pub kind: EntryKind,
    /// File size in bytes (0 for others).
    #[serde(default)]
    pub size: u64,
    /// BLAKE3 of the file's content, hex (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Link target (symlinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The file changed while it was read (size or modification time differed before and
    /// after), on every attempt; its content may be torn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
}

/// The archive file described by a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArchiveInfo {
    /// File name inside the backup directory.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 of the whole file, hex.
    pub blake3: String,
    /// `tar+zstd`.
    pub format: String,
    /// zstd level used.
    pub zstd_level: i32,
}

/// Everything known about one backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    /// Manifest format version ([`FORMAT`]).
    pub format: u32,
    /// Program backed up.
    pub program: String,
    /// Backup id in warden's database.
    pub backup_id: i64,
    /// When the backup started, RFC 3339.
    pub created_at: String,
    /// Same, unix ms.
    pub created_at_ms: i64,
    /// warden version that wrote it.
    pub warden_version: String,
    /// The directory that was backed up.
    pub source: String,
    /// Include globs used.
    pub include: Vec<String>,
    /// Exclude globs used.
    pub exclude: Vec<String>,
    /// The archive file.
    pub archive: ArchiveInfo,
    /// Regular files archived.
    pub files: u64,
    /// Total bytes of file content.
    pub data_bytes: u64,
    /// Every entry, in archive order.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// Entries by path.
    pub fn index(&self) -> HashMap<&str, &ManifestEntry> {
        self.entries.iter().map(|e| (e.path.as_str(), e)).collect()
    }
}

/// True if `rel` is a safe relative archive path: non-empty, not absolute, no `..`, no
/// drive or root prefix, no empty or `.` segments, no backslashes (a Windows separator)
/// and no NUL. Anything else could write outside the restore directory.
pub fn safe_relative(rel: &str) -> bool {
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') || rel.starts_with('/') {
        return false;
    }
    let trimmed = rel.trim_end_matches('/');
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return false;
    }
    Path::new(trimmed)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_recognised() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "./a",
            "a//b",
            "C:\\x",
            "a\\..\\b",
            "..",
        ] {
            assert!(!safe_relative(bad), "{bad:?} must be unsafe");
        }
        for good in ["a", "a/b", "dir/", "ünïcødé/файл.txt", "a..b", "..a"] {
            assert!(safe_relative(good), "{good:?} must be safe");
        }
    }
}
