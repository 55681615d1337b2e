//! The files service: browse, edit, upload and download a program's files, confined to
//! its file root (its `cwd`, or the narrower `files_root` below it), plus a read-only
//! view of its rotated console logs (`DATA/logs/NAME/`).
//!
//! Confinement has two fences. `crate::relpath::RelPath` refuses by syntax anything that could
//! name a place outside the root. Then every operation is resolved against an open
//! handle of the root directory with `cap-std`, which resolves each component beneath
//! that handle (`openat2(RESOLVE_BENEATH)` on Linux, a component-by-component walk
//! elsewhere) and refuses symlinks that lead out. There is no "check the path, then use
//! it" step, so a symlink swapped in between cannot redirect an operation: escaping is
//! impossible by construction, not by timing.
//!
//! All file-system work runs on blocking threads. Must not touch: the store, processes.

pub mod archive;
pub mod extract;
pub mod listing;
pub mod secrets;
pub mod text;
mod transfer;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::FilesConfig;
use crate::program::ProgramSpec;
pub use crate::relpath::RelPath;
pub use archive::ArchiveFormat;
pub use extract::Extracted;
pub use listing::{Kind, Page};
pub use transfer::Uploaded;

/// Which tree of a program a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// The program's file root (read and write).
    #[default]
    Files,
    /// warden's rotated console logs of the program (read-only).
    Logs,
}

/// What went wrong, in terms the API maps to statuses.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A client path is not acceptable (422 naming the field).
    #[error("{}: {}", .0.field, .0.message)]
    BadPath(crate::program::FieldError),
    /// The program has no usable file root (409).
    #[error("{0}")]
    NoRoot(String),
    /// Nothing at that path (404).
    #[error("{0}")]
    NotFound(String),
    /// The file changed, or the target exists (409).
    #[error("{0}")]
    Conflict(String),
    /// Over a size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The request does not fit what is on disk, e.g. a folder where a file is needed (422).
    #[error("{0}")]
    Invalid(String),
    /// Leads outside the root, or the OS refused access (403).
    #[error("{0}")]
    Denied(String),
    /// Too many transfers running (429).
    #[error("{0}")]
    Busy(String),
    /// An unexpected I/O failure (500; the cause is logged, not shown).
    #[error("{what}: {source}")]
    Io {
        /// What warden was doing.
        what: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Classifies an I/O error on `path` into what a client should hear.
fn io_err(what: &str, path: &RelPath, e: io::Error) -> FilesError {
    let shown = if path.is_root() {
        "the file root".to_string()
    } else {
        format!("'{path}'")
    };
    match e.kind() {
        io::ErrorKind::NotFound => FilesError::NotFound(format!("{shown} does not exist")),
        io::ErrorKind::AlreadyExists => FilesError::Conflict(format!("{shown} already exists")),
        io::ErrorKind::PermissionDenied => FilesError::Denied(format!(
            "{shown} leads outside the program's file root (through a symlink) or is not accessible to warden"
        )),
        io::ErrorKind::NotADirectory => {
            FilesError::Invalid(format!("a part of {shown} is not a folder"))
        }
        io::ErrorKind::IsADirectory => FilesError::Invalid(format!("{shown} is a folder")),
        io::ErrorKind::DirectoryNotEmpty => FilesError::Conflict(format!(
            "{shown} is a folder that is not empty; delete it with recursive=true"
        )),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => {
            FilesError::Invalid(format!("cannot {what} {shown}: {e}"))
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            FilesError::TooLarge(format!("cannot {what} {shown}: the disk is full"))
        }
        io::ErrorKind::ReadOnlyFilesystem => FilesError::Denied(format!(
            "cannot {what} {shown}: the file system is read-only"
        )),
        _ => FilesError::Io {
            what: format!("{what} {shown}"),
            source: e,
        },
    }
}

/// Parses a client path, naming the request field in the error.
pub fn parse(field: &'static str, input: &str) -> Result<RelPath, FilesError> {
    RelPath::parse(input)
        .map_err(|why| FilesError::BadPath(crate::program::FieldError::invalid(field, input, &why)))
}

/// A text file as the editor gets it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextFile {
    /// The path, normalised.
    pub path: String,
    /// Size in bytes on disk.
    pub size: u64,
    /// Last modification, unix ms.
    pub modified_ms: Option<i64>,
    /// SHA-256 of the bytes on disk; send it back as `base_version` when saving.
    pub version: String,
    /// False for binary files: `text` is absent, download the file instead.
    pub is_text: bool,
    /// The detected encoding (e.g. `UTF-8`, `windows-1252`, `UTF-16LE`).
    pub encoding: Option<String>,
    /// The file starts with a byte-order mark.
    pub bom: bool,
    /// The content, line endings untouched.
    pub text: Option<String>,
}

