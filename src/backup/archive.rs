//! The archive itself, and all blocking work on it: writing a tar+zstd archive with its
//! manifest so that it is never half-written, verifying an archive against its manifest,
//! and extracting a verified archive for a restore.
//!
//! These functions run on dedicated low-priority threads (see `BackupService`). Memory use
//! is constant in the size of the data: one 1 MiB read buffer, zstd's window, and the
//! manifest (one small record per entry).
//!
//! Never half-written: everything is written inside `DEST/.partial-PROGRAM-ID/`, fsynced,
//! verified by reading it back, and only then that directory is renamed to its final
//! name (one atomic rename) and the destination directory fsynced. A finished backup is
//! exactly a directory whose name does not start with `.partial-`; anything interrupted
//! leaves only a `.partial-` directory, which the next start removes.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::error::BackupError;
use super::manifest::{
    ArchiveInfo, EntryKind, FORMAT, MANIFEST_FILE, Manifest, ManifestEntry, safe_relative,
};
use super::settings::{Filter, OnChange};
use super::walk::{ItemKind, WalkOptions, walk};
use crate::backup::record::Mismatch;
use crate::os;

/// Read size; also the granularity of progress, throttling and cancellation checks.
const CHUNK: usize = 1 << 20;

/// zstd's window: 2 MiB (what level 3 uses on large inputs), set explicitly so a higher
/// level cannot make a backup hold tens of MB. Part of warden's memory bound during a
/// backup (see bench/README.md); the ratio lost at high levels is small.
pub const ZSTD_WINDOW_LOG: u32 = 21;

/// Input per zstd worker job (threads > 0): 2 MiB instead of zstd's default of several
/// windows, so each worker holds a few MB, not tens.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;
/// Progress is reported at most this often.
const REPORT_EVERY: Duration = Duration::from_millis(250);
/// Prefix of unfinished backup directories.
pub const PARTIAL_PREFIX: &str = ".partial-";

/// What a running operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Consistency steps before reading.
    #[default]
    Preparing,
    /// Reading files into the archive.
    Reading,
    /// Reading the archive back against its manifest.
    Verifying,
    /// Extracting an archive for a restore.
    Extracting,
    /// Steps after reading (always run).
    Finishing,
}

/// Progress of a running backup, verification or restore.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Bytes of file data done in this phase.
    pub bytes_done: u64,
    /// Bytes of file data in this phase.
    pub bytes_total: u64,
    /// Files done in this phase.
    pub files_done: u64,
    /// Files in this phase.
    pub files_total: u64,
    /// The entry being worked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_file: Option<String>,
    /// Attempt number (a backup is retried when files change while read).
    pub attempt: u32,
}

/// How a blocking operation is observed and controlled.
pub struct Control<'a> {
    /// Cancelled → the operation stops at the next chunk with [`BackupError::Cancelled`].
    pub cancel: &'a CancellationToken,
    /// Receives progress at most every 250 ms, and at phase changes.
    pub report: &'a (dyn Fn(&Progress) + Sync),
    /// Read at most this many bytes per second.
    pub max_bytes_per_second: Option<u64>,
}

/// Counts bytes, throttles, reports progress and notices cancellation.
struct Meter<'a> {
    ctl: &'a Control<'a>,
    progress: Progress,
    phase_started: Instant,
    last_report: Instant,
}

