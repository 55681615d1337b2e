//! Moving a program to another machine (`warden fleet move NAME --to NODE`): this warden
//! stops it (so the world is not written while it is copied, and it never runs on both
//! machines), takes a verified backup, and streams the archive, its manifest and the
//! definition to the node (`POST /api/fleet/incoming`, under the node's token, admin
//! there). The node extracts the archive, checking every file against the manifest, into
//! a hidden folder beside its servers, renames it to `servers/NAME` and defines the
//! program with that folder as its working directory. Then the program is started on the
//! node when it ran here, and left stopped here with `autostart` off. Every step is an
//! event of the program; any failure before the node has it starts it here again when it
//! was running, so a failed move leaves the source as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::Fleet;
use crate::backup::archive::{self, Control};
use crate::backup::manifest::Manifest;
use crate::backup::record::BackupStatus;
use crate::backup::{BackupOptions, BackupService};
use crate::program::ProgramSpec;
use crate::seal::{self, Sealer};
use crate::store::events::NewEvent;
use crate::supervisor::Supervisor;

/// How long the node may take to take in the archive and define the program.
const SEND_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// How long the program may take to stop here before the move gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// What a finished move did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Moved {
    /// Program name (the same on both machines).
    pub program: String,
    /// The node it now lives on.
    pub node: String,
    /// The backup it was carried in (kept here).
    pub backup_id: i64,
    /// Bytes of the archive sent.
    pub archive_bytes: u64,
    /// It was running here, and was started there.
    pub started: bool,
}

/// Why a move failed; the program is as it was here (running again if it ran).
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// No such program here.
    #[error("no program named '{0}' on this warden")]
    NoProgram(String),
    /// No such node.
    #[error("no fleet node named '{0}'; `warden fleet list` shows the nodes")]
    NoNode(String),
    /// The node already has a program of that name.
    #[error("node '{node}' already has a program named '{program}'; delete or rename one first")]
    Exists { node: String, program: String },
    /// Something on the way failed.
    #[error("{0}")]
    Failed(String),
}

/// The services a move uses on the source.
pub struct Mover<'a> {
    /// This warden's programs.
    pub sup: &'a Supervisor,
    /// Its backups.
    pub backups: &'a BackupService,
    /// Its fleet.
    pub fleet: &'a Fleet,
    /// Who asked, for the node's audit log (`X-Warden-For`).
    pub on_behalf: String,
}