/// What a save wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved {
    /// The path written (after following a symlink inside the root).
    pub path: String,
    /// Bytes written.
    pub size: u64,
    /// The new version (SHA-256), for the next save.
    pub version: String,
    /// Encoding written.
    pub encoding: String,
    /// True when the file did not exist before.
    pub created: bool,
}

/// What a delete removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// The path removed.
    pub path: String,
    /// What it was.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Bytes it held (for a folder: the files directly and indirectly in it).
    pub size: u64,
}

/// A save request, after the API has parsed it.
pub struct SaveText {
    /// Where.
    pub path: RelPath,
    /// The new content.
    pub text: String,
    /// Encoding label; default: the existing file's encoding, or UTF-8 for a new file.
    pub encoding: Option<String>,
    /// The `version` the client read; `None` to create a file that must not exist yet.
    pub base_version: Option<String>,
}

/// The files service. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct Files {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: FilesConfig,
    /// warden's data directory (canonical when it could be resolved). No program root
    /// may contain it: the database holds the users and tokens.
    data_dir: PathBuf,
    logs_dir: PathBuf,
    transfers: Arc<Semaphore>,
    /// Serialises warden's own saves, so two clients saving the same file cannot both
    /// pass the version check before either renames. Held on a blocking thread only.
    save_lock: Mutex<()>,
    shutdown: CancellationToken,
}

impl Files {
    /// A service with these limits; `data_dir` is warden's (logs live in `data_dir/logs`).
    pub fn new(cfg: FilesConfig, data_dir: &Path, shutdown: CancellationToken) -> Files {
        let data_dir = std::fs::canonicalize(data_dir)
            .or_else(|_| std::path::absolute(data_dir))
            .unwrap_or_else(|_| data_dir.to_path_buf());
        Files {
            inner: Arc::new(Inner {
                transfers: Arc::new(Semaphore::new(cfg.max_concurrent_transfers)),
                logs_dir: data_dir.join("logs"),
                data_dir,
                cfg,
                save_lock: Mutex::new(()),
                shutdown,
            }),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> &FilesConfig {
        &self.inner.cfg
    }

    /// Opens the root of `area` for `spec` (blocking).
    fn open_root(&self, spec: &ProgramSpec, area: Area) -> Result<Dir, FilesError> {
        match area {
            Area::Logs => {
                let dir = self.inner.logs_dir.join(&spec.name);
                Dir::open_ambient_dir(&dir, ambient_authority()).map_err(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        FilesError::NotFound(format!(
                            "program '{}' has no console logs yet",
                            spec.name
                        ))
                    } else {
                        FilesError::Io {
                            what: "open the log folder".into(),
                            source: e,
                        }
                    }
                })
            }
            Area::Files => {
                let Some(cwd) = spec.cwd.as_deref() else {
                    return Err(FilesError::NoRoot(format!(
                        "program '{}' has no cwd; set its cwd (and optionally files_root) to browse its files",
                        spec.name
                    )));
                };
                let sub = match spec.files_root.as_deref() {
                    Some(r) => parse("files_root", r)?,
                    None => RelPath::default(),
                };
                let full = Path::new(cwd).join(sub.as_fs_path());
                if let Ok(canon) = std::fs::canonicalize(&full)
                    && self.inner.data_dir.starts_with(&canon)
                {
                    return Err(FilesError::NoRoot(format!(
                        "the file root of program '{}' contains warden's data directory, which is never served; set files_root to a narrower folder",
                        spec.name
                    )));
                }
                let no_root = |e: io::Error| {
                    FilesError::NoRoot(format!(
                        "the file root of program '{}' ({}) cannot be opened: {e}",
                        spec.name,
                        full.display()
                    ))
                };
                // The cwd is the admin's choice; files_root is opened beneath it, so even
                // a symlink placed there cannot move the root outside the cwd.
                let cwd = Dir::open_ambient_dir(cwd, ambient_authority()).map_err(no_root)?;
                if sub.is_root() {
                    Ok(cwd)
                } else {
                    cwd.open_dir(sub.as_fs_path()).map_err(no_root)
                }
            }
        }
    }