impl<'a> Meter<'a> {
    fn new(ctl: &'a Control<'a>) -> Meter<'a> {
        Meter {
            ctl,
            progress: Progress::default(),
            phase_started: Instant::now(),
            last_report: Instant::now(),
        }
    }

    fn phase(&mut self, phase: Phase, bytes_total: u64, files_total: u64) {
        self.progress.phase = phase;
        self.progress.bytes_done = 0;
        self.progress.bytes_total = bytes_total;
        self.progress.files_done = 0;
        self.progress.files_total = files_total;
        self.progress.current_file = None;
        self.phase_started = Instant::now();
        self.report_now();
    }

    fn report_now(&mut self) {
        self.last_report = Instant::now();
        (self.ctl.report)(&self.progress);
    }

    fn file(&mut self, rel: &str) {
        self.progress.current_file = Some(rel.to_string());
    }

    fn file_done(&mut self) {
        self.progress.files_done += 1;
    }

    fn check(&self) -> Result<(), BackupError> {
        if self.ctl.cancel.is_cancelled() {
            return Err(BackupError::Cancelled);
        }
        Ok(())
    }

    fn add(&mut self, n: u64) -> Result<(), BackupError> {
        self.progress.bytes_done += n;
        self.check()?;
        if let Some(limit) = self.ctl.max_bytes_per_second.filter(|l| *l > 0) {
            let due = Duration::from_secs_f64(self.progress.bytes_done as f64 / limit as f64);
            // Sleep in short slices so a cancel is noticed quickly even at low limits.
            while self.phase_started.elapsed() < due {
                self.check()?;
                let left = due.saturating_sub(self.phase_started.elapsed());
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
        }
        if self.last_report.elapsed() >= REPORT_EVERY {
            self.report_now();
        }
        Ok(())
    }
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes written between two early-writeback requests.
const WRITEBACK_EVERY: u64 = 16 << 20;

/// A file writer that asks the kernel to start writing to disk every 16 MiB, so disk
/// writes overlap with compression instead of all waiting for the final fsync.
struct Writeback {
    file: File,
    written: u64,
    requested: u64,
}

impl Writeback {
    fn new(file: File) -> Writeback {
        Writeback {
            file,
            written: 0,
            requested: 0,
        }
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.requested >= WRITEBACK_EVERY {
            os::start_writeback(&self.file, self.requested, self.written - self.requested);
            self.requested = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R: Read> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Feeds exactly `size` bytes of a file to the tar writer (the size its header
/// announced), hashing them in 1 MiB chunks. A file that shrank is padded with zeros so
/// the archive stays well-formed; it is then reported as changed.
struct FileFeed<'m, 'a> {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    remaining: u64,
    short: bool,
    hasher: blake3::Hasher,
    meter: &'m mut Meter<'a>,
    failure: Option<BackupError>,
}

impl Read for FileFeed<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            if self.remaining == 0 {
                return Ok(0);
            }
            let want = usize::try_from(self.remaining.min(CHUNK as u64)).unwrap_or(CHUNK);
            let mut got = 0;
            while !self.short && got < want {
                match self.file.read(&mut self.buf[got..want]) {
                    Ok(0) => self.short = true,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.failure = Some(BackupError::io("cannot read", &self.path, e));
                        return Err(io::Error::other("read failed"));
                    }
                }
            }
            self.buf[got..want].fill(0);
            self.hasher.update(&self.buf[..want]);
            self.remaining -= want as u64;
            self.pos = 0;
            self.len = want;
            if let Err(e) = self.meter.add(want as u64) {
                self.failure = Some(e);
                return Err(io::Error::other("stopped"));
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What to back up, and how.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    /// Program name.
    pub program: String,
    /// Backup id (names the directories).
    pub backup_id: i64,
    /// Unix ms the backup started.
    pub started_at_ms: i64,
    /// The directory to back up.
    pub source: PathBuf,
    /// Where backup directories go.
    pub destination: PathBuf,
    /// Include globs.
    pub include: Vec<String>,
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// zstd level.
    pub zstd_level: i32,
    /// zstd worker threads (0: compress on the calling thread).
    pub zstd_threads: u32,
    /// Retries of the whole archive when files changed while read.
    pub change_retries: u32,
    /// What to do when files still changed after the retries.
    pub on_change: OnChange,
}

/// A finished backup.
#[derive(Debug)]
pub struct Created {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Files that changed on every attempt (kept, marked `changed`).
    pub changed: Vec<String>,
    /// Entries that could not be archived, in words.
    pub skipped: Vec<String>,
    /// Attempts made.
    pub attempts: u32,
}

/// Removes a directory tree when dropped, unless disarmed: an error, a cancel or a panic
/// anywhere in between leaves nothing behind.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = std::fs::remove_dir_all(&p)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot remove an unfinished backup; it is removed at the next start");
        }
    }
}

fn stamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| "unknown-time".into())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The unfinished directory of a backup inside its destination.
pub fn partial_dir(destination: &Path, program: &str, id: i64) -> PathBuf {
    destination.join(format!("{PARTIAL_PREFIX}{program}-{id}"))
}

