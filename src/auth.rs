//! Users, roles, API tokens and browser sessions: hashing, verification and the rules
//! for who may do what. Shared by the HTTP API and the CLI (which edits users directly
//! in the store, so it works whether or not the server runs).
//!
//! Secrets: passwords are hashed with argon2id; tokens and session ids are 256-bit
//! random values stored as SHA-256 (a slow hash adds nothing to a random secret).
//! Nothing here logs or returns a secret after it was first shown.

pub mod lockout;
pub mod totp;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::access::Subject;
use crate::access::{Access, Grant};
use crate::seal::{self, Sealer};
use crate::store::auth::SessionOrigin;
use crate::store::{Store, StoreError, now_ms};

/// What a principal may do. Ordered: each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Nothing beyond what grants give (a friend who may only touch one server).
    None,
    /// Read-only.
    Viewer,
    /// Start, stop, restart, console, actions.
    Operator,
    /// Everything, including defining programs (which is code execution) and users.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or user-given name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "none" => Some(Role::None),
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User name, or `token:<name>` for API tokens.
    pub name: String,
    /// Granted role.
    pub role: Role,
    /// For browser sessions, the CSRF token state-changing requests must echo.
    pub csrf: Option<String>,
    /// Per-program permissions beyond the role.
    pub grants: Vec<Grant>,
    /// For browser sessions, the session's public id.
    pub session_id: Option<String>,
}

impl Principal {
    /// The role bundle and grants, to ask what the principal may do.
    pub fn access(&self) -> Access {
        Access {
            role: self.role,
            grants: self.grants.clone(),
        }
    }
}

/// Authentication failures. Deliberately vague towards the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user/password or unknown, revoked or malformed token.
    #[error("invalid credentials")]
    Invalid,
    /// The password does not meet the rules.
    #[error("{0}")]
    WeakPassword(String),
    /// A user or token name problem.
    #[error("{0}")]
    BadInput(String),
    /// Hashing failed (should not happen).
    #[error("password hashing failed")]
    Hash,
    /// A wrong or already used two-factor or recovery code.
    #[error("wrong or already used code")]
    WrongCode,
    /// The password step of a two-factor login is unknown or has expired.
    #[error("this sign-in has expired; enter your password again")]
    LoginExpired,
    /// Two-factor login is needed for this but is not set up (or the reverse).
    #[error("{0}")]
    TwoFactorState(String),
    /// The sealing key of the two-factor secrets failed.
    #[error("{0}")]
    Seal(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long the password step of a two-factor login stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(300);
/// Wrong codes allowed per password step.
const TICKET_TRIES: u32 = 5;
/// The stored setting that requires two-factor login of every user.
pub const REQUIRE_2FA: &str = "require_2fa";

/// A password step that still needs a code: kept in memory only (a restart asks for the
/// password again), never a session.
struct Ticket {
    user: String,
    /// True when the user must enrol (the site requires two-factor login).
    enrol: bool,
    expires: Instant,
    tries: u32,
}

/// What the password step leads to.
pub enum LoginStep {
    /// Signed in: no second factor needed.
    Done(NewSession),
    /// A code is needed; send it with this ticket.
    Code(String),
    /// The site requires two-factor login and the user has none: enrol with this ticket.
    Enrol(String),
}

/// A session just created.
pub struct NewSession {
    /// The cookie value (shown once).
    pub cookie: String,
    /// Who it is.
    pub principal: Principal,
}

/// A new, unconfirmed two-factor enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolment {
    /// The secret in base32, for typing into an app by hand.
    pub secret: String,
    /// The `otpauth://totp/…` URI.
    pub uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

/// Minimum password length.
pub const MIN_PASSWORD: usize = 8;
/// How long a verified token is trusted without asking the store again. Revocation
/// through the API takes effect at once; through the CLI (another process) within this.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(2);

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hashes a password with argon2id (slow on purpose: run it on a blocking thread).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::WeakPassword(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        )));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hash)
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a user name: 1–64 chars of letters, digits, `.`, `-`, `_`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A newly created token: the only time its secret is visible.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    /// Row id.
    pub id: i64,
    /// Public id (safe to show; used to revoke).
    pub public_id: String,
    /// The full token, to put in `Authorization: Bearer …`. Shown once.
    pub token: String,
}

