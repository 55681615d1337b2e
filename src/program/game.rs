//! The `game` section of a program: which game profile it follows, how warden reaches the
//! server (RCON, a status query, the Palworld REST API), and its readiness, liveness, stop
//! and broadcast settings.
//!
//! Profiles fill in what the user leaves out. The `effective_*` methods are the one place
//! that applies those defaults, so the supervisor (readiness gate) and the `games` service
//! (checks, stop steps, broadcasts) always agree. Data and validation only: every network
//! exchange lives in `games`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;

/// What the API shows instead of a stored password; sent back on update, it means "keep
/// the stored one".
pub const MASK: &str = "********";

/// Longest readiness pattern accepted.
const MAX_PATTERN: usize = 1000;
/// Longest RCON command or stdin line in stop steps and broadcast templates (the RCON
/// request limit).
const MAX_LINE: usize = 4000;
/// Most stop steps in one sequence.
const MAX_STOP_STEPS: usize = 10;

/// A password. Serialized as-is (the store needs it), never shown by `Debug`; the API
/// replaces it with [`MASK`] through [`GameSpec::masked`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(transparent)]
#[schema(value_type = String, example = "********")]
pub struct Secret(String);

impl Secret {
    /// The real value, for the protocol client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when this is the mask the API shows, not a real password.
    pub fn is_mask(&self) -> bool {
        self.0 == MASK
    }

    pub(crate) fn mask(&mut self) {
        if !self.0.is_empty() {
            self.0 = MASK.to_string();
        }
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

/// Which kind of game server this is; decides the defaults of everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum GameProfile {
    /// Minecraft Java: ready at `Done (`, stops with `save-all` + `stop`, broadcasts `say`.
    Minecraft,
    /// Palworld: REST API for readiness, players, save + shutdown and announcements.
    Palworld,
    /// Source engine games (CS2, Rust, ARK…): RCON `quit` to stop, `say` to broadcast.
    Source,
    /// Valheim: ready at `Game server connected`; stop it with `stop.signal = "SIGINT"`.
    Valheim,
    /// Nothing assumed (the default): only what is configured explicitly.
    #[default]
    Generic,
}

impl GameProfile {
    /// Every profile, in the order forms list them.
    pub const ALL: [GameProfile; 5] = [
        GameProfile::Minecraft,
        GameProfile::Palworld,
        GameProfile::Source,
        GameProfile::Valheim,
        GameProfile::Generic,
    ];

    /// A starting point for a new program of this profile: the connections its servers
    /// usually offer on their usual ports (passwords left empty for the user to fill in).
    /// Readiness, stop steps and broadcast stay absent, so the profile's defaults apply.
    pub fn template(self) -> GameSpec {
        let rcon = |port| RconSpec {
            host: localhost(),
            port,
            password: Secret::default(),
        };
        let query = |kind, port| QuerySpec {
            kind,
            host: localhost(),
            port: Some(port),
            url: None,
            expect_status: None,
            body_contains: None,
        };
        let (rcon, query, rest) = match self {
            GameProfile::Minecraft => (Some(rcon(25575)), Some(query(QueryKind::Slp, 25565)), None),
            GameProfile::Palworld => (
                None,
                None,
                Some(RestSpec {
                    host: localhost(),
                    port: 8212,
                    password: Secret::default(),
                }),
            ),
            GameProfile::Source => (Some(rcon(27015)), Some(query(QueryKind::A2s, 27015)), None),
            GameProfile::Valheim => (None, Some(query(QueryKind::A2s, 2457)), None),
            GameProfile::Generic => (None, None, None),
        };
        GameSpec {
            profile: self,
            rcon,
            query,
            rest,
            readiness: None,
            liveness: None,
            players_interval_seconds: default_players_interval(),
            stop_steps: None,
            broadcast: None,
        }
    }

    /// The signal that stops this profile's servers cleanly when no stop step applies
    /// (Valheim saves the world on SIGINT, not on SIGTERM).
    pub fn stop_signal(self) -> &'static str {
        match self {
            GameProfile::Valheim => "SIGINT",
            _ => "SIGTERM",
        }
    }

    /// The RCON command that saves the world now, where the game has one.
    pub fn save_rcon(self) -> Option<&'static str> {
        match self {
            GameProfile::Minecraft => Some("save-all"),
            GameProfile::Palworld => Some("Save"),
            GameProfile::Source | GameProfile::Valheim | GameProfile::Generic => None,
        }
    }

    /// The console (stdin) line that saves the world now, where the game reads one.
    pub fn save_stdin(self) -> Option<&'static str> {
        match self {
            GameProfile::Minecraft => Some("save-all"),
            _ => None,
        }
    }
}