/// Writes, verifies and atomically publishes a backup of `spec.source`.
pub fn create(spec: &CreateSpec, ctl: &Control<'_>) -> Result<Created, BackupError> {
    let filter = Filter::new(&spec.include, &spec.exclude).map_err(BackupError::Failed)?;
    std::fs::create_dir_all(&spec.destination).map_err(|e| {
        BackupError::io("cannot create the backup destination", &spec.destination, e)
    })?;
    let source = spec
        .source
        .canonicalize()
        .map_err(|e| BackupError::io("cannot open the directory to back up", &spec.source, e))?;
    let dest = spec
        .destination
        .canonicalize()
        .map_err(|e| BackupError::io("cannot open the backup destination", &spec.destination, e))?;
    if source == dest || source.starts_with(&dest) {
        return Err(BackupError::Failed(format!(
            "the backup destination {} contains the directory to back up; choose another destination",
            dest.display()
        )));
    }
    let partial = partial_dir(&dest, &spec.program, spec.backup_id);
    match std::fs::remove_dir_all(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io("cannot remove the stale", &partial, e)),
    }
    std::fs::create_dir(&partial).map_err(|e| BackupError::io("cannot create", &partial, e))?;
    let mut guard = RemoveOnDrop(Some(partial.clone()));
    let name = format!("{}-{}", spec.program, stamp(spec.started_at_ms));
    let archive_file = format!("{name}.tar.zst");
    // Even inside the unfinished directory the archive carries a `.partial` suffix until
    // it has been verified, so no stray file ever looks like a finished archive.
    let unverified = partial.join(format!("{archive_file}.partial"));
    let archive_path = partial.join(&archive_file);
    let skip = vec![dest.clone()];
    let mut meter = Meter::new(ctl);
    let mut attempt = 0;
    let started = Instant::now();
    let (mut manifest, changed, skipped) = loop {
        attempt += 1;
        meter.progress.attempt = attempt;
        let walked = walk(
            &source,
            &filter,
            &WalkOptions {
                everything: false,
                skip: &skip,
                cancelled: &|| ctl.cancel.is_cancelled(),
            },
        )?;
        let (manifest, changed) =
            write_archive(spec, &source, &walked.items, &unverified, &mut meter)?;
        if changed.is_empty() || attempt > spec.change_retries {
            break (manifest, changed, walked.skipped);
        }
        tracing::info!(program = %spec.program, attempt, files = changed.len(), "files changed while read; retrying the backup");
    };
    if !changed.is_empty() && spec.on_change == OnChange::Fail {
        return Err(BackupError::Changed(changed));
    }
    manifest.archive.file = archive_file;
    let written = started.elapsed();
    let problems = verify_with(&unverified, &manifest, &mut meter, Mode::AfterWrite)?;
    tracing::info!(
        program = %spec.program,
        backup = spec.backup_id,
        files = manifest.files,
        data_bytes = manifest.data_bytes,
        archive_bytes = manifest.archive.bytes,
        write_ms = written.as_millis() as u64,
        verify_ms = (started.elapsed() - written).as_millis() as u64,
        "backup archive written and verified"
    );
    if !problems.is_empty() {
        return Err(BackupError::Mismatch(problems));
    }
    std::fs::rename(&unverified, &archive_path)
        .map_err(|e| BackupError::io("cannot rename", &unverified, e))?;
    let manifest_path = partial.join(MANIFEST_FILE);
    write_manifest(&manifest_path, &manifest)?;
    os::sync_dir_path(&partial).map_err(|e| BackupError::io("cannot sync", &partial, e))?;
    let final_dir = dest.join(format!("{name}-{}", spec.backup_id));
    std::fs::rename(&partial, &final_dir)
        .map_err(|e| BackupError::io("cannot publish the backup as", &final_dir, e))?;
    guard.0 = None;
    // From here the backup exists; a failed directory sync only weakens durability of
    // the rename, so it is logged rather than turning a good backup into a failed one.
    if let Err(e) = os::sync_dir_path(&dest) {
        tracing::warn!(path = %dest.display(), error = %e, "cannot sync the backup destination");
    }
    Ok(Created {
        dir: final_dir,
        manifest,
        changed,
        skipped,
        attempts: attempt,
    })
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let file = File::create(path).map_err(|e| BackupError::io("cannot create", path, e))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, manifest)
        .map_err(|e| BackupError::io("cannot write", path, io::Error::other(e)))?;
    let file = w
        .into_inner()
        .map_err(|e| BackupError::io("cannot write", path, e.into_error()))?;
    file.sync_all()
        .map_err(|e| BackupError::io("cannot sync", path, e))
}

fn modified(meta: &std::fs::Metadata) -> Option<SystemTime> {
    meta.modified().ok()
}