/// Authentication service.
pub struct Auth {
    store: Store,
    session_ttl: Duration,
    /// Verified tokens by full-token hash. A std mutex, never held across `.await`.
    cache: Mutex<HashMap<Vec<u8>, (Principal, Instant, String)>>,
    /// A dummy hash verified when the user does not exist, so timing does not reveal
    /// which user names exist.
    dummy_hash: String,
    /// The data directory, where the key of the two-factor secrets lives.
    data_dir: Option<PathBuf>,
    /// Password steps waiting for a code, by SHA-256 of the ticket.
    tickets: Mutex<HashMap<Vec<u8>, Ticket>>,
    /// Failed logins by account and address.
    pub lockout: lockout::Lockout,
}

impl Auth {
    /// Creates the service.
    pub fn new(store: Store, session_ttl: Duration) -> Auth {
        let dummy_hash = Argon2::default()
            .hash_password(b"timing-equaliser")
            .map(|h| h.to_string())
            .unwrap_or_default();
        Auth {
            store,
            session_ttl,
            cache: Mutex::new(HashMap::new()),
            dummy_hash,
            data_dir: None,
            tickets: Mutex::new(HashMap::new()),
            lockout: lockout::Lockout::default(),
        }
    }

    /// Seals two-factor secrets with the key in `data_dir` (`seal::AUTH`).
    pub fn sealing_in(mut self, data_dir: PathBuf) -> Auth {
        self.data_dir = Some(data_dir);
        self
    }

    fn sealer(&self) -> Result<Sealer, AuthError> {
        let dir = self.data_dir.as_ref().ok_or_else(|| {
            AuthError::Seal("two-factor login needs the data directory's key".into())
        })?;
        Sealer::open_or_create(dir, seal::AUTH).map_err(AuthError::Seal)
    }

    /// Creates a user.
    pub async fn add_user(
        &self,
        name: &str,
        password: String,
        role: Role,
    ) -> Result<(), AuthError> {
        if !valid_user_name(name) {
            return Err(AuthError::BadInput(format!(
                "{name:?} is not a valid user name: use 1-64 letters, digits, '.', '-' or '_'"
            )));
        }
        let hash = blocking(move || hash_password(&password)).await?;
        self.store.insert_user(name, hash, role.as_str()).await?;
        Ok(())
    }

    /// Changes a password (ends the user's sessions).
    pub async fn set_password(&self, name: &str, password: String) -> Result<(), AuthError> {
        let hash = blocking(move || hash_password(&password)).await?;
        self.store.set_password(name, hash).await?;
        Ok(())
    }

    /// Checks a password and says what comes next: a session, a code, or enrolment.
    /// No session exists until every step passed.
    pub async fn login(
        &self,
        name: &str,
        password: String,
        origin: SessionOrigin,
    ) -> Result<LoginStep, AuthError> {
        let user = self.store.user(name).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let ok = blocking(move || Ok(verify_password(&hash, &password))).await?;
        let Some(user) = user.filter(|_| ok) else {
            return Err(AuthError::Invalid);
        };
        let totp = self.store.user_totp(&user.name).await?;
        if totp.as_ref().is_some_and(|t| t.enabled) {
            return Ok(LoginStep::Code(self.new_ticket(&user.name, false)));
        }
        if self.require_2fa().await? {
            return Ok(LoginStep::Enrol(self.new_ticket(&user.name, true)));
        }
        Ok(LoginStep::Done(
            self.open_session(&user.name, origin).await?,
        ))
    }