/// How to reach the server's RCON console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RconSpec {
    /// Host of the RCON listener.
    #[serde(default = "localhost")]
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// RCON password; shown as `********`, send `********` back to keep it.
    pub password: Secret,
}

impl RconSpec {
    /// `host:port` of the RCON listener.
    pub fn addr(&self) -> String {
        format!("{}:{}", host_for_url(&self.host), self.port)
    }
}

/// How to reach a Palworld-style REST API (HTTP basic auth, user `admin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestSpec {
    /// Host of the REST API.
    #[serde(default = "localhost")]
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Admin password; shown as `********`, send `********` back to keep it.
    pub password: Secret,
}

impl RestSpec {
    /// The API's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", host_for_url(&self.host), self.port)
    }
}

/// Protocol of the status query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// Minecraft Server List Ping (TCP): players online, max, sample names.
    Slp,
    /// Steam A2S_INFO/A2S_PLAYER (UDP): players, max, names.
    A2s,
    /// The Palworld REST API of the `rest` section: players, max, names.
    Palworld,
    /// An HTTP GET (status, optional body match); gives no player count.
    Http,
    /// A TCP connect; gives no player count.
    Tcp,
}

/// The status query: answers readiness and liveness checks, and gives player counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// `slp`, `a2s`, `palworld`, `http` or `tcp`.
    pub kind: QueryKind,
    /// Host for `slp`, `a2s` and `tcp`.
    #[serde(default = "localhost")]
    pub host: String,
    /// Port for `slp`, `a2s` and `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// URL for `http` (http:// or https://).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For `http`: the expected status (any 2xx when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// For `http`: text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

impl QuerySpec {
    /// `host:port` for socket-based kinds.
    pub fn addr(&self) -> Option<String> {
        self.port
            .map(|p| format!("{}:{p}", host_for_url(&self.host)))
    }

    /// True when this kind reports players.
    pub fn gives_players(&self) -> bool {
        matches!(
            self.kind,
            QueryKind::Slp | QueryKind::A2s | QueryKind::Palworld
        )
    }
}

/// How warden decides that a started program is ready (`starting` → `running`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// A console line matching this regular expression, e.g. `{"log_line": "Done \\("}`.
    LogLine(String),
    /// The status query (or the REST API for `palworld`) answers: `"query"`.
    Query,
    /// No readiness check, `start_seconds` alone decides: `"none"`.
    #[serde(rename = "none")]
    Off,
}

/// What a liveness check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LivenessCheck {
    /// The status query (the default).
    #[default]
    Query,
    /// An RCON login and a harmless command.
    Rcon,
    /// The REST API's info endpoint.
    Rest,
}

/// Liveness: after `failures` consecutive failed checks `interval_seconds` apart, the
/// program is unhealthy (an event) and, with `restart`, restarted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LivenessSpec {
    /// `query` (default), `rcon` or `rest`.
    #[serde(default)]
    pub check: LivenessCheck,
    /// Seconds between checks (default 30).
    #[serde(default = "default_liveness_interval")]
    pub interval_seconds: u64,
    /// Consecutive failures that make the program unhealthy (default 3).
    #[serde(default = "default_liveness_failures")]
    pub failures: u32,
    /// Restart the program when it becomes unhealthy.
    #[serde(default)]
    pub restart: bool,
}

fn default_liveness_interval() -> u64 {
    30
}

fn default_liveness_failures() -> u32 {
    3
}

/// One step of a game's graceful stop, run by the `games` service before the fallback
/// (`stop.stdin` or `stop.signal`), which follows only if a step fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopStep {
    /// Run an RCON command: `{"rcon": "save-all"}`.
    Rcon(String),
    /// Write a line to stdin: `{"stdin": "stop"}`.
    Stdin(String),
    /// Save through the REST API: `"rest_save"`.
    RestSave,
    /// Shut down through the REST API: `{"rest_shutdown": {"message": "…", "wait_seconds": 1}}`.
    RestShutdown {
        /// Shown to players.
        #[serde(default = "default_shutdown_message")]
        message: String,
        /// Seconds the server waits before shutting down.
        #[serde(default = "default_shutdown_wait")]
        wait_seconds: u32,
    },
}

