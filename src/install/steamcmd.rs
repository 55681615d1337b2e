//! Driving SteamCMD: its command line, the progress lines it prints, and its failures as
//! typed errors. One run is [`run_once`]; the caller holds the host-wide SteamCMD lock and
//! decides on retries ([`SteamError::retryable`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use utoipa::ToSchema;

/// Which platform's depots SteamCMD downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Windows builds (`+@sSteamCmdForcePlatformType windows`), e.g. ARK: Survival
    /// Ascended, which has no Linux server.
    Windows,
    /// Linux builds.
    Linux,
}

/// A Steam account login (`login USER PASSWORD [GUARDCODE]`, run from a [`LoginScript`]);
/// anonymous without one.
#[derive(Clone)]
pub struct Login {
    /// Account name (`install.steam_user`).
    pub user: String,
    /// Its password (stored sealed).
    pub password: String,
    /// A Steam Guard code (email or the mobile app's), when SteamCMD asked for one.
    pub guard_code: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"********")
            .field("guard_code", &self.guard_code.as_ref().map(|_| "********"))
            .finish()
    }
}

/// What to install where.
#[derive(Debug, Clone)]
pub struct SteamJob {
    /// The Steam account; anonymous when `None`.
    pub login: Option<Login>,
    /// The SteamCMD executable.
    pub steamcmd: PathBuf,
    /// Steam app id of the dedicated server.
    pub app: u32,
    /// Beta branch; `None` or `public` is the default branch.
    pub branch: Option<String>,
    /// Platform override.
    pub platform: Option<Platform>,
    /// Check every file (`validate`).
    pub validate: bool,
    /// `force_install_dir`.
    pub dir: PathBuf,
    /// Longest run before it is killed.
    pub timeout: Duration,
}

/// Download progress from one `Update state` line.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Progress {
    /// What SteamCMD is doing (`downloading`, `verifying install`, `preallocating`, …).
    pub phase: String,
    /// 0 to 100.
    pub percent: f64,
    /// Bytes done in this phase.
    pub bytes_done: u64,
    /// Bytes of this phase in total.
    pub bytes_total: u64,
}

/// Why SteamCMD did not install the app.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SteamError {
    /// The disk is full or not writable.
    #[error(
        "SteamCMD could not write the files ({0}); free disk space in the install folder and try again"
    )]
    DiskFull(String),
    /// The account does not own the app (anonymous login cannot install it).
    #[error(
        "SteamCMD says 'No subscription' for app {0}: the app id is wrong or it needs a Steam account that owns it"
    )]
    NoSubscription(u32),
    /// The login needs a Steam Guard code (or the one given was wrong).
    #[error(
        "SteamCMD needs a Steam Guard code to log in to the Steam account (install.steam_user): try again with the code Steam sent by email or shows in its mobile app (`--guard-code CODE`, or `guard_code` in the API); SteamCMD then remembers this machine"
    )]
    SteamGuard,
    /// The account name or password was refused.
    #[error(
        "Steam refused the login ({0}); check install.steam_user and store the right password with `warden ctl steam-password`"
    )]
    LoginFailed(String),
    /// Steam refused the login or downloads for a while.
    #[error("Steam rate-limited this machine; wait a few minutes and try again")]
    RateLimited,
    /// SteamCMD took longer than allowed, or Steam's servers did not answer.
    #[error(
        "SteamCMD timed out ({0}); check the network or raise install.steamcmd_timeout_seconds"
    )]
    Timeout(String),
    /// SteamCMD could not be run at all.
    #[error("cannot run SteamCMD at {0}: {1}; install it and set install.steamcmd in the config")]
    NotRunnable(String, String),
    /// Any other failure, with SteamCMD's last words.
    #[error("SteamCMD failed: {0}")]
    Failed(String),
}

impl SteamError {
    /// A stable code for the API and events.
    pub fn code(&self) -> &'static str {
        match self {
            SteamError::DiskFull(_) => "disk_full",
            SteamError::NoSubscription(_) => "no_subscription",
            SteamError::SteamGuard => "steam_guard",
            SteamError::LoginFailed(_) => "login_failed",
            SteamError::RateLimited => "rate_limited",
            SteamError::Timeout(_) => "timeout",
            SteamError::NotRunnable(..) => "steamcmd_missing",
            SteamError::Failed(_) => "steamcmd_failed",
        }
    }

    /// True when trying again later may succeed (the others need a person).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            SteamError::RateLimited | SteamError::Timeout(_) | SteamError::Failed(_)
        )
    }
}