    /// Whether every user must use two-factor login.
    pub async fn require_2fa(&self) -> Result<bool, AuthError> {
        Ok(self.store.auth_setting(REQUIRE_2FA).await?.as_deref() == Some("true"))
    }

    /// Sets whether every user must use two-factor login.
    pub async fn set_require_2fa(&self, on: bool) -> Result<(), AuthError> {
        self.store
            .set_auth_setting(REQUIRE_2FA, on.to_string())
            .await?;
        Ok(())
    }

    fn new_ticket(&self, user: &str, enrol: bool) -> String {
        let ticket = random_secret();
        let mut t = crate::sync::lock(&self.tickets);
        let now = Instant::now();
        t.retain(|_, v| v.expires > now);
        t.insert(
            sha256(ticket.as_bytes()),
            Ticket {
                user: user.to_string(),
                enrol,
                expires: now + TICKET_TTL,
                tries: 0,
            },
        );
        ticket
    }

    /// The user and kind (`true`: enrol) of a live ticket.
    pub fn ticket(&self, ticket: &str) -> Result<(String, bool), AuthError> {
        let t = crate::sync::lock(&self.tickets);
        match t.get(&sha256(ticket.as_bytes())) {
            Some(v) if v.expires > Instant::now() => Ok((v.user.clone(), v.enrol)),
            _ => Err(AuthError::LoginExpired),
        }
    }

    fn spend_try(&self, ticket: &str) {
        let mut t = crate::sync::lock(&self.tickets);
        let key = sha256(ticket.as_bytes());
        if let Some(v) = t.get_mut(&key) {
            v.tries += 1;
            if v.tries >= TICKET_TRIES {
                t.remove(&key);
            }
        }
    }

    /// The second step of a login: a code (or recovery code) for a `Code` ticket, or the
    /// first code of a new enrolment for an `Enrol` ticket (then also the recovery
    /// codes, shown once).
    pub async fn login_code(
        &self,
        ticket: &str,
        code: &str,
        origin: SessionOrigin,
    ) -> Result<(NewSession, Option<Vec<String>>), AuthError> {
        let (user, enrol) = self.ticket(ticket)?;
        let result = if enrol {
            self.enrol_confirm(&user, code).await.map(Some)
        } else {
            self.verify_second_factor(&user, code).await.map(|()| None)
        };
        let codes = match result {
            Ok(c) => c,
            Err(e) => {
                if matches!(e, AuthError::WrongCode) {
                    self.spend_try(ticket);
                }
                return Err(e);
            }
        };
        crate::sync::lock(&self.tickets).remove(&sha256(ticket.as_bytes()));
        Ok((self.open_session(&user, origin).await?, codes))
    }

    async fn open_session(
        &self,
        name: &str,
        origin: SessionOrigin,
    ) -> Result<NewSession, AuthError> {
        let user = self.store.user(name).await?.ok_or(AuthError::Invalid)?;
        let role = Role::parse(&user.role).ok_or(AuthError::Invalid)?;
        let grants = self.store.grants_of(Subject::User, &user.name).await?;
        let cookie = random_secret();
        let csrf = random_secret();
        let expires =
            now_ms() + i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let public_id = self
            .store
            .insert_session(
                sha256(cookie.as_bytes()),
                &user.name,
                csrf.clone(),
                expires,
                origin,
            )
            .await?;
        Ok(NewSession {
            cookie,
            principal: Principal {
                name: user.name,
                role,
                csrf: Some(csrf),
                grants,
                session_id: Some(public_id),
            },
        })
    }