/// Writes one attempt of the archive. Returns the manifest (archive name not yet set)
/// and the files that changed while they were read.
fn write_archive(
    spec: &CreateSpec,
    source: &Path,
    items: &[super::walk::Item],
    archive_path: &Path,
    meter: &mut Meter<'_>,
) -> Result<(Manifest, Vec<String>), BackupError> {
    let write_err = |e: io::Error| BackupError::io("cannot write the archive", archive_path, e);
    let file = File::create(archive_path).map_err(write_err)?;
    let sink = HashingWriter {
        inner: BufWriter::with_capacity(CHUNK, Writeback::new(file)),
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    let mut enc = zstd::stream::write::Encoder::new(sink, spec.zstd_level).map_err(write_err)?;
    enc.include_checksum(true).map_err(write_err)?;
    enc.window_log(ZSTD_WINDOW_LOG).map_err(write_err)?;
    if spec.zstd_threads > 0 {
        enc.multithread(spec.zstd_threads).map_err(write_err)?;
        enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
            .map_err(write_err)?;
    }
    // tar copies file data in 8 KiB pieces; a 1 MiB buffer in front of zstd turns
    // those into few large compression calls.
    let mut tar = tar::Builder::new(BufWriter::with_capacity(CHUNK, enc));
    let total: u64 = items
        .iter()
        .map(|i| match i.kind {
            ItemKind::File { size } => size,
            _ => 0,
        })
        .sum();
    let files_total = items
        .iter()
        .filter(|i| matches!(i.kind, ItemKind::File { .. }))
        .count() as u64;
    meter.phase(Phase::Reading, total, files_total);
    let mut entries = Vec::with_capacity(items.len());
    let mut changed = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut data_bytes = 0u64;
    for item in items {
        meter.check()?;
        meter.file(&item.rel);
        let meta = match std::fs::symlink_metadata(&item.abs) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Deleted since the walk: the entry is simply not part of this backup.
                continue;
            }
            Err(e) => return Err(BackupError::io("cannot read", &item.abs, e)),
        };
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        match &item.kind {
            ItemKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, &item.rel, io::empty())
                    .map_err(write_err)?;
                entries.push(ManifestEntry {
                    path: item.rel.clone(),
                    kind: EntryKind::Dir,
                    size: 0,
                    blake3: None,
                    target: None,
                    changed: false,
                });
            }
            ItemKind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, &item.rel, target)
                    .map_err(write_err)?;
                entries.push(ManifestEntry {
                    path: item.rel.clone(),
                    kind: EntryKind::Symlink,
                    size: 0,
                    blake3: None,
                    target: Some(target.clone()),
                    changed: false,
                });
            }
            ItemKind::File { .. } => {
                let file = match File::open(&item.abs) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(BackupError::io("cannot open", &item.abs, e)),
                };
                let before = file
                    .metadata()
                    .map_err(|e| BackupError::io("cannot read", &item.abs, e))?;
                let size = before.len();
                header.set_metadata_in_mode(&before, tar::HeaderMode::Complete);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                let mut feed = FileFeed {
                    file,
                    path: item.abs.clone(),
                    buf: std::mem::take(&mut buf),
                    pos: 0,
                    len: 0,
                    remaining: size,
                    short: false,
                    hasher: blake3::Hasher::new(),
                    meter: &mut *meter,
                    failure: None,
                };
                let appended = tar.append_data(&mut header, &item.rel, &mut feed);
                let FileFeed {
                    file,
                    buf: returned,
                    short,
                    hasher,
                    failure,
                    ..
                } = feed;
                buf = returned;
                if let Some(f) = failure {
                    return Err(f);
                }
                appended.map_err(write_err)?;
                // A file that grew has more to read; one that was rewritten has a new
                // modification time. Either way what was archived may be torn.
                let mut probe = [0u8; 1];
                let grew = (&file).read(&mut probe).map(|n| n > 0).unwrap_or(false);
                let after = file
                    .metadata()
                    .map_err(|e| BackupError::io("cannot read", &item.abs, e))?;
                let was_changed =
                    short || grew || after.len() != size || modified(&after) != modified(&before);
                if was_changed {
                    changed.push(item.rel.clone());
                }
                data_bytes += size;
                meter.file_done();
                entries.push(ManifestEntry {
                    path: item.rel.clone(),
                    kind: EntryKind::File,
                    size,
                    blake3: Some(hasher.finalize().to_hex().to_string()),
                    target: None,
                    changed: was_changed,
                });
            }
        }
    }
    meter.report_now();
    let enc = tar
        .into_inner()
        .map_err(write_err)?
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    let sink = enc.finish().map_err(write_err)?;
    let HashingWriter {
        inner,
        hasher,
        bytes,
    } = sink;
    let file = inner
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?
        .file;
    let synced = Instant::now();
    file.sync_all().map_err(write_err)?;
    tracing::debug!(
        sync_ms = synced.elapsed().as_millis() as u64,
        "archive fsynced"
    );
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).count() as u64;
    Ok((
        Manifest {
            format: FORMAT,
            program: spec.program.clone(),
            backup_id: spec.backup_id,
            created_at: rfc3339(spec.started_at_ms),
            created_at_ms: spec.started_at_ms,
            warden_version: env!("CARGO_PKG_VERSION").to_string(),
            source: source.to_string_lossy().into_owned(),
            include: spec.include.clone(),
            exclude: spec.exclude.clone(),
            archive: ArchiveInfo {
                file: String::new(),
                bytes,
                blake3: hasher.finalize().to_hex().to_string(),
                format: "tar+zstd".into(),
                zstd_level: spec.zstd_level,
            },
            files,
            data_bytes,
            entries,
        },
        changed,
    ))
}

/// Reads a manifest file.
pub fn read_manifest(path: &Path) -> Result<Manifest, BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("cannot open", path, e))?;
    let m: Manifest = serde_json::from_reader(io::BufReader::new(file)).map_err(|e| {
        BackupError::Failed(format!(
            "the manifest {} is unreadable: {e}",
            path.display()
        ))
    })?;
    if m.format != FORMAT {
        return Err(BackupError::Failed(format!(
            "the manifest {} has format {}, which this warden does not know (it knows {FORMAT})",
            path.display(),
            m.format
        )));
    }
    Ok(m)
}

/// Re-reads an archive against its manifest; returns every mismatch (empty: intact).
pub fn verify(
    archive: &Path,
    manifest: &Manifest,
    ctl: &Control<'_>,
) -> Result<Vec<Mismatch>, BackupError> {
    let mut meter = Meter::new(ctl);
    verify_with(archive, manifest, &mut meter, Mode::Full)
}

/// Extracts a verified archive into the empty directory `staging`. Everything is checked
/// while it is written (paths, kinds, sizes, checksums, the archive's own checksum); on
/// any problem nothing is kept and [`BackupError::Mismatch`] lists the problems.
pub fn extract(
    archive: &Path,
    manifest: &Manifest,
    staging: &Path,
    ctl: &Control<'_>,
) -> Result<(), BackupError> {
    let mut meter = Meter::new(ctl);
    let problems = verify_with(archive, manifest, &mut meter, Mode::Extract(staging))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BackupError::Mismatch(problems))
    }
}

fn mismatch(path: &str, problem: impl Into<String>) -> Mismatch {
    Mismatch {
        path: path.to_string(),
        problem: problem.into(),
    }
}

