//! Templates: how to install one kind of server. A template is a small versioned TOML
//! file (shipped ones are compiled in, user ones live in `DATA/templates/*.toml` and
//! replace a shipped one of the same name) naming the source of the files, the command
//! line per OS, the ports, the variables a user sets, how those land in config files,
//! the game profile, the backup defaults and update settings. Types, loading, validation and rendering
//! into a [`Plan`]; no I/O beyond reading template files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::steamcmd::Platform;
use crate::backup::settings::BackupSettings;
use crate::program::game::{GameProfile, QueryKind, Readiness, Secret};
use crate::program::{FieldError, ProgramSpec, StopSpec};

/// The templates shipped inside the binary, as `(file name, text)`.
const SHIPPED: &[(&str, &str)] = &[
    (
        "minecraft-vanilla.toml",
        include_str!("templates/minecraft-vanilla.toml"),
    ),
    (
        "minecraft-paper.toml",
        include_str!("templates/minecraft-paper.toml"),
    ),
    ("palworld.toml", include_str!("templates/palworld.toml")),
    ("valheim.toml", include_str!("templates/valheim.toml")),
    ("ark-se.toml", include_str!("templates/ark-se.toml")),
    ("ark-sa.toml", include_str!("templates/ark-sa.toml")),
    ("cs2.toml", include_str!("templates/cs2.toml")),
    ("rust.toml", include_str!("templates/rust.toml")),
    ("terraria.toml", include_str!("templates/terraria.toml")),
    ("7dtd.toml", include_str!("templates/7dtd.toml")),
    (
        "project-zomboid.toml",
        include_str!("templates/project-zomboid.toml"),
    ),
];

/// Placeholders every template may use besides its variables.
const BUILTINS: &[&str] = &["program", "dir"];

/// How to install one kind of server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Name used by `warden new --template NAME`.
    #[schema(example = "valheim")]
    pub name: String,
    /// Version of this template (raised when it changes).
    pub version: u32,
    /// Human title.
    pub title: String,
    /// The title in Korean, shown by the dashboard in Korean mode (`title` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_ko: Option<String>,
    /// One paragraph about the server.
    #[serde(default)]
    pub description: String,
    /// The description in Korean, shown by the dashboard in Korean mode (`description`
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_ko: Option<String>,
    /// Where the server's files come from.
    pub source: Source,
    /// The command line per OS (`linux`, `windows`).
    pub command: BTreeMap<String, CommandLine>,
    /// Longest wait for readiness after a start (the program's `start_seconds`).
    #[serde(default = "default_start_seconds")]
    pub start_seconds: u64,
    /// Seconds a stop may take before the process group is killed.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_seconds: u64,
    /// The ports the server opens; each is also a variable (type `port`) of its name.
    #[serde(default)]
    pub ports: Vec<Port>,
    /// Values a user sets (`--set NAME=VALUE`).
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// Config files written after the files are installed.
    #[serde(default)]
    pub files: Vec<ConfigFile>,
    /// Game integration (profile, RCON, query, REST, readiness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game: Option<GameSection>,
    /// Backup defaults saved for the new program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSettings>,
    /// Update settings of the new program (e.g. `announce_line`, the console line by which
    /// the server says an update is available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<crate::program::update::UpdateSpec>,
    /// `shipped` (inside warden) or `user` (the data directory's `templates/`).
    #[serde(skip_deserializing, default)]
    pub origin: Origin,
}

fn default_start_seconds() -> u64 {
    600
}

fn default_stop_timeout() -> u64 {
    60
}

/// Where a template was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Compiled into warden.
    #[default]
    Shipped,
    /// A file in `DATA/templates/`.
    User,
}