    /// Starts (or restarts) a two-factor enrolment: a new secret, sealed in the store,
    /// not in force until [`Auth::enrol_confirm`].
    pub async fn enrol_begin(&self, user: &str) -> Result<Enrolment, AuthError> {
        let secret = totp::new_secret();
        let t = totp::totp(&secret, user).map_err(AuthError::BadInput)?;
        let uri = totp::uri(&t).map_err(AuthError::BadInput)?;
        let qr_svg = totp::qr_svg(&uri).map_err(AuthError::BadInput)?;
        let sealed = self
            .sealer()?
            .seal(&hex(&secret))
            .map_err(AuthError::Seal)?;
        self.store.set_totp_pending(user, sealed).await?;
        Ok(Enrolment {
            secret: t.secret().to_base32(),
            uri,
            qr_svg,
        })
    }

    async fn user_totp(&self, user: &str) -> Result<(totp_rs::Totp, bool), AuthError> {
        let row = self
            .store
            .user_totp(user)
            .await?
            .ok_or(AuthError::Invalid)?;
        let Some(sealed) = row.secret else {
            return Err(AuthError::TwoFactorState(format!(
                "'{user}' has not started a two-factor enrolment"
            )));
        };
        let secret_hex = self.sealer()?.unseal(&sealed).map_err(AuthError::Seal)?;
        let secret = unhex(&secret_hex)
            .ok_or_else(|| AuthError::Seal("the stored two-factor secret is damaged".into()))?;
        let t = totp::totp(&secret, user).map_err(AuthError::BadInput)?;
        Ok((t, row.enabled))
    }

    fn now_s() -> u64 {
        u64::try_from(now_ms() / 1000).unwrap_or(0)
    }

    /// Confirms an enrolment with a current code: turns two-factor login on and returns
    /// the recovery codes (shown once, stored hashed).
    pub async fn enrol_confirm(&self, user: &str, code: &str) -> Result<Vec<String>, AuthError> {
        let (t, enabled) = self.user_totp(user).await?;
        if enabled {
            return Err(AuthError::TwoFactorState(format!(
                "two-factor login is already on for '{user}'"
            )));
        }
        let step = totp::check(&t, code, Self::now_s()).ok_or(AuthError::WrongCode)?;
        let codes = totp::recovery_codes();
        let hashes = codes.iter().map(|c| totp::recovery_hash(c)).collect();
        self.store
            .enable_totp(user, i64::try_from(step).unwrap_or(i64::MAX), hashes)
            .await?;
        Ok(codes)
    }

