//! A folder as a zip or tar.zst stream, written on a blocking thread into any `Write`
//! (in warden: a bounded channel feeding the HTTP response), in constant memory apart
//! from zip's central directory (about 100 bytes per entry, written at the end).
//!
//! The walk goes through directory handles below the root, never through path strings,
//! and does not follow symlinks (they are skipped), so it cannot leave the root or loop.

use std::io::{self, Read, Write};

use cap_std::fs::Dir;
use serde::Deserialize;
use utoipa::ToSchema;

/// Deepest folder nesting an archive descends into; deeper folders are skipped.
const MAX_DEPTH: usize = 64;
/// Files smaller than this are stored in a zip uncompressed: deflate saves little on
/// them, and resetting its encoder for each file costs more than the file (it dominated
/// zipping a folder of 100,000 small files).
const ZIP_STORE_BELOW: u64 = 1024;

/// Archive format of a folder download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
pub enum ArchiveFormat {
    /// A zip file (deflate), opened by every OS.
    #[default]
    #[serde(rename = "zip")]
    Zip,
    /// A tar stream compressed with zstd.
    #[serde(rename = "tar.zst")]
    TarZst,
}

impl ArchiveFormat {
    /// File name extension, with the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => ".zip",
            ArchiveFormat::TarZst => ".tar.zst",
        }
    }

    /// MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "application/zip",
            ArchiveFormat::TarZst => "application/zstd",
        }
    }
}

/// One regular file found by the walk.
struct FileItem {
    file: Box<dyn Read>,
    len: u64,
    mode: u32,
    mtime: std::time::SystemTime,
}

/// Something the walk reports, in order.
enum Item {
    Dir(String),
    File(String, FileItem),
}

/// Walks `dir` depth-first, calling `visit` with names prefixed by `prefix/`.
/// With `mask`, files that may hold the game's secrets (`files::secrets`) are given
/// with those values masked; such a file above `MAX_MASKED_BYTES` is left out.
fn walk(
    dir: Dir,
    prefix: &str,
    mask: bool,
    visit: &mut dyn FnMut(Item) -> io::Result<()>,
) -> io::Result<()> {
    let mut stack = vec![(dir, prefix.to_string(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        visit(Item::Dir(format!("{prefix}/")))?;
        for entry in dir.entries()? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}/{name}");
            let ft = entry.file_type()?;
            if ft.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    stack.push((entry.open_dir()?, path, depth + 1));
                }
            } else if ft.is_file() {
                let mut opts = cap_std::fs::OpenOptions::new();
                opts.read(true);
                crate::os::open_nonblocking(&mut opts);
                // A file removed since the directory was read is left out.
                let Ok(file) = entry.open_with(&opts) else {
                    continue;
                };
                let file = file.into_std();
                let meta = file.metadata()?;
                if !meta.is_file() {
                    continue;
                }
                let mut len = meta.len();
                let mut reader: Box<dyn Read> = Box::new(file);
                if mask && super::secrets::applies(&name) {
                    if len > super::secrets::MAX_MASKED_BYTES {
                        continue;
                    }
                    let mut bytes = Vec::new();
                    reader.read_to_end(&mut bytes)?;
                    let bytes = super::secrets::mask_bytes(&name, &bytes).unwrap_or(bytes);
                    len = bytes.len() as u64;
                    reader = Box::new(io::Cursor::new(bytes));
                }
                let item = FileItem {
                    len,
                    mode: crate::os::unix_mode(&meta).unwrap_or(0o644),
                    mtime: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                    file: reader,
                };
                visit(Item::File(path, item))?;
            }
        }
    }
    Ok(())
}

/// Writes the folder `dir` as an archive whose entries start with `base/`.
/// With `mask`, the game's secrets in its config files are masked (see [`walk`]).
pub fn write(
    dir: Dir,
    base: &str,
    format: ArchiveFormat,
    mask: bool,
    out: impl Write,
) -> io::Result<()> {
    match format {
        ArchiveFormat::Zip => write_zip(dir, base, mask, out),
        ArchiveFormat::TarZst => write_tar_zst(dir, base, mask, out),
    }
}

