//! Time-based one-time passwords (RFC 6238 as authenticator apps expect: HMAC-SHA-1, 30 s
//! steps, 6 digits, one step of clock skew either way) through `totp-rs`, the QR code of
//! the `otpauth://` URI as SVG (`qrcode`), and recovery codes.

use qrcode::QrCode;
use qrcode::render::svg;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Totp};

/// Issuer name shown by authenticator apps.
pub const ISSUER: &str = "warden";
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Letters of recovery codes: no 0/o, 1/l/i to misread.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A fresh 160-bit secret (RFC 4226's recommended size).
pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; 20]>().to_vec()
}

/// The TOTP of `secret` for account `user`.
pub fn totp(secret: &[u8], user: &str) -> Result<Totp, String> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(user)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| format!("cannot set up the one-time password of '{user}': {e}"))
}

/// The step a `code` is valid for at unix time `now_s`, if any (one step of skew).
pub fn check(totp: &Totp, code: &str, now_s: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    totp.check(&code, now_s)
}

/// True when `code` looks like a TOTP code (6 digits) rather than a recovery code.
pub fn is_totp_code(code: &str) -> bool {
    let digits: Vec<char> = code.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.iter().all(char::is_ascii_digit)
}

/// The `otpauth://` URI an authenticator app reads.
pub fn uri(totp: &Totp) -> Result<String, String> {
    totp.to_url()
        .map_err(|e| format!("cannot write the otpauth URI: {e}"))
}

/// The URI as an SVG QR code.
pub fn qr_svg(uri: &str) -> Result<String, String> {
    let code = QrCode::new(uri.as_bytes()).map_err(|e| format!("cannot make the QR code: {e}"))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Fresh recovery codes as shown to the user (`xxxxx-xxxxx`, about 49 bits each).
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let letters: String = (0..10)
                .map(|_| {
                    let i = rand::random_range(0..ALPHABET.len());
                    char::from(ALPHABET[i])
                })
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of its letters (case, spaces and dashes
/// ignored). A fast hash is enough for a random value of this size that works once.
pub fn recovery_hash(code: &str) -> Vec<u8> {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(norm.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector_and_skew() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", T = 59 s gives
        // 94287082 in 8 digits; its last 6 digits are the 6-digit code.
        let t = totp(b"12345678901234567890", "alice").expect("totp");
        assert_eq!(check(&t, "287082", 59), Some(1));
        assert_eq!(check(&t, "287 082", 59 + 30), Some(1), "one step late");
        assert_eq!(check(&t, "287082", 59 + 90), None);
        assert_eq!(check(&t, "abcdef", 59), None);
        let u = uri(&t).expect("uri");
        assert!(
            u.starts_with("otpauth://totp/")
                && u.contains("secret=")
                && u.contains("issuer=warden")
        );
        assert!(qr_svg(&u).expect("svg").contains("<svg"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_loosely() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        let c = &codes[0];
        assert_eq!(
            recovery_hash(c),
            recovery_hash(&c.to_uppercase().replace('-', " "))
        );
        assert!(!is_totp_code(c) && is_totp_code("123 456"));
    }
}
