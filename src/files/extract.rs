//! Unpacking an uploaded archive (zip, tar.zst, tar.gz) into a folder below the file
//! root, streaming entry by entry in bounded memory (zip: its central directory; zstd: a
//! window of at most 128 MiB, the format's default limit; tar and gzip: small buffers).
//!
//! Every entry name is parsed by `RelPath` (no `..`, no absolute path, no drive
//! letter: an archive naming one is refused as a whole) and created through the
//! destination's directory handle, which refuses symlinks leading out. Links, devices and
//! other special entries are skipped and counted, never created. The total written is
//! bounded (a small archive cannot fill the disk) and so is the number of entries.

use std::io::{self, Read};

use cap_std::fs::{Dir, OpenOptions};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::FilesError;
use crate::relpath::RelPath;

/// Most entries one archive may hold.
pub const MAX_ENTRIES: u64 = 200_000;
/// At most this many times the archive's own size is written (a zip bomb stops early;
/// real archives of game servers compress far less than 1:200).
const MAX_RATIO: u64 = 200;
/// Whatever the archive's size, never more than this (256 GiB).
const MAX_TOTAL_BYTES: u64 = 256 << 30;
/// Largest zstd window accepted (2^27 = 128 MiB, zstd's default decoder limit).
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// Archive formats that can be extracted, known by the file name's ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.zip`
    Zip,
    /// `.tar.zst`, `.tzst`
    TarZst,
    /// `.tar.gz`, `.tgz`
    TarGz,
    /// `.tar`
    Tar,
}

impl Format {
    /// The format a file name says, and the name without its archive ending.
    pub fn of(name: &str) -> Option<(Format, &str)> {
        let lower = name.to_ascii_lowercase();
        for (end, f) in [
            (".tar.zst", Format::TarZst),
            (".tzst", Format::TarZst),
            (".tar.gz", Format::TarGz),
            (".tgz", Format::TarGz),
            (".zip", Format::Zip),
            (".tar", Format::Tar),
        ] {
            if lower.ends_with(end) && lower.len() > end.len() {
                return Some((f, &name[..name.len() - end.len()]));
            }
        }
        None
    }
}

/// What an extraction created.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Extracted {
    /// The new folder, relative to the file root.
    pub to: String,
    /// Files written.
    pub files: u64,
    /// Folders created (the new folder not counted).
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Entries left out: symbolic and hard links, devices, FIFOs.
    pub skipped: u64,
}

/// Writes entries below `dest`, keeping the counts and the budget.
struct Writer<'a> {
    dest: &'a Dir,
    budget: u64,
    entries: u64,
    cancel: &'a CancellationToken,
    out: Extracted,
}

fn invalid(m: String) -> FilesError {
    FilesError::Invalid(m)
}

fn io_fail(what: &str, name: &str, e: io::Error) -> FilesError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return FilesError::Denied(format!("cannot {what} '{name}': {e}"));
    }
    FilesError::Io {
        what: format!("{what} '{name}'"),
        source: e,
    }
}

