//! What every component (scheduler, controller-manager, kubelet, proxy)
//! shares: the API client from a kubeconfig, logging, the /healthz and
//! /metrics server, Go-style duration flags and Lease-based leader election.

pub mod duration;
pub mod health;
pub mod leader;
pub mod pki;
pub mod quantity;
pub mod reflect;
pub mod tls;

use std::path::Path;

use anyhow::Context;

pub use duration::parse_duration;
pub use health::{serve_health, serve_health_with_readiness};
pub use prometheus_client;

/// The flags that say where the API server is, as every upstream component
/// has them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientFlags {
    /// Path to a kubeconfig file with the API server's address and credentials
    /// (else $KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The API server's address (overrides the kubeconfig's).
    #[arg(long)]
    pub master: Option<String>,
}

impl ClientFlags {
    /// The API client these flags name.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client(self.kubeconfig.as_deref(), self.master.as_deref()).await
    }
}

/// Logs to stderr, filtered by RUST_LOG (default `info`); colours only on
/// a terminal (`cluster up` writes logs to files).
pub fn init_logging() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// An API client as upstream components make one: from `--kubeconfig` when
/// given (else $KUBECONFIG, ~/.kube/config or in-cluster), with `--master`
/// overriding the server address.
pub async fn client(
    kubeconfig: Option<&Path>,
    master: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("use kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig given and none found")?,
    };
    if let Some(master) = master {
        config.cluster_url = master
            .parse()
            .with_context(|| format!("--master {master:?} is not a URL"))?;
    }
    kube::Client::try_from(config).context("build API client")
}