/// What reading an archive is for.
#[derive(Clone, Copy)]
enum Mode<'p> {
    /// Check everything, per-file BLAKE3 included (`verify`).
    Full,
    /// Right after writing: paths, kinds, sizes, the archive's BLAKE3 and zstd's own
    /// content checksum, but not the per-file BLAKE3 again. The per-file hashes were
    /// computed from the very bytes fed into the tar stream, and zstd's checksum proves
    /// the decoded stream equals that input, so hashing every file twice proves nothing
    /// more and would cost a third of the backup's time.
    AfterWrite,
    /// Extract into this staging directory, checking everything.
    Extract(&'p Path),
}

/// A directory whose permissions are applied after everything inside it was written
/// (a read-only directory would otherwise refuse its own files).
struct PendingDir {
    path: PathBuf,
    mode: u32,
}

/// The shared reader of verification and extraction.
fn verify_with(
    archive: &Path,
    manifest: &Manifest,
    meter: &mut Meter<'_>,
    mode: Mode<'_>,
) -> Result<Vec<Mismatch>, BackupError> {
    let staging = match mode {
        Mode::Extract(p) => Some(p),
        Mode::Full | Mode::AfterWrite => None,
    };
    let problems = unsafe_manifest_paths(manifest);
    if !problems.is_empty() {
        return Ok(problems);
    }
    let file = match File::open(archive) {
        Ok(f) => f,
        Err(e) => {
            return Ok(vec![mismatch(
                "(archive)",
                format!("cannot open {}: {e}", archive.display()),
            )]);
        }
    };
    meter.phase(
        if staging.is_some() {
            Phase::Extracting
        } else {
            Phase::Verifying
        },
        manifest.data_bytes,
        manifest.files,
    );
    let reader = HashingReader {
        inner: file,
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    let decoder = zstd::stream::read::Decoder::new(reader)
        .map_err(|e| BackupError::io("cannot read", archive, e))?;
    let mut tar = tar::Archive::new(decoder);
    let mut reading = Reading {
        staging,
        hash_files: !matches!(mode, Mode::AfterWrite),
        // Extraction stops at the first problem: a damaged archive must not half-restore.
        // Verification goes on to report as many mismatches as it can.
        stop_early: staging.is_some(),
        index: manifest.index(),
        seen: HashSet::new(),
        buf: vec![0u8; CHUNK],
        pending_dirs: Vec::new(),
        pending_links: Vec::new(),
        problems,
    };
    reading.entries(&mut tar, meter)?;
    let Reading {
        seen,
        pending_dirs,
        pending_links,
        mut problems,
        stop_early,
        ..
    } = reading;
    if stop_early && !problems.is_empty() {
        return Ok(problems);
    }
    check_whole_archive(tar, manifest, &mut problems);
    for e in &manifest.entries {
        if !seen.contains(&e.path) {
            problems.push(mismatch(&e.path, "missing from the archive"));
        }
    }
    meter.report_now();
    if let Some(staging) = staging
        && problems.is_empty()
    {
        finish_extraction(staging, pending_links, &pending_dirs)?;
    }
    Ok(problems)
}

/// The manifest's entries whose path could write outside the restore directory; any of
/// them refuses the whole archive before it is opened.
fn unsafe_manifest_paths(manifest: &Manifest) -> Vec<Mismatch> {
    manifest
        .entries
        .iter()
        .filter(|e| !safe_relative(&e.path))
        .map(|e| {
            mismatch(
                &e.path,
                "unsafe path (absolute or containing '..') in the manifest; refused",
            )
        })
        .collect()
}

/// Whether to go on reading entries after one was handled.
enum Next {
    /// Read the next entry.
    Go,
    /// Stop reading entries (extraction met a problem, or the stream broke).
    Stop,
}

/// The tar stream of an archive file, decompressed, its raw bytes hashed.
type ArchiveStream =
    tar::Archive<zstd::stream::read::Decoder<'static, io::BufReader<HashingReader<File>>>>;

/// The state of one pass over an archive's entries.
struct Reading<'m, 'p> {
    /// Where entries are written (extraction), or `None` (verification).
    staging: Option<&'p Path>,
    /// Compare each file's BLAKE3 with the manifest's.
    hash_files: bool,
    /// Stop at the first problem (extraction).
    stop_early: bool,
    /// The manifest's entries by path.
    index: HashMap<&'m str, &'m ManifestEntry>,
    /// Paths met so far (each may appear once).
    seen: HashSet<String>,
    /// The read buffer, one chunk.
    buf: Vec<u8>,
    /// Directories whose permissions are applied at the end.
    pending_dirs: Vec<PendingDir>,
    /// Symlinks (path, target) made at the end, so nothing is written through one.
    pending_links: Vec<(PathBuf, String)>,
    /// What differs from the manifest.
    problems: Vec<Mismatch>,
}

impl<'m> Reading<'m, '_> {
    /// Records a problem with an entry; extraction stops at it.
    fn refuse(&mut self, problem: Mismatch) -> Next {
        self.problems.push(problem);
        if self.stop_early {
            Next::Stop
        } else {
            Next::Go
        }
    }

    /// Reads every entry of the tar stream (each checked, and written when extracting).
    fn entries(
        &mut self,
        tar: &mut ArchiveStream,
        meter: &mut Meter<'_>,
    ) -> Result<(), BackupError> {
        let entries = match tar.entries() {
            Ok(entries) => entries,
            Err(e) => {
                self.problems
                    .push(mismatch("(archive)", format!("unreadable: {e}")));
                return Ok(());
            }
        };
        for entry in entries {
            meter.check()?;
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.problems
                        .push(mismatch("(archive)", format!("unreadable: {e}")));
                    break;
                }
            };
            if let Next::Stop = self.entry(&mut entry, meter)? {
                break;
            }
        }
        Ok(())
    }

    /// Checks one entry against the manifest and handles it by kind.
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        meter: &mut Meter<'_>,
    ) -> Result<Next, BackupError> {
        let (path, expected, kind) = match self.identify(entry) {
            Ok(found) => found,
            Err(problem) => return Ok(self.refuse(problem)),
        };
        let mode = entry.header().mode().unwrap_or(0o644);
        let dst = self.staging.map(|s| s.join(&path));
        meter.file(&path);
        match kind {
            EntryKind::Dir => {
                if let Some(dst) = dst {
                    std::fs::create_dir_all(&dst)
                        .map_err(|e| BackupError::io("cannot create", &dst, e))?;
                    self.pending_dirs.push(PendingDir { path: dst, mode });
                }
                Ok(Next::Go)
            }
            EntryKind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .and_then(|b| String::from_utf8(b.into_owned()).ok());
                if target != expected.target {
                    return Ok(
                        self.refuse(mismatch(&path, "the link target differs from the manifest"))
                    );
                }
                if let (Some(dst), Some(t)) = (dst, target) {
                    // Links are made last, so nothing is ever written through one.
                    self.pending_links.push((dst, t));
                }
                Ok(Next::Go)
            }
            EntryKind::File => self.file(entry, &path, expected, dst, mode, meter),
        }
    }

    /// The entry's path (safe, in the manifest, met once) with its manifest entry and
    /// kind (the same as the manifest's), or what is wrong with it.
    fn identify<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(String, &'m ManifestEntry, EntryKind), Mismatch> {
        let Ok(raw) = String::from_utf8(entry.path_bytes().into_owned()) else {
            return Err(mismatch("(archive)", "an entry name is not valid UTF-8"));
        };
        if !safe_relative(&raw) {
            return Err(mismatch(
                &raw,
                "unsafe path (absolute or containing '..'); refused",
            ));
        }
        let path = raw.trim_end_matches('/').to_string();
        let Some(expected) = self.index.get(path.as_str()).copied() else {
            return Err(mismatch(&path, "in the archive but not in the manifest"));
        };
        if !self.seen.insert(path.clone()) {
            return Err(mismatch(&path, "appears twice in the archive"));
        }
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            other => {
                return Err(mismatch(
                    &path,
                    format!(
                        "unsupported entry type {other:?} (only files, directories and symlinks); refused"
                    ),
                ));
            }
        };
        if kind != expected.kind {
            return Err(mismatch(
                &path,
                format!(
                    "is a {kind:?} in the archive but a {:?} in the manifest",
                    expected.kind
                ),
            ));
        }
        Ok((path, expected, kind))
    }

    /// Reads a file entry (writing it when extracting), compares its size and BLAKE3 with
    /// the manifest's, and finishes the written file (time, permissions).
    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &str,
        expected: &ManifestEntry,
        dst: Option<PathBuf>,
        mode: u32,
        meter: &mut Meter<'_>,
    ) -> Result<Next, BackupError> {
        let mtime = entry.header().mtime().ok();
        let mut out = match &dst {
            Some(dst) => Some(create_staged(dst)?),
            None => None,
        };
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut read_error = None;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            };
            if self.hash_files {
                hasher.update(&self.buf[..n]);
            }
            size += n as u64;
            if let (Some(out), Some(dst)) = (out.as_mut(), &dst) {
                out.write_all(&self.buf[..n])
                    .map_err(|e| BackupError::io("cannot write", dst, e))?;
            }
            meter.add(n as u64)?;
        }
        if let Some(e) = read_error {
            self.problems
                .push(mismatch(path, format!("unreadable: {e}")));
            return Ok(Next::Stop);
        }
        let hash = hasher.finalize().to_hex().to_string();
        if size != expected.size {
            self.problems.push(mismatch(
                path,
                format!("size {size} differs from the manifest's {}", expected.size),
            ));
        } else if self.hash_files && expected.blake3.as_deref() != Some(hash.as_str()) {
            self.problems
                .push(mismatch(path, "content differs from the manifest (BLAKE3)"));
        }
        if self.stop_early && !self.problems.is_empty() {
            return Ok(Next::Stop);
        }
        if let (Some(out), Some(dst)) = (out, &dst) {
            finish_staged(out, dst, mtime, mode)?;
        }
        meter.file_done();
        Ok(Next::Go)
    }
}

