//! TLS: certificates from PEM files or a self-signed one made at start, with HTTP/2 and
//! HTTP/1.1 offered by ALPN (rustls on the ring provider, no C toolchain needed).

use super::{Limits, Service};
use crate::config::TlsSource;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_util::sync::CancellationToken;

/// Builds the acceptor for `source`.
pub(crate) fn acceptor(source: &TlsSource) -> Result<TlsAcceptor, String> {
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
        TlsSource::SelfSigned => self_signed()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not form a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
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

/// Runs the TLS handshake (bounded by `--header-timeout`), then HTTP/2 or HTTP/1.1 as ALPN chose.
pub(crate) async fn serve<S: Service>(
    acceptor: TlsAcceptor,
    io: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Arc<S>,
    limits: Limits,
    stop: CancellationToken,
) {
    let stream = match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    if is_h2(&stream) {
        super::h2::serve(stream, peer, app, limits, stop).await;
    } else {
        super::h1::Conn::new(stream, peer, app, limits, stop, None)
            .run()
            .await;
    }
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
