//! Streaming uploads and downloads in constant memory.
//!
//! An upload streams each file into a temporary file beside its target and renames it
//! into place only when complete, so a broken upload never leaves half a file. A
//! download streams a file in 64 KiB chunks, or a folder as an archive produced on a
//! blocking thread into a bounded channel (8 chunks of 64 KiB; when it is full the
//! archiver waits, so a slow client slows the archiver instead of growing memory).
//! Every transfer holds one of `files.max_concurrent_transfers` permits until it ends.

use std::io::{self, Write};

use axum::body::Bytes;
use cap_std::fs::Dir;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{
    ArchiveFormat, Area, Files, FilesError, RelPath, TempFile, archive, io_err, open_read, parse,
};
use crate::program::ProgramSpec;

/// Size of the chunks a download is sent in.
const CHUNK: usize = 64 * 1024;
/// Bytes an upload gathers before writing them to disk.
const UPLOAD_BUFFER: usize = 256 * 1024;
/// Chunks queued between the archiver thread and the response.
const ARCHIVE_QUEUE: usize = 8;

/// An upload in progress into one folder.
pub struct Upload {
    files: Files,
    dir: Dir,
    dir_path: RelPath,
    overwrite: bool,
    received: u64,
    _permit: OwnedSemaphorePermit,
}

/// One file of an upload being received.
pub struct UploadFile {
    tmp: Option<TempFile>,
    writer: tokio::io::BufWriter<tokio::fs::File>,
    path: RelPath,
    replaced: Option<std::fs::Metadata>,
    written: u64,
    budget: u64,
}

/// A file an upload stored.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// Path relative to the file root.
    pub path: String,
    /// Bytes stored.
    pub size: u64,
    /// True when it replaced an existing file.
    pub replaced: bool,
}

/// A download ready to be sent.
pub struct Download {
    /// File name to offer the browser.
    pub file_name: String,
    /// Exact length when known (single files).
    pub len: Option<u64>,
    /// MIME type.
    pub content_type: &'static str,
    /// The bytes; ends early (with an error) if the disk fails or warden shuts down.
    pub body: BoxStream<'static, io::Result<Bytes>>,
}

fn join_err(e: tokio::task::JoinError) -> FilesError {
    FilesError::Io {
        what: "run file work".into(),
        source: io::Error::other(e.to_string()),
    }
}

impl Files {
    /// Starts an upload into the folder `dir` (which must exist). With `overwrite`,
    /// existing files are replaced (keeping their permissions); without, they are a
    /// conflict.
    pub async fn begin_upload(
        &self,
        spec: &ProgramSpec,
        dir: RelPath,
        overwrite: bool,
    ) -> Result<Upload, FilesError> {
        let permit = self.transfer_permit()?;
        let dir_path = dir.clone();
        let opened = self
            .with_root(spec, Area::Files, move |_, root| {
                Files::open_dir(&root, &dir)
            })
            .await?;
        Ok(Upload {
            files: self.clone(),
            dir: opened,
            dir_path,
            overwrite,
            received: 0,
            _permit: permit,
        })
    }

    /// Streams the file or folder at `path` (a folder as an archive in `format`).
    pub async fn download(
        &self,
        spec: &ProgramSpec,
        area: Area,
        path: RelPath,
        format: ArchiveFormat,
        mask: bool,
    ) -> Result<Download, FilesError> {
        let permit = self.transfer_permit()?;
        let base = path.name().unwrap_or(&spec.name).to_string();
        // Open once and decide on the handle, so the path is resolved only once.
        let (file, meta) = self
            .with_root(spec, area, move |_, root| {
                let file = open_read(&root, &path)?;
                let meta = file.metadata().map_err(|e| io_err("read", &path, e))?;
                Ok((file, meta))
            })
            .await?;
        let shutdown = self.inner.shutdown.clone().cancelled_owned();
        if meta.is_dir() {
            let dir = Dir::from_std_file(file);
            let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(ARCHIVE_QUEUE);
            let name = base.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let mut out = ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::with_capacity(CHUNK),
                };
                let result =
                    archive::write(dir, &name, format, mask, &mut out).and_then(|()| out.flush());
                if let Err(e) = result
                    && e.kind() != io::ErrorKind::BrokenPipe
                {
                    tracing::warn!(error = %e, archive = %name, "folder download failed");
                    let _ = tx.blocking_send(Err(e));
                }
            });
            let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
                .take_until(shutdown)
                .boxed();
            return Ok(Download {
                file_name: format!("{base}{}", format.extension()),
                len: None,
                content_type: format.content_type(),
                body,
            });
        }
        if !meta.is_file() {
            return Err(FilesError::Invalid(format!(
                "'{base}' is not a regular file or folder"
            )));
        }
        let len = meta.len();
        if mask && super::secrets::applies(&base) {
            // A config file that may hold the game's secrets: read whole, masked.
            if len > super::secrets::MAX_MASKED_BYTES {
                return Err(FilesError::Denied(format!(
                    "'{base}' may hold the game's passwords and is too large to mask; downloading it needs the define permission on the program"
                )));
            }
            let shown = base.clone();
            let bytes = tokio::task::spawn_blocking(move || {
                let mut bytes = Vec::new();
                let mut capped = std::io::Read::take(&file, super::secrets::MAX_MASKED_BYTES);
                std::io::Read::read_to_end(&mut capped, &mut bytes).map(|_| bytes)
            })
            .await
            .map_err(join_err)?
            .map_err(|e| FilesError::Io {
                what: format!("read '{shown}'"),
                source: e,
            })?;
            let bytes = super::secrets::mask_bytes(&base, &bytes).unwrap_or(bytes);
            drop(permit);
            return Ok(Download {
                file_name: base,
                len: Some(bytes.len() as u64),
                content_type: "application/octet-stream",
                body: futures_util::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed(),
            });
        }
        let reader = tokio::fs::File::from_std(file).take(len);
        let body = tokio_util::io::ReaderStream::with_capacity(reader, CHUNK)
            .map(move |chunk| {
                // The permit lives as long as the stream.
                let _ = &permit;
                chunk
            })
            .take_until(shutdown)
            .boxed();
        Ok(Download {
            file_name: base,
            len: Some(len),
            content_type: "application/octet-stream",
            body,
        })
    }
}

