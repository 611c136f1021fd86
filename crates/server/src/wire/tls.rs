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