/// The command line for one run. An account's login is not on it, since every user of
/// the machine can read a command line: `+runscript LOGIN_SCRIPT` stands in its place,
/// and that file (readable by warden's user only, see [`LoginScript`]) holds the `login`
/// command.
pub fn args(job: &SteamJob, login_script: Option<&Path>) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(p) = job.platform {
        a.push("+@sSteamCmdForcePlatformType".into());
        a.push(match p {
            Platform::Windows => "windows".into(),
            Platform::Linux => "linux".into(),
        });
    }
    a.push("+force_install_dir".into());
    a.push(job.dir.display().to_string());
    match login_script {
        Some(script) => {
            a.push("+runscript".into());
            a.push(script.display().to_string());
        }
        None => {
            a.push("+login".into());
            a.push("anonymous".into());
        }
    }
    a.push("+app_update".into());
    a.push(job.app.to_string());
    if let Some(b) = job.branch.as_deref().filter(|b| *b != "public") {
        a.push("-beta".into());
        a.push(b.into());
    }
    if job.validate {
        a.push("validate".into());
    }
    a.push("+quit".into());
    a
}

/// The SteamCMD script that logs in to an account: a private temporary file, deleted
/// when this is dropped (after the run).
pub struct LoginScript(tempfile::NamedTempFile);

impl LoginScript {
    /// Writes `login USER PASSWORD [CODE]` to a new file only warden's user can read
    /// (0600 on Unix; the user's own temporary folder on Windows). A part holding a
    /// double quote or a control character is refused: SteamCMD's script cannot carry it,
    /// and a line break would smuggle in another command.
    pub fn write(login: &Login) -> Result<LoginScript, SteamError> {
        let mut line = String::from("login");
        let code = login.guard_code.as_deref().filter(|c| !c.is_empty());
        for part in [
            Some(login.user.as_str()),
            Some(login.password.as_str()),
            code,
        ]
        .into_iter()
        .flatten()
        {
            if part.is_empty() || part.chars().any(|c| c == '"' || c.is_control()) {
                return Err(SteamError::LoginFailed(
                    "the account name, password or Steam Guard code is empty or holds a double quote or a control character, which SteamCMD cannot take".into(),
                ));
            }
            line.push(' ');
            if part.contains(char::is_whitespace) {
                line.push('"');
                line.push_str(part);
                line.push('"');
            } else {
                line.push_str(part);
            }
        }
        line.push('\n');
        let mut file = tempfile::Builder::new()
            .prefix("warden-steam-login-")
            .tempfile()
            .map_err(|e| SteamError::Failed(format!("cannot write the login script: {e}")))?;
        std::io::Write::write_all(&mut file, line.as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| SteamError::Failed(format!("cannot write the login script: {e}")))?;
        Ok(LoginScript(file))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// What one output line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// An `Update state (0x61) downloading, progress: 12.34 (123 / 1000)` line.
    Progress(Progress),
    /// `Success! App 'N' fully installed.`
    Success,
    /// A failure SteamCMD reported.
    Error(SteamError),
    /// Anything else.
    Other,
}

fn progress_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"Update state \(0x[0-9a-fA-F]+\) ([A-Za-z ,]+?), progress: ([0-9]+(?:\.[0-9]+)?) \(([0-9]+) / ([0-9]+)\)",
        )
        .ok()
    })
    .as_ref()
}

/// Reads one line of SteamCMD's output for app `app`.
pub fn parse_line(line: &str, app: u32) -> Line {
    let l = line.trim();
    if let Some(c) = progress_re().and_then(|re| re.captures(l)) {
        let num = |i: usize| c.get(i).map_or("", |m| m.as_str());
        return Line::Progress(Progress {
            phase: num(1).trim().to_string(),
            percent: num(2).parse().unwrap_or(0.0),
            bytes_done: num(3).parse().unwrap_or(0),
            bytes_total: num(4).parse().unwrap_or(0),
        });
    }
    if l.starts_with("Success! App") && l.contains("fully installed") {
        return Line::Success;
    }
    let lower = l.to_ascii_lowercase();
    if lower.contains("no subscription") {
        return Line::Error(SteamError::NoSubscription(app));
    }
    // App state 0x202 after an update job is SteamCMD's way of saying the disk is full.
    if lower.contains("state is 0x202")
        || lower.contains("disk write failure")
        || lower.contains("not enough disk space")
        || lower.contains("no space left")
    {
        return Line::Error(SteamError::DiskFull(l.to_string()));
    }
    if lower.contains("steam guard")
        || lower.contains("two-factor")
        || lower.contains("invalid login auth code")
    {
        return Line::Error(SteamError::SteamGuard);
    }
    if lower.contains("invalid password") || lower.contains("account logon denied") {
        return Line::Error(SteamError::LoginFailed(l.to_string()));
    }
    if lower.contains("rate limit") {
        return Line::Error(SteamError::RateLimited);
    }
    if lower.starts_with("error!") && lower.contains("timeout") {
        return Line::Error(SteamError::Timeout(l.to_string()));
    }
    if lower.starts_with("error!") || lower.starts_with("failed") {
        return Line::Error(SteamError::Failed(l.to_string()));
    }
    Line::Other
}