fn write_tar_zst(dir: Dir, base: &str, mask: bool, out: impl Write) -> io::Result<()> {
    let mut encoder = zstd::Encoder::new(out, 3)?;
    // The same bounded window as backups: a download holds a few MB whatever its size.
    encoder.window_log(crate::backup::archive::ZSTD_WINDOW_LOG)?;
    let mut tar = tar::Builder::new(encoder);
    walk(dir, base, mask, &mut |item| match item {
        Item::Dir(name) => {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, name, io::empty())
        }
        Item::File(name, f) => {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(f.mode);
            h.set_size(f.len);
            h.set_mtime(
                f.mtime
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            tar.append_data(&mut h, name, Exact::new(f.file, f.len))
        }
    })?;
    tar.into_inner()?.finish()?.flush()
}

fn write_zip(dir: Dir, base: &str, mask: bool, out: impl Write) -> io::Result<()> {
    use zip::write::SimpleFileOptions;
    let zerr = |e: zip::result::ZipError| io::Error::other(e.to_string());
    let mut zip = zip::ZipWriter::new_stream(out);
    walk(dir, base, mask, &mut |item| match item {
        Item::Dir(name) => zip
            .add_directory(name, SimpleFileOptions::default().unix_permissions(0o755))
            .map_err(zerr),
        Item::File(name, f) => {
            let method = if f.len < ZIP_STORE_BELOW {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            let options = SimpleFileOptions::default()
                .compression_method(method)
                .unix_permissions(f.mode)
                .large_file(f.len >= u64::from(u32::MAX))
                .last_modified_time(zip_time(f.mtime));
            zip.start_file(name, options).map_err(zerr)?;
            io::copy(&mut Exact::new(f.file, f.len), &mut zip)?;
            Ok(())
        }
    })?;
    zip.finish().map_err(zerr)?.into_inner().flush()
}

/// A file's time in zip's DOS format (1980-2107; out-of-range times are clamped).
fn zip_time(t: std::time::SystemTime) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    let dt = chrono::DateTime::<chrono::Utc>::from(t).naive_utc();
    let year = u16::try_from(dt.year().clamp(1980, 2107)).unwrap_or(1980);
    zip::DateTime::from_date_and_time(
        year,
        u8::try_from(dt.month()).unwrap_or(1),
        u8::try_from(dt.day()).unwrap_or(1),
        u8::try_from(dt.hour()).unwrap_or(0),
        u8::try_from(dt.minute()).unwrap_or(0),
        u8::try_from(dt.second()).unwrap_or(0),
    )
    .unwrap_or_default()
}

/// Reads exactly `len` bytes: a file that grew since its size was taken is cut, one that
/// shrank is padded with zeros — archive headers already promised `len` bytes.
struct Exact<R> {
    inner: io::Take<R>,
    remaining: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, len: u64) -> Self {
        Exact {
            inner: inner.take(len),
            remaining: len,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            buf[..n].fill(0);
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("world/region")).expect("mkdir");
        std::fs::write(tmp.path().join("server.properties"), b"motd=hi\n").expect("write");
        std::fs::write(
            tmp.path().join("world/region/r.0.0.mca"),
            vec![7u8; 100_000],
        )
        .expect("write");
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).expect("open");
        (tmp, dir)
    }

    #[test]
    fn tar_zst_holds_the_tree() {
        let (_tmp, dir) = tree();
        let mut out = Vec::new();
        write(dir, "mc", ArchiveFormat::TarZst, false, &mut out).expect("archive");
        let tar_bytes = zstd::decode_all(&out[..]).expect("zstd");
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut names = Vec::new();
        for e in archive.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            if name == "mc/world/region/r.0.0.mca" {
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read");
                assert_eq!(data, vec![7u8; 100_000]);
            }
            names.push(name);
        }
        for n in ["mc/", "mc/server.properties", "mc/world/region/r.0.0.mca"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn zip_is_well_formed() {
        let (_tmp, dir) = tree();
        let mut out = Vec::new();
        write(dir, "mc", ArchiveFormat::Zip, false, &mut out).expect("archive");
        // End-of-central-directory signature at the end: the archive was finished.
        let eocd = out
            .windows(4)
            .rposition(|w| w == [0x50, 0x4b, 0x05, 0x06])
            .expect("end of central directory");
        assert!(out.len() - eocd >= 22);
        let listing = String::from_utf8_lossy(&out);
        assert!(listing.contains("mc/server.properties"));
        assert!(listing.contains("mc/world/region/r.0.0.mca"));
    }

    #[test]
    fn exact_pads_and_cuts() {
        let mut out = Vec::new();
        Exact::new(&b"abc"[..], 5)
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact::new(&b"abcdef"[..], 2)
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"ab");
    }
}