fn default_shutdown_message() -> String {
    "Server is shutting down".to_string()
}

fn default_shutdown_wait() -> u32 {
    1
}

/// How a message reaches the players.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Broadcast {
    /// An RCON command; `{message}` is replaced: `{"rcon": "say {message}"}`.
    Rcon(String),
    /// A stdin line; `{message}` is replaced: `{"stdin": "say {message}"}`.
    Stdin(String),
    /// The REST API's announce endpoint: `"rest_announce"`.
    RestAnnounce,
    /// Broadcasting is not possible: `"none"`.
    #[serde(rename = "none")]
    Off,
}

/// The game section of a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GameSpec {
    /// `minecraft`, `palworld`, `source`, `valheim` or `generic` (default).
    #[serde(default)]
    pub profile: GameProfile,
    /// RCON console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcon: Option<RconSpec>,
    /// Status query (players, readiness, liveness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QuerySpec>,
    /// Palworld-style REST API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<RestSpec>,
    /// Readiness check; the profile's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// Liveness check; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessSpec>,
    /// Seconds between player-count samples (default 30; only with a query that reports
    /// players).
    #[serde(default = "default_players_interval")]
    pub players_interval_seconds: u64,
    /// Graceful stop steps; the profile's default when absent, `[]` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_steps: Option<Vec<StopStep>>,
    /// How to broadcast; the profile's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Broadcast>,
}

fn default_players_interval() -> u64 {
    30
}

fn localhost() -> String {
    "127.0.0.1".to_string()
}