/// Creates a file being extracted (and its parent directories). `create_new`: never
/// follows or replaces an existing entry.
fn create_staged(dst: &Path) -> Result<Writeback, BackupError> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BackupError::io("cannot create", parent, e))?;
    }
    Ok(Writeback::new(
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)
            .map_err(|e| BackupError::io("cannot create", dst, e))?,
    ))
}

/// Gives an extracted file its modification time and permissions, and starts writing it
/// to disk.
fn finish_staged(
    out: Writeback,
    dst: &Path,
    mtime: Option<u64>,
    mode: u32,
) -> Result<(), BackupError> {
    let out = out.file;
    if let Some(t) = mtime {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(t);
        out.set_modified(when)
            .map_err(|e| BackupError::io("cannot set the time of", dst, e))?;
    }
    // Written to disk in the background; one file-system sync at the end makes the whole
    // tree durable.
    os::start_writeback(&out, 0, 0);
    drop(out);
    os::set_file_mode(dst, mode).map_err(|e| BackupError::io("cannot set permissions of", dst, e))
}

/// Reads what follows the tar end marker too, so the checksum covers the whole file, and
/// compares the archive file's size and BLAKE3 with the manifest's.
fn check_whole_archive(tar: ArchiveStream, manifest: &Manifest, problems: &mut Vec<Mismatch>) {
    let mut decoder = tar.into_inner();
    if let Err(e) = io::copy(&mut decoder, &mut io::sink()) {
        problems.push(mismatch("(archive)", format!("unreadable: {e}")));
    }
    let mut reader = decoder.finish().into_inner();
    if let Err(e) = io::copy(&mut reader, &mut io::sink()) {
        problems.push(mismatch("(archive)", format!("cannot read: {e}")));
    }
    let hash = reader.hasher.finalize().to_hex().to_string();
    if reader.bytes != manifest.archive.bytes || hash != manifest.archive.blake3 {
        problems.push(mismatch(
            "(archive)",
            format!(
                "the archive file's checksum or size differs from the manifest ({} bytes, expected {})",
                reader.bytes, manifest.archive.bytes
            ),
        ));
    }
}

