//! Installing game servers from templates: the `Installer` service behind
//! `POST /api/install` and `warden new --template`.
//!
//! An install checks the request at once (template, name, values: 404/409/422), then runs
//! as a task: the files go into a hidden temporary folder beside the final one (SteamCMD,
//! one run at a time on the host; or a verified download), the config files are written,
//! the folder is renamed to its final name, and only then is the program defined
//! (stopped, ready to start) and its backup defaults saved. A failure at any step removes
//! the temporary folder, so it leaves neither files under the final name nor a program.
//! Every step is an `Event::Install` on the bus and a field of the install's status.

pub mod bootstrap;
pub mod download;
pub mod java;
pub mod steamcmd;
pub mod template;
pub mod update;
pub mod vdf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::backup::BackupService;
use crate::bus::{Bus, Event, InstallActivity, InstallActivityKind};
use crate::config::InstallConfig;
use crate::program::FieldError;
use crate::store::{Store, now_ms};
use crate::supervisor::Supervisor;
use template::{FileFormat, Plan, RenderedFile, Source, Template};

/// Installs kept in memory for `GET /api/install/{id}` (the oldest finished go first).
const KEEP_INSTALLS: usize = 100;

/// Why an install failed, for people and programs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Failure {
    /// Stable code: `disk_full`, `no_subscription`, `steam_guard`, `login_failed`, `rate_limited`,
    /// `timeout`, `steamcmd_missing`, `steamcmd_failed`, `checksum_mismatch`,
    /// `download_failed`, `unknown_version`, `java_too_old` (the server's Java is older than
    /// its Minecraft build needs), `java_missing` (no Java to run it with, or one that does
    /// not answer `java -version`), `write_failed`, `define_failed`.
    pub code: String,
    /// What went wrong and how to fix it.
    pub message: String,
}

impl Failure {
    /// A failure with a code and a message.
    pub fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<steamcmd::SteamError> for Failure {
    fn from(e: steamcmd::SteamError) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}

/// Where an install is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// Waiting for the host's one SteamCMD.
    WaitingForSteamcmd,
    /// Files are being downloaded.
    Downloading,
    /// Config files are being written and the program defined.
    Configuring,
    /// Done: the program exists, stopped and ready to start.
    Installed,
    /// Failed; nothing was left behind.
    Failed,
}

/// Download progress of an install.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InstallProgress {
    /// What is being done (`downloading`, `verifying install`, …).
    pub phase: String,
    /// 0 to 100.
    pub percent: f64,
    /// Bytes done.
    pub bytes_done: u64,
    /// Bytes in total (0 when unknown).
    pub bytes_total: u64,
}

/// The status of one install.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstallStatus {
    /// Install id.
    pub id: u64,
    /// The program being made.
    pub program: String,
    /// The template.
    pub template: String,
    /// Where it is.
    pub state: InstallState,
    /// The latest progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<InstallProgress>,
    /// The installed build (SteamCMD build id, Minecraft version), once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// The server's folder (final name).
    pub dir: String,
    /// Unix ms.
    pub started_ms: i64,
    /// Unix ms, once finished or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
}

/// What to install.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// Template name (`GET /api/templates`).
    #[schema(example = "palworld")]
    pub template: String,
    /// Name of the new program (also its folder's name).
    #[schema(example = "survival-pal")]
    pub name: String,
    /// Values of the template's variables; the others keep their defaults.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// A Steam Guard code for the Steam account's login, when an earlier try failed
    /// with `steam_guard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_code: Option<String>,
}

/// Why an install request is refused.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Bad template, name or values.
    #[error("invalid install request")]
    Invalid(Vec<FieldError>),
    /// The name or folder is taken, or an install of it is under way.
    #[error("{0}")]
    Conflict(String),
    /// No install with that id.
    #[error("no install {0}")]
    NotFound(u64),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// The install service.
#[derive(Clone)]
pub struct Installer {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: InstallConfig,
    data_dir: PathBuf,
    sup: Supervisor,
    backups: BackupService,
    bus: Bus,
    store: Store,
    /// One SteamCMD at a time on this host: two runs share its caches and fight.
    steam: tokio::sync::Mutex<()>,
    /// One SteamCMD bootstrap at a time.
    bootstrap: tokio::sync::Mutex<()>,
    jobs: std::sync::Mutex<BTreeMap<u64, InstallStatus>>,
    /// Program names with an install under way.
    busy: std::sync::Mutex<BTreeSet<String>>,
    next: AtomicU64,
    http: reqwest::Client,
}

