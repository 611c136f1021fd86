//! TLS: certificates from PEM files or a self-signed one made at start, with HTTP/2 and
//! HTTP/1.1 offered by ALPN (rustls on the ring provider, no C toolchain needed).

use super::{Limits, Service};
use crate::config::TlsSource;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

/// A self-signed certificate made at start: what a client needs to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSigned {
    /// The certificate, PEM (no key).
    pub pem: String,
    /// SHA-256 of the certificate's DER, as `openssl x509 -fingerprint -sha256` prints it
    /// (`AB:CD:…`).
    pub sha256: String,
    /// Where it was written, if anywhere.
    pub path: Option<PathBuf>,
}

impl SelfSigned {
    fn new(der: &CertificateDer<'_>) -> SelfSigned {
        use base64::Engine as _;
        use sha2::Digest as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        let digest = sha2::Sha256::digest(der.as_ref());
        let sha256 = digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        SelfSigned {
            pem,
            sha256,
            path: None,
        }
    }

    /// Writes the PEM to `path` (creating its folder; replacing an older certificate whole,
    /// never leaving half of one) and logs where, with the fingerprint.
    fn publish(&mut self, path: Option<&Path>) -> Result<(), String> {
        if let Some(path) = path {
            let failed =
                |e: std::io::Error| format!("writing the certificate to {}: {e}", path.display());
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(failed)?;
            }
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            std::fs::write(&tmp, &self.pem).map_err(failed)?;
            std::fs::rename(&tmp, path).map_err(failed)?;
            self.path = Some(path.to_owned());
        }
        let shown = self.path.as_deref().map(|p| p.display().to_string());
        tracing::info!(
            certificate = shown.as_deref().unwrap_or("(not written)"),
            sha256 = %self.sha256,
            "self-signed TLS certificate for localhost, 127.0.0.1 and ::1"
        );
        Ok(())
    }
}

/// Builds the acceptor for `source`; a self-signed certificate is written to `cert_out`
/// and returned.
pub(crate) fn acceptor(
    source: &TlsSource,
    cert_out: Option<&Path>,
) -> Result<(TlsAcceptor, Option<SelfSigned>), String> {
    let mut made = None;
    let (certs, key) = match source {
        TlsSource::Files { cert, key } => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("reading {}: {e}", cert.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("reading {}: {e}", cert.display()))?;
            if certs.is_empty() {
                return Err(format!("{} holds no certificate", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("reading {}: {e}", key.display()))?;
            (certs, key)
        }
        TlsSource::SelfSigned => {
            let (certs, key) = self_signed()?;
            let mut cert = SelfSigned::new(&certs[0]);
            cert.publish(cert_out)?;
            made = Some(cert);
            (certs, key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not form a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), made))
}

/// A certificate for `localhost`, `127.0.0.1` and `::1`, valid for this run.
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("making a self-signed certificate: {e}"))?;
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(|e| e.to_string())?;
    Ok((vec![certified.cert.der().clone()], key))
}

/// Whether the handshake chose HTTP/2.
pub(crate) fn is_h2<T>(stream: &tokio_rustls::server::TlsStream<T>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}

/// The first byte of every TLS connection: a handshake record (RFC 8446 §5.1).
const HANDSHAKE: u8 = 0x16;

/// Runs the TLS handshake (bounded by `--header-timeout`), then HTTP/2 or HTTP/1.1 as ALPN
/// chose. A client that speaks plain HTTP to the TLS port (its first byte is not a handshake
/// record) gets a plain-text `400` saying so, and the connection closes; it is returned then,
/// for the caller to drain.
pub(crate) async fn serve<S: Service>(
    acceptor: TlsAcceptor,
    io: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Arc<S>,
    limits: Limits,
    stop: CancellationToken,
) -> Option<tokio::net::TcpStream> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(limits.header_timeout, io.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != HANDSHAKE => {
            return Some(super::h1::plain_http_on_tls(io, peer, app).await);
        }
        Ok(Ok(1)) => {}
        _ => return None,
    }
    let stream = match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => return None,
    };
    if is_h2(&stream) {
        super::h2::serve(stream, peer, app, limits, stop).await;
    } else {
        super::h1::Conn::new(stream, peer, app, limits, stop, None)
            .run()
            .await;
    }
    None
}

/// A TLS client for the probe: ALPN offers `alpn` (e.g. `h2`, or `http/1.1`); the server's
/// certificate is checked against the system's roots unless `insecure`.
pub(crate) fn connector(
    alpn: &[&[u8]],
    insecure: bool,
) -> Result<tokio_rustls::TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // A malformed system certificate is skipped, as other TLS clients skip it.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(
                "no trusted root certificates found on this system (use --insecure to skip verification)"
                    .to_owned(),
            );
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Whether a client handshake chose HTTP/2.
pub(crate) fn client_is_h2<T>(stream: &tokio_rustls::client::TlsStream<T>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}

/// `--insecure`: accepts any certificate, but still checks that the handshake is signed by
/// the key the certificate names.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    /// The written PEM is the certificate the server presents, and the fingerprint is its
    /// SHA-256 as openssl prints it.
    #[test]
    fn self_signed_pem_and_fingerprint_describe_the_certificate() {
        let (certs, _) = self_signed().unwrap();
        let made = SelfSigned::new(&certs[0]);
        let parsed = CertificateDer::from_pem_slice(made.pem.as_bytes()).unwrap();
        assert_eq!(parsed, certs[0]);
        let hex: String = sha2::Sha256::digest(certs[0].as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(made.sha256.replace(':', ""), hex);
        assert_eq!(made.sha256.len(), 95);
    }
}