/// Ends a clean extraction: the symlinks, then the directories' permissions, then one
/// file-system sync of the staging directory.
fn finish_extraction(
    staging: &Path,
    pending_links: Vec<(PathBuf, String)>,
    pending_dirs: &[PendingDir],
) -> Result<(), BackupError> {
    for (link, target) in pending_links {
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| BackupError::io("cannot create", parent, e))?;
        }
        os::symlink(Path::new(&target), &link)
            .map_err(|e| BackupError::io("cannot create the symlink", &link, e))?;
    }
    // Deepest first, so a read-only parent is locked only after its children.
    for d in pending_dirs.iter().rev() {
        os::set_file_mode(&d.path, d.mode)
            .map_err(|e| BackupError::io("cannot set permissions of", &d.path, e))?;
    }
    os::sync_filesystem(staging).map_err(|e| BackupError::io("cannot sync", staging, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl(cancel: &CancellationToken) -> Control<'_> {
        Control {
            cancel,
            report: &|_| {},
            max_bytes_per_second: None,
        }
    }

    fn spec(src: &Path, dest: &Path) -> CreateSpec {
        CreateSpec {
            program: "p".into(),
            backup_id: 7,
            started_at_ms: 1_700_000_000_000,
            source: src.to_path_buf(),
            destination: dest.to_path_buf(),
            include: vec!["**".into()],
            exclude: vec![],
            zstd_level: 3,
            zstd_threads: 0,
            change_retries: 0,
            on_change: OnChange::Warn,
        }
    }

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("a/b/empty-dir")).expect("mkdir");
        std::fs::write(root.join("a/b/file.bin"), vec![7u8; 3 * CHUNK + 5]).expect("write");
        std::fs::write(root.join("empty"), b"").expect("write");
        std::fs::write(root.join("ünï cødé ✓.txt"), "hello").expect("write");
        os::symlink(Path::new("a/b/file.bin"), &root.join("link")).expect("symlink");
    }

    fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let f = Filter::new(&["**".into()], &[]).expect("filter");
        let w = walk(
            root,
            &f,
            &WalkOptions {
                everything: false,
                skip: &[],
                cancelled: &|| false,
            },
        )
        .expect("walk");
        for i in w.items {
            let content = match i.kind {
                ItemKind::File { .. } => std::fs::read(&i.abs).expect("read"),
                ItemKind::Symlink { target } => target.into_bytes(),
                ItemKind::Dir => b"<dir>".to_vec(),
            };
            out.push((i.rel, content));
        }
        out
    }

    #[test]
    fn create_verify_extract_round_trip() {
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        let cancel = CancellationToken::new();
        let created = create(&spec(src.path(), dest.path()), &ctl(&cancel)).expect("create");
        assert!(created.changed.is_empty());
        let names: Vec<String> = std::fs::read_dir(dest.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["p-20231114T221320Z-7".to_string()]);
        let manifest = read_manifest(&created.dir.join(MANIFEST_FILE)).expect("manifest");
        assert_eq!(manifest, created.manifest);
        assert_eq!(manifest.files, 3);
        let archive = created.dir.join(&manifest.archive.file);
        assert!(
            verify(&archive, &manifest, &ctl(&cancel))
                .expect("verify")
                .is_empty()
        );
        let out = tempfile::tempdir().expect("tempdir");
        let staging = out.path().join("staging");
        std::fs::create_dir(&staging).expect("mkdir");
        extract(&archive, &manifest, &staging, &ctl(&cancel)).expect("extract");
        assert_eq!(snapshot(src.path()), snapshot(&staging));
    }

    #[test]
    fn corruption_is_reported() {
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            src.path().join("x"),
            (0..200_000u32)
                .flat_map(|i| i.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
        .expect("write");
        let cancel = CancellationToken::new();
        let created = create(&spec(src.path(), dest.path()), &ctl(&cancel)).expect("create");
        let archive = created.dir.join(&created.manifest.archive.file);
        let mut bytes = std::fs::read(&archive).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&archive, bytes).expect("write");
        let problems = verify(&archive, &created.manifest, &ctl(&cancel)).expect("verify");
        assert!(
            problems.iter().any(|p| p.path == "(archive)"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_cancelled_backup_leaves_nothing() {
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        tree(src.path());
        let cancel = CancellationToken::new();
        cancel.cancel();
        let r = create(&spec(src.path(), dest.path()), &ctl(&cancel));
        assert!(matches!(r, Err(BackupError::Cancelled)), "{r:?}");
        assert_eq!(std::fs::read_dir(dest.path()).expect("ls").count(), 0);
    }

    /// Appends to `file` from the progress callback while it is being read (at most
    /// `times` times), like a game writing its world during a backup.
    fn create_while_writing(times: usize, on_change: OnChange) -> Result<Created, BackupError> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        let file = src.path().join("region.mca");
        std::fs::write(&file, vec![1u8; 3 * CHUNK]).expect("write");
        let writes = AtomicUsize::new(0);
        let report = |p: &Progress| {
            if p.phase == Phase::Reading
                && p.bytes_done > 0
                && writes.fetch_add(1, Ordering::SeqCst) < times
            {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&file)
                    .expect("open");
                f.write_all(b"more").expect("append");
            }
        };
        let cancel = CancellationToken::new();
        let ctl = Control {
            cancel: &cancel,
            report: &report,
            max_bytes_per_second: Some(4 * CHUNK as u64),
        };
        let mut s = spec(src.path(), dest.path());
        s.change_retries = 1;
        s.on_change = on_change;
        create(&s, &ctl)
    }

    #[test]
    fn a_file_changed_while_read_is_retried_then_clean() {
        let c = create_while_writing(1, OnChange::Warn).expect("create");
        assert_eq!(c.attempts, 2);
        assert!(c.changed.is_empty(), "{:?}", c.changed);
        assert!(c.manifest.entries.iter().all(|e| !e.changed));
    }

    #[test]
    fn a_file_that_keeps_changing_is_reported_or_fails() {
        let c = create_while_writing(usize::MAX, OnChange::Warn).expect("create");
        assert_eq!(c.changed, vec!["region.mca".to_string()]);
        assert!(
            c.manifest
                .entries
                .iter()
                .any(|e| e.path == "region.mca" && e.changed)
        );
        let r = create_while_writing(usize::MAX, OnChange::Fail);
        assert!(
            matches!(r, Err(BackupError::Changed(ref f)) if f == &["region.mca"]),
            "{r:?}"
        );
    }

    /// A tar whose entry name is written raw into the header, bypassing the tar crate's
    /// own refusal of `..`, like a hand-crafted malicious archive.
    fn evil_archive(path: &Path) -> Manifest {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..10].copy_from_slice(b"../evil.sh");
        header.set_size(4);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut data = Vec::new();
        {
            let mut b = tar::Builder::new(&mut data);
            b.append(&header, &b"evil"[..]).expect("append");
            b.finish().expect("finish");
        }
        let compressed = zstd::encode_all(&data[..], 3).expect("zstd");
        std::fs::write(path, &compressed).expect("write");
        Manifest {
            format: FORMAT,
            program: "p".into(),
            backup_id: 1,
            created_at: String::new(),
            created_at_ms: 0,
            warden_version: String::new(),
            source: String::new(),
            include: vec![],
            exclude: vec![],
            archive: ArchiveInfo {
                file: "x".into(),
                bytes: compressed.len() as u64,
                blake3: blake3::hash(&compressed).to_hex().to_string(),
                format: "tar+zstd".into(),
                zstd_level: 3,
            },
            files: 0,
            data_bytes: 0,
            entries: vec![],
        }
    }

    #[test]
    fn parent_paths_in_an_archive_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("evil.tar.zst");
        let manifest = evil_archive(&archive);
        let staging = dir.path().join("s/staging");
        std::fs::create_dir_all(&staging).expect("mkdir");
        let cancel = CancellationToken::new();
        let r = extract(&archive, &manifest, &staging, &ctl(&cancel));
        match r {
            Err(BackupError::Mismatch(p)) => assert!(p[0].problem.contains("unsafe"), "{p:?}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!dir.path().join("s/evil.sh").exists());
    }
}
