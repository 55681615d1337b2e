//! Grants (per-program permissions of users and tokens) and reading the audit log.

use rusqlite::params;

use super::{Store, StoreError, now_ms};
use crate::access::{AuditRecord, Grant, Perms, Scope, Subject};

/// A stored grant.
#[derive(Debug, Clone)]
pub struct GrantRow {
    /// Row id.
    pub id: i64,
    /// User or token.
    pub subject_kind: Subject,
    /// User name or token public id.
    pub subject: String,
    /// What it covers and allows.
    pub grant: Grant,
}

/// An audit record to append.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// The object acted on.
    pub target: String,
    /// The program concerned.
    pub program: Option<String>,
    /// `ok` or the failure.
    pub result: String,
    /// The client's address.
    pub address: Option<String>,
    /// Details.
    pub detail: Option<String>,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this program.
    pub program: Option<String>,
    /// Only actions starting with this.
    pub action: Option<String>,
    /// From this unix ms (inclusive).
    pub since: Option<i64>,
    /// Before this unix ms.
    pub until: Option<i64>,
    /// Only ids below this.
    pub before: Option<i64>,
    /// Page size.
    pub limit: u32,
}

fn grant_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<GrantRow>> {
    let kind: String = r.get(1)?;
    let scope_kind: String = r.get(3)?;
    let perms: String = r.get(5)?;
    let subject_kind = match kind.as_str() {
        "user" => Subject::User,
        "token" => Subject::Token,
        _ => return Ok(None),
    };
    let Some(scope) = Scope::from_stored(&scope_kind, r.get(4)?) else {
        return Ok(None);
    };
    Ok(Some(GrantRow {
        id: r.get(0)?,
        subject_kind,
        subject: r.get(2)?,
        grant: Grant {
            scope,
            perms: Perms::from_stored(&perms),
        },
    }))
}

const GRANT_COLS: &str = "id, subject_kind, subject, scope_kind, scope, perms";

/// The grants of one user or token, read on `c` (so a caller can read them in the same
/// trip to a reader as the session or token they belong to).
pub(super) fn grants_in(
    c: &rusqlite::Connection,
    kind: Subject,
    subject: &str,
) -> Result<Vec<Grant>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {GRANT_COLS} FROM grants WHERE subject_kind = ?1 AND subject = ?2 ORDER BY id"
    ))?;
    let rows = st.query_map(params![kind.as_str(), subject], grant_from)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(g) = r? {
            out.push(g.grant);
        }
    }
    Ok(out)
}

impl Store {
    /// The grants of one user or token.
    pub async fn grants_of(&self, kind: Subject, subject: &str) -> Result<Vec<Grant>, StoreError> {
        let subject = subject.to_string();
        self.read(move |c| grants_in(c, kind, &subject)).await
    }

    /// Every grant, by subject.
    pub async fn grants(&self) -> Result<Vec<GrantRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {GRANT_COLS} FROM grants ORDER BY subject_kind, subject, id"
            ))?;
            let rows = st.query_map([], grant_from)?;
            let mut out = Vec::new();
            for r in rows {
                if let Some(g) = r? {
                    out.push(g);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Sets the permissions of a subject on a scope (replacing what it had there); an
    /// empty set removes the grant. The subject must exist.
    pub async fn set_grant(
        &self,
        kind: Subject,
        subject: &str,
        grant: Grant,
    ) -> Result<(), StoreError> {
        let subject = subject.to_string();
        self.write(move |t| {
            let exists: i64 = match kind {
                Subject::User => t.query_row(
                    "SELECT COUNT(*) FROM users WHERE name = ?1",
                    params![subject],
                    |r| r.get(0),
                )?,
                Subject::Token => t.query_row(
                    "SELECT COUNT(*) FROM api_tokens WHERE public_id = ?1 AND revoked_at IS NULL",
                    params![subject],
                    |r| r.get(0),
                )?,
            };
            if exists == 0 {
                return Err(StoreError::NotFound(format!(
                    "no {} '{subject}'",
                    kind.as_str()
                )));
            }
            let (scope_kind, scope) = grant.scope.to_stored();
            if grant.perms == Perms::NONE {
                t.execute(
                    "DELETE FROM grants WHERE subject_kind = ?1 AND subject = ?2 AND scope_kind = ?3 AND scope = ?4",
                    params![kind.as_str(), subject, scope_kind, scope],
                )?;
                return Ok(());
            }
            t.execute(
                "INSERT INTO grants(subject_kind, subject, scope_kind, scope, perms, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(subject_kind, subject, scope_kind, scope) DO UPDATE SET perms = excluded.perms",
                params![kind.as_str(), subject, scope_kind, scope, grant.perms.to_stored(), now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes a grant by id.
    pub async fn delete_grant(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |t| {
            let n = t.execute("DELETE FROM grants WHERE id = ?1", params![id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no grant {id}")));
            }
            Ok(())
        })
        .await
    }

    /// Appends a full audit record (detached: never delays the request).
    pub async fn audit_record(&self, e: NewAudit) -> Result<(), StoreError> {
        self.write_detached("audit", move |t| {
            t.execute(
                "INSERT INTO audit(ts, actor, action, target, detail, program, result, address)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    now_ms(),
                    e.actor,
                    e.action,
                    e.target,
                    e.detail,
                    e.program,
                    e.result,
                    e.address
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// A page of the audit log, newest first.
    pub async fn audit_page(&self, f: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare(
                "SELECT id, ts, actor, action, target, program, result, address, detail FROM audit
                 WHERE (?1 IS NULL OR actor = ?1)
                   AND (?2 IS NULL OR program = ?2 OR (program IS NULL AND target = ?2))
                   AND (?3 IS NULL OR action = ?3 OR action LIKE ?3 || '.%')
                   AND (?4 IS NULL OR ts >= ?4)
                   AND (?5 IS NULL OR ts < ?5)
                   AND (?6 IS NULL OR id < ?6)
                 ORDER BY id DESC LIMIT ?7",
            )?;
            let rows = st.query_map(
                params![
                    f.actor, f.program, f.action, f.since, f.until, f.before, f.limit
                ],
                |r| {
                    Ok(AuditRecord {
                        id: r.get(0)?,
                        ts: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        program: r.get(5)?,
                        result: r.get(6)?,
                        address: r.get(7)?,
                        detail: r.get(8)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