    /// Opens the folder `path` below the root.
    fn open_dir(root: &Dir, path: &RelPath) -> Result<Dir, FilesError> {
        if path.is_root() {
            return root.try_clone().map_err(|e| io_err("open", path, e));
        }
        root.open_dir(path.as_fs_path())
            .map_err(|e| io_err("open", path, e))
    }

    /// Runs blocking file work with the root of `area` opened.
    async fn with_root<T, F>(&self, spec: &ProgramSpec, area: Area, f: F) -> Result<T, FilesError>
    where
        T: Send + 'static,
        F: FnOnce(&Files, Dir) -> Result<T, FilesError> + Send + 'static,
    {
        let files = self.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || {
            let root = files.open_root(&spec, area)?;
            f(&files, root)
        })
        .await
        .map_err(|e| FilesError::Io {
            what: "run file work".into(),
            source: io::Error::other(e.to_string()),
        })?
    }

    /// One page of the folder `path`.
    pub async fn list(
        &self,
        spec: &ProgramSpec,
        area: Area,
        path: RelPath,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page, FilesError> {
        let after = match after {
            Some(c) => Some(listing::parse_cursor(&c).ok_or_else(|| {
                FilesError::Invalid(
                    "after is not a cursor from a previous page's next_after".into(),
                )
            })?),
            None => None,
        };
        self.with_root(spec, area, move |_, root| {
            let dir = Self::open_dir(&root, &path)?;
            listing::list(&dir, after.as_ref(), limit).map_err(|e| io_err("list", &path, e))
        })
        .await
    }

    /// Reads a file for the editor.
    pub async fn read_text(
        &self,
        spec: &ProgramSpec,
        area: Area,
        path: RelPath,
    ) -> Result<TextFile, FilesError> {
        self.with_root(spec, area, move |files, root| {
            let (bytes, meta) = files.read_capped(&root, &path)?;
            let version = version_of(&bytes);
            let decoded = text::decode(&bytes);
            Ok(TextFile {
                path: path.to_string(),
                size: meta.len(),
                modified_ms: meta.modified().ok().map(listing::unix_ms),
                version,
                is_text: decoded.is_some(),
                encoding: decoded.as_ref().map(|d| d.format.name().to_string()),
                bom: decoded.as_ref().is_some_and(|d| d.format.bom),
                text: decoded.map(|d| d.text),
            })
        })
        .await
    }

    /// Reads a whole regular file of at most `max_text_bytes`.
    fn read_capped(
        &self,
        root: &Dir,
        path: &RelPath,
    ) -> Result<(Vec<u8>, std::fs::Metadata), FilesError> {
        if path.is_root() {
            return Err(FilesError::Invalid("the file root is a folder".into()));
        }
        let file = open_read(root, path)?;
        let meta = file.metadata().map_err(|e| io_err("read", path, e))?;
        if meta.is_dir() {
            return Err(FilesError::Invalid(format!("'{path}' is a folder")));
        }
        if !meta.is_file() {
            return Err(FilesError::Invalid(format!(
                "'{path}' is not a regular file"
            )));
        }
        let max = self.inner.cfg.max_text_bytes;
        if meta.len() > max {
            return Err(FilesError::TooLarge(format!(
                "'{path}' has {} bytes, more than the {max} bytes the editor opens (files.max_text_bytes); download it instead",
                meta.len()
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        (&file)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err("read", path, e))?;
        if bytes.len() as u64 > max {
            return Err(FilesError::TooLarge(format!(
                "'{path}' grew past the {max} bytes the editor opens while being read"
            )));
        }
        Ok((bytes, meta))
    }

    /// Saves a text file atomically: a temporary file in the same folder, fsync, rename
    /// over the old one (keeping its permissions and owner), fsync of the folder. Refuses
    /// with a conflict when the file is not at the version the client read.
    pub async fn save_text(&self, spec: &ProgramSpec, req: SaveText) -> Result<Saved, FilesError> {
        let format = match req.encoding.as_deref() {
            Some(label) => Some(text::encoding_for_label(label).ok_or_else(|| {
                FilesError::Invalid(format!(
                    "encoding {label:?} is unknown; use e.g. utf-8, utf-16le, windows-1252"
                ))
            })?),
            None => None,
        };
        self.with_root(spec, Area::Files, move |files, root| {
            let _guard = crate::sync::lock(&files.inner.save_lock);
            let mut path = req.path;
            if path.is_root() {
                return Err(FilesError::BadPath(crate::program::FieldError::invalid_path(
                    "path", "/",
                )));
            }
            // Saving through a symlink writes the file it points to (inside the root),
            // rather than replacing the link with a file.
            if root
                .symlink_metadata(path.as_fs_path())
                .is_ok_and(|m| m.is_symlink())
            {
                let target = root
                    .canonicalize(path.as_fs_path())
                    .map_err(|e| io_err("resolve", &path, e))?;
                path = parse("path", &target.to_string_lossy())?;
            }
            let name = path.name().unwrap_or_default().to_string();
            let parent = Self::open_dir(&root, &path.parent())?;
            let existing = match files.read_capped(&parent, &parse("path", &name)?) {
                Ok(found) => Some(found),
                Err(FilesError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let (old_format, old_meta) = match (&existing, &req.base_version) {
                (None, Some(_)) => {
                    return Err(FilesError::Conflict(format!(
                        "'{path}' was deleted since you read it; save again without base_version to create it"
                    )));
                }
                (Some(_), None) => {
                    return Err(FilesError::Conflict(format!(
                        "'{path}' already exists; read it first and send its version as base_version"
                    )));
                }
                (Some((bytes, meta)), Some(base)) => {
                    let current = version_of(bytes);
                    if &current != base {
                        return Err(FilesError::Conflict(format!(
                            "'{path}' changed since you read it (it is now version {current}); reload it and apply your edit again"
                        )));
                    }
                    (text::decode(bytes).map(|d| d.format), Some(meta))
                }
                (None, None) => (None, None),
            };
            let format = match (format, old_format) {
                (Some(enc), old) => text::TextFormat {
                    encoding: enc,
                    bom: old.is_some_and(|o| o.bom && o.encoding == enc),
                },
                (None, Some(old)) => old,
                (None, None) => text::TextFormat::UTF8,
            };
            let bytes = text::encode(&req.text, format).map_err(FilesError::Invalid)?;
            if bytes.len() as u64 > files.inner.cfg.max_text_bytes {
                return Err(FilesError::TooLarge(format!(
                    "the new content has {} bytes, more than files.max_text_bytes ({}); upload the file instead",
                    bytes.len(),
                    files.inner.cfg.max_text_bytes
                )));
            }
            let mut tmp = TempFile::create(&parent, &name).map_err(|e| io_err("save", &path, e))?;
            tmp.file
                .write_all(&bytes)
                .map_err(|e| io_err("save", &path, e))?;
            tmp.commit(old_meta, true)
                .map_err(|e| io_err("save", &path, e))?;
            Ok(Saved {
                path: path.to_string(),
                size: bytes.len() as u64,
                version: version_of(&bytes),
                encoding: format.name().to_string(),
                created: existing.is_none(),
            })
        })
        .await
    }

    /// Creates a folder (and its missing parents when `parents`).
    pub async fn mkdir(
        &self,
        spec: &ProgramSpec,
        path: RelPath,
        parents: bool,
    ) -> Result<(), FilesError> {
        self.with_root(spec, Area::Files, move |_, root| {
            if path.is_root() {
                return Err(FilesError::Conflict("the file root already exists".into()));
            }
            if parents {
                return root
                    .create_dir_all(path.as_fs_path())
                    .map_err(|e| io_err("create", &path, e));
            }
            let parent = Self::open_dir(&root, &path.parent())?;
            parent
                .create_dir(path.name().unwrap_or_default())
                .map_err(|e| io_err("create", &path, e))
        })
        .await
    }

    /// Moves or renames `from` to `to` within the root; refuses to replace anything.
    pub async fn rename(
        &self,
        spec: &ProgramSpec,
        from: RelPath,
        to: RelPath,
    ) -> Result<Kind, FilesError> {
        self.with_root(spec, Area::Files, move |_, root| {
            if from.is_root() || to.is_root() {
                return Err(FilesError::Invalid("the file root cannot be moved".into()));
            }
            if from.contains(&to) {
                return Err(FilesError::Invalid(format!(
                    "cannot move '{from}' into itself ('{to}')"
                )));
            }
            let from_parent = Self::open_dir(&root, &from.parent())?;
            let to_parent = Self::open_dir(&root, &to.parent())?;
            let from_name = from.name().unwrap_or_default();
            let to_name = to.name().unwrap_or_default();
            let meta = from_parent
                .symlink_metadata(from_name)
                .map_err(|e| io_err("move", &from, e))?;
            match to_parent.symlink_metadata(to_name) {
                Ok(_) => {
                    return Err(FilesError::Conflict(format!(
                        "'{to}' already exists; delete it first or choose another name"
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("move to", &to, e)),
            }
            from_parent
                .rename(from_name, &to_parent, to_name)
                .map_err(|e| io_err("move", &from, e))?;
            Ok(kind_of(&meta))
        })
        .await
    }

    /// Deletes a file, a symlink (not its target) or a folder (`recursive` for a
    /// non-empty one). Returns what it was and how many bytes it held.
    pub async fn delete(
        &self,
        spec: &ProgramSpec,
        path: RelPath,
        recursive: bool,
    ) -> Result<Deleted, FilesError> {
        self.with_root(spec, Area::Files, move |_, root| {
            if path.is_root() {
                return Err(FilesError::Invalid(
                    "the file root itself cannot be deleted".into(),
                ));
            }
            let parent = Self::open_dir(&root, &path.parent())?;
            let name = path.name().unwrap_or_default();
            let meta = parent
                .symlink_metadata(name)
                .map_err(|e| io_err("delete", &path, e))?;
            let kind = kind_of(&meta);
            let size = match kind {
                Kind::Dir => {
                    let dir = parent
                        .open_dir(name)
                        .map_err(|e| io_err("delete", &path, e))?;
                    let size = tree_size(&dir, 0);
                    if recursive {
                        parent.remove_dir_all(name)
                    } else {
                        parent.remove_dir(name)
                    }
                    .map_err(|e| io_err("delete", &path, e))?;
                    size
                }
                _ => {
                    parent
                        .remove_file(name)
                        .map_err(|e| io_err("delete", &path, e))?;
                    meta.len()
                }
            };
            Ok(Deleted {
                path: path.to_string(),
                kind,
                size,
            })
        })
        .await
    }

    /// Unpacks the archive `archive` (zip, tar.zst, tar.gz, tar) into the new folder `to`
    /// (its parents are created). The entries go into a hidden temporary folder beside
    /// `to` that is renamed into place when all of them are written: a refused or failed
    /// archive leaves nothing behind, and `to` never holds half an archive.
    pub async fn extract(
        &self,
        spec: &ProgramSpec,
        archive: RelPath,
        to: RelPath,
    ) -> Result<Extracted, FilesError> {
        let permit = self.transfer_permit()?;
        self.with_root(spec, Area::Files, move |files, root| {
            let _permit = permit;
            let Some((format, _)) = archive.name().and_then(extract::Format::of) else {
                return Err(FilesError::BadPath(crate::program::FieldError::not_one_of(
                    "path",
                    archive.name().unwrap_or_default(),
                    &[".zip", ".tar.zst", ".tar.gz", ".tar"],
                )));
            };
            if to.is_root() {
                return Err(FilesError::BadPath(crate::program::FieldError::invalid_path(
                    "to", "/",
                )));
            }
            let file = open_read(&root, &archive)?;
            let meta = file.metadata().map_err(|e| io_err("read", &archive, e))?;
            if !meta.is_file() {
                return Err(FilesError::Invalid(format!(
                    "'{archive}' is not a regular file"
                )));
            }
            let parent_path = to.parent();
            if !parent_path.is_root() {
                root.create_dir_all(parent_path.as_fs_path())
                    .map_err(|e| io_err("create", &parent_path, e))?;
            }
            let parent = Self::open_dir(&root, &parent_path)?;
            let name = to.name().unwrap_or_default().to_string();
            let exists = |p: &Dir| match p.symlink_metadata(&name) {
                Ok(_) => Err(FilesError::Conflict(format!(
                    "'{to}' already exists; choose a new folder to extract into"
                ))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("extract into", &to, e)),
            };
            exists(&parent)?;
            let stem: String = name.chars().take(200).collect();
            let tmp_name = format!(".{stem}.warden-{:016x}", rand::random::<u64>());
            parent
                .create_dir(&tmp_name)
                .map_err(|e| io_err("extract into", &to, e))?;
            let cleanup = |why: FilesError| {
                if let Err(e) = parent.remove_dir_all(&tmp_name) {
                    tracing::warn!(folder = %tmp_name, error = %e, "cannot remove a half-extracted folder");
                }
                why
            };
            let tmp = parent
                .open_dir(&tmp_name)
                .map_err(|e| cleanup(io_err("extract into", &to, e)))?;
            let mut out = extract::extract(file, meta.len(), format, &tmp, &files.inner.shutdown)
                .map_err(cleanup)?;
            exists(&parent).map_err(cleanup)?;
            parent
                .rename(&tmp_name, &parent, &name)
                .map_err(|e| cleanup(io_err("extract into", &to, e)))?;
            crate::os::sync_dir(&parent).map_err(|e| io_err("extract into", &to, e))?;
            out.to = to.to_string();
            Ok(out)
        })
        .await
    }

    /// Reserves one of the concurrent transfer slots, or says to come back later.
    fn transfer_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, FilesError> {
        self.inner.transfers.clone().try_acquire_owned().map_err(|_| {
            FilesError::Busy(format!(
                "{} transfers are already running (files.max_concurrent_transfers); try again when one has finished",
                self.inner.cfg.max_concurrent_transfers
            ))
        })
    }
}

/// Opens a file for reading beneath `root`, never waiting on a FIFO.
fn open_read(root: &Dir, path: &RelPath) -> Result<std::fs::File, FilesError> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    crate::os::open_nonblocking(&mut opts);
    root.open_with(path.as_fs_path(), &opts)
        .map(cap_std::fs::File::into_std)
        .map_err(|e| io_err("open", path, e))
}

fn kind_of(meta: &cap_std::fs::Metadata) -> Kind {
    let ft = meta.file_type();
    if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

/// Bytes of the regular files in a folder tree (for the audit record of a delete);
/// does not follow symlinks, stops descending at 64 levels.
fn tree_size(dir: &Dir, depth: usize) -> u64 {
    let Ok(entries) = dir.entries() else {
        return 0;
    };
    let mut total = 0u64;
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(ft) if ft.is_dir() && depth < 64 => {
                if let Ok(sub) = entry.open_dir() {
                    total = total.saturating_add(tree_size(&sub, depth + 1));
                }
            }
            Ok(ft) if ft.is_file() => {
                total = total.saturating_add(entry.metadata().map(|m| m.len()).unwrap_or(0));
            }
            _ => {}
        }
    }
    total
}

/// SHA-256 of `bytes` in lowercase hex: the version token of a file.
pub fn version_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A temporary file beside its target, removed unless committed.
struct TempFile {
    dir: Dir,
    tmp_name: String,
    target: String,
    file: std::fs::File,
    committed: bool,
}

impl TempFile {
    /// Creates `.NAME.warden-RANDOM` in `dir` (exclusively: never an existing file).
    fn create(dir: &Dir, target: &str) -> io::Result<TempFile> {
        let dir = dir.try_clone()?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        // Keep the name within 255 bytes whatever the target's length.
        let stem: String = target.chars().take(200).collect();
        let tmp_name = format!(".{stem}.warden-{:016x}", rand::random::<u64>());
        let file = dir.open_with(&tmp_name, &opts)?.into_std();
        Ok(TempFile {
            dir,
            tmp_name,
            target: target.to_string(),
            file,
            committed: false,
        })
    }

    /// Flushes the data, gives the file the replaced file's permissions and owner,
    /// renames it over the target (only if absent unless `replace`), and flushes the
    /// folder so the rename survives power loss.
    fn commit(mut self, replaced: Option<&std::fs::Metadata>, replace: bool) -> io::Result<()> {
        if let Some(old) = replaced {
            self.file.set_permissions(old.permissions())?;
            crate::os::copy_owner(old, &self.file)?;
        }
        self.file.sync_all()?;
        if !replace && self.dir.symlink_metadata(&self.target).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the target appeared while uploading",
            ));
        }
        self.dir.rename(&self.tmp_name, &self.dir, &self.target)?;
        self.committed = true;
        crate::os::sync_dir(&self.dir)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = self.dir.remove_file(&self.tmp_name)
        {
            tracing::warn!(file = %self.tmp_name, error = %e, "cannot remove temporary file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_sha256_hex() {
        assert_eq!(
            version_of(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
