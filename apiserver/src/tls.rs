//! The secure port: TLS (rustls, ring) in front of the same API as the
//! plain port. The serving certificate comes from --tls-cert-file and
//! --tls-private-key-file, or is made self-signed in --cert-dir as upstream
//! does.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::authn::{user_from_certificate, Authenticator, UserInfo};
use crate::config::Config;
use axum::response::IntoResponse;

/// A client that has not finished its handshake by then is dropped, so idle
/// or truncated handshakes cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a self-signed certificate is valid.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The TLS configuration the flags name.
pub fn server_config(config: &Config, service_ip: IpAddr) -> anyhow::Result<Arc<ServerConfig>> {
    let (cert, key) = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => self_signed(config, service_ip)?,
        _ => bail!("--tls-cert-file and --tls-private-key-file go together"),
    };
    let certs = CertificateDer::pem_file_iter(&cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let builder = match &config.client_ca_file {
        // Client certificates are asked for and verified, not required: a
        // request may authenticate with a token instead.
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(ca_file)
                .with_context(|| format!("reading --client-ca-file {}", ca_file.display()))?
            {
                roots
                    .add(ca.with_context(|| format!("parsing {}", ca_file.display()))?)
                    .with_context(|| format!("a CA in {}", ca_file.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
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

/// `<cert-dir>/apiserver.crt` and `.key`, made once (self-signed) for the
/// names and addresses clients use.
pub(crate) fn self_signed(
    config: &Config,
    service_ip: IpAddr,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = &config.cert_dir;
    let (cert, key) = (dir.join("apiserver.crt"), dir.join("apiserver.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut ips: Vec<IpAddr> = vec![service_ip, IpAddr::from([127, 0, 0, 1])];
    for ip in [Some(config.bind_address), config.advertise_address]
        .into_iter()
        .flatten()
    {
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let dns = component_base::pki::APISERVER_DNS_NAMES;
    let pair = component_base::pki::self_signed_serving(
        "kube-apiserver",
        &dns,
        &ips,
        SELF_SIGNED_VALIDITY,
    )?;
    pair.write(dir, "apiserver")
        .with_context(|| format!("writing the self-signed certificate to {}", dir.display()))?;
    tracing::info!(dir = %dir.display(), "made a self-signed serving certificate");
    Ok((cert, key))
}

/// Serve `app` over TLS on `listener`, HTTP/1.1 with upgrades (exec,
/// attach, port-forward), until the process ends. Each request is
/// authenticated first ([`Authenticator`]); its user goes into the request's
/// extensions.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    authn: Arc<Authenticator>,
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
                .and_then(|leaf| user_from_certificate(leaf));
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    let user = authn.authenticate(req.headers(), peer.as_ref(), req.uri().path());
                    async move {
                        match user {
                            Ok(user) => {
                                let mut req = req.map(axum::body::Body::new);
                                req.extensions_mut()
                                    .insert(user.unwrap_or_else(UserInfo::anonymous));
                                app.oneshot(req).await
                            }
                            Err(e) => Ok(e.into_response()),
                        }
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// The plain port bypasses authentication: only loopback may have it.
pub fn check_insecure_address(addr: IpAddr) -> anyhow::Result<()> {
    if !addr.is_loopback() {
        bail!("--insecure-bind-address {addr} is not a loopback address: the plain HTTP port bypasses authentication and authorization, so it only listens on loopback");
    }
    Ok(())
}
