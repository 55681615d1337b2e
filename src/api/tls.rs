//! warden's own HTTPS (`[api] tls_cert` and `tls_key`): the certificate chain and key are
//! read from PEM files and read again when either file changes, so a renewed certificate
//! (certbot, acme.sh, a copied file) is served without a restart.
//!
//! The files are looked at from the TLS handshake itself, at most once a second, rather
//! than by a watcher task: an idle warden does no work for them, and a new connection
//! after a renewal always sees the new certificate. A pair that cannot be used (a key
//! that does not belong to the certificate, a file half-written by the renewal) is
//! logged and the previous certificate stays in service until the files are right.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often, at most, the files are checked for a change.
const RECHECK: Duration = Duration::from_secs(1);

/// The certificate and key files of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// What identifies one version of the two files: modification time and length of each.
type Stamp = [(Option<SystemTime>, u64); 2];

struct Current {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
    /// The stamp whose files could not be used (logged once, not at every handshake).
    rejected: Option<Stamp>,
}

/// Serves the certificate of [`TlsFiles`], reloading it when the files change.
pub struct Certs {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Mutex<Current>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs").field("files", &self.files).finish()
    }
}

impl Certs {
    /// Loads the pair, or says precisely what is wrong with it.
    pub fn load(files: &TlsFiles) -> Result<Certs, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = stamp_of(files);
        let key = read_pair(files, &provider)?;
        Ok(Certs {
            files: files.clone(),
            provider,
            current: Mutex::new(Current {
                key,
                stamp,
                checked: Instant::now(),
                rejected: None,
            }),
        })
    }

    /// The certificate in service, read again first if the files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut cur = crate::sync::lock(&self.current);
        if cur.checked.elapsed() < RECHECK {
            return cur.key.clone();
        }
        cur.checked = Instant::now();
        let stamp = stamp_of(&self.files);
        if stamp == cur.stamp || cur.rejected == Some(stamp) {
            return cur.key.clone();
        }
        match read_pair(&self.files, &self.provider) {
            Ok(key) => {
                tracing::info!(
                    cert = %self.files.cert.display(),
                    sha256 = %fingerprint(&key),
                    "HTTPS certificate reloaded"
                );
                cur.key = key;
                cur.stamp = stamp;
                cur.rejected = None;
            }
            Err(e) => {
                tracing::warn!(
                    "the HTTPS certificate files changed but cannot be used, so the previous certificate is still served: {e}"
                );
                cur.rejected = Some(stamp);
            }
        }
        cur.key.clone()
    }

    /// SHA-256 of the certificate in service, as `warden fleet add --fingerprint` and
    /// `warden ctl --fingerprint` take it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current())
    }

    /// A rustls server configuration that serves these certificates (HTTP/1.1 only, as
    /// the listener speaks).
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, String> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn fingerprint(key: &CertifiedKey) -> String {
    key.cert
        .first()
        .map(|c| crate::fleet::pin::sha256_hex(c.as_ref()))
        .unwrap_or_default()
}

fn stamp_of(files: &TlsFiles) -> Stamp {
    let one = |p: &Path| match fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    };
    [one(&files.cert), one(&files.key)]
}

/// Reads and checks the pair: a chain, a key, and the key belonging to the chain's first
/// certificate.
fn read_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let cert_text = fs::read(&files.cert)
        .map_err(|e| format!("api.tls_cert: cannot read {}: {e}", files.cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "api.tls_cert: {} is not a PEM certificate file: {e}",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "api.tls_cert: {} holds no certificate (expected \"-----BEGIN CERTIFICATE-----\")",
            files.cert.display()
        ));
    }
    let key_text = fs::read(&files.key)
        .map_err(|e| format!("api.tls_key: cannot read {}: {e}", files.key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_text).map_err(|e| {
        format!(
            "api.tls_key: {} holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            files.key.display()
        )
    })?;
    let signing = provider.key_provider.load_private_key(key).map_err(|e| {
        format!(
            "api.tls_key: the key in {} cannot be used: {e}",
            files.key.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "api.tls_key: the key in {} does not belong to the certificate in {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> TlsFiles {
        let ck =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate");
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        fs::write(&files.cert, ck.cert.pem()).expect("cert");
        fs::write(&files.key, ck.signing_key.serialize_pem()).expect("key");
        files
    }

    #[test]
    fn a_pair_is_checked_and_a_changed_pair_is_served_once_it_is_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let a = pair(dir.path(), "a");
        let b = pair(dir.path(), "b");
        let certs = Arc::new(Certs::load(&a).expect("load"));
        let first = certs.fingerprint();
        assert_eq!(first.len(), 64);

        // A mismatched pair is refused with both files named.
        let mixed = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let e = Certs::load(&mixed).expect_err("mismatch");
        assert!(e.contains("does not belong") && e.contains("b.key"), "{e}");
        let e = Certs::load(&TlsFiles {
            cert: dir.path().join("none.crt"),
            key: a.key.clone(),
        })
        .expect_err("missing");
        assert!(e.contains("api.tls_cert") && e.contains("none.crt"), "{e}");

        // Half a renewal (new certificate, old key): the old pair stays in service.
        fs::copy(&b.cert, &a.cert).expect("copy cert");
        certs.current.lock().expect("lock").checked -= RECHECK;
        assert_eq!(certs.fingerprint(), first);
        // The renewal completes: the new pair is served.
        fs::copy(&b.key, &a.key).expect("copy key");
        certs.current.lock().expect("lock").checked -= RECHECK;
        let second = certs.fingerprint();
        assert_ne!(second, first);
        assert_eq!(second, Certs::load(&b).expect("b").fingerprint());
    }
}
