//! Users, API tokens, browser sessions and the audit log. Secrets are stored only as
//! hashes; this module never sees a plaintext password or token.

use rusqlite::{OptionalExtension, params};

use super::access::grants_in;
use super::{Store, StoreError, now_ms};
use crate::access::{Grant, Subject};

/// A user row.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Role name.
    pub role: String,
    /// Unix ms.
    pub created_at: i64,
}

/// An API token row (without its secret hash unless asked).
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Row id.
    pub id: i64,
    /// Public part of the token, used for lookup.
    pub public_id: String,
    /// Label.
    pub name: String,
    /// Role name.
    pub role: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last use (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Unix ms of revocation.
    pub revoked_at: Option<i64>,
}

/// A live session joined with its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: String,
    /// The CSRF token bound to the session.
    pub csrf: String,
    /// The session's public id (to list and end it).
    pub public_id: String,
    /// Unix ms of the last recorded use.
    pub last_seen_at: i64,
}

/// A session as its owner or an admin sees it: no secret in it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Public id.
    pub public_id: String,
    /// The user's name.
    pub user: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last recorded use (at most a minute behind).
    pub last_seen_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// The client's address at login.
    pub address: Option<String>,
    /// The browser's `User-Agent` at login.
    pub user_agent: Option<String>,
}

/// Where a new session comes from.
#[derive(Debug, Clone, Default)]
pub struct SessionOrigin {
    /// The client's address.
    pub address: Option<String>,
    /// The `User-Agent` header (cut to 300 characters).
    pub user_agent: Option<String>,
}

/// A user's two-factor state.
#[derive(Debug, Clone)]
pub struct TotpRow {
    /// The sealed secret (set at enrolment, before confirmation too).
    pub secret: Option<String>,
    /// True once a code was confirmed.
    pub enabled: bool,
    /// The last 30 s step a code was accepted for.
    pub last_step: Option<i64>,
}

fn user_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        password_hash: r.get(1)?,
        role: r.get(2)?,
        created_at: r.get(3)?,
    })
}

fn token_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        public_id: r.get(1)?,
        name: r.get(2)?,
        role: r.get(3)?,
        secret_hash: r.get(4)?,
        created_by: r.get(5)?,
        created_at: r.get(6)?,
        last_used_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

const TOKEN_COLS: &str =
    "id, public_id, name, role, secret_hash, created_by, created_at, last_used_at, revoked_at";