impl Writer<'_> {
    /// Counts an entry; refuses past the limits or after shutdown began.
    fn next(&mut self) -> Result<(), FilesError> {
        if self.cancel.is_cancelled() {
            return Err(FilesError::Busy(
                "warden is shutting down; extract the archive again after it restarts".into(),
            ));
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(FilesError::TooLarge(format!(
                "the archive has more than {MAX_ENTRIES} entries; nothing was extracted"
            )));
        }
        Ok(())
    }

    /// The entry's path below the destination, or why the archive is refused.
    fn path(name: &str) -> Result<Option<RelPath>, FilesError> {
        let rel = RelPath::parse(name).map_err(|e| {
            invalid(format!(
                "the archive entry '{name}' {e}; it would land outside the folder, so nothing was extracted"
            ))
        })?;
        Ok((!rel.is_root()).then_some(rel))
    }

    fn dir(&mut self, name: &str) -> Result<(), FilesError> {
        self.next()?;
        let Some(rel) = Self::path(name)? else {
            return Ok(());
        };
        if self.dest.symlink_metadata(rel.as_fs_path()).is_err() {
            self.dest
                .create_dir_all(rel.as_fs_path())
                .map_err(|e| io_fail("create the folder", name, e))?;
            self.out.dirs += 1;
        }
        Ok(())
    }

    fn skip(&mut self) -> Result<(), FilesError> {
        self.next()?;
        self.out.skipped += 1;
        Ok(())
    }

    fn file(
        &mut self,
        name: &str,
        mode: Option<u32>,
        data: &mut dyn Read,
    ) -> Result<(), FilesError> {
        self.next()?;
        let Some(rel) = Self::path(name)? else {
            return Err(invalid(format!(
                "the archive entry '{name}' names a file without a name; nothing was extracted"
            )));
        };
        let parent = rel.parent();
        if !parent.is_root() {
            self.dest
                .create_dir_all(parent.as_fs_path())
                .map_err(|e| io_fail("create the folder", &parent.to_string(), e))?;
        }
        let mut opts = OpenOptions::new();
        // Never through an existing entry (an earlier link or a duplicate name).
        opts.write(true).create_new(true);
        let mut file = self
            .dest
            .open_with(rel.as_fs_path(), &opts)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    invalid(format!(
                        "the archive holds '{name}' twice; nothing was extracted"
                    ))
                } else {
                    io_fail("write", name, e)
                }
            })?
            .into_std();
        let written = io::copy(&mut data.take(self.budget + 1), &mut file)
            .map_err(|e| io_fail("extract", name, e))?;
        if written > self.budget {
            return Err(FilesError::TooLarge(format!(
                "the archive unpacks to more than {} bytes (200 times its size, at most 256 GiB); nothing was extracted",
                self.out.bytes + self.budget
            )));
        }
        self.budget -= written;
        self.out.bytes += written;
        self.out.files += 1;
        if let Some(mode) = mode {
            crate::os::set_archive_mode(&file, mode)
                .map_err(|e| io_fail("set the mode of", name, e))?;
        }
        Ok(())
    }
}

/// Unpacks `archive` (of `archive_len` bytes) in `format` into the empty folder `dest`.
pub fn extract(
    archive: std::fs::File,
    archive_len: u64,
    format: Format,
    dest: &Dir,
    cancel: &CancellationToken,
) -> Result<Extracted, FilesError> {
    let mut w = Writer {
        dest,
        budget: archive_len
            .saturating_mul(MAX_RATIO)
            .saturating_add(1 << 20)
            .min(MAX_TOTAL_BYTES),
        entries: 0,
        cancel,
        out: Extracted::default(),
    };
    let broken = |e: io::Error| invalid(format!("the archive cannot be read: {e}"));
    match format {
        Format::Zip => zip_entries(archive, &mut w)?,
        Format::TarZst => {
            let mut d = zstd::Decoder::new(archive).map_err(broken)?;
            d.window_log_max(ZSTD_MAX_WINDOW_LOG).map_err(broken)?;
            tar_entries(d, &mut w)?;
        }
        Format::TarGz => tar_entries(flate2::read::GzDecoder::new(archive), &mut w)?,
        Format::Tar => tar_entries(archive, &mut w)?,
    }
    Ok(w.out)
}

fn zip_entries(archive: std::fs::File, w: &mut Writer<'_>) -> Result<(), FilesError> {
    let broken = |e: zip::result::ZipError| invalid(format!("the zip file cannot be read: {e}"));
    let mut zip = zip::ZipArchive::new(io::BufReader::new(archive)).map_err(broken)?;
    if zip.len() as u64 > MAX_ENTRIES {
        return Err(FilesError::TooLarge(format!(
            "the archive has {} entries, more than {MAX_ENTRIES}; nothing was extracted",
            zip.len()
        )));
    }
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(broken)?;
        let name = entry.name().map_err(broken)?.into_owned();
        if entry.is_dir() {
            w.dir(&name)?;
        } else if entry.is_symlink() || !entry.is_file() {
            w.skip()?;
        } else {
            let mode = entry.unix_mode();
            w.file(&name, mode, &mut entry)?;
        }
    }
    Ok(())
}

