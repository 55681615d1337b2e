//! Who may do what to which program: permissions, the global role bundles and grants
//! (a set of permissions on all programs, on named programs or on programs with a tag).
//! Pure data and rules; the API asks [`Access::perms_on`] before acting on a program. Also
//! who a grant is for ([`Subject`]) and what the audit log keeps of each action
//! ([`AuditRecord`]), as the store returns them and the API shows them.
//!
//! `files.write` and `define` can run code as warden's user (edit a start script, change
//! the command), so no bundle below `admin` includes them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Role;

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// A user, by name.
    User,
    /// An API token, by public id.
    Token,
}

impl Subject {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::User => "user",
            Subject::Token => "token",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Row id (page with `before`).
    pub id: i64,
    /// Unix ms.
    pub ts: i64,
    /// Who: a user name or `token:NAME`.
    pub actor: String,
    /// What, e.g. `program.start`.
    pub action: String,
    /// The object acted on.
    pub target: String,
    /// The program concerned, if any.
    pub program: Option<String>,
    /// `ok` or `failed: …`.
    pub result: String,
    /// The client's address.
    pub address: Option<String>,
    /// Details (never a secret).
    pub detail: Option<String>,
}

/// One thing a caller may do to a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Perm {
    /// See the program: status, events, metrics, players, backups and schedules.
    #[serde(rename = "view")]
    View,
    /// Read the console and type into it.
    #[serde(rename = "console")]
    Console,
    /// Start, stop, restart, kill.
    #[serde(rename = "control")]
    Control,
    /// RCON commands and broadcasts.
    #[serde(rename = "players")]
    Players,
    /// Browse, read and download files (and backups).
    #[serde(rename = "files.read")]
    FilesRead,
    /// Save, upload, move, delete files. Can run code.
    #[serde(rename = "files.write")]
    FilesWrite,
    /// Create, verify and cancel backups.
    #[serde(rename = "backups")]
    Backups,
    /// Restore and delete backups.
    #[serde(rename = "backups.restore")]
    BackupsRestore,
    /// Run and cancel schedules that act on the program.
    #[serde(rename = "schedules")]
    Schedules,
    /// Edit or delete the program's definition. Can run code.
    #[serde(rename = "define")]
    Define,
}

impl Perm {
    /// Every permission, in display order.
    pub const ALL: [Perm; 10] = [
        Perm::View,
        Perm::Console,
        Perm::Control,
        Perm::Players,
        Perm::FilesRead,
        Perm::FilesWrite,
        Perm::Backups,
        Perm::BackupsRestore,
        Perm::Schedules,
        Perm::Define,
    ];

    /// The name used in the API, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::View => "view",
            Perm::Console => "console",
            Perm::Control => "control",
            Perm::Players => "players",
            Perm::FilesRead => "files.read",
            Perm::FilesWrite => "files.write",
            Perm::Backups => "backups",
            Perm::BackupsRestore => "backups.restore",
            Perm::Schedules => "schedules",
            Perm::Define => "define",
        }
    }

    /// Parses a permission name.
    pub fn parse(s: &str) -> Option<Perm> {
        Perm::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// True for the permissions that let their holder run code as warden's user.
    pub fn runs_code(self) -> bool {
        matches!(self, Perm::FilesWrite | Perm::Define)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Perms(u16);

impl Perms {
    /// No permission.
    pub const NONE: Perms = Perms(0);

    /// True when `p` is in the set.
    pub fn has(self, p: Perm) -> bool {
        self.0 & p.bit() != 0
    }

    /// Adds one permission.
    pub fn with(self, p: Perm) -> Perms {
        Perms(self.0 | p.bit())
    }

    /// The union of two sets.
    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    /// The permissions of a role bundle. `operator` leaves out what runs code
    /// (`files.write`, `define`) and restoring (which overwrites the program's files).
    pub fn bundle(role: Role) -> Perms {
        let of = |ps: &[Perm]| ps.iter().fold(Perms::NONE, |acc, p| acc.with(*p));
        match role {
            Role::None => Perms::NONE,
            Role::Viewer => of(&[Perm::View]),
            Role::Operator => of(&[
                Perm::View,
                Perm::Console,
                Perm::Control,
                Perm::Players,
                Perm::FilesRead,
                Perm::Backups,
                Perm::Schedules,
            ]),
            Role::Admin => of(&Perm::ALL),
        }
    }

    /// Parses names of permissions or bundles (`viewer`, `operator`, `admin`).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Perms, String> {
        let mut out = Perms::NONE;
        for n in names {
            let n = n.as_ref().trim();
            if let Some(p) = Perm::parse(n) {
                out = out.with(p);
            } else if let Some(r) = Role::parse(n) {
                out = out.union(Perms::bundle(r));
            } else {
                return Err(format!(
                    "unknown permission {n:?}; use {} or a bundle (viewer, operator, admin)",
                    Perm::ALL.map(Perm::as_str).join(", ")
                ));
            }
        }
        Ok(out)
    }

    /// The names in the set, in display order.
    pub fn names(self) -> Vec<Perm> {
        Perm::ALL.into_iter().filter(|p| self.has(*p)).collect()
    }

    /// The stored form: names separated by commas.
    pub fn to_stored(self) -> String {
        self.names()
            .into_iter()
            .map(Perm::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form, ignoring names this version does not know.
    pub fn from_stored(s: &str) -> Perms {
        s.split(',')
            .filter_map(|n| Perm::parse(n.trim()))
            .fold(Perms::NONE, Perms::with)
    }
}

/// What a grant applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Scope {
    /// Every program, present and future.
    All,
    /// The program with this name.
    Program(String),
    /// Programs whose `tags` contain this tag.
    Tag(String),
}

impl Scope {
    /// True when the scope covers program `name` with `tags`.
    pub fn covers(&self, name: &str, tags: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Program(p) => p == name,
            Scope::Tag(t) => tags.iter().any(|x| x == t),
        }
    }

    /// `(kind, value)` as stored.
    pub fn to_stored(&self) -> (&'static str, String) {
        match self {
            Scope::All => ("all", String::new()),
            Scope::Program(p) => ("program", p.clone()),
            Scope::Tag(t) => ("tag", t.clone()),
        }
    }

    /// Reads the stored form.
    pub fn from_stored(kind: &str, value: String) -> Option<Scope> {
        match kind {
            "all" => Some(Scope::All),
            "program" => Some(Scope::Program(value)),
            "tag" => Some(Scope::Tag(value)),
            _ => None,
        }
    }

    /// Parses the CLI form: `all`, `program:NAME` (or a bare NAME), `tag:TAG`.
    pub fn parse_cli(s: &str) -> Result<Scope, String> {
        let scope = match s.split_once(':') {
            None if s == "all" || s == "*" => Scope::All,
            None => Scope::Program(s.to_string()),
            Some(("program", n)) => Scope::Program(n.to_string()),
            Some(("tag", t)) => Scope::Tag(t.to_string()),
            Some(_) => {
                return Err(format!(
                    "{s:?} is not a scope; use all, program:NAME or tag:TAG"
                ));
            }
        };
        match &scope {
            Scope::Program(n) | Scope::Tag(n) if !crate::program::valid_name(n) => Err(format!(
                "{n:?} is not a valid program name or tag: use lowercase letters, digits, '-' or '_'"
            )),
            _ => Ok(scope),
        }
    }
}

/// Permissions on a scope, given to one user or token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What the grant applies to.
    pub scope: Scope,
    /// What it allows.
    pub perms: Perms,
}