/// Where a server's files come from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A Steam dedicated server through SteamCMD (anonymous login).
    Steamcmd {
        /// Steam app id of the dedicated server.
        app: u32,
        /// Beta branch (default: the public branch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// Download another platform's build (`windows` for servers without a Linux one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<Platform>,
        /// Check every file after the download.
        #[serde(default)]
        validate: bool,
    },
    /// A Minecraft Java server jar, checked against its published checksum.
    Minecraft {
        /// `vanilla` (Mojang's version manifest, SHA-1) or `paper` (PaperMC's API, SHA-256).
        flavor: Flavor,
        /// A version such as `1.21.4`, or `latest` (may name a variable: `{{version}}`).
        #[serde(default = "latest")]
        version: String,
        /// File name of the jar in the server's folder.
        #[serde(default = "server_jar")]
        jar: String,
    },
    /// One file from a URL, checked against a SHA-256.
    Url {
        /// http:// or https:// address.
        url: String,
        /// Expected SHA-256, hex.
        sha256: String,
        /// File name in the server's folder.
        file: String,
    },
}

fn latest() -> String {
    "latest".into()
}

fn server_jar() -> String {
    "server.jar".into()
}

/// Minecraft server flavors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// Mojang's server.
    Vanilla,
    /// PaperMC.
    Paper,
}

/// A command line for one OS; `{{name}}` placeholders are filled in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandLine {
    /// The executable: relative to the server's folder when it has a `/`, else from `PATH`.
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A port the server opens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Its name, also the variable that changes it.
    pub name: String,
    /// Default port number.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// What it is for, in Korean, shown by the dashboard in Korean mode (`description`
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_ko: Option<String>,
}

/// Transport of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Type of a variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum VarType {
    /// Any text on one line.
    #[default]
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// 1 to 65535.
    Port,
}

/// A value a user sets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Name (`--set NAME=VALUE`, `{{NAME}}` in the template).
    pub name: String,
    /// Value type.
    #[serde(rename = "type", default)]
    pub kind: VarType,
    /// Default (a secret without one gets a random value; shown as `********`).
    #[serde(default, deserialize_with = "scalar")]
    pub default: String,
    /// A password: kept out of command lines, masked in every answer.
    #[serde(default)]
    pub secret: bool,
    /// For a secret without a default: generate a random one when none is set (admin
    /// passwords), instead of leaving it empty (join passwords).
    #[serde(default)]
    pub generate: bool,
    /// Must be set explicitly (no usable default).
    #[serde(default)]
    pub required: bool,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// What it means, in Korean, shown by the dashboard in Korean mode (`description`
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_ko: Option<String>,
}

/// A TOML string, integer or boolean, as text.
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Bool(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::Text(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Bool(b) => b.to_string(),
    })
}

/// A config file written into the server's folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Path relative to the server's folder (`/` separated).
    pub path: String,
    /// `text` (the whole `content`), `properties` (`key=value` lines) or `ini` (`key=value`
    /// lines in `section`).
    pub format: FileFormat,
    /// For `ini`: the section the entries go in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// For `properties` and `ini`: keys and values (values may use placeholders). Other
    /// lines of an existing file are kept.
    #[serde(default)]
    pub entries: BTreeMap<String, String>,
    /// For `text`: the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Only on this OS (`linux` or `windows`); on every OS when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

/// Format of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Whole file.
    Text,
    /// Java-style `key=value` lines.
    Properties,
    /// `[section]` and `key=value` lines.
    Ini,
}

/// Game integration of the program a template makes (see `program::game`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GameSection {
    /// The game profile (readiness, stop steps and broadcasts follow from it).
    pub profile: GameProfile,
    /// RCON port (a placeholder such as `{{rcon}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcon_port: Option<String>,
    /// RCON password (a placeholder of a secret variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcon_password: Option<String>,
    /// Status query protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryKind>,
    /// Status query port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_port: Option<String>,
    /// REST API port (Palworld).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_port: Option<String>,
    /// REST API admin password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_password: Option<String>,
    /// A console line (regular expression) that says the server is ready, instead of the
    /// profile's check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_line: Option<String>,
}