impl Mover<'_> {
    /// Moves `name` to `node`; see the module documentation.
    pub async fn run(&self, name: &str, node: &str) -> Result<Moved, MoveError> {
        let handle = self
            .sup
            .get(name)
            .map_err(|_| MoveError::NoProgram(name.to_string()))?;
        let n = self
            .fleet
            .store
            .fleet_node(node)
            .await
            .map_err(|e| MoveError::Failed(format!("cannot read the fleet: {e}")))?
            .ok_or_else(|| MoveError::NoNode(node.to_string()))?;
        let token = Sealer::load(&self.fleet.data_dir, seal::FLEET)
            .and_then(|s| s.unseal(&n.token))
            .map_err(MoveError::Failed)?;
        let client = self.fleet.client(&n).map_err(MoveError::Failed)?;
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            MoveError::Failed(format!("{what} node '{node}' failed: {e}"))
        };
        // The node must not have it already (asked before anything is stopped here).
        let probe = client
            .get(format!("{}api/programs/{name}", n.url))
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| failed("asking", &e))?;
        match probe.status().as_u16() {
            404 => {}
            200 => {
                return Err(MoveError::Exists {
                    node: node.to_string(),
                    program: name.to_string(),
                });
            }
            s => return Err(failed("asking", &format!("it answered HTTP {s}"))),
        }

        let was_running = handle.snapshot().status.state.is_active();
        let note = |kind: &'static str, message: String, data: serde_json::Value| async move {
            let ev = NewEvent::now(Some(name), kind, message, data);
            self.fleet.store.record_event(ev).await;
        };
        let about = |extra: serde_json::Value| {
            let mut d = serde_json::json!({ "node": node });
            if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                d.extend(extra.clone());
            }
            d
        };
        note(
            "move_started",
            format!("moving to node {node}"),
            about(serde_json::Value::Null),
        )
        .await;
        let result = self.carry(name, node, (&client, &n.url, &token)).await;
        match result {
            Ok((backup_id, archive_bytes)) => {
                let mut started = false;
                if was_running {
                    let start = client
                        .post(format!("{}api/programs/{name}/start", n.url))
                        .bearer_auth(&token)
                        .header(super::forward::ON_BEHALF_HEADER, &self.on_behalf)
                        .send()
                        .await;
                    started = matches!(&start, Ok(r) if r.status().is_success());
                    if !started {
                        note(
                            "move_start_failed",
                            format!("moved to node {node}, but it did not start there; start it on {node}"),
                            about(serde_json::Value::Null),
                        )
                        .await;
                    }
                }
                note(
                    "move_finished",
                    format!("moved to node {node} ({archive_bytes} bytes); stopped here, autostart off"),
                    about(serde_json::json!({ "archive_bytes": archive_bytes, "backup_id": backup_id })),
                )
                .await;
                Ok(Moved {
                    program: name.to_string(),
                    node: node.to_string(),
                    backup_id,
                    archive_bytes,
                    started,
                })
            }
            Err(e) => {
                if was_running && let Err(se) = handle.start().await {
                    tracing::error!(program = %name, error = %se, "cannot start a program again after a failed move");
                }
                note(
                    "move_failed",
                    format!("moving to node {node} failed: {e}"),
                    about(serde_json::json!({ "error": e.to_string() })),
                )
                .await;
                Err(e)
            }
        }
    }

    /// Stops the program, backs it up, sends it and turns off its autostart here.
    async fn carry(
        &self,
        name: &str,
        node: &str,
        (client, url, token): (&reqwest::Client, &str, &str),
    ) -> Result<(i64, u64), MoveError> {
        let handle = self
            .sup
            .get(name)
            .map_err(|_| MoveError::NoProgram(name.to_string()))?;
        handle
            .stop()
            .await
            .map_err(|e| MoveError::Failed(format!("cannot stop it here: {e}")))?;
        let snap = handle
            .wait_for(STOP_TIMEOUT, |s| !s.state.is_active())
            .await;
        if snap.status.state.is_active() {
            return Err(MoveError::Failed(format!(
                "it did not stop within {} s",
                STOP_TIMEOUT.as_secs()
            )));
        }
        let reason = format!("move to node {node}");
        let record = self
            .backups
            .run_to_end(name, BackupOptions { reason })
            .await
            .map_err(|e| MoveError::Failed(format!("the backup failed: {e}")))?;
        if record.status != BackupStatus::Ok {
            return Err(MoveError::Failed(format!(
                "the backup failed: {}",
                record.error.unwrap_or_else(|| record.status.to_string())
            )));
        }
        let manifest =
            self.backups.manifest(record.id).await.map_err(|e| {
                MoveError::Failed(format!("cannot read the backup's manifest: {e}"))
            })?;
        let archive = self
            .backups
            .open_archive(record.id)
            .await
            .map_err(|e| MoveError::Failed(format!("cannot open the backup: {e}")))?;
        let size = archive.size;
        let mut spec = (*snap.spec).clone();
        let json = |v: Result<String, serde_json::Error>| {
            v.map_err(|e| MoveError::Failed(format!("cannot write the definition: {e}")))
        };
        let form = reqwest::multipart::Form::new()
            .text("definition", json(serde_json::to_string(&spec))?)
            .text("manifest", json(serde_json::to_string(&manifest))?)
            .part(
                "archive",
                reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(archive.file)),
                    size,
                )
                .file_name(archive.name),
            );
        let resp = client
            .post(format!("{url}api/fleet/incoming"))
            .bearer_auth(token)
            .header(super::forward::ON_BEHALF_HEADER, &self.on_behalf)
            .timeout(SEND_TIMEOUT)
            .multipart(form)
            .send()
            .await
            .map_err(|e| MoveError::Failed(format!("sending it to node '{node}' failed: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let why = body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given");
            return Err(MoveError::Failed(format!(
                "node '{node}' refused it (HTTP {}): {why}",
                status.as_u16()
            )));
        }
        // It lives there now: never started here again by itself.
        spec.autostart = false;
        if let Err(e) = self.sup.update(spec).await {
            tracing::warn!(program = %name, error = %e, "cannot turn off autostart after a move");
        }
        Ok((record.id, size))
    }
}