impl Upload {
    /// Starts receiving the file `name`, relative to the upload folder; a name with
    /// folders (`world/level.dat`, as browsers send for folder uploads) creates them.
    pub async fn file(&mut self, name: &str) -> Result<UploadFile, FilesError> {
        let rel = parse("filename", name)?;
        let Some(file_name) = rel.name().map(str::to_string) else {
            return Err(FilesError::BadPath(
                crate::program::FieldError::invalid_path("filename", name),
            ));
        };
        let path = self.dir_path.join(&rel);
        let dir = self
            .dir
            .try_clone()
            .map_err(|e| io_err("open", &self.dir_path, e))?;
        let overwrite = self.overwrite;
        let shown = path.clone();
        let (tmp, replaced) = tokio::task::spawn_blocking(move || {
            let parent_rel = rel.parent();
            let parent = if parent_rel.is_root() {
                dir
            } else {
                dir.create_dir_all(parent_rel.as_fs_path())
                    .and_then(|()| dir.open_dir(parent_rel.as_fs_path()))
                    .map_err(|e| io_err("create", &shown.parent(), e))?
            };
            let replaced = match parent.symlink_metadata(&file_name) {
                Ok(m) if !overwrite || !m.is_file() => {
                    return Err(FilesError::Conflict(if m.is_file() {
                        format!(
                            "'{shown}' already exists; upload with overwrite=true to replace it"
                        )
                    } else {
                        format!("'{shown}' exists and is not a regular file")
                    }));
                }
                Ok(_) => Some(
                    open_read(&parent, &parse("filename", &file_name)?)?
                        .metadata()
                        .map_err(|e| io_err("read", &shown, e))?,
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("upload", &shown, e)),
            };
            let tmp =
                TempFile::create(&parent, &file_name).map_err(|e| io_err("upload", &shown, e))?;
            Ok((tmp, replaced))
        })
        .await
        .map_err(join_err)??;
        // Batch the body's small chunks into large writes: each write is a round trip
        // to a blocking thread.
        let writer = tokio::io::BufWriter::with_capacity(
            UPLOAD_BUFFER,
            tokio::fs::File::from_std(
                tmp.file
                    .try_clone()
                    .map_err(|e| io_err("upload", &path, e))?,
            ),
        );
        Ok(UploadFile {
            tmp: Some(tmp),
            writer,
            path,
            replaced,
            written: 0,
            budget: self
                .files
                .limits()
                .max_upload_bytes
                .saturating_sub(self.received),
        })
    }

    /// Completes `file`: flushes it and renames it into place.
    pub async fn finish_file(&mut self, mut file: UploadFile) -> Result<Uploaded, FilesError> {
        file.writer
            .flush()
            .await
            .map_err(|e| io_err("upload", &file.path, e))?;
        let Some(tmp) = file.tmp.take() else {
            return Err(FilesError::Invalid("the file was already finished".into()));
        };
        let replaced = file.replaced.take();
        let path = file.path.clone();
        let overwrite = self.overwrite;
        let was_replaced = replaced.is_some();
        tokio::task::spawn_blocking(move || tmp.commit(replaced.as_ref(), overwrite))
            .await
            .map_err(join_err)?
            .map_err(|e| io_err("upload", &path, e))?;
        self.received += file.written;
        Ok(Uploaded {
            path: path.to_string(),
            size: file.written,
            replaced: was_replaced,
        })
    }
}

impl UploadFile {
    /// Appends a chunk; fails once the upload as a whole passes `files.max_upload_bytes`.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), FilesError> {
        self.written += chunk.len() as u64;
        if self.written > self.budget {
            return Err(FilesError::TooLarge(
                "the upload is larger than files.max_upload_bytes".into(),
            ));
        }
        self.writer
            .write_all(chunk)
            .await
            .map_err(|e| io_err("upload", &self.path, e))
    }
}

impl Drop for UploadFile {
    fn drop(&mut self) {
        // An unfinished upload's temporary file is removed (by `TempFile`'s drop) on a
        // blocking thread: unlinking a large file can take a while.
        if let Some(tmp) = self.tmp.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(move || drop(tmp));
                }
                Err(_) => drop(tmp),
            }
        }
    }
}

/// A `Write` that sends 64 KiB chunks into a bounded channel, waiting when it is full.
/// A closed channel (the client went away) is a `BrokenPipe`, which stops the archiver.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