/// What installing a template makes: the program, its files and where they come from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The program (its `cwd` is the final folder).
    pub spec: ProgramSpec,
    /// Config files to write, relative path → how.
    pub files: Vec<RenderedFile>,
    /// The source with placeholders filled in.
    pub source: Source,
    /// Backup settings to save.
    pub backup: Option<BackupSettings>,
}

/// A config file with its values filled in.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    /// Relative path.
    pub path: String,
    /// Format.
    pub format: FileFormat,
    /// For `ini`.
    pub section: Option<String>,
    /// For `properties`/`ini`.
    pub entries: BTreeMap<String, String>,
    /// For `text`.
    pub content: String,
}

/// A template that failed to load, for the listing and the log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoadProblem {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// Every template: shipped ones, replaced by user ones of the same name, sorted by name;
/// and the user files that could not be used.
pub fn load_all(user_dir: &Path) -> (Vec<Template>, Vec<LoadProblem>) {
    let mut by_name = BTreeMap::new();
    let mut problems = Vec::new();
    for (file, text) in SHIPPED {
        match parse(text, Origin::Shipped) {
            Ok(t) => {
                by_name.insert(t.name.clone(), t);
            }
            Err(message) => problems.push(LoadProblem {
                file: format!("(shipped) {file}"),
                message,
            }),
        }
    }
    let mut files: Vec<PathBuf> = match std::fs::read_dir(user_dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    for path in files {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(LoadProblem {
                    file,
                    message: format!("cannot read it: {e}"),
                });
                continue;
            }
        };
        match parse(&text, Origin::User) {
            Ok(t) => {
                by_name.insert(t.name.clone(), t);
            }
            Err(message) => problems.push(LoadProblem { file, message }),
        }
    }
    (by_name.into_values().collect(), problems)
}

/// The templates compiled into warden (every one parses; a unit test says so).
pub fn shipped() -> Vec<Template> {
    SHIPPED
        .iter()
        .filter_map(|(_, text)| parse(text, Origin::Shipped).ok())
        .collect()
}

/// Parses and validates one template file.
pub fn parse(text: &str, origin: Origin) -> Result<Template, String> {
    let mut t: Template = toml::from_str(text).map_err(|e| e.to_string())?;
    t.origin = origin;
    let problems = t.validate();
    if problems.is_empty() {
        Ok(t)
    } else {
        Err(format!(
            "template '{}' is invalid: {}",
            t.name,
            problems.join("; ")
        ))
    }
}

/// Fills `{{name}}` placeholders from `values`; an unknown name is an error naming it.
pub fn fill(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("a '{{{{' without its '}}}}' in {text:?}"));
        };
        let name = after[..end].trim();
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => return Err(format!("unknown placeholder {{{{{name}}}}}")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The placeholder names used in `text`.
fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    names
}

impl Template {
    /// Every variable, the ports' included (ports first).
    pub fn all_variables(&self) -> Vec<Variable> {
        let mut v: Vec<Variable> = self
            .ports
            .iter()
            .map(|p| Variable {
                name: p.name.clone(),
                kind: VarType::Port,
                default: p.port.to_string(),
                secret: false,
                generate: false,
                required: false,
                description: p.description.clone(),
                description_ko: p.description_ko.clone(),
            })
            .collect();
        v.extend(self.variables.iter().cloned());
        v
    }

    /// A copy safe to show: secret defaults replaced by `********`.
    pub fn masked(&self) -> Template {
        let mut t = self.clone();
        for v in &mut t.variables {
            if v.secret && !v.default.is_empty() {
                v.default = crate::program::game::MASK.to_string();
            }
        }
        t
    }

    /// The operating systems this template has a command line for.
    pub fn systems(&self) -> Vec<String> {
        self.command.keys().cloned().collect()
    }

