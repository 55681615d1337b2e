//! TLS to a node whose certificate is pinned: the node's end-entity certificate must have
//! the stored SHA-256, whoever signed it (a node behind a self-signed certificate is the
//! common case). Handshake signatures are still checked with ring's algorithms.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Accepts exactly the certificate with the pinned SHA-256.
#[derive(Debug)]
pub struct Pinned {
    sha256: String,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    /// A verifier for `sha256` (lowercase hex, as `fleet::parse_fingerprint` gives).
    pub fn new(sha256: &str) -> Pinned {
        Pinned {
            sha256: sha256.to_string(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// A rustls client configuration that trusts only the pinned certificate.
    pub fn client_config(self) -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = self.provider.clone();
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth())
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = sha256_hex(end_entity.as_ref());
        if got == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the node's certificate has SHA-256 {got}, not the pinned {}; if the node has a new certificate, remove and add the node again with its new fingerprint",
                self.sha256
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pinned_certificate_is_accepted() {
        let cert = CertificateDer::from(b"not really DER, only hashed".to_vec());
        let name = ServerName::try_from("box.example").expect("name");
        let now = UnixTime::now();
        let right = Pinned::new(&sha256_hex(cert.as_ref()));
        assert!(
            right
                .verify_server_cert(&cert, &[], &name, &[], now)
                .is_ok()
        );
        let wrong = Pinned::new(&"ab".repeat(32));
        let e = wrong
            .verify_server_cert(&cert, &[], &name, &[], now)
            .expect_err("other certificate");
        assert!(e.to_string().contains("not the pinned"), "{e}");
        assert!(right.client_config().is_ok());
    }
}