/// Brackets IPv6 literals for use in `host:port`.
fn host_for_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl GameSpec {
    /// The query in effect: the configured one, or for `palworld` with a REST API, the
    /// REST API.
    pub fn effective_query(&self) -> Option<QuerySpec> {
        if let Some(q) = &self.query {
            return Some(q.clone());
        }
        match (self.profile, &self.rest) {
            (GameProfile::Palworld, Some(_)) => Some(QuerySpec {
                kind: QueryKind::Palworld,
                host: localhost(),
                port: None,
                url: None,
                expect_status: None,
                body_contains: None,
            }),
            _ => None,
        }
    }

    /// The query that gives player counts, if any.
    pub fn players_query(&self) -> Option<QuerySpec> {
        self.effective_query().filter(QuerySpec::gives_players)
    }

    /// The readiness check in effect (`None`: `start_seconds` alone decides).
    pub fn effective_readiness(&self) -> Option<Readiness> {
        match &self.readiness {
            Some(Readiness::Off) => None,
            Some(r) => Some(r.clone()),
            None => match self.profile {
                GameProfile::Minecraft => Some(Readiness::LogLine(r"Done \(".to_string())),
                GameProfile::Valheim => {
                    Some(Readiness::LogLine("Game server connected".to_string()))
                }
                GameProfile::Palworld | GameProfile::Source => {
                    self.effective_query().map(|_| Readiness::Query)
                }
                GameProfile::Generic => None,
            },
        }
    }

    /// The graceful stop steps in effect (empty: `stop.stdin` or `stop.signal` only).
    pub fn effective_stop_steps(&self) -> Vec<StopStep> {
        if let Some(steps) = &self.stop_steps {
            return steps.clone();
        }
        let rcon = self.rcon.is_some();
        match self.profile {
            GameProfile::Minecraft if rcon => vec![
                StopStep::Rcon("save-all".into()),
                StopStep::Rcon("stop".into()),
            ],
            GameProfile::Minecraft => vec![
                StopStep::Stdin("save-all".into()),
                StopStep::Stdin("stop".into()),
            ],
            GameProfile::Palworld if self.rest.is_some() => vec![
                StopStep::RestSave,
                StopStep::RestShutdown {
                    message: default_shutdown_message(),
                    wait_seconds: default_shutdown_wait(),
                },
            ],
            GameProfile::Source if rcon => vec![StopStep::Rcon("quit".into())],
            _ => Vec::new(),
        }
    }

    /// How broadcasts are sent (`None`: not possible for this program).
    pub fn effective_broadcast(&self) -> Option<Broadcast> {
        match &self.broadcast {
            Some(Broadcast::Off) => None,
            Some(b) => Some(b.clone()),
            None => {
                let rcon = self.rcon.is_some();
                match self.profile {
                    GameProfile::Palworld if self.rest.is_some() => Some(Broadcast::RestAnnounce),
                    GameProfile::Palworld if rcon => {
                        Some(Broadcast::Rcon("Broadcast {message}".into()))
                    }
                    GameProfile::Minecraft | GameProfile::Source | GameProfile::Generic if rcon => {
                        Some(Broadcast::Rcon("say {message}".into()))
                    }
                    GameProfile::Minecraft => Some(Broadcast::Stdin("say {message}".into())),
                    _ => None,
                }
            }
        }
    }

    /// A copy safe to show: every stored password replaced by [`MASK`].
    pub fn masked(&self) -> GameSpec {
        let mut g = self.clone();
        if let Some(r) = &mut g.rcon {
            r.password.mask();
        }
        if let Some(r) = &mut g.rest {
            r.password.mask();
        }
        g
    }

    /// Replaces masked passwords by the ones stored in `old` (an update that sends back
    /// what the API showed keeps the secrets).
    pub fn keep_secrets(&mut self, old: Option<&GameSpec>) {
        if let (Some(new), Some(old)) = (&mut self.rcon, old.and_then(|o| o.rcon.as_ref()))
            && new.password.is_mask()
        {
            new.password = old.password.clone();
        }
        if let (Some(new), Some(old)) = (&mut self.rest, old.and_then(|o| o.rest.as_ref()))
            && new.password.is_mask()
        {
            new.password = old.password.clone();
        }
    }

    /// Adds every problem of this section to `errs`, with fields under `game.`.
    pub fn validate(&self, errs: &mut Vec<FieldError>) {
        let mut err = |e: FieldError| errs.push(e.prefixed("game."));
        let secret = |s: &Secret, field: &str, err: &mut dyn FnMut(FieldError)| {
            if s.is_mask() {
                err(FieldError::invalid(
                    field,
                    MASK,
                    "it stands for the stored password, but none is stored; send the real password",
                ));
            } else if s.expose().is_empty() {
                err(FieldError::required(field));
            } else if s.expose().len() > MAX_LINE {
                err(FieldError::too_long(field, MAX_LINE));
            } else if s.expose().contains(['\0', '\n', '\r']) {
                err(FieldError::control_chars(field));
            }
        };
        if let Some(r) = &self.rcon {
            check_host(&r.host, "rcon.host", &mut err);
            if r.port == 0 {
                err(FieldError::out_of_range("rcon.port", 1, 65535));
            }
            secret(&r.password, "rcon.password", &mut err);
        }
        if let Some(r) = &self.rest {
            check_host(&r.host, "rest.host", &mut err);
            if r.port == 0 {
                err(FieldError::out_of_range("rest.port", 1, 65535));
            }
            secret(&r.password, "rest.password", &mut err);
        }
        if let Some(q) = &self.query {
            match q.kind {
                QueryKind::Slp | QueryKind::A2s | QueryKind::Tcp => {
                    check_host(&q.host, "query.host", &mut err);
                    if q.port.unwrap_or(0) == 0 {
                        err(FieldError::out_of_range("query.port", 1, 65535));
                    }
                }
                QueryKind::Http => match &q.url {
                    Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                        if u.contains('@') {
                            err(FieldError::invalid(
                                "query.url",
                                u,
                                "it must not contain credentials (they would be shown and logged)",
                            ));
                        }
                    }
                    Some(u) => err(FieldError::invalid_url("query.url", u)),
                    None => err(FieldError::required("query.url")),
                },
                QueryKind::Palworld => {
                    if self.rest.is_none() {
                        err(FieldError::needs("query.kind", "game.rest"));
                    }
                }
            }
            if q.kind != QueryKind::Http && (q.expect_status.is_some() || q.body_contains.is_some())
            {
                err(FieldError::conflicts_with("query", "query.kind"));
            }
        }
        let query = self.effective_query().is_some();
        match &self.readiness {
            Some(Readiness::LogLine(p)) => {
                if p.is_empty() {
                    err(FieldError::required("readiness.log_line"));
                } else if p.len() > MAX_PATTERN {
                    err(FieldError::too_long("readiness.log_line", MAX_PATTERN));
                } else if let Err(e) = regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                    err(FieldError::invalid(
                        "readiness.log_line",
                        p,
                        &format!("not a regular expression: {e}"),
                    ));
                }
            }
            Some(Readiness::Query) if !query => err(FieldError::needs("readiness", "game.query")),
            _ => {}
        }
        if let Some(l) = &self.liveness {
            if !(1..=3600).contains(&l.interval_seconds) {
                err(FieldError::out_of_range(
                    "liveness.interval_seconds",
                    1,
                    3600,
                ));
            }
            if !(1..=100).contains(&l.failures) {
                err(FieldError::out_of_range("liveness.failures", 1, 100));
            }
            let missing = match l.check {
                LivenessCheck::Query if !query => Some("game.query"),
                LivenessCheck::Rcon if self.rcon.is_none() => Some("game.rcon"),
                LivenessCheck::Rest if self.rest.is_none() => Some("game.rest"),
                _ => None,
            };
            if let Some(what) = missing {
                err(FieldError::needs("liveness.check", what));
            }
        }
        if !(1..=86_400).contains(&self.players_interval_seconds) {
            err(FieldError::out_of_range(
                "players_interval_seconds",
                1,
                86_400,
            ));
        }
        if let Some(steps) = &self.stop_steps {
            if steps.len() > MAX_STOP_STEPS {
                err(FieldError::too_many("stop_steps", MAX_STOP_STEPS));
            }
            for (i, s) in steps.iter().enumerate() {
                let field = format!("stop_steps[{i}]");
                match s {
                    StopStep::Rcon(c) => {
                        if self.rcon.is_none() {
                            err(FieldError::needs(field.as_str(), "game.rcon"));
                        }
                        check_line(c, &field, &mut err);
                    }
                    StopStep::Stdin(c) => check_line(c, &field, &mut err),
                    StopStep::RestSave | StopStep::RestShutdown { .. } => {
                        if self.rest.is_none() {
                            err(FieldError::needs(field.as_str(), "game.rest"));
                        }
                    }
                }
            }
        }
        match &self.broadcast {
            Some(Broadcast::Rcon(t)) => {
                if self.rcon.is_none() {
                    err(FieldError::needs("broadcast", "game.rcon"));
                }
                check_template(t, &mut err);
            }
            Some(Broadcast::Stdin(t)) => check_template(t, &mut err),
            Some(Broadcast::RestAnnounce) if self.rest.is_none() => {
                err(FieldError::needs("broadcast", "game.rest"));
            }
            _ => {}
        }
    }
}