    /// Every problem of this template; empty when it can be installed.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if !crate::program::valid_name(&self.name) {
            errs.push(format!(
                "name {:?} must be lowercase letters, digits, '-' and '_'",
                self.name
            ));
        }
        if self.version == 0 {
            errs.push("version must be 1 or more".into());
        }
        if self.title.trim().is_empty() {
            errs.push("title is empty".into());
        }
        if self.command.is_empty() {
            errs.push("command needs a [command.linux] or [command.windows] table".into());
        }
        for os in self.command.keys() {
            if os != "linux" && os != "windows" {
                errs.push(format!("command.{os}: only linux and windows are known"));
            }
        }
        let vars = self.all_variables();
        let mut names = BTreeSet::new();
        for v in &vars {
            let ok = !v.name.is_empty()
                && v.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                errs.push(format!(
                    "variable {:?}: names are lowercase letters, digits and '_'",
                    v.name
                ));
            }
            if BUILTINS.contains(&v.name.as_str()) || !names.insert(v.name.clone()) {
                errs.push(format!(
                    "variable {:?} is defined twice or is built in",
                    v.name
                ));
            }
            if !v.default.is_empty()
                && let Err(e) = check_value(v, &v.default)
            {
                errs.push(format!("variable {:?}: default {e}", v.name));
            }
            if v.secret && v.kind != VarType::String {
                errs.push(format!("variable {:?}: a secret must be a string", v.name));
            }
        }
        let known: BTreeSet<&str> = names
            .iter()
            .map(String::as_str)
            .chain(BUILTINS.iter().copied())
            .collect();
        let secrets: BTreeSet<&str> = vars
            .iter()
            .filter(|v| v.secret)
            .map(|v| v.name.as_str())
            .collect();
        let uses = |errs: &mut Vec<String>, place: &str, text: &str, secret_ok: bool| {
            for p in placeholders(text) {
                if !known.contains(p.as_str()) {
                    errs.push(format!("{place}: unknown placeholder {{{{{p}}}}}"));
                } else if !secret_ok && secrets.contains(p.as_str()) {
                    errs.push(format!(
                        "{place}: secret {{{{{p}}}}} would be visible there; pass it through a \
                         config file, the game section or an environment variable named \
                         like a password"
                    ));
                }
            }
        };
        for (os, c) in &self.command {
            uses(
                &mut errs,
                &format!("command.{os}.command"),
                &c.command,
                false,
            );
            for a in &c.args {
                uses(&mut errs, &format!("command.{os}.args"), a, false);
            }
            for (k, v) in &c.env {
                let secret_ok = crate::program::secret_env_key(k);
                uses(&mut errs, &format!("command.{os}.env.{k}"), v, secret_ok);
            }
        }
        for f in &self.files {
            let place = format!("files {:?}", f.path);
            if f.path.is_empty()
                || f.path.starts_with('/')
                || f.path.contains('\\')
                || f.path.split('/').any(|c| c == ".." || c.is_empty())
            {
                errs.push(format!("{place}: give a relative path without '..'"));
            }
            match f.format {
                FileFormat::Text if f.content.is_none() => {
                    errs.push(format!("{place}: a text file needs content"));
                }
                FileFormat::Ini if f.section.is_none() => {
                    errs.push(format!("{place}: an ini file needs a section"));
                }
                FileFormat::Properties | FileFormat::Ini if f.entries.is_empty() => {
                    errs.push(format!("{place}: no entries"));
                }
                _ => {}
            }
            for v in f.entries.values().chain(f.content.iter()) {
                uses(&mut errs, &place, v, true);
            }
        }
        if let Some(g) = &self.game {
            for (field, text, secret_ok) in [
                ("rcon_port", &g.rcon_port, false),
                ("query_port", &g.query_port, false),
                ("rest_port", &g.rest_port, false),
                ("rcon_password", &g.rcon_password, true),
                ("rest_password", &g.rest_password, true),
            ] {
                if let Some(t) = text {
                    uses(&mut errs, &format!("game.{field}"), t, secret_ok);
                }
            }
            if let Some(r) = &g.readiness_line
                && let Err(e) = regex::Regex::new(r)
            {
                errs.push(format!(
                    "game.readiness_line is not a regular expression: {e}"
                ));
            }
        }
        match &self.source {
            Source::Steamcmd { app, .. } if *app == 0 => {
                errs.push("source.app must be a Steam app id".into());
            }
            Source::Minecraft { version, jar, .. } => {
                uses(&mut errs, "source.version", version, false);
                if jar.contains('/') || jar.contains('\\') || jar.is_empty() {
                    errs.push("source.jar must be a file name".into());
                }
            }
            Source::Url { url, sha256, file } => {
                uses(&mut errs, "source.url", url, false);
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    errs.push("source.url must be http:// or https://".into());
                }
                if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    errs.push("source.sha256 must be 64 hex digits".into());
                }
                if file.contains('/') || file.contains('\\') || file.is_empty() {
                    errs.push("source.file must be a file name".into());
                }
            }
            Source::Steamcmd { .. } => {}
        }
        if let Some(b) = &self.backup {
            for p in b.validate() {
                errs.push(format!("backup.{}: {}", p.field, p.message));
            }
        }
        if let Some(u) = &self.update {
            let mut problems = Vec::new();
            u.validate(&mut problems);
            for p in problems {
                errs.push(format!("{}: {}", p.field, p.message));
            }
        }
        errs
    }

    /// The values of every variable: `set` over the defaults, checked by type; secrets
    /// without a value get a random one. Problems name `values.NAME`.
    pub fn resolve(
        &self,
        set: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Vec<FieldError>> {
        let vars = self.all_variables();
        let mut errs = Vec::new();
        for k in set.keys() {
            if !vars.iter().any(|v| &v.name == k) {
                errs.push(FieldError::not_found(format!("values.{k}"), k));
            }
        }
        let mut out = BTreeMap::new();
        for v in &vars {
            let value = match set.get(&v.name) {
                Some(s) => s.clone(),
                None if v.required => {
                    errs.push(FieldError::required(format!("values.{}", v.name)));
                    continue;
                }
                None if v.secret && v.generate && v.default.is_empty() => random_secret(),
                None => v.default.clone(),
            };
            if let Err(e) = check_value(v, &value) {
                let f = format!("values.{}", v.name);
                errs.push(match v.kind {
                    _ if value.contains(['\n', '\r']) => FieldError::control_chars(f),
                    VarType::Boolean => FieldError::not_one_of(f, &value, &["true", "false"]),
                    VarType::Port => FieldError::out_of_range(f, 1, 65535),
                    _ => FieldError::invalid(f, &value, &e),
                });
                continue;
            }
            out.insert(v.name.clone(), value);
        }
        if errs.is_empty() { Ok(out) } else { Err(errs) }
    }

    /// The plan for program `program` in folder `dir` on `os`, from resolved values.
    pub fn render(
        &self,
        os: &str,
        program: &str,
        dir: &Path,
        values: &BTreeMap<String, String>,
    ) -> Result<Plan, Vec<FieldError>> {
        let errs = std::cell::RefCell::new(Vec::new());
        let mut values = values.clone();
        values.insert("program".into(), program.to_string());
        values.insert("dir".into(), dir.display().to_string());
        let fill_or = |field: &str, text: &str| -> String {
            fill(text, &values).unwrap_or_else(|e| {
                errs.borrow_mut().push(FieldError::invalid(field, text, &e));
                String::new()
            })
        };
        let Some(line) = self.command.get(os) else {
            return Err(vec![FieldError::not_one_of(
                "template",
                os,
                &self.systems(),
            )]);
        };
        let mut command = fill_or("command", &line.command);
        // An absolute command (`/usr/bin/java`) stays as it is; a relative one with a
        // separator names a file in the server's folder.
        if (command.contains('/') || command.contains('\\')) && !Path::new(&command).is_absolute() {
            // Joined part by part, so Windows gets its own separators.
            command = command
                .split(['/', '\\'])
                .filter(|part| !part.is_empty() && *part != ".")
                .fold(dir.to_path_buf(), |p, part| p.join(part))
                .display()
                .to_string();
        }
        let args = line.args.iter().map(|a| fill_or("args", a)).collect();
        let env = line
            .env
            .iter()
            .map(|(k, v)| (k.clone(), fill_or("env", v)))
            .collect();
        let files = self
            .files
            .iter()
            .filter(|f| f.os.as_deref().is_none_or(|o| o == os))
            .map(|f| RenderedFile {
                path: f.path.clone(),
                format: f.format,
                section: f.section.clone(),
                entries: f
                    .entries
                    .iter()
                    .map(|(k, v)| (k.clone(), fill_or("files", v)))
                    .collect(),
                content: f
                    .content
                    .as_deref()
                    .map(|c| fill_or("files", c))
                    .unwrap_or_default(),
            })
            .collect();
        let source = match &self.source {
            Source::Minecraft {
                flavor,
                version,
                jar,
            } => Source::Minecraft {
                flavor: *flavor,
                version: fill_or("source.version", version),
                jar: jar.clone(),
            },
            Source::Url { url, sha256, file } => Source::Url {
                url: fill_or("source.url", url),
                sha256: sha256.clone(),
                file: file.clone(),
            },
            s @ Source::Steamcmd { .. } => s.clone(),
        };
        let game = self.game.as_ref().map(|g| {
            let mut spec = g.profile.template();
            let port = |field: &str, text: &Option<String>| -> Option<u16> {
                let t = text.as_ref()?;
                let v = fill_or(field, t);
                match v.parse::<u16>() {
                    Ok(p) if p > 0 => Some(p),
                    _ => {
                        errs.borrow_mut()
                            .push(FieldError::out_of_range(field, 1, 65535));
                        None
                    }
                }
            };
            let rcon_port = port("game.rcon_port", &g.rcon_port);
            let query_port = port("game.query_port", &g.query_port);
            let rest_port = port("game.rest_port", &g.rest_port);
            if let (Some(r), Some(p)) = (&mut spec.rcon, rcon_port) {
                r.port = p;
            }
            if g.rcon_port.is_none() && g.rcon_password.is_none() {
                spec.rcon = None;
            }
            if let (Some(r), Some(pw)) = (&mut spec.rcon, &g.rcon_password) {
                r.password = Secret::from(fill_or("game.rcon_password", pw));
            }
            if let Some(kind) = g.query {
                let q = spec.query.get_or_insert(crate::program::game::QuerySpec {
                    kind,
                    host: "127.0.0.1".into(),
                    port: None,
                    url: None,
                    expect_status: None,
                    body_contains: None,
                });
                q.kind = kind;
            }
            if let (Some(q), Some(p)) = (&mut spec.query, query_port) {
                q.port = Some(p);
            }
            if let (Some(r), Some(p)) = (&mut spec.rest, rest_port) {
                r.port = p;
            }
            if let (Some(r), Some(pw)) = (&mut spec.rest, &g.rest_password) {
                r.password = Secret::from(fill_or("game.rest_password", pw));
            }
            if let Some(line) = &g.readiness_line {
                spec.readiness = Some(Readiness::LogLine(line.clone()));
            }
            spec
        });
        let stop = StopSpec {
            signal: game
                .as_ref()
                .map_or("SIGTERM", |g| g.profile.stop_signal())
                .to_string(),
            stdin: None,
            timeout_seconds: self.stop_timeout_seconds,
        };
        let spec = ProgramSpec {
            args,
            cwd: Some(dir.display().to_string()),
            env,
            start_seconds: self.start_seconds,
            stop,
            game,
            tags: vec![self.name.clone()],
            update: self.update.clone(),
            ..ProgramSpec::new(program, command)
        };
        let mut errs = errs.into_inner();
        errs.extend(spec.validate());
        if errs.is_empty() {
            Ok(Plan {
                spec,
                files,
                source,
                backup: self.backup.clone(),
            })
        } else {
            Err(errs)
        }
    }
}