    /// Checks a second factor of a user with two-factor login on: a current code not
    /// used before, or an unused recovery code (spent by this call).
    pub async fn verify_second_factor(&self, user: &str, code: &str) -> Result<(), AuthError> {
        let (t, enabled) = self.user_totp(user).await?;
        if !enabled {
            return Err(AuthError::TwoFactorState(format!(
                "two-factor login is not on for '{user}'"
            )));
        }
        if totp::is_totp_code(code) {
            let step = totp::check(&t, code, Self::now_s()).ok_or(AuthError::WrongCode)?;
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            if self.store.accept_totp_step(user, step).await? {
                return Ok(());
            }
            return Err(AuthError::WrongCode);
        }
        if self
            .store
            .use_recovery_code(user, totp::recovery_hash(code))
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::WrongCode)
        }
    }

    /// Turns two-factor login off for `user`. `code` must be a valid second factor
    /// unless an admin does it (`by_admin`).
    pub async fn disable_2fa(
        &self,
        user: &str,
        code: Option<&str>,
        by_admin: bool,
    ) -> Result<(), AuthError> {
        if !by_admin {
            let code = code.ok_or_else(|| {
                AuthError::BadInput(
                    "turning two-factor login off needs a current code or a recovery code".into(),
                )
            })?;
            self.verify_second_factor(user, code).await?;
        }
        self.store.disable_totp(user).await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn logout(&self, cookie: &str) -> Result<(), AuthError> {
        self.store.delete_session(sha256(cookie.as_bytes())).await?;
        Ok(())
    }

    /// Resolves a session cookie.
    pub async fn session(&self, cookie: &str) -> Result<Principal, AuthError> {
        let (row, grants) = self
            .store
            .session(sha256(cookie.as_bytes()))
            .await?
            .ok_or(AuthError::Invalid)?;
        // Record use at most once a minute per session, off the request path.
        if now_ms() - row.last_seen_at > 60_000
            && !row.public_id.is_empty()
            && let Err(e) = self.store.touch_session(row.public_id.clone()).await
        {
            tracing::debug!(error = %e, "cannot record session use");
        }
        Ok(Principal {
            name: row.user,
            role: Role::parse(&row.role).ok_or(AuthError::Invalid)?,
            csrf: Some(row.csrf),
            grants,
            session_id: Some(row.public_id),
        })
    }

    /// Creates an API token.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        created_by: Option<String>,
    ) -> Result<NewToken, AuthError> {
        if name.trim().is_empty() || name.len() > 100 {
            return Err(AuthError::BadInput(
                "a token needs a name of 1-100 characters".into(),
            ));
        }
        let public_id = hex(&rand::random::<[u8; 6]>());
        let secret = random_secret();
        let id = self
            .store
            .insert_token(
                public_id.clone(),
                name.to_string(),
                role.as_str().to_string(),
                sha256(secret.as_bytes()),
                created_by,
            )
            .await?;
        Ok(NewToken {
            id,
            token: format!("wdn_{public_id}_{secret}"),
            public_id,
        })
    }

    /// Revokes a token by id or public id; effective immediately in this process.
    pub async fn revoke_token(&self, key: &str) -> Result<String, AuthError> {
        let public_id = self.store.revoke_token(key).await?;
        crate::sync::lock(&self.cache).retain(|_, (_, _, pid)| *pid != public_id);
        Ok(public_id)
    }

    /// Forgets every cached token, so changed grants apply to the next request.
    pub fn forget_cached(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    /// Resolves a bearer token.
    pub async fn token(&self, token: &str) -> Result<Principal, AuthError> {
        let key = sha256(token.as_bytes());
        if let Some((p, at, _)) = crate::sync::lock(&self.cache).get(&key)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(p.clone());
        }
        let rest = token.strip_prefix("wdn_").ok_or(AuthError::Invalid)?;
        let (public_id, secret) = rest.split_once('_').ok_or(AuthError::Invalid)?;
        let (row, grants) = self
            .store
            .token(public_id)
            .await?
            .ok_or(AuthError::Invalid)?;
        let matches: bool = row.secret_hash.ct_eq(&sha256(secret.as_bytes())).into();
        if !matches || row.revoked_at.is_some() {
            return Err(AuthError::Invalid);
        }
        let principal = Principal {
            name: format!("token:{}", row.name),
            role: Role::parse(&row.role).ok_or(AuthError::Invalid)?,
            csrf: None,
            grants,
            session_id: None,
        };
        // Record use at most once a minute per token, off the request path.
        if row.last_used_at.is_none_or(|t| now_ms() - t > 60_000)
            && let Err(e) = self.store.touch_token(row.public_id.clone()).await
        {
            tracing::debug!(error = %e, "cannot record token use");
        }
        {
            let mut c = crate::sync::lock(&self.cache);
            if c.len() > 1024 {
                c.clear();
            }
            c.insert(key, (principal.clone(), Instant::now(), row.public_id));
        }
        Ok(principal)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AuthError::Hash)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse!"));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::WeakPassword(_))
        ));
    }

    #[tokio::test]
    async fn tokens_verify_and_revoke() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("w.db")).expect("open");
        let auth = Auth::new(store, Duration::from_secs(60));
        let t = auth
            .create_token("ci", Role::Operator, None)
            .await
            .expect("create");
        let p = auth.token(&t.token).await.expect("valid");
        assert_eq!(p.role, Role::Operator);
        assert!(auth.token(&format!("{}x", t.token)).await.is_err());
        assert!(auth.token("garbage").await.is_err());
        auth.revoke_token(&t.public_id).await.expect("revoke");
        assert!(auth.token(&t.token).await.is_err());
    }
}