fn check_host(host: &str, field: &str, err: &mut dyn FnMut(FieldError)) {
    if host.is_empty() || host.len() > 253 || host.contains(['/', '@', ' ', '\0']) {
        err(FieldError::invalid(
            field,
            host,
            "give a host name or IP address",
        ));
    }
}

fn check_line(line: &str, field: &str, err: &mut dyn FnMut(FieldError)) {
    if line.trim().is_empty() {
        err(FieldError::required(field));
    } else if line.len() > MAX_LINE {
        err(FieldError::too_long(field, MAX_LINE));
    } else if line.contains(['\0', '\n', '\r']) {
        err(FieldError::control_chars(field));
    }
}

fn check_template(template: &str, err: &mut dyn FnMut(FieldError)) {
    check_line(template, "broadcast", err);
    if !template.contains("{message}") {
        err(FieldError::invalid(
            "broadcast",
            template,
            "the template must contain {message}, e.g. \"say {message}\"",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_templates_are_valid_once_passwords_are_set() {
        for profile in GameProfile::ALL {
            let mut g = profile.template();
            if let Some(r) = &mut g.rcon {
                r.password = Secret("pw".into());
            }
            if let Some(r) = &mut g.rest {
                r.password = Secret("pw".into());
            }
            let mut errs = Vec::new();
            g.validate(&mut errs);
            assert!(errs.is_empty(), "{profile:?}: {errs:?}");
            assert_eq!(g.profile, profile);
        }
        // The template leaves the profile's own defaults in charge.
        let mc = GameProfile::Minecraft.template();
        assert_eq!(
            mc.effective_stop_steps(),
            vec![
                StopStep::Rcon("save-all".into()),
                StopStep::Rcon("stop".into())
            ]
        );
    }

    fn game(json: &str) -> GameSpec {
        serde_json::from_str(json).expect("parses")
    }

    fn problems(g: &GameSpec) -> Vec<String> {
        let mut errs = Vec::new();
        g.validate(&mut errs);
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn minecraft_defaults_follow_the_configured_channels() {
        let g = game(r#"{"profile":"minecraft"}"#);
        assert_eq!(
            g.effective_readiness(),
            Some(Readiness::LogLine(r"Done \(".into()))
        );
        assert_eq!(
            g.effective_stop_steps(),
            vec![
                StopStep::Stdin("save-all".into()),
                StopStep::Stdin("stop".into())
            ]
        );
        assert_eq!(
            g.effective_broadcast(),
            Some(Broadcast::Stdin("say {message}".into()))
        );
        assert!(g.players_query().is_none());
        let g = game(
            r#"{"profile":"minecraft","rcon":{"port":25575,"password":"pw"},"query":{"kind":"slp","port":25565}}"#,
        );
        assert_eq!(g.effective_stop_steps()[1], StopStep::Rcon("stop".into()));
        assert_eq!(
            g.effective_broadcast(),
            Some(Broadcast::Rcon("say {message}".into()))
        );
        assert_eq!(
            g.players_query().map(|q| q.addr()),
            Some(Some("127.0.0.1:25565".into()))
        );
        assert!(problems(&g).is_empty(), "{:?}", problems(&g));
    }

    #[test]
    fn palworld_uses_its_rest_api_for_everything() {
        let g = game(r#"{"profile":"palworld","rest":{"port":8212,"password":"pw"}}"#);
        assert_eq!(g.effective_readiness(), Some(Readiness::Query));
        assert_eq!(g.players_query().map(|q| q.kind), Some(QueryKind::Palworld));
        assert_eq!(g.effective_stop_steps().len(), 2);
        assert_eq!(g.effective_broadcast(), Some(Broadcast::RestAnnounce));
        assert!(problems(&g).is_empty(), "{:?}", problems(&g));
    }

    #[test]
    fn user_settings_override_the_profile() {
        let g = game(
            r#"{"profile":"minecraft","readiness":"none","stop_steps":[],"broadcast":"none"}"#,
        );
        assert_eq!(g.effective_readiness(), None);
        assert!(g.effective_stop_steps().is_empty());
        assert_eq!(g.effective_broadcast(), None);
        let g = game(r#"{"profile":"generic"}"#);
        assert_eq!(g.effective_readiness(), None);
        assert_eq!(g.effective_broadcast(), None);
    }

    #[test]
    fn toml_and_json_use_the_same_names() {
        let t: GameSpec = toml::from_str(
            "profile = \"source\"\nstop_steps = [{rcon = \"quit\"}, \"rest_save\"]\nreadiness = {log_line = \"ready\"}\n[rcon]\nport = 27015\npassword = \"x\"\n[rest]\nport = 1\npassword = \"y\"\n",
        )
        .expect("toml parses");
        let j = game(
            r#"{"profile":"source","stop_steps":[{"rcon":"quit"},"rest_save"],"readiness":{"log_line":"ready"},"rcon":{"port":27015,"password":"x"},"rest":{"port":1,"password":"y"}}"#,
        );
        assert_eq!(t, j);
        assert!(problems(&t).is_empty(), "{:?}", problems(&t));
    }

    #[test]
    fn problems_name_their_fields() {
        let g = game(
            r#"{"rcon":{"port":0,"password":""},"query":{"kind":"http"},"readiness":{"log_line":"("},"liveness":{"check":"rest","interval_seconds":0},"stop_steps":[{"rcon":"a\nb"},"rest_save"],"broadcast":{"stdin":"say"},"players_interval_seconds":0}"#,
        );
        let got = problems(&g);
        for f in [
            "game.rcon.port",
            "game.rcon.password",
            "game.query.url",
            "game.readiness.log_line",
            "game.liveness.interval_seconds",
            "game.liveness.check",
            "game.stop_steps[0]",
            "game.stop_steps[1]",
            "game.broadcast",
            "game.players_interval_seconds",
        ] {
            assert!(got.contains(&f.to_string()), "{f} missing in {got:?}");
        }
    }

    #[test]
    fn secrets_are_masked_kept_and_never_debug_printed() {
        let g = game(
            r#"{"rcon":{"port":1,"password":"hunter2"},"rest":{"port":2,"password":"s3cret"}}"#,
        );
        let shown = serde_json::to_string(&g.masked()).expect("json");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains(MASK));
        assert!(!format!("{g:?}").contains("hunter2"));
        let mut back = g.masked();
        back.keep_secrets(Some(&g));
        assert_eq!(back, g);
        // Without a stored password the mask is refused, not stored.
        let mut fresh = g.masked();
        fresh.keep_secrets(None);
        assert!(problems(&fresh).contains(&"game.rcon.password".to_string()));
    }
}
