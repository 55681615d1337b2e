//! Directory listing in pages, in memory bounded by the page size however large the
//! directory: the directory is streamed once per page, and only the `limit` smallest
//! names after the cursor are kept (a bounded max-heap). Folders come first, then
//! everything else, each by name.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::io;

use cap_std::fs::Dir;
use serde::Serialize;
use utoipa::ToSchema;

/// What a directory entry is (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (it can only be followed to places inside the root).
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// One entry of a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entry {
    /// The name (invalid UTF-8 is shown with U+FFFD).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification, unix ms.
    pub modified_ms: Option<i64>,
}

/// A page of a directory listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page {
    /// Entries: folders first, then the rest, each sorted by name.
    pub entries: Vec<Entry>,
    /// Entries in the whole directory.
    pub total: u64,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Sort key: folders (`false`) before the rest, then by name (compared as the OS's
/// bytes, so names need no conversion until they are shown).
pub type Key = (bool, OsString);

fn cursor_of(key: &Key) -> String {
    format!(
        "{}/{}",
        if key.0 { 'f' } else { 'd' },
        key.1.to_string_lossy()
    )
}

/// Parses a cursor made by [`cursor_of`]; `None` when it is not one. (A name that is not
/// valid UTF-8 cannot be a cursor exactly; paging past it may repeat or skip it.)
pub fn parse_cursor(cursor: &str) -> Option<Key> {
    let (kind, name) = cursor.split_once('/')?;
    match kind {
        "d" => Some((false, OsString::from(name))),
        "f" => Some((true, OsString::from(name))),
        _ => None,
    }
}

/// Lists the page of `dir` after `after` with at most `limit` entries.
pub fn list(dir: &Dir, after: Option<&Key>, limit: usize) -> io::Result<Page> {
    let limit = limit.max(1);
    let mut heap: BinaryHeap<Key> = BinaryHeap::with_capacity(limit + 1);
    let mut total = 0u64;
    let mut more = false;
    for entry in dir.entries()? {
        let entry = entry?;
        total += 1;
        let not_dir = !entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let key = (not_dir, entry.file_name());
        if after.is_some_and(|a| &key <= a) {
            continue;
        }
        if heap.len() < limit {
            heap.push(key);
        } else {
            more = true;
            if heap.peek().is_some_and(|top| &key < top) {
                heap.pop();
                heap.push(key);
            }
        }
    }
    let keys = heap.into_sorted_vec();
    let next_after = if more {
        keys.last().map(cursor_of)
    } else {
        None
    };
    let mut entries = Vec::with_capacity(keys.len());
    for (_, name) in keys {
        // An entry removed since the directory was read is simply left out.
        let Ok(meta) = dir.symlink_metadata(&name) else {
            continue;
        };
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        entries.push(Entry {
            size: if kind == Kind::Dir { 0 } else { meta.len() },
            modified_ms: meta.modified().ok().map(|t| unix_ms(t.into_std())),
            name: name.to_string_lossy().into_owned(),
            kind,
        });
    }
    Ok(Page {
        entries,
        total,
        next_after,
    })
}

/// Unix milliseconds of a file time (negative before 1970).
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_everything_once_in_order_folders_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for i in 0..57 {
            std::fs::write(tmp.path().join(format!("f{i:03}")), b"x").expect("write");
        }
        for i in 0..5 {
            std::fs::create_dir(tmp.path().join(format!("z{i}"))).expect("mkdir");
        }
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).expect("open");
        let mut seen = Vec::new();
        let mut after: Option<Key> = None;
        loop {
            let page = list(&dir, after.as_ref(), 10).expect("list");
            assert_eq!(page.total, 62);
            assert!(page.entries.len() <= 10);
            seen.extend(page.entries.iter().map(|e| (e.kind, e.name.clone())));
            match page.next_after {
                Some(c) => after = Some(parse_cursor(&c).expect("cursor")),
                None => break,
            }
        }
        assert_eq!(seen.len(), 62);
        assert!(seen[..5].iter().all(|(k, _)| *k == Kind::Dir), "{seen:?}");
        assert_eq!(seen[5].1, "f000");
        assert_eq!(seen[61].1, "f056");
        assert!(seen[5..].windows(2).all(|w| w[0].1 < w[1].1));
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor("d/a b"), Some((false, OsString::from("a b"))));
        assert_eq!(parse_cursor("f/x"), Some((true, OsString::from("x"))));
        assert_eq!(parse_cursor("x/y"), None);
        assert_eq!(parse_cursor("nope"), None);
        assert_eq!(cursor_of(&(true, "n".into())), "f/n");
    }
}