impl Store {
    /// Creates a user; `Conflict` if the name exists.
    pub async fn insert_user(
        &self,
        name: &str,
        hash: String,
        role: &str,
    ) -> Result<(), StoreError> {
        let (name, role) = (name.to_string(), role.to_string());
        self.write(move |t| {
            let n = t.execute(
                "INSERT INTO users(name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO NOTHING",
                params![name, hash, role, now_ms()],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "a user named '{name}' already exists"
                )));
            }
            Ok(())
        })
        .await
    }

    /// Replaces a user's password hash and ends their sessions.
    pub async fn set_password(&self, name: &str, hash: String) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user named '{name}'")));
            }
            t.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                params![name],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes a user (their sessions go with them).
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute("DELETE FROM users WHERE name = ?1", params![name])?;
            t.execute(
                "DELETE FROM grants WHERE subject_kind = 'user' AND subject = ?1",
                params![name],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user named '{name}'")));
            }
            Ok(())
        })
        .await
    }

    /// All users by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT name, password_hash, role, created_at FROM users ORDER BY name")?;
            let rows = st.query_map([], user_from)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// One user by name.
    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT name, password_hash, role, created_at FROM users WHERE name = ?1",
                params![name],
                user_from,
            )
            .optional()?)
        })
        .await
    }

    /// Stores a new token.
    pub async fn insert_token(
        &self,
        public_id: String,
        name: String,
        role: String,
        secret_hash: Vec<u8>,
        created_by: Option<String>,
    ) -> Result<i64, StoreError> {
        self.write(move |t| {
            t.execute(
                "INSERT INTO api_tokens(public_id, name, role, secret_hash, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![public_id, name, role, secret_hash, created_by, now_ms()],
            )?;
            Ok(t.last_insert_rowid())
        })
        .await
    }

    /// A token by its public id (revoked ones included; the caller checks) with its
    /// grants, in one trip to a reader.
    pub async fn token(
        &self,
        public_id: &str,
    ) -> Result<Option<(TokenRow, Vec<Grant>)>, StoreError> {
        let public_id = public_id.to_string();
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens WHERE public_id = ?1"
                ))?
                .query_row(params![public_id], token_from)
                .optional()?;
            match row {
                Some(row) => {
                    let grants = grants_in(c, Subject::Token, &row.public_id)?;
                    Ok(Some((row, grants)))
                }
                None => Ok(None),
            }
        })
        .await
    }

    /// All tokens, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id DESC"
            ))?;
            let rows = st.query_map([], token_from)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Revokes a token by row id or public id; returns its public id.
    pub async fn revoke_token(&self, key: &str) -> Result<String, StoreError> {
        let key = key.to_string();
        self.write(move |t| {
            let public_id: Option<String> = t
                .query_row(
                    "SELECT public_id FROM api_tokens WHERE public_id = ?1 OR CAST(id AS TEXT) = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(public_id) = public_id else {
                return Err(StoreError::NotFound(format!("no token '{key}'")));
            };
            t.execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE public_id = ?1 AND revoked_at IS NULL",
                params![public_id, now_ms()],
            )?;
            Ok(public_id)
        })
        .await
    }

    /// Records that a token was used (detached: never delays the request).
    pub async fn touch_token(&self, public_id: String) -> Result<(), StoreError> {
        self.write_detached("token last_used", move |t| {
            t.execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE public_id = ?1",
                params![public_id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Creates a session for a user; returns its public id.
    pub async fn insert_session(
        &self,
        id_hash: Vec<u8>,
        user: &str,
        csrf: String,
        expires_at: i64,
        origin: SessionOrigin,
    ) -> Result<String, StoreError> {
        let user = user.to_string();
        let public_id: String = rand::random::<[u8; 8]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let pid = public_id.clone();
        self.write(move |t| {
            let now = now_ms();
            t.execute("DELETE FROM sessions WHERE expires_at < ?1", params![now])?;
            let n = t.execute(
                "INSERT INTO sessions(id_hash, user_id, csrf, created_at, expires_at, public_id,
                                      last_seen_at, address, user_agent)
                 SELECT ?1, id, ?3, ?4, ?5, ?6, ?4, ?7, ?8 FROM users WHERE name = ?2",
                params![
                    id_hash,
                    user,
                    csrf,
                    now,
                    expires_at,
                    pid,
                    origin.address,
                    origin.user_agent
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user named '{user}'")));
            }
            Ok(())
        })
        .await?;
        Ok(public_id)
    }

    /// A live (unexpired) session by the hash of its cookie value, with its user's
    /// grants, in one trip to a reader.
    pub async fn session(
        &self,
        id_hash: Vec<u8>,
    ) -> Result<Option<(SessionRow, Vec<Grant>)>, StoreError> {
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT u.name, u.role, s.csrf, coalesce(s.public_id, ''),
                            coalesce(s.last_seen_at, s.created_at)
                     FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id_hash = ?1 AND s.expires_at > ?2",
                )?
                .query_row(params![id_hash, now_ms()], |r| {
                    Ok(SessionRow {
                        user: r.get(0)?,
                        role: r.get(1)?,
                        csrf: r.get(2)?,
                        public_id: r.get(3)?,
                        last_seen_at: r.get(4)?,
                    })
                })
                .optional()?;
            match row {
                Some(row) => {
                    let grants = grants_in(c, Subject::User, &row.user)?;
                    Ok(Some((row, grants)))
                }
                None => Ok(None),
            }
        })
        .await
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: Vec<u8>) -> Result<(), StoreError> {
        self.write(move |t| {
            t.execute("DELETE FROM sessions WHERE id_hash = ?1", params![id_hash])?;
            Ok(())
        })
        .await
    }

    /// Records that a session was used (detached: never delays the request).
    pub async fn touch_session(&self, public_id: String) -> Result<(), StoreError> {
        self.write_detached("session last_seen", move |t| {
            t.execute(
                "UPDATE sessions SET last_seen_at = ?2 WHERE public_id = ?1",
                params![public_id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Live sessions, newest first: of `user`, or of everyone.
    pub async fn sessions(&self, user: Option<String>) -> Result<Vec<SessionInfo>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare(
                "SELECT coalesce(s.public_id, ''), u.name, s.created_at,
                        coalesce(s.last_seen_at, s.created_at), s.expires_at, s.address, s.user_agent
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.expires_at > ?1 AND (?2 IS NULL OR u.name = ?2)
                 ORDER BY s.created_at DESC",
            )?;
            let rows = st.query_map(params![now_ms(), user], |r| {
                Ok(SessionInfo {
                    public_id: r.get(0)?,
                    user: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    address: r.get(5)?,
                    user_agent: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Ends the session with `public_id` (only if it is `user`'s, when given); returns
    /// whose it was. `NotFound` when there is no such session (of that user).
    pub async fn delete_session_by_id(
        &self,
        public_id: &str,
        user: Option<String>,
    ) -> Result<String, StoreError> {
        let public_id = public_id.to_string();
        self.write(move |t| {
            let owner: Option<String> = t
                .query_row(
                    "SELECT u.name FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.public_id = ?1 AND (?2 IS NULL OR u.name = ?2)",
                    params![public_id, user],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(owner) = owner else {
                return Err(StoreError::NotFound(format!("no session '{public_id}'")));
            };
            t.execute(
                "DELETE FROM sessions WHERE public_id = ?1",
                params![public_id],
            )?;
            Ok(owner)
        })
        .await
    }

    /// A user's two-factor state (`None`: no such user).
    pub async fn user_totp(&self, name: &str) -> Result<Option<TotpRow>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE name = ?1",
                params![name],
                |r| {
                    Ok(TotpRow {
                        secret: r.get(0)?,
                        enabled: r.get::<_, i64>(1)? != 0,
                        last_step: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Stores a new, not yet confirmed secret; `Conflict` while two-factor login is on.
    pub async fn set_totp_pending(&self, name: &str, sealed: String) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let enabled: Option<i64> = t
                .query_row(
                    "SELECT totp_enabled FROM users WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()?;
            match enabled {
                None => Err(StoreError::NotFound(format!("no user named '{name}'"))),
                Some(1) => Err(StoreError::Conflict(format!(
                    "two-factor login is already on for '{name}'; turn it off first to enrol again"
                ))),
                Some(_) => {
                    t.execute(
                        "UPDATE users SET totp_secret = ?2, totp_last_step = NULL WHERE name = ?1",
                        params![name, sealed],
                    )?;
                    Ok(())
                }
            }
        })
        .await
    }

    /// Turns two-factor login on after a confirmed code at `step`, replacing the
    /// recovery codes with `code_hashes`.
    pub async fn enable_totp(
        &self,
        name: &str,
        step: i64,
        code_hashes: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute(
                "UPDATE users SET totp_enabled = 1, totp_last_step = ?2
                 WHERE name = ?1 AND totp_secret IS NOT NULL AND totp_enabled = 0",
                params![name, step],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "'{name}' has no two-factor enrolment waiting for confirmation"
                )));
            }
            t.execute(
                "DELETE FROM recovery_codes WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                params![name],
            )?;
            for h in code_hashes {
                t.execute(
                    "INSERT OR IGNORE INTO recovery_codes(user_id, code_hash)
                     SELECT id, ?2 FROM users WHERE name = ?1",
                    params![name, h],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Turns two-factor login off and forgets the secret and recovery codes.
    pub async fn disable_totp(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute(
                "UPDATE users SET totp_secret = NULL, totp_enabled = 0, totp_last_step = NULL
                 WHERE name = ?1",
                params![name],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user named '{name}'")));
            }
            t.execute(
                "DELETE FROM recovery_codes WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                params![name],
            )?;
            Ok(())
        })
        .await
    }

    /// Accepts a code of `step` once: false when that step (or a later one) was used.
    pub async fn accept_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute(
                "UPDATE users SET totp_last_step = ?2
                 WHERE name = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![name, step],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Spends a recovery code: false when it is unknown or was used.
    pub async fn use_recovery_code(&self, name: &str, hash: Vec<u8>) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute(
                "UPDATE recovery_codes SET used_at = ?3
                 WHERE user_id = (SELECT id FROM users WHERE name = ?1) AND code_hash = ?2
                   AND used_at IS NULL",
                params![name, hash, now_ms()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// How many unused recovery codes a user has.
    pub async fn recovery_codes_left(&self, name: &str) -> Result<i64, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM recovery_codes
                 WHERE user_id = (SELECT id FROM users WHERE name = ?1) AND used_at IS NULL",
                params![name],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// A stored security setting.
    pub async fn auth_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT value FROM auth_settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Stores a security setting.
    pub async fn set_auth_setting(&self, key: &str, value: String) -> Result<(), StoreError> {
        self.upsert("auth_settings", ("key", key.to_string()), ("value", value))
            .await
    }

    /// Appends to the audit log (detached).
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        let (actor, action, target) = (actor.to_string(), action.to_string(), target.to_string());
        self.write_detached("audit", move |t| {
            t.execute(
                "INSERT INTO audit(ts, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![now_ms(), actor, action, target, detail],
            )?;
            Ok(())
        })
        .await
    }
}
