//! How the apiserver reaches kubelets (pods' logs, exec, attach,
//! port-forward): HTTPS with the --kubelet-client-certificate (if given),
//! verifying each kubelet's serving certificate against
//! --kubelet-certificate-authority for the node's address; or plain HTTP
//! when none of those flags is given (kubelets started without TLS, as in
//! single-process tests).

use anyhow::bail;
use axum::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::Config;

pub struct KubeletClient {
    /// "https" or "http".
    pub scheme: &'static str,
    pub client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl KubeletClient {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let client = match (
            &config.kubelet_client_certificate,
            &config.kubelet_client_key,
            &config.kubelet_certificate_authority,
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => Some(component_base::tls::client_config(
                ca,
                Some((cert.as_path(), key.as_path())),
            )?),
            // Kubelets verified, the apiserver not showing a certificate
            // (kubelets that let anonymous requests through).
            (None, None, Some(ca)) => Some(component_base::tls::client_config(ca, None)?),
            (Some(_), Some(_), None) => bail!(
                "--kubelet-client-certificate needs --kubelet-certificate-authority: kubelets' certificates are always verified"
            ),
            _ => bail!(
                "--kubelet-client-certificate and --kubelet-client-key go together (with --kubelet-certificate-authority)"
            ),
        };
        let scheme = if client.is_some() { "https" } else { "http" };
        // The plain case keeps a TLS-capable connector with no roots: it is
        // only ever given http:// URLs.
        let tls = match client {
            Some(c) => c,
            None => rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        let mut tls = tls;
        // The connector sets ALPN itself (and refuses a preset one).
        tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            scheme,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}