/// Checks `value` against the variable's type.
fn check_value(v: &Variable, value: &str) -> Result<(), String> {
    if value.contains('\n') || value.contains('\r') {
        return Err("must be one line".into());
    }
    match v.kind {
        VarType::String => Ok(()),
        VarType::Integer => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("{value:?} is not a whole number")),
        VarType::Boolean => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?} is not true or false")),
        },
        VarType::Port => match value.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!("{value:?} is not a port (1 to 65535)")),
        },
    }
}

/// 20 random letters and digits.
fn random_secret() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped template speaks Korean too: its title, its description and every
    /// port's and variable's description that has an English one. A new shipped template
    /// without them fails here, before a Korean user sees English in the wizard.
    #[test]
    fn every_shipped_text_has_a_korean_one() {
        fn korean(text: &Option<String>) -> bool {
            text.as_deref()
                .is_some_and(|t| t.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)))
        }
        let mut missing = Vec::new();
        for t in shipped() {
            if !korean(&t.title_ko) {
                missing.push(format!("{}: title_ko", t.name));
            }
            if !korean(&t.description_ko) {
                missing.push(format!("{}: description_ko", t.name));
            }
            for p in t.ports.iter().filter(|p| !p.description.is_empty()) {
                if !korean(&p.description_ko) {
                    missing.push(format!("{}: port {} description_ko", t.name, p.name));
                }
            }
            for v in t.variables.iter().filter(|v| !v.description.is_empty()) {
                if !korean(&v.description_ko) {
                    missing.push(format!("{}: variable {} description_ko", t.name, v.name));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing Korean text:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn every_shipped_template_is_valid_and_renders_for_its_systems() {
        let (all, problems) = load_all(Path::new("/nonexistent"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(all.len(), SHIPPED.len());
        for t in &all {
            assert!(t.validate().is_empty(), "{}: {:?}", t.name, t.validate());
            let mut set = BTreeMap::new();
            for v in t.all_variables().iter().filter(|v| v.required) {
                let value = match v.kind {
                    VarType::Boolean => "true",
                    VarType::Integer => "1",
                    VarType::Port => "30000",
                    VarType::String => "x",
                };
                set.insert(v.name.clone(), value.to_string());
            }
            let values = t.resolve(&set).expect("defaults resolve");
            assert!(!t.systems().is_empty(), "{}", t.name);
            for os in t.systems() {
                let plan = t
                    .render(&os, "srv", Path::new("/srv/x"), &values)
                    .unwrap_or_else(|e| panic!("{} on {os}: {e:?}", t.name));
                assert_eq!(plan.spec.cwd.as_deref(), Some("/srv/x"));
                // Joined with the host's separator (a Linux plan rendered on Windows reads
                // `/srv/x\run.sh`): compared as paths, not as text.
                if plan.spec.command.contains('/') {
                    assert!(
                        Path::new(&plan.spec.command).starts_with("/srv/x")
                            && plan.spec.command.len() > "/srv/x/".len()
                            && !plan.spec.command.contains("/./")
                            && !plan.spec.command.contains("\\.\\"),
                        "{}: {}",
                        t.name,
                        plan.spec.command
                    );
                }
                assert!(plan.spec.game.is_some(), "{} has a game profile", t.name);
                // No secret reaches the command line.
                for v in t.all_variables().iter().filter(|v| v.secret) {
                    let secret = &values[&v.name];
                    if secret.is_empty() {
                        continue;
                    }
                    assert!(
                        !plan.spec.args.iter().any(|a| a.contains(secret.as_str())),
                        "{}: secret {} in args",
                        t.name,
                        v.name
                    );
                }
            }
        }
        let steam_apps: BTreeMap<&str, u32> = all
            .iter()
            .filter_map(|t| match t.source {
                Source::Steamcmd { app, .. } => Some((t.name.as_str(), app)),
                _ => None,
            })
            .collect();
        for (name, app) in [
            ("palworld", 2394010),
            ("valheim", 896660),
            ("ark-se", 376030),
            ("ark-sa", 2430930),
            ("cs2", 730),
            ("rust", 258550),
            ("7dtd", 294420),
            ("project-zomboid", 380870),
            ("terraria", 105600),
        ] {
            assert_eq!(steam_apps.get(name), Some(&app), "{name}");
        }
    }

    #[test]
    fn values_are_checked_and_secrets_generated() {
        let (all, _) = load_all(Path::new("/nonexistent"));
        let t = all
            .iter()
            .find(|t| t.name == "valheim")
            .expect("valheim shipped");
        let mut set = BTreeMap::new();
        set.insert("game".to_string(), "70000".to_string());
        set.insert("nope".to_string(), "1".to_string());
        let errs = t.resolve(&set).expect_err("bad values");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"values.game"), "{errs:?}");
        assert!(fields.contains(&"values.nope"), "{errs:?}");
        let a = t.resolve(&BTreeMap::new()).expect("defaults");
        let b = t.resolve(&BTreeMap::new()).expect("defaults");
        assert_eq!(a["password"].len(), 20);
        assert_ne!(a["password"], b["password"], "secrets are random");
        assert_eq!(
            t.masked()
                .variables
                .iter()
                .filter(|v| v.secret && !v.default.is_empty() && v.default != "********")
                .count(),
            0
        );
    }

    #[test]
    fn a_secret_on_the_command_line_or_an_unknown_placeholder_is_refused() {
        let text = r#"
name = "bad"
version = 1
title = "Bad"
[source]
kind = "steamcmd"
app = 1
[command.linux]
command = "./srv"
args = ["-password", "{{pw}}", "{{nope}}"]
env = { HOME_DIR = "{{pw}}", ADMIN_PASSWORD = "{{pw}}" }
[[variables]]
name = "pw"
secret = true
"#;
        let e = parse(text, Origin::User).expect_err("invalid");
        assert!(e.contains("command.linux.args: secret {{pw}}"), "{e}");
        assert!(e.contains("unknown placeholder {{nope}}"), "{e}");
        assert!(e.contains("env.HOME_DIR: secret"), "{e}");
        assert!(!e.contains("ADMIN_PASSWORD"), "{e}");
    }

    #[test]
    fn fill_replaces_known_names_only() {
        let mut v = BTreeMap::new();
        v.insert("a".to_string(), "1".to_string());
        assert_eq!(fill("x{{a}}y{{ a }}", &v).expect("fills"), "x1y1");
        assert!(fill("{{b}}", &v).is_err());
        assert!(fill("{{a", &v).is_err());
        assert_eq!(fill("{a} }}", &v).expect("fills"), "{a} }}");
    }

    #[test]
    fn a_user_template_replaces_a_shipped_one_and_a_broken_one_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("valheim.toml"),
            "name = \"valheim\"\nversion = 9\ntitle = \"Mine\"\n[source]\nkind = \"steamcmd\"\napp = 896660\n[command.linux]\ncommand = \"./v\"\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("broken.toml"), "name = ").expect("write");
        let (all, problems) = load_all(dir.path());
        let v = all.iter().find(|t| t.name == "valheim").expect("valheim");
        assert_eq!((v.version, v.origin), (9, Origin::User));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].file.ends_with("broken.toml"));
    }
}