/// A principal's role bundle plus its grants: everything needed to answer "may they".
#[derive(Debug, Clone)]
pub struct Access {
    /// The global bundle (on every program).
    pub role: Role,
    /// Extra permissions.
    pub grants: Vec<Grant>,
}

impl Access {
    /// The permissions on program `name` with `tags`.
    pub fn perms_on(&self, name: &str, tags: &[String]) -> Perms {
        let base = Perms::bundle(self.role);
        self.grants
            .iter()
            .filter(|g| g.scope.covers(name, tags))
            .fold(base, |acc, g| acc.union(g.perms))
    }

    /// The permissions held on every program (the role and `all` grants): what is
    /// needed for things that are not one program's (jobs, alert rules, warden's own
    /// events).
    pub fn perms_everywhere(&self) -> Perms {
        let base = Perms::bundle(self.role);
        self.grants
            .iter()
            .filter(|g| g.scope == Scope::All)
            .fold(base, |acc, g| acc.union(g.perms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_leave_code_execution_to_admin() {
        let op = Perms::bundle(Role::Operator);
        assert!(op.has(Perm::Control) && op.has(Perm::FilesRead));
        assert!(!op.has(Perm::FilesWrite) && !op.has(Perm::Define));
        assert!(!Perms::bundle(Role::Viewer).has(Perm::FilesRead));
        assert_eq!(Perms::bundle(Role::Admin).names().len(), Perm::ALL.len());
        assert_eq!(Perms::bundle(Role::None), Perms::NONE);
    }

    #[test]
    fn grants_apply_by_name_and_tag() {
        let a = Access {
            role: Role::None,
            grants: vec![
                Grant {
                    scope: Scope::Program("valheim".into()),
                    perms: Perms::parse(&["control"]).expect("parse"),
                },
                Grant {
                    scope: Scope::Tag("friends".into()),
                    perms: Perms::parse(&["console"]).expect("parse"),
                },
            ],
        };
        assert!(a.perms_on("valheim", &[]).has(Perm::Control));
        assert!(!a.perms_on("minecraft", &[]).has(Perm::Control));
        assert!(a.perms_on("mc", &["friends".into()]).has(Perm::Console));
        assert!(!a.perms_on("mc", &[]).has(Perm::Console));
        assert_eq!(a.perms_everywhere(), Perms::NONE);
    }

    #[test]
    fn stored_form_round_trips() {
        let p = Perms::parse(&["operator", "define"]).expect("parse");
        assert_eq!(Perms::from_stored(&p.to_stored()), p);
        assert!(Perms::parse(&["root"]).is_err());
        assert_eq!(
            Scope::parse_cli("tag:mc").expect("scope"),
            Scope::Tag("mc".into())
        );
        assert!(Scope::parse_cli("tag:../x").is_err());
    }
}