impl Installer {
    /// A service installing under `cfg.root(data_dir)`.
    pub fn new(
        cfg: InstallConfig,
        data_dir: &Path,
        sup: Supervisor,
        backups: BackupService,
        bus: Bus,
        store: Store,
    ) -> Installer {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Installer {
            inner: Arc::new(Inner {
                cfg,
                data_dir: data_dir.to_path_buf(),
                sup,
                backups,
                bus,
                store,
                steam: tokio::sync::Mutex::new(()),
                bootstrap: tokio::sync::Mutex::new(()),
                jobs: std::sync::Mutex::new(BTreeMap::new()),
                busy: std::sync::Mutex::new(BTreeSet::new()),
                next: AtomicU64::new(1),
                http,
            }),
        }
    }

    /// Every template (shipped and the data directory's) and the files that failed to load.
    pub fn templates(&self) -> (Vec<Template>, Vec<template::LoadProblem>) {
        template::load_all(&templates_dir(&self.inner.data_dir))
    }

    /// The folder servers are installed under (absolute).
    fn root(&self) -> PathBuf {
        let root = self.inner.cfg.root(&self.inner.data_dir);
        std::path::absolute(&root).unwrap_or(root)
    }

    /// Checks a request and starts the install; the answer is its first status.
    pub fn start(&self, req: InstallRequest) -> Result<InstallStatus, InstallError> {
        let (all, _) = self.templates();
        let Some(t) = all.into_iter().find(|t| t.name == req.template) else {
            return Err(InstallError::Invalid(vec![FieldError::not_found(
                "template",
                &req.template,
            )]));
        };
        if !crate::program::valid_name(&req.name) {
            return Err(InstallError::Invalid(vec![FieldError::invalid_name(
                "name", &req.name,
            )]));
        }
        let values = t.resolve(&req.values).map_err(InstallError::Invalid)?;
        let dir = self.root().join(&req.name);
        let mut plan = t
            .render(std::env::consts::OS, &req.name, &dir, &values)
            .map_err(InstallError::Invalid)?;
        // `install.java` is the Java that templates' bare `java` commands run with.
        if let Some(j) = &self.inner.cfg.java
            && java::is_java(&plan.spec.command)
            && !plan.spec.command.contains(['/', '\\'])
        {
            plan.spec.command = j.display().to_string();
        }
        if self.inner.sup.get(&req.name).is_ok() {
            return Err(InstallError::Conflict(format!(
                "a program named '{}' exists; choose another name",
                req.name
            )));
        }
        if dir.exists() {
            return Err(InstallError::Conflict(format!(
                "{} exists; choose another name or move that folder away",
                dir.display()
            )));
        }
        if !crate::sync::lock(&self.inner.busy).insert(req.name.clone()) {
            return Err(InstallError::Conflict(format!(
                "'{}' is being installed already",
                req.name
            )));
        }
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let status = InstallStatus {
            id,
            program: req.name.clone(),
            template: t.name.clone(),
            state: match plan.source {
                Source::Steamcmd { .. } => InstallState::WaitingForSteamcmd,
                _ => InstallState::Downloading,
            },
            progress: None,
            build: None,
            error: None,
            dir: dir.display().to_string(),
            started_ms: now_ms(),
            ended_ms: None,
        };
        {
            let mut jobs = crate::sync::lock(&self.inner.jobs);
            while jobs.len() >= KEEP_INSTALLS {
                let Some(oldest) = jobs.values().find(|j| j.ended_ms.is_some()).map(|j| j.id)
                else {
                    break;
                };
                jobs.remove(&oldest);
            }
            jobs.insert(id, status.clone());
        }
        self.publish(
            id,
            &req.name,
            InstallActivityKind::Started,
            format!("installing '{}' from template '{}'", req.name, t.name),
        );
        let me = self.clone();
        let name = req.name.clone();
        let template = t.name.clone();
        let guard = req.guard_code.clone();
        tokio::spawn(async move {
            let result = me.run(id, &name, &template, plan, &dir, guard).await;
            me.finish(id, &name, result);
            crate::sync::lock(&me.inner.busy).remove(&name);
        });
        Ok(status)
    }

