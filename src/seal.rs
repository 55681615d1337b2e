//! Secrets at rest in the store: sealed with ChaCha20-Poly1305 (ring) under a key of this
//! warden's own in the data directory (0600, made on first use). A copy of the database
//! alone — a backup, a support bundle — does not reveal them. Two keys, one per use
//! ([`KeyFile`]): the fleet nodes' tokens (`fleet.key`) and the users' TOTP secrets
//! (`auth.key`). Separate files so that losing or replacing one (re-adding the fleet
//! nodes is the documented cure for a lost `fleet.key`) never disables every user's
//! two-factor login, and the other way round. A third, `secrets.key` ([`SECRETS`]), seals
//! the secret fields of the definitions (see `store::sealed`); `WARDEN_SECRET_KEY` (64
//! hex digits) may stand in for that file, and `warden secrets rotate` replaces it.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks a sealed token in the store (and its format version).
const PREFIX: &str = "sealed1:";

/// Which key, and what to tell the admin when it is lost or wrong.
#[derive(Debug, Clone, Copy)]
pub struct KeyFile {
    /// File name in the data directory.
    pub file: &'static str,
    /// What is sealed with it.
    pub what: &'static str,
    /// How to recover when the key is lost or does not open a value.
    pub cure: &'static str,
}

/// The key of the fleet nodes' tokens.
pub const FLEET: KeyFile = KeyFile {
    file: "fleet.key",
    what: "the fleet nodes' tokens",
    cure: "remove the node and add it again with `warden fleet add`",
};

/// The key of the users' TOTP (two-factor) secrets.
pub const AUTH: KeyFile = KeyFile {
    file: "auth.key",
    what: "the users' two-factor secrets",
    cure: "restore the key from a backup, or turn two-factor login off for the user (an admin can) and enrol again",
};

/// The key of the secret fields of definitions: programs' passwords and secret env values,
/// alert channels' URLs and tokens, HTTP tasks' URLs and headers.
pub const SECRETS: KeyFile = KeyFile {
    file: "secrets.key",
    what: "the secret fields of programs, alert channels, schedules and jobs",
    cure: "restore the key file (or WARDEN_SECRET_KEY) from a backup; without it the secrets must be entered again",
};

/// The environment variable that, when set, is the key of [`SECRETS`] instead of the file.
pub const SECRET_KEY_ENV: &str = "WARDEN_SECRET_KEY";

/// The key file's path in `data_dir`.
pub fn key_path(data_dir: &Path, key: KeyFile) -> PathBuf {
    data_dir.join(key.file)
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

/// Seals and opens secrets with one key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
    kind: KeyFile,
}

impl Sealer {
    fn from_key(bytes: &[u8], path: &Path, kind: KeyFile) -> Result<Sealer, String> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| {
            format!(
                "{} does not hold a 32-byte key for {}; {}",
                path.display(),
                kind.what,
                kind.cure
            )
        })?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
            kind,
        })
    }

    /// The key of `data_dir`, made (readable by warden's user only) when missing.
    pub fn open_or_create(data_dir: &Path, kind: KeyFile) -> Result<Sealer, String> {
        let path = key_path(data_dir, kind);
        if path.exists() {
            return Sealer::load(data_dir, kind);
        }
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "the system's random source failed".to_string())?;
        crate::os::write_private(&path, &hex(&key))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Sealer::from_key(&key, &path, kind)
    }

    /// The key of `data_dir`, which must exist.
    pub fn load(data_dir: &Path, kind: KeyFile) -> Result<Sealer, String> {
        let path = key_path(data_dir, kind);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read the key of {} {}: {e}; if it is lost, {}",
                kind.what,
                path.display(),
                kind.cure
            )
        })?;
        let bytes = unhex(text.trim()).ok_or_else(|| {
            format!(
                "{} is not a hex key; restore it from a backup",
                path.display()
            )
        })?;
        Sealer::from_key(&bytes, &path, kind)
    }

    /// The key of [`SECRETS`]: `WARDEN_SECRET_KEY` when set (64 hex digits), else the key
    /// file of `data_dir`, made when missing.
    pub fn for_secrets(data_dir: &Path) -> Result<Sealer, String> {
        match std::env::var(SECRET_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => {
                let bytes = unhex(text.trim())
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| {
                        format!("{SECRET_KEY_ENV} must be 64 hex digits (a 32-byte key)")
                    })?;
                Sealer::from_key(&bytes, Path::new(SECRET_KEY_ENV), SECRETS)
            }
            _ => Sealer::open_or_create(data_dir, SECRETS),
        }
    }

    /// A fresh random key of `kind`, and its text as a key file holds it.
    pub fn generate(kind: KeyFile) -> Result<(Sealer, String), String> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "the system's random source failed".to_string())?;
        let sealer = Sealer::from_key(&key, Path::new(kind.file), kind)?;
        Ok((sealer, hex(&key)))
    }

    /// The key held in the file at `path` (any name, e.g. a key being rotated in).
    pub fn load_file(path: &Path, kind: KeyFile) -> Result<Sealer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let bytes =
            unhex(text.trim()).ok_or_else(|| format!("{} is not a hex key", path.display()))?;
        Sealer::from_key(&bytes, path, kind)
    }

    /// True when `stored` is in sealed form (not necessarily under this key).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// `token` (any secret text) sealed for the store: `sealed1:` + hex(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, token: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| "the system's random source failed".to_string())?;
        let mut data = token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .map_err(|_| format!("cannot seal {}", self.kind.what))?;
        Ok(format!("{PREFIX}{}{}", hex(&nonce), hex(&data)))
    }

    /// The secret from its stored form.
    pub fn unseal(&self, stored: &str) -> Result<String, String> {
        let kind = self.kind;
        let bad = || {
            format!(
                "cannot decrypt {} (was DATA/{} replaced?); {}",
                kind.what, kind.file, kind.cure
            )
        };
        let bytes = stored
            .strip_prefix(PREFIX)
            .and_then(unhex)
            .ok_or_else(bad)?;
        if bytes.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut data)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_another_key_cannot_open_them() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let s = Sealer::open_or_create(a.path(), FLEET).expect("key");
        let sealed = s.seal("wdn_abc_secret").expect("seal");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("secret"));
        assert_ne!(
            sealed,
            s.seal("wdn_abc_secret").expect("seal"),
            "fresh nonce"
        );
        let again = Sealer::load(a.path(), FLEET).expect("same key");
        assert_eq!(again.unseal(&sealed).expect("open"), "wdn_abc_secret");
        let other = Sealer::open_or_create(b.path(), FLEET).expect("other key");
        assert!(other.unseal(&sealed).is_err());
        assert!(again.unseal("wdn_plain").is_err());
        assert!(Sealer::load(&a.path().join("missing"), FLEET).is_err());
        let auth = Sealer::open_or_create(a.path(), AUTH).expect("auth key");
        assert!(auth.unseal(&sealed).is_err(), "the keys are separate");
    }
}
