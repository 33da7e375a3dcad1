//! The TLS client set-up for `https://` URLs: rustls with the *ring* provider.
//!
//! [`client_config`] builds one [`rustls::ClientConfig`] from the command line:
//! the trust anchors come from `--cacert FILE` (PEM), else from the system bundle
//! ([`SYSTEM_CA_BUNDLE`]); `--insecure` skips certificate verification as
//! `curl --insecure` does (the handshake signature is still checked, so a
//! handshake costs the client what it costs a verifying client, minus the
//! chain walk). Session resumption uses rustls' in-memory client session cache
//! (TLS 1.3 tickets, TLS 1.2 session IDs and tickets); `--no-resume` disables it.
//!
//! Each worker thread gets its own copy of the configuration with its own
//! session cache ([`per_thread`]), so a resumption never takes a lock another
//! thread holds. The server name sent (SNI) and verified is the URL's host; an
//! IP address is verified against the certificate's IP SANs and, as RFC 6066 §3
//! requires, not sent as SNI.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Trust anchors used when neither `--cacert` nor `--insecure` is given (Debian's bundle,
/// the one curl uses there).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Sessions remembered per thread: enough for every origin of a run.
const SESSION_CACHE_ENTRIES: usize = 256;

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Against the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Not at all (`--insecure`).
    Insecure,
}

/// What the command line asked of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// How certificates are verified.
    pub trust: Trust,
    /// Resume sessions on new connections (off with `--no-resume`).
    pub resume: bool,
}

/// Why the TLS set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    // ring is the provider this workspace builds against (no aws-lc-rs toolchain); rustls
    // 0.23.48 deprecates it only for lacking post-quantum key exchange. Its group list starts
    // with P-384; browsers, curl and OpenSSL offer X25519 first, and so does this client.
    #[allow(deprecated, reason = "the ring provider is chosen deliberately, see above")]
    Arc::new(CryptoProvider {
        kx_groups: vec![
            ring::kx_group::X25519,
            ring::kx_group::SECP256R1,
            ring::kx_group::SECP384R1,
        ],
        ..ring::default_provider()
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::CaFile { path: path.to_owned(), reason };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    Ok(roots)
}

/// Builds the client configuration (TLS 1.3 and 1.2, HTTP/1.1 over ALPN).
pub fn client_config(opts: &TlsOptions) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)?;
    let mut config = match &opts.trust {
        Trust::CaFile(path) => {
            builder.with_root_certificates(load_roots(path)?).with_no_client_auth()
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertCheck {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    // RFC 7301: say which protocol follows, so a server offering h2 keeps to HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = resumption(opts.resume);
    Ok(config)
}

fn resumption(resume: bool) -> Resumption {
    if resume {
        Resumption::in_memory_sessions(SESSION_CACHE_ENTRIES)
    } else {
        Resumption::disabled()
    }
}

/// A copy of `shared` with a session cache of its own, for one worker thread.
pub fn per_thread(shared: &ClientConfig, resume: bool) -> Arc<ClientConfig> {
    let mut config = shared.clone();
    config.resumption = resumption(resume);
    Arc::new(config)
}

/// The TLS server name for URL host `host` (a DNS name or an IP literal).
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).ok()
}

/// `--insecure`: accepts any certificate, but still checks that the server signed the
/// handshake with the key of the certificate it sent.
#[derive(Debug)]
struct NoCertCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        // RFC 6066 §3: SNI carries DNS names only; an IP literal is verified but not sent.
        let cases: &[(&str, Option<bool>)] = &[
            ("localhost", Some(true)),
            ("edge.example", Some(true)),
            ("127.0.0.1", Some(false)),
            ("::1", Some(false)),
            ("bad name", None),
        ];
        for (host, want) in cases {
            let got = server_name(host).map(|n| matches!(n, ServerName::DnsName(_)));
            assert_eq!(got, *want, "{host}");
        }
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let missing = PathBuf::from("/nonexistent/ca.pem");
        let opts = TlsOptions { trust: Trust::CaFile(missing), resume: true };
        let err = client_config(&opts).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let empty =
            std::env::temp_dir().join(format!("ringcast-load-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let opts = TlsOptions { trust: Trust::CaFile(empty.clone()), resume: true };
        let err = client_config(&opts).unwrap_err().to_string();
        let _ = std::fs::remove_file(&empty);
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn insecure_config_offers_http1_over_alpn() {
        let opts = TlsOptions { trust: Trust::Insecure, resume: false };
        let config = client_config(&opts).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
