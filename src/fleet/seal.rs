//! Node tokens at rest: sealed with ChaCha20-Poly1305 (ring) under a key of this warden's
//! own, `DATA/fleet.key` (0600, made on first use). A copy of the database alone — a
//! backup, a support bundle — does not reveal the nodes' tokens.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks a sealed token in the store (and its format version).
const PREFIX: &str = "sealed1:";

/// The key file's path in `data_dir`.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("fleet.key")
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

/// Seals and opens node tokens.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Sealer {
    fn from_key(bytes: &[u8], path: &Path) -> Result<Sealer, String> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| {
            format!(
                "{} does not hold a 32-byte key; restore it from a backup, or delete it and add every fleet node again",
                path.display()
            )
        })?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// The key of `data_dir`, made (readable by warden's user only) when missing.
    pub fn open_or_create(data_dir: &Path) -> Result<Sealer, String> {
        let path = key_path(data_dir);
        if path.exists() {
            return Sealer::load(data_dir);
        }
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "the system's random source failed".to_string())?;
        crate::os::write_private(&path, &hex(&key))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Sealer::from_key(&key, &path)
    }

    /// The key of `data_dir`, which must exist.
    pub fn load(data_dir: &Path) -> Result<Sealer, String> {
        let path = key_path(data_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read the fleet token key {}: {e}; add the nodes again with `warden fleet add` if it is lost",
                path.display()
            )
        })?;
        let bytes = unhex(text.trim()).ok_or_else(|| {
            format!(
                "{} is not a hex key; restore it from a backup",
                path.display()
            )
        })?;
        Sealer::from_key(&bytes, &path)
    }

    /// `token` sealed for the store: `sealed1:` + hex(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, token: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| "the system's random source failed".to_string())?;
        let mut data = token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .map_err(|_| "cannot seal the token".to_string())?;
        Ok(format!("{PREFIX}{}{}", hex(&nonce), hex(&data)))
    }

    /// The token from its stored form.
    pub fn unseal(&self, stored: &str) -> Result<String, String> {
        let bad = || {
            "cannot decrypt the node's token (was DATA/fleet.key replaced?); remove the node and add it again".to_string()
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
        let s = Sealer::open_or_create(a.path()).expect("key");
        let sealed = s.seal("wdn_abc_secret").expect("seal");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("secret"));
        assert_ne!(
            sealed,
            s.seal("wdn_abc_secret").expect("seal"),
            "fresh nonce"
        );
        let again = Sealer::load(a.path()).expect("same key");
        assert_eq!(again.unseal(&sealed).expect("open"), "wdn_abc_secret");
        let other = Sealer::open_or_create(b.path()).expect("other key");
        assert!(other.unseal(&sealed).is_err());
        assert!(again.unseal("wdn_plain").is_err());
        assert!(Sealer::load(&a.path().join("missing")).is_err());
    }
}