    /// The status of install `id`.
    pub fn status(&self, id: u64) -> Result<InstallStatus, InstallError> {
        crate::sync::lock(&self.inner.jobs)
            .get(&id)
            .cloned()
            .ok_or(InstallError::NotFound(id))
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut InstallStatus)) {
        if let Some(s) = crate::sync::lock(&self.inner.jobs).get_mut(&id) {
            f(s);
        }
    }

    fn publish(&self, id: u64, program: &str, kind: InstallActivityKind, message: String) {
        self.emit(id, program, kind, message, |_| {});
    }

    /// Publishes an install event; `fill` sets the fields beyond the common ones.
    fn emit(
        &self,
        id: u64,
        program: &str,
        kind: InstallActivityKind,
        message: String,
        fill: impl FnOnce(&mut InstallActivity),
    ) {
        let mut a = InstallActivity {
            program: program.to_string(),
            ts: now_ms(),
            install_id: id,
            kind,
            phase: None,
            percent: None,
            bytes_done: 0,
            bytes_total: 0,
            build: None,
            code: None,
            message,
        };
        fill(&mut a);
        self.inner.bus.publish(Event::Install(a));
    }

    fn progress(&self, id: u64, program: &str, p: InstallProgress) {
        let message = format!("{} {:.1} %", p.phase, p.percent);
        self.emit(id, program, InstallActivityKind::Progress, message, |a| {
            a.phase = Some(p.phase.clone());
            a.percent = Some(p.percent);
            a.bytes_done = p.bytes_done;
            a.bytes_total = p.bytes_total;
        });
        self.update(id, |s| {
            s.state = InstallState::Downloading;
            s.progress = Some(p);
        });
    }

    fn finish(&self, id: u64, program: &str, result: Result<Option<String>, Failure>) {
        let ended = now_ms();
        let (kind, build, code, message) = match &result {
            Ok(build) => {
                tracing::info!(program, build = ?build, "server installed");
                (
                    InstallActivityKind::Finished,
                    build.clone(),
                    None,
                    format!("'{program}' is installed, stopped and ready to start"),
                )
            }
            Err(f) => {
                tracing::warn!(program, code = %f.code, error = %f.message, "install failed");
                (
                    InstallActivityKind::Failed,
                    None,
                    Some(f.code.clone()),
                    f.message.clone(),
                )
            }
        };
        self.update(id, |s| {
            s.ended_ms = Some(ended);
            match result {
                Ok(b) => {
                    s.state = InstallState::Installed;
                    s.build = b;
                }
                Err(f) => {
                    s.state = InstallState::Failed;
                    s.error = Some(f);
                }
            }
        });
        self.emit(id, program, kind, message, |a| {
            a.ts = ended;
            a.build = build;
            a.code = code;
        });
    }

    /// The install itself; on failure the temporary folder is removed.
    async fn run(
        &self,
        id: u64,
        name: &str,
        template: &str,
        plan: Plan,
        dir: &Path,
        guard_code: Option<String>,
    ) -> Result<Option<String>, Failure> {
        let root = self.root();
        let tmp = root.join(format!(".{name}.installing"));
        let result = self
            .fill_and_place(id, name, &plan, &tmp, dir, guard_code)
            .await;
        if result.is_err() {
            let t = tmp.clone();
            let _ = tokio::task::spawn_blocking(move || remove_all(&t)).await;
            return result;
        }
        let spec = plan.spec;
        if let Err(e) = self.inner.sup.create(spec).await {
            // The name was taken meanwhile, or the store refused: take the files back out.
            let d = dir.to_path_buf();
            let _ = tokio::task::spawn_blocking(move || remove_all(&d)).await;
            return Err(Failure::new(
                "define_failed",
                format!("the files were installed but the program could not be defined: {e}"),
            ));
        }
        if let Some(b) = plan.backup
            && let Err(e) = self.inner.backups.set_settings(name, b).await
        {
            tracing::warn!(program = name, error = %e, "cannot save the template's backup defaults");
        }
        // What it is, for its updates.
        update::save_installed(
            &self.inner.store,
            name,
            template,
            plan.source,
            result.as_ref().ok().cloned().flatten(),
        )
        .await;
        result
    }

    /// Downloads into `tmp`, writes the config files and renames `tmp` to `dir`.
    async fn fill_and_place(
        &self,
        id: u64,
        name: &str,
        plan: &Plan,
        tmp: &Path,
        dir: &Path,
        guard_code: Option<String>,
    ) -> Result<Option<String>, Failure> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            Failure::new(
                "write_failed",
                format!(
                    "cannot {what} {}: {e}; check free space and permissions",
                    p.display()
                ),
            )
        };
        if tmp.exists() {
            // Left by an install that warden's exit interrupted: it is ours to remove.
            let t = tmp.to_path_buf();
            let _ = tokio::task::spawn_blocking(move || remove_all(&t)).await;
        }
        tokio::fs::create_dir_all(tmp)
            .await
            .map_err(|e| io("create", tmp, e))?;
        let build = match &plan.source {
            Source::Steamcmd {
                app,
                branch,
                platform,
                validate,
            } => {
                let job = steamcmd::SteamJob {
                    login: self.login(guard_code).await?,
                    steamcmd: self.steamcmd().await?,
                    app: *app,
                    branch: branch.clone(),
                    platform: *platform,
                    validate: *validate,
                    dir: tmp.to_path_buf(),
                    timeout: self.inner.cfg.steamcmd_timeout,
                };
                self.steam_install(id, name, &job).await?
            }
            Source::Minecraft {
                flavor,
                version,
                jar,
            } => {
                let http = &self.inner.http;
                let found = match flavor {
                    template::Flavor::Vanilla => {
                        download::vanilla_jar(http, &self.inner.cfg.mojang_url, version).await?
                    }
                    template::Flavor::Paper => {
                        download::paper_jar(http, &self.inner.cfg.paper_url, version).await?
                    }
                };
                // Before a byte is downloaded: is the server's Java new enough?
                self.check_java(&plan.spec.command, &found, true).await?;
                self.fetch(id, name, &found.url, &found.sum, tmp, jar)
                    .await?;
                Some(found.build)
            }
            Source::Url { url, sha256, file } => {
                let sum = download::Checksum::Sha256(sha256.clone());
                self.fetch(id, name, url, &sum, tmp, file).await?;
                None
            }
        };
        self.update(id, |s| {
            s.state = InstallState::Configuring;
            s.build.clone_from(&build);
        });
        let files = plan.files.clone();
        let t = tmp.to_path_buf();
        tokio::task::spawn_blocking(move || write_files(&t, &files))
            .await
            .map_err(|e| Failure::new("write_failed", format!("config writer failed: {e}")))??;
        if dir.exists() {
            return Err(Failure::new(
                "write_failed",
                format!(
                    "{} appeared during the install; move it away and try again",
                    dir.display()
                ),
            ));
        }
        tokio::fs::rename(tmp, dir)
            .await
            .map_err(|e| io("rename the install folder to", dir, e))?;
        Ok(build)
    }

    /// Fails with `java_too_old` / `java_missing` when the Java a server with `command`
    /// runs with is older than Minecraft `jar` needs (or missing); `installing` picks the
    /// advice (a new install takes `install.java`, an installed program has its command).
    pub(crate) async fn check_java(
        &self,
        command: &str,
        jar: &download::Jar,
        installing: bool,
    ) -> Result<(), Failure> {
        let cfg = &self.inner.cfg;
        let Some(need) = download::java_needed(&self.inner.http, &cfg.mojang_url, jar).await else {
            tracing::warn!(minecraft = %jar.minecraft, "the Java this Minecraft version needs is unknown; not checked");
            return Ok(());
        };
        let fix = if installing || !java::is_java(command) {
            format!(
                "set `java` in the [install] section of warden's config to a Java {need} or newer executable"
            )
        } else {
            format!("make the program's command a Java {need} or newer executable")
        };
        java::check(command, cfg.java.as_deref(), &jar.minecraft, need, &fix).await
    }

    async fn fetch(
        &self,
        id: u64,
        name: &str,
        url: &str,
        sum: &download::Checksum,
        tmp: &Path,
        file: &str,
    ) -> Result<(), Failure> {
        let bytes = download::fetch_verified(&self.inner.http, url, sum, tmp, file).await?;
        self.progress(
            id,
            name,
            InstallProgress {
                phase: format!("downloaded {file}"),
                percent: 100.0,
                bytes_done: bytes,
                bytes_total: bytes,
            },
        );
        Ok(())
    }

    /// The Steam account to log in with (`install.steam_user` and its stored password),
    /// or `None` for an anonymous login.
    async fn login(&self, guard_code: Option<String>) -> Result<Option<steamcmd::Login>, Failure> {
        let Some(user) = self.inner.cfg.steam_user.clone() else {
            return Ok(None);
        };
        let password = self.inner.store.steam_password(&user).await.map_err(|e| {
            Failure::new(
                "login_failed",
                format!("cannot read the stored password of Steam account '{user}': {e}"),
            )
        })?;
        let Some(password) = password else {
            return Err(Failure::new(
                "login_failed",
                format!(
                    "install.steam_user is '{user}' but no password is stored for it; store it with `warden ctl steam-password` (PUT /api/install/steam-account)"
                ),
            ));
        };
        Ok(Some(steamcmd::Login {
            user,
            password,
            guard_code: guard_code
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
        }))
    }

    /// Whether SteamCMD logs in with a Steam account (`install.steam_user`).
    pub fn steam_user(&self) -> Option<&str> {
        self.inner.cfg.steam_user.as_deref()
    }

    /// Stores the password of the configured Steam account, sealed.
    pub async fn set_steam_password(&self, password: &str) -> Result<String, InstallError> {
        let Some(user) = self.inner.cfg.steam_user.clone() else {
            return Err(InstallError::Conflict(
                "no Steam account is configured; set install.steam_user in the config file and restart warden first".into(),
            ));
        };
        self.inner
            .store
            .put_steam_password(&user, password)
            .await
            .map_err(|e| InstallError::Store(format!("cannot store the password: {e}")))?;
        Ok(user)
    }

    /// The SteamCMD to run: the configured one, else one in `PATH`, else the one
    /// bootstrapped into `DATA/steamcmd` (downloaded the first time; one at a time).
    async fn steamcmd(&self) -> Result<PathBuf, Failure> {
        if let Some(p) = &self.inner.cfg.steamcmd {
            return Ok(p.clone());
        }
        if let Ok(p) = which::which("steamcmd").or_else(|_| which::which("steamcmd.sh")) {
            return Ok(p);
        }
        let _one_at_a_time = self.inner.bootstrap.lock().await;
        bootstrap::ensure(
            &self.inner.http,
            &self.inner.cfg.steamcmd_url,
            &self.inner.data_dir,
        )
        .await
    }

    /// Runs SteamCMD under the host lock with bounded retries; returns the build id.
    async fn steam_install(
        &self,
        id: u64,
        name: &str,
        job: &steamcmd::SteamJob,
    ) -> Result<Option<String>, Failure> {
        let _one_at_a_time = self.inner.steam.lock().await;
        self.update(id, |s| s.state = InstallState::Downloading);
        let attempts = self.inner.cfg.steamcmd_attempts.max(1);
        let mut attempt = 1;
        loop {
            let me = self.clone();
            let program = name.to_string();
            let mut on_progress = move |p: steamcmd::Progress| {
                me.progress(
                    id,
                    &program,
                    InstallProgress {
                        phase: p.phase,
                        percent: p.percent,
                        bytes_done: p.bytes_done,
                        bytes_total: p.bytes_total,
                    },
                );
            };
            match steamcmd::run_once(job, &mut on_progress).await {
                Ok(()) => break,
                Err(e) if e.retryable() && attempt < attempts => {
                    let wait = crate::backoff::exponential(
                        self.inner.cfg.steamcmd_retry,
                        Duration::from_secs(120),
                        attempt,
                    );
                    tracing::warn!(program = name, attempt, error = %e, "SteamCMD failed; trying again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let manifest = steamcmd::manifest_path(&job.dir, job.app);
        let text = tokio::fs::read_to_string(&manifest).await.map_err(|e| {
            Failure::new(
                "steamcmd_failed",
                format!(
                    "SteamCMD said app {} was installed but {} cannot be read: {e}",
                    job.app,
                    manifest.display()
                ),
            )
        })?;
        let build = vdf::manifest_build_id(&text).map_err(|e| {
            Failure::new(
                "steamcmd_failed",
                format!("{} is not a readable app manifest: {e}", manifest.display()),
            )
        })?;
        Ok(Some(build))
    }
}

/// `DATA/templates`: user templates.
pub fn templates_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("templates")
}

fn remove_all(p: &Path) {
    if let Err(e) = std::fs::remove_dir_all(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %p.display(), error = %e, "cannot remove a failed install's folder");
    }
}

/// Writes the rendered config files under `dir`.
fn write_files(dir: &Path, files: &[RenderedFile]) -> Result<(), Failure> {
    for f in files {
        let path = f
            .path
            .split('/')
            .fold(dir.to_path_buf(), |p, part| p.join(part));
        let err = |what: &str, e: std::io::Error| {
            Failure::new(
                "write_failed",
                format!("cannot {what} {}: {e}", path.display()),
            )
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err("create the folder of", e))?;
        }
        let old = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(err("read", e)),
        };
        let text = match f.format {
            FileFormat::Text => f.content.clone(),
            FileFormat::Properties => set_entries(old.as_deref().unwrap_or(""), None, &f.entries),
            FileFormat::Ini => set_entries(
                old.as_deref().unwrap_or(""),
                Some(f.section.as_deref().unwrap_or("")),
                &f.entries,
            ),
        };
        std::fs::write(&path, text).map_err(|e| err("write", e))?;
    }
    Ok(())
}