/// The node's side: a program arriving from another warden.
pub struct Incoming {
    /// Hidden folder beside the servers, removed unless the move succeeds.
    dir: PathBuf,
    /// Where the archive is written.
    archive: PathBuf,
    /// The finished folder: `servers/NAME`.
    target: PathBuf,
}

impl Incoming {
    /// Prepares to take in program `name` under `servers_root`: refused when its folder
    /// exists already.
    pub async fn begin(servers_root: &Path, name: &str) -> Result<Incoming, String> {
        let target = servers_root.join(name);
        if tokio::fs::try_exists(&target).await.unwrap_or(true) {
            return Err(format!(
                "{} exists already; move it away or pick another name",
                target.display()
            ));
        }
        let dir = servers_root.join(format!(".incoming-{name}-{}", crate::store::now_ms()));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        Ok(Incoming {
            archive: dir.join("archive.tar.zst"),
            dir,
            target,
        })
    }

    /// The file the archive is streamed into.
    pub async fn archive_file(&self) -> Result<tokio::fs::File, String> {
        tokio::fs::File::create(&self.archive)
            .await
            .map_err(|e| format!("cannot write {}: {e}", self.archive.display()))
    }

    /// Extracts the archive (every file checked against `manifest`), renames the folder
    /// to its final name and defines the program there, stopped. Leaves nothing on failure.
    pub async fn finish(
        self,
        mut file: tokio::fs::File,
        manifest: Manifest,
        mut spec: ProgramSpec,
        sup: &Supervisor,
    ) -> Result<ProgramSpec, String> {
        let result = async {
            file.flush().await.map_err(|e| e.to_string())?;
            file.sync_all().await.map_err(|e| e.to_string())?;
            drop(file);
            let staging = self.dir.join("files");
            let (archive_path, staging2) = (self.archive.clone(), staging.clone());
            tokio::task::spawn_blocking(move || {
                let cancel = CancellationToken::new();
                let report = |_: &archive::Progress| {};
                let ctl = Control {
                    cancel: &cancel,
                    report: &report,
                    max_bytes_per_second: None,
                };
                archive::extract(&archive_path, &manifest, &staging2, &ctl)
            })
            .await
            .map_err(|e| format!("the extraction stopped: {e}"))?
            .map_err(|e| format!("the archive does not match its manifest: {e}"))?;
            tokio::fs::rename(&staging, &self.target)
                .await
                .map_err(|e| format!("cannot move the files to {}: {e}", self.target.display()))?;
            let new_root = self.target.to_string_lossy().into_owned();
            if let Some(old) = spec.cwd.take() {
                // Paths into the old working directory (the server's jar, its world)
                // point into the new one.
                let moved = |s: &mut String| {
                    if let Some(rest) = s.strip_prefix(old.trim_end_matches('/'))
                        && (rest.is_empty() || rest.starts_with('/'))
                    {
                        *s = format!("{new_root}{rest}");
                    }
                };
                moved(&mut spec.command);
                spec.args.iter_mut().for_each(moved);
            }
            spec.cwd = Some(new_root);
            spec.autostart = false;
            if let Err(e) = sup.create(spec.clone()).await {
                let _ = tokio::fs::remove_dir_all(&self.target).await;
                return Err(format!("cannot define the program: {e}"));
            }
            Ok(spec)
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
        result
    }

    /// Gives up: removes everything received.
    pub async fn abandon(self) {
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}
