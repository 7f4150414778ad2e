//! TLS for the components' servers and clients (rustls on ring, no
//! OpenSSL): a serving configuration that asks for and verifies client
//! certificates without requiring them, a client configuration that
//! verifies the server against one CA and may present a certificate, the
//! user a client certificate names (CN = user, O = groups, as upstream), and
//! one accept loop (handshake timeout, HTTP/1.1 with upgrades) that
//! authenticates every request before the router sees it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::response::Response;
use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// A client that has not finished its handshake by then is dropped, so idle
/// or truncated handshakes cannot pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM file (at least one).
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading the private key {}", path.display()))
}

/// The CAs in a PEM bundle.
pub fn read_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for ca in read_certs(path)? {
        roots
            .add(ca)
            .with_context(|| format!("a CA in {}", path.display()))?;
    }
    Ok(roots)
}

/// Serve with `cert`/`key`; with `client_ca`, client certificates are asked
/// for and verified against it, not required (a request may authenticate
/// another way, or be anonymous).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = read_certs(cert)?;
    let key = read_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let builder = match client_ca {
        Some(ca_file) => {
            let roots = read_roots(ca_file)
                .with_context(|| format!("the client CA file {}", ca_file.display()))?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .allow_unauthenticated()
            .build()
            .context("the client CA")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut tls = builder
        .with_single_cert(certs, key)
        .context("the serving certificate and key do not match")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// Verify servers against the CAs in `ca`; present `client` (cert, key)
/// when given.
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> anyhow::Result<ClientConfig> {
    let roots = read_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots);
    let mut tls = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .context("the client certificate and key do not match")?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// The user a (verified) client certificate names: its CN, and its O
/// entries as groups.
pub fn certificate_user(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some((name, groups))
}

/// When a certificate expires (seconds since the Unix epoch).
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// How a server tells who sent a request.
pub trait Authenticate: Send + Sync + 'static {
    /// What a verified client certificate says (worked out once per
    /// connection).
    type Peer: Send + Sync + 'static;
    /// What goes into each request's extensions for the router.
    type User: Clone + Send + Sync + 'static;
    fn peer(&self, leaf: &CertificateDer<'_>) -> Option<Self::Peer>;
    /// The request's user, or the answer that refuses it (401).
    fn authenticate(
        &self,
        headers: &http::HeaderMap,
        peer: Option<&Self::Peer>,
        path: &str,
    ) -> Result<Self::User, Box<Response>>;
}

/// Serve `app` over TLS on `listener`, HTTP/1.1 with upgrades (exec,
/// attach, port-forward), until the process ends.
pub async fn serve<A: Authenticate>(
    app: Router,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    authn: Arc<A>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors, say: wait, don't spin.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let authn = authn.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake: {e}");
                    return;
                }
                Err(_) => return,
            };
            // The TLS layer verified the chain; the leaf names the user.
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|leaf| authn.peer(leaf));
            let peer = Arc::new(peer);
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    let user =
                        authn.authenticate(req.headers(), peer.as_ref().as_ref(), req.uri().path());
                    async move {
                        match user {
                            Ok(user) => {
                                let mut req = req.map(axum::body::Body::new);
                                req.extensions_mut().insert(user);
                                app.oneshot(req).await
                            }
                            Err(refusal) => Ok(*refusal),
                        }
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                // A client that sends no complete request head in this long
                // (an idle keep-alive connection included) is dropped, as
                // upstream's ReadHeaderTimeout does.
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
