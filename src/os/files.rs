//! File-system details that differ per OS, for the files service: making a rename
//! durable, keeping a replaced file's owner, Unix permission bits for archives, and
//! opening without hanging on a FIFO.

use std::io;

/// Makes a rename inside `dir` durable (fsync of the directory). The handle is reopened
/// for reading because cap-std's directory handles may be `O_PATH`, which cannot be
/// flushed.
#[cfg(unix)]
pub fn sync_dir(dir: &cap_std::fs::Dir) -> io::Result<()> {
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true);
    dir.open_with(".", &opts)?.sync_all()
}

/// Makes a rename inside `dir` durable. Windows cannot flush a directory handle; NTFS
/// journals the rename itself.
#[cfg(windows)]
pub fn sync_dir(_dir: &cap_std::fs::Dir) -> io::Result<()> {
    Ok(())
}

/// Makes a rename or a new file inside the directory at `path` durable (fsync of the
/// directory).
#[cfg(unix)]
pub fn sync_dir_path(path: &std::path::Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Makes a rename inside the directory at `path` durable. Windows cannot flush a directory
/// handle; NTFS journals the rename itself.
#[cfg(windows)]
pub fn sync_dir_path(_path: &std::path::Path) -> io::Result<()> {
    Ok(())
}

/// Makes the contents of the file at `path` durable. A read-only handle is enough on Unix
/// (and works for a read-only file).
#[cfg(unix)]
pub fn sync_file_path(path: &std::path::Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Makes the contents of the file at `path` durable. Windows flushes only a handle opened
/// for writing (`FlushFileBuffers` on a read-only one is "Access denied").
#[cfg(windows)]
pub fn sync_file_path(path: &std::path::Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .sync_all()
}

/// Gives `to` the owner and group of the file `from` describes, so replacing a game
/// server's config through warden (running as root) leaves it writable by the server.
/// Only root may give files away; for anyone else this is a no-op, which is right: the
/// file then belongs to the user who owned the directory's writer anyway.
#[cfg(unix)]
pub fn copy_owner(from: &std::fs::Metadata, to: &std::fs::File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::os::unix::fs::fchown(to, Some(from.uid()), Some(from.gid())) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// Owners are inherited from the directory on Windows; nothing to copy.
#[cfg(windows)]
pub fn copy_owner(_from: &std::fs::Metadata, _to: &std::fs::File) -> io::Result<()> {
    Ok(())
}

/// The Unix permission bits of a file, for archive entries.
#[cfg(unix)]
pub fn unix_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    Some(meta.mode() & 0o7777)
}

/// Windows files have no Unix permission bits.
#[cfg(windows)]
pub fn unix_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// Gives a file extracted from an archive the archive's permission bits (at most
/// `0o777`, never set-uid or set-gid), so an extracted server binary stays executable.
#[cfg(unix)]
pub fn set_archive_mode(file: &std::fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
}

/// Windows files have no Unix permission bits.
#[cfg(windows)]
pub fn set_archive_mode(_file: &std::fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Makes opening a FIFO return at once instead of waiting for a writer (a program can
/// leave one in its directory; a download must not hang a thread on it).
#[cfg(unix)]
pub fn open_nonblocking(opts: &mut cap_std::fs::OpenOptions) {
    use cap_std::fs::OpenOptionsExt;
    opts.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
}

/// Opening never waits for a writer on Windows.
#[cfg(windows)]
pub fn open_nonblocking(_opts: &mut cap_std::fs::OpenOptions) {}

/// Writes `text` to a new file only its owner may read (0600), replacing any old one.
#[cfg(unix)]
pub fn write_private(path: &std::path::Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Writes `text` to a new file; on Windows it inherits the data directory's ACL, which
/// the service installer restricts.
#[cfg(windows)]
pub fn write_private(path: &std::path::Path, text: &str) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, text)
}