fn tar_entries(reader: impl Read, w: &mut Writer<'_>) -> Result<(), FilesError> {
    let broken = |e: io::Error| invalid(format!("the tar stream cannot be read: {e}"));
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| {
            invalid("an archive entry's name is not UTF-8; nothing was extracted".into())
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            w.dir(&name)?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mode = entry.header().mode().ok();
            w.file(&name, mode, &mut entry)?;
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            // Metadata the reader applies itself.
            continue;
        } else {
            w.skip()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;
    use std::io::Write;

    fn dest(tmp: &std::path::Path) -> Dir {
        std::fs::create_dir_all(tmp.join("out")).expect("mkdir");
        Dir::open_ambient_dir(tmp.join("out"), ambient_authority()).expect("open")
    }

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Regular);
            // Written raw: `append_data` itself refuses `..`, an attacker's tool does not.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn run(tmp: &std::path::Path, file: &str, bytes: &[u8]) -> Result<Extracted, FilesError> {
        let path = tmp.join(file);
        std::fs::write(&path, bytes).expect("write");
        let (format, _) = Format::of(file).expect("format");
        extract(
            std::fs::File::open(&path).expect("open"),
            bytes.len() as u64,
            format,
            &dest(tmp),
            &CancellationToken::new(),
        )
    }

    #[test]
    fn formats_are_known_by_their_ending() {
        assert_eq!(Format::of("w.tar.zst"), Some((Format::TarZst, "w")));
        assert_eq!(Format::of("W.TGZ"), Some((Format::TarGz, "W")));
        assert_eq!(Format::of("mods.zip"), Some((Format::Zip, "mods")));
        assert_eq!(Format::of(".zip"), None);
        assert_eq!(Format::of("notes.txt"), None);
    }

    #[test]
    fn a_tar_gz_unpacks_with_folders_and_modes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let tar = tar_with(&[("a/b/run.sh", b"#!/bin/sh\n"), ("top.txt", b"hi")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gz");
        let out = run(tmp.path(), "x.tar.gz", &gz.finish().expect("gz")).expect("extract");
        assert_eq!((out.files, out.bytes), (2, 12));
        let run_sh = tmp.path().join("out/a/b/run.sh");
        assert_eq!(std::fs::read(&run_sh).expect("read"), b"#!/bin/sh\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&run_sh)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
    }

    #[test]
    fn an_entry_leading_out_refuses_the_archive() {
        let tmp = tempfile::tempdir().expect("tmp");
        let tar = tar_with(&[("../evil.txt", b"x")]);
        let zst = zstd::encode_all(&tar[..], 3).expect("zstd");
        let err = run(tmp.path(), "x.tar.zst", &zst).expect_err("refused");
        assert!(err.to_string().contains("'..'"), "{err}");
        assert!(!tmp.path().join("evil.txt").exists());
    }

    #[test]
    fn a_bomb_stops_at_the_budget() {
        let tmp = tempfile::tempdir().expect("tmp");
        let big = vec![0u8; 8 << 20];
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        zip.start_file("zeros", zip::write::SimpleFileOptions::default())
            .expect("start");
        zip.write_all(&big).expect("write");
        let bytes = zip.finish().expect("finish").into_inner();
        assert!(bytes.len() < 64 << 10, "{}", bytes.len());
        let err = run(tmp.path(), "b.zip", &bytes).expect_err("refused");
        assert!(matches!(err, FilesError::TooLarge(_)), "{err}");
    }
}
