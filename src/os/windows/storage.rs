//! File-system details of backups and restores on Windows: write-back, flushing a
//! restored tree, symbolic links and Unix permission bits.

use std::ffi::OsString;
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{GENERIC_WRITE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, FlushFileBuffers,
    GetVolumeNameForVolumeMountPointW, GetVolumePathNameW, OPEN_EXISTING,
};

use super::readings::wide;

/// Does nothing on Windows: there is no call to start writing a range of a file without
/// waiting for it, and the cache manager's lazy writer already writes dirty pages out
/// within seconds. Durability still comes only from the final flush.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    let _ = (file, offset, len);
}

/// Flushes what was written under `path` (a restored tree) to disk.
///
/// First flushes the whole volume holding `path` (`FlushFileBuffers` on the volume), the
/// counterpart of Linux `syncfs`: one call however many files were restored. That needs
/// administrator rights (warden running as a service has them). Without them, every
/// regular file under `path` is flushed on its own instead: slower for many files, but
/// the restored data is just as durable before it replaces the live directory. Files with
/// the read-only attribute cannot be opened for writing and are skipped (a restore never
/// creates them: [`set_file_mode`] sets no attribute). Directories need no flush: NTFS
/// journals their changes.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    if flush_volume(path).is_ok() {
        return Ok(());
    }
    flush_tree(path)
}

/// `FlushFileBuffers` on the volume that holds `path`.
fn flush_volume(path: &Path) -> io::Result<()> {
    let p = wide(path.as_os_str());
    let mut mount = [0u16; 1024];
    // SAFETY: a NUL-terminated path; `mount` holds the given number of UTF-16 units.
    if unsafe { GetVolumePathNameW(p.as_ptr(), mount.as_mut_ptr(), mount.len() as u32) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut volume = [0u16; 64];
    // SAFETY: `mount` is NUL-terminated (written by the call above); `volume` holds the
    // given number of units (a volume GUID path is 49 with its NUL).
    let ok = unsafe {
        GetVolumeNameForVolumeMountPointW(mount.as_ptr(), volume.as_mut_ptr(), volume.len() as u32)
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // `\\?\Volume{GUID}\` names the root directory; without the final backslash it names
    // the volume itself, which is what must be opened.
    let len = volume.iter().position(|c| *c == 0).unwrap_or(volume.len());
    let mut name: Vec<u16> = volume[..len].to_vec();
    if name.last() == Some(&u16::from(b'\\')) {
        name.pop();
    }
    name.push(0);
    // SAFETY: a NUL-terminated name; no security attributes or template; a new handle
    // or INVALID_HANDLE_VALUE out.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a valid handle that nothing else owns.
    let h = unsafe { OwnedHandle::from_raw_handle(h) };
    // SAFETY: a volume handle opened for writing, as the call requires.
    if unsafe { FlushFileBuffers(h.as_raw_handle()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Flushes every regular file under `root`, not following symbolic links.
fn flush_tree(root: &Path) -> io::Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                if entry.metadata()?.permissions().readonly() {
                    continue;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(entry.path())?
                    .sync_all()?;
            }
        }
    }
    Ok(())
}

/// Creates a symbolic link at `link` pointing to `target`. Archives store targets with
/// `/`, which Windows does not resolve inside a link, so it becomes `\`. A link to a
/// directory must be created as one: the kind follows what `target` names when the link
/// is made (a restore creates links after every file and directory).
///
/// Creating symbolic links needs the "Create symbolic links" privilege (administrators
/// have it) or Developer Mode; without it the OS error is returned as is, so a restore
/// reports which link it could not create.
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    let target = PathBuf::from(OsString::from_wide(
        &target
            .as_os_str()
            .encode_wide()
            .map(|c| {
                if c == u16::from(b'/') {
                    u16::from(b'\\')
                } else {
                    c
                }
            })
            .collect::<Vec<u16>>(),
    ));
    let resolved = link
        .parent()
        .map(|p| p.join(&target))
        .unwrap_or_else(|| target.clone());
    if std::fs::metadata(&resolved).is_ok_and(|m| m.is_dir()) {
        std::os::windows::fs::symlink_dir(&target, link)
    } else {
        std::os::windows::fs::symlink_file(&target, link)
    }
}

/// Does nothing on Windows. Of a Unix mode only the owner's write bit could map (to the
/// read-only attribute), and applying it would leave files restored from a Unix archive
/// read-only to the program that must write them; Windows access is governed by the
/// ACLs the files inherit from their directory instead.
pub fn set_file_mode(path: &Path, mode: u32) -> io::Result<()> {
    let _ = (path, mode);
    Ok(())
}