/// `text` with `key=value` lines set (replaced where the key exists, added otherwise),
/// within `[section]` for ini files (the section is added when missing). Other lines,
/// comments and order are kept.
pub fn set_entries(
    text: &str,
    section: Option<&str>,
    entries: &BTreeMap<String, String>,
) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut done = BTreeSet::new();
    let mut in_section = section.is_none();
    let mut section_end = if section.is_none() {
        Some(lines.len())
    } else {
        None
    };
    for (i, line) in lines.iter_mut().enumerate() {
        let t = line.trim().to_string();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if section.is_some() {
                if in_section && section_end.is_none() {
                    section_end = Some(i);
                }
                in_section = Some(name) == section;
            }
            continue;
        }
        if !in_section || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some((k, _)) = t.split_once('=')
            && let Some(v) = entries.get(k.trim())
        {
            *line = format!("{}={v}", k.trim());
            done.insert(k.trim().to_string());
        }
    }
    let missing: Vec<String> = entries
        .iter()
        .filter(|(k, _)| !done.contains(*k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let seen_section = section.is_none()
        || lines
            .iter()
            .any(|l| l.trim().strip_prefix('[').and_then(|r| r.strip_suffix(']')) == section);
    if !seen_section {
        if let Some(s) = section {
            lines.push(format!("[{s}]"));
        }
        lines.extend(missing);
    } else {
        let at = section_end.unwrap_or(lines.len());
        for (n, l) in missing.into_iter().enumerate() {
            lines.insert(at + n, l);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn properties_are_replaced_in_place_and_missing_ones_added() {
        let old = "#Minecraft server properties\nmotd=old\nserver-port=1\nlevel-name=world\n";
        let new = set_entries(
            old,
            None,
            &entries(&[
                ("motd", "new"),
                ("server-port", "25565"),
                ("enable-rcon", "true"),
            ]),
        );
        assert_eq!(
            new,
            "#Minecraft server properties\nmotd=new\nserver-port=25565\nlevel-name=world\nenable-rcon=true\n"
        );
        assert_eq!(set_entries("", None, &entries(&[("a", "1")])), "a=1\n");
    }

    #[test]
    fn ini_entries_go_into_their_section_only() {
        let old = "[Other]\nRCONPort=1\n[ServerSettings]\nRCONPort=2\nX=y\n[Last]\nZ=1\n";
        let new = set_entries(
            old,
            Some("ServerSettings"),
            &entries(&[("RCONPort", "27020"), ("ServerAdminPassword", "pw")]),
        );
        assert_eq!(
            new,
            "[Other]\nRCONPort=1\n[ServerSettings]\nRCONPort=27020\nX=y\nServerAdminPassword=pw\n[Last]\nZ=1\n"
        );
        let fresh = set_entries("", Some("S"), &entries(&[("a", "1")]));
        assert_eq!(fresh, "[S]\na=1\n");
        let at_end = set_entries("[S]\nb=2\n", Some("S"), &entries(&[("a", "1")]));
        assert_eq!(at_end, "[S]\nb=2\na=1\n");
    }
}
