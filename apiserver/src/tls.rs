//! The secure port: TLS (rustls, ring) in front of the same API as the
//! plain port. The serving certificate comes from --tls-cert-file and
//! --tls-private-key-file, or is made self-signed in --cert-dir as upstream
//! does.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::Router;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;

use crate::authn::{user_from_certificate, Authenticator, UserInfo};
use crate::config::Config;
use axum::response::IntoResponse;

/// How long a self-signed certificate is valid.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The TLS configuration the flags name.
pub fn server_config(config: &Config, service_ip: IpAddr) -> anyhow::Result<Arc<ServerConfig>> {
    let (cert, key) = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => self_signed(config, service_ip)?,
        _ => bail!("--tls-cert-file and --tls-private-key-file go together"),
    };
    // Client certificates are asked for and verified, not required: a
    // request may authenticate with a token instead.
    component_base::tls::server_config(&cert, &key, config.client_ca_file.as_deref())
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

/// Each request is authenticated first ([`Authenticator`]): a client
/// certificate, a token, or anonymous where that is allowed; its user goes
/// into the request's extensions.
impl component_base::tls::Authenticate for Authenticator {
    type Peer = UserInfo;
    type User = UserInfo;

    fn peer(&self, leaf: &CertificateDer<'_>) -> Option<UserInfo> {
        user_from_certificate(leaf)
    }

    fn authenticate(
        &self,
        headers: &http::HeaderMap,
        peer: Option<&UserInfo>,
        path: &str,
    ) -> Result<UserInfo, Box<axum::response::Response>> {
        match Authenticator::authenticate(self, headers, peer, path) {
            Ok(user) => Ok(user.unwrap_or_else(UserInfo::anonymous)),
            Err(e) => Err(Box::new(e.into_response())),
        }
    }
}

/// Serve `app` over TLS on `listener` until the process ends.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    authn: Arc<Authenticator>,
) {
    component_base::tls::serve(app, listener, tls, authn).await
}

/// The plain port bypasses authentication: only loopback may have it.
pub fn check_insecure_address(addr: IpAddr) -> anyhow::Result<()> {
    if !addr.is_loopback() {
        bail!("--insecure-bind-address {addr} is not a loopback address: the plain HTTP port bypasses authentication and authorization, so it only listens on loopback");
    }
    Ok(())
}
