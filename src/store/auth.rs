//! Users, API tokens, browser sessions and the audit log. Secrets are stored only as
//! hashes; this module never sees a plaintext password or token.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_ms};

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

    /// A token by its public id (revoked ones included; the caller checks).
    pub async fn token(&self, public_id: &str) -> Result<Option<TokenRow>, StoreError> {
        let public_id = public_id.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE public_id = ?1"),
                params![public_id],
                token_from,
            )
            .optional()?)
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

    /// Creates a session for a user.
    pub async fn insert_session(
        &self,
        id_hash: Vec<u8>,
        user: &str,
        csrf: String,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let user = user.to_string();
        self.write(move |t| {
            let now = now_ms();
            t.execute("DELETE FROM sessions WHERE expires_at < ?1", params![now])?;
            let n = t.execute(
                "INSERT INTO sessions(id_hash, user_id, csrf, created_at, expires_at)
                 SELECT ?1, id, ?3, ?4, ?5 FROM users WHERE name = ?2",
                params![id_hash, user, csrf, now, expires_at],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user named '{user}'")));
            }
            Ok(())
        })
        .await
    }

    /// A live (unexpired) session by the hash of its cookie value.
    pub async fn session(&self, id_hash: Vec<u8>) -> Result<Option<SessionRow>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT u.name, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2",
                params![id_hash, now_ms()],
                |r| {
                    Ok(SessionRow {
                        user: r.get(0)?,
                        role: r.get(1)?,
                        csrf: r.get(2)?,
                    })
                },
            )
            .optional()?)
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