/// Sends the lines of `r` (split at `\n` and `\r`, as SteamCMD redraws progress) to `tx`.
async fn pump(mut r: impl AsyncRead + Unpin, tx: mpsc::Sender<String>) {
    let mut buf = vec![0u8; 8192];
    let mut line = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in buf.iter().take(n) {
            if b == b'\n' || b == b'\r' {
                if !line.is_empty() {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    if tx.send(text).await.is_err() {
                        return;
                    }
                }
            } else if line.len() < 16 * 1024 {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(String::from_utf8_lossy(&line).into_owned()).await;
    }
}

/// Runs SteamCMD once; `on_progress` sees every progress line. Success needs SteamCMD's
/// own success line: it often exits 0 after a failure.
pub async fn run_once(
    job: &SteamJob,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), SteamError> {
    let script = job.login.as_ref().map(LoginScript::write).transpose()?;
    let mut cmd = tokio::process::Command::new(&job.steamcmd);
    cmd.args(args(job, script.as_ref().map(LoginScript::path)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(parent) = job.steamcmd.parent().filter(|p| p.is_dir()) {
        cmd.current_dir(parent);
    }
    crate::os::prepare_command(&mut cmd);
    let not_runnable = |e: std::io::Error| {
        SteamError::NotRunnable(job.steamcmd.display().to_string(), e.to_string())
    };
    let output = crate::os::Output::capture(&mut cmd)
        .await
        .map_err(not_runnable)?;
    let mut child = cmd.spawn().map_err(not_runnable)?;
    // Closes warden's copies of the child's pipe ends (see `os::Output`).
    drop(cmd);
    let pid = child.id();
    if let Err(e) = crate::os::attach_child(&child) {
        // On Windows the child is still suspended: it must not linger unseen.
        let _ = child.start_kill();
        return Err(SteamError::NotRunnable(
            job.steamcmd.display().to_string(),
            e.to_string(),
        ));
    }
    let (tx, mut rx) = mpsc::channel(256);
    for stream in output.readers(&mut child).into_iter().flatten() {
        tokio::spawn(pump(stream, tx.clone()));
    }
    drop(tx);
    let read = async {
        let mut outcome: Option<Result<(), SteamError>> = None;
        let mut last = String::new();
        while let Some(line) = rx.recv().await {
            match parse_line(&line, job.app) {
                Line::Progress(p) => on_progress(p),
                Line::Success => outcome = Some(Ok(())),
                Line::Error(e) => {
                    if outcome.is_none() {
                        outcome = Some(Err(e));
                    }
                }
                Line::Other => {}
            }
            if !line.trim().is_empty() {
                last = line.trim().to_string();
            }
        }
        let status = child.wait().await;
        match outcome {
            Some(r) => r,
            None => Err(SteamError::Failed(match status {
                Ok(s) if s.success() => format!(
                    "it ended without saying app {} was installed (last line: {last:?})",
                    job.app
                ),
                Ok(s) => format!("it exited with {s} (last line: {last:?})"),
                Err(e) => format!("cannot wait for it: {e}"),
            })),
        }
    };
    let result = match tokio::time::timeout(job.timeout, read).await {
        Ok(r) => r,
        Err(_) => {
            if let Some(pid) = pid {
                let _ = crate::os::kill_group(pid);
            }
            Err(SteamError::Timeout(format!(
                "no result after {} s",
                job.timeout.as_secs()
            )))
        }
    };
    // steamcmd.sh runs the real client as a child: nothing of the run may outlive it.
    if let Some(pid) = pid {
        crate::os::drain_group(pid, Duration::from_secs(2)).await;
    }
    result
}

/// The command line that prints the app info of `app` after refreshing it.
pub fn info_args(app: u32, platform: Option<Platform>) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(p) = platform {
        a.push("+@sSteamCmdForcePlatformType".into());
        a.push(match p {
            Platform::Windows => "windows".into(),
            Platform::Linux => "linux".into(),
        });
    }
    for s in [
        "+login",
        "anonymous",
        "+app_info_update",
        "1",
        "+app_info_print",
    ] {
        a.push(s.into());
    }
    a.push(app.to_string());
    a.push("+quit".into());
    a
}

/// Largest app info output kept (real ones are tens of KiB).
const MAX_INFO_OUTPUT: usize = 4 * 1024 * 1024;

/// The latest build id of `branch` (`public` when `None`) of `app`, from
/// `+app_info_update 1 +app_info_print APP` after removing SteamCMD's cached app info
/// (`appcache/appinfo.vdf` beside it), which otherwise answers with an old build.
pub async fn latest_build(
    steamcmd: &Path,
    app: u32,
    branch: Option<&str>,
    platform: Option<Platform>,
    timeout: Duration,
) -> Result<String, SteamError> {
    if let Some(parent) = steamcmd.parent() {
        let cache = parent.join("appcache").join("appinfo.vdf");
        if let Err(e) = tokio::fs::remove_file(&cache).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %cache.display(), error = %e, "cannot clear SteamCMD's cached app info");
        }
    }
    let mut cmd = tokio::process::Command::new(steamcmd);
    cmd.args(info_args(app, platform))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(parent) = steamcmd.parent().filter(|p| p.is_dir()) {
        cmd.current_dir(parent);
    }
    crate::os::prepare_command(&mut cmd);
    let not_runnable =
        |e: std::io::Error| SteamError::NotRunnable(steamcmd.display().to_string(), e.to_string());
    let output = crate::os::Output::capture(&mut cmd)
        .await
        .map_err(not_runnable)?;
    let mut child = cmd.spawn().map_err(not_runnable)?;
    // Closes warden's copies of the child's pipe ends (see `os::Output`).
    drop(cmd);
    let pid = child.id();
    if let Err(e) = crate::os::attach_child(&child) {
        let _ = child.start_kill();
        return Err(not_runnable(e));
    }
    let (tx, mut rx) = mpsc::channel(256);
    for stream in output.readers(&mut child).into_iter().flatten() {
        tokio::spawn(pump(stream, tx.clone()));
    }
    drop(tx);
    let read = async {
        let mut text = String::new();
        let mut failure = None;
        while let Some(line) = rx.recv().await {
            if let Line::Error(e) = parse_line(&line, app)
                && failure.is_none()
            {
                failure = Some(e);
            }
            if text.len() + line.len() < MAX_INFO_OUTPUT {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let _ = child.wait().await;
        (text, failure)
    };
    let result = tokio::time::timeout(timeout, read).await;
    if let Some(pid) = pid {
        if result.is_err() {
            let _ = crate::os::kill_group(pid);
        }
        crate::os::drain_group(pid, Duration::from_secs(2)).await;
    }
    let (text, failure) = result
        .map_err(|_| SteamError::Timeout(format!("no app info after {} s", timeout.as_secs())))?;
    let branch = branch.unwrap_or("public");
    match (super::vdf::app_info_build_id(&text, app, branch), failure) {
        (Ok(b), _) => Ok(b),
        (Err(_), Some(f)) => Err(f),
        (Err(e), None) => Err(SteamError::Failed(format!(
            "cannot read the latest build of app {app} branch {branch}: {e}"
        ))),
    }
}

/// Where SteamCMD leaves the manifest of `app` installed into `dir`.
pub fn manifest_path(dir: &Path, app: u32) -> PathBuf {
    dir.join("steamapps").join(format!("appmanifest_{app}.acf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> SteamJob {
        SteamJob {
            login: None,
            steamcmd: "/opt/steamcmd/steamcmd.sh".into(),
            app: 2430930,
            branch: Some("experimental".into()),
            platform: Some(Platform::Windows),
            validate: true,
            dir: "/srv/ark".into(),
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_command_line_puts_the_platform_before_the_login() {
        assert_eq!(
            args(&job(), None).join(" "),
            "+@sSteamCmdForcePlatformType windows +force_install_dir /srv/ark +login anonymous \
             +app_update 2430930 -beta experimental validate +quit"
        );
        let plain = SteamJob {
            branch: Some("public".into()),
            platform: None,
            validate: false,
            ..job()
        };
        assert_eq!(
            args(&plain, None).join(" "),
            "+force_install_dir /srv/ark +login anonymous +app_update 2430930 +quit"
        );
        let mut with_account = job();
        with_account.platform = None;
        with_account.login = Some(Login {
            user: "alice".into(),
            password: "pw".into(),
            guard_code: Some("X7K2P".into()),
        });
        assert_eq!(
            args(&with_account, Some(Path::new("/tmp/login"))).join(" "),
            "+force_install_dir /srv/ark +runscript /tmp/login \
             +app_update 2430930 -beta experimental validate +quit",
            "an account's login is in the script, not on the command line"
        );
        assert!(
            !format!("{with_account:?}").contains("pw\""),
            "the password is not logged"
        );
    }

    #[test]
    fn the_login_script_is_private_quoted_and_gone_after_use() {
        let login = |password: &str, code: Option<&str>| Login {
            user: "alice".into(),
            password: password.into(),
            guard_code: code.map(Into::into),
        };
        let script = LoginScript::write(&login("correct horse", Some("X7K2P"))).unwrap();
        let path = script.path().to_path_buf();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "login alice \"correct horse\" X7K2P\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only warden's user reads it");
        }
        drop(script);
        assert!(!path.exists(), "deleted after the run");
        let plain = LoginScript::write(&login("pw", None)).unwrap();
        assert_eq!(
            std::fs::read_to_string(plain.path()).unwrap(),
            "login alice pw\n"
        );
        // A line break would start another SteamCMD command; a quote would end the part.
        for bad in ["pw\n+quit", "p\"w", ""] {
            assert_eq!(
                LoginScript::write(&login(bad, None))
                    .err()
                    .map(|e| e.code()),
                Some("login_failed"),
                "{bad:?}"
            );
        }
        assert!(LoginScript::write(&login("pw", Some("X7\nK2P"))).is_err());
    }

    #[test]
    fn progress_lines_give_phase_percent_and_bytes() {
        let l = " Update state (0x61) downloading, progress: 12.34 (123 / 1000)";
        assert_eq!(
            parse_line(l, 1),
            Line::Progress(Progress {
                phase: "downloading".into(),
                percent: 12.34,
                bytes_done: 123,
                bytes_total: 1000,
            })
        );
        let l = "Update state (0x81) verifying update, progress: 100.00 (2894925011 / 2894925011)";
        let Line::Progress(p) = parse_line(l, 1) else {
            panic!("progress")
        };
        assert_eq!(
            (p.phase.as_str(), p.bytes_done),
            ("verifying update", 2894925011)
        );
        let l = "Update state (0x5) verifying install, progress: 0 (0 / 0)";
        assert!(matches!(parse_line(l, 1), Line::Progress(_)));
    }

    #[test]
    fn outcomes_are_typed() {
        assert_eq!(
            parse_line("Success! App '896660' fully installed.", 896660),
            Line::Success
        );
        assert_eq!(
            parse_line("ERROR! Failed to install app '9' (No subscription)", 9),
            Line::Error(SteamError::NoSubscription(9))
        );
        let disk = parse_line("Error! App '9' state is 0x202 after update job.", 9);
        assert!(matches!(disk, Line::Error(SteamError::DiskFull(_))));
        let other = parse_line("Error! App '9' state is 0x6 after update job.", 9);
        assert!(matches!(other, Line::Error(SteamError::Failed(_))));
        let disk = parse_line("ERROR! Failed to install app '9' (Disk write failure)", 9);
        assert!(matches!(disk, Line::Error(SteamError::DiskFull(_))));
        assert_eq!(
            parse_line("FAILED login with result code Rate Limit Exceeded", 9),
            Line::Error(SteamError::RateLimited)
        );
        assert_eq!(
            parse_line(
                "This computer has not been authenticated for your account using Steam Guard.",
                9
            ),
            Line::Error(SteamError::SteamGuard)
        );
        assert!(matches!(
            parse_line("ERROR! Timeout downloading item 9", 9),
            Line::Error(SteamError::Timeout(_))
        ));
        assert_eq!(
            parse_line("Steam Guard code:FAILED (Account Logon Denied)", 9),
            Line::Error(SteamError::SteamGuard)
        );
        assert_eq!(
            parse_line("FAILED login with result code Two-factor code mismatch", 9),
            Line::Error(SteamError::SteamGuard)
        );
        assert!(matches!(
            parse_line("FAILED login with result code Invalid Password", 9),
            Line::Error(SteamError::LoginFailed(_))
        ));
        assert!(!SteamError::LoginFailed(String::new()).retryable());
        assert_eq!(parse_line("Loading Steam API...OK", 9), Line::Other);
        for (e, retry) in [
            (SteamError::DiskFull(String::new()), false),
            (SteamError::NoSubscription(1), false),
            (SteamError::SteamGuard, false),
            (SteamError::RateLimited, true),
            (SteamError::Timeout(String::new()), true),
        ] {
            assert_eq!(e.retryable(), retry, "{e}");
        }
    }
}
