//! kube-dns: the cluster domain's DNS server (docs/dns.md). Services and
//! Endpoints come from kube-rs reflectors; hickory-server speaks DNS over
//! UDP and TCP; names outside the domain go to the upstream nameservers,
//! or are refused when there are none.

pub mod forward;
pub mod handler;
pub mod metrics;
pub mod records;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::runtime::reflector::Store;
use kube::Api;

use forward::Forwarder;
use handler::Handler;
use metrics::Metrics;
use records::Zone;

/// A TCP connection that sends no complete request for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Config {
    pub api: component_base::ClientFlags,
    /// e.g. `cluster.local`.
    pub domain: String,
    pub dns_bind_address: SocketAddr,
    pub healthz_bind_address: SocketAddr,
    /// Empty: names outside the domain are REFUSED.
    pub upstream_nameservers: Vec<SocketAddr>,
    pub ttl: u32,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = config.api.client().await?;
    let metrics = Metrics::default();
    let services = component_base::reflect::reflect(Api::<Service>::all(client.clone()), {
        let m = metrics.clone();
        move |s: &Store<Service>| m.set_services(s.len())
    });
    let endpoints = component_base::reflect::reflect(Api::<Endpoints>::all(client.clone()), {
        let m = metrics.clone();
        move |s: &Store<Endpoints>| m.set_endpoints(s.len())
    });
    let zone = Zone::new(
        &config.domain,
        config.ttl,
        services.clone(),
        endpoints.clone(),
    )
    .with_context(|| format!("--cluster-domain {:?}", config.domain))?;
    let synced = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let synced = synced.clone();
        async move {
            if services.wait_until_ready().await.is_ok()
                && endpoints.wait_until_ready().await.is_ok()
            {
                synced.store(true, Ordering::Release);
                tracing::info!("listed Services and Endpoints: ready");
            }
        }
    });

    let health = component_base::serve_health_with_readiness(
        config.healthz_bind_address,
        metrics.registry(),
        synced.clone(),
    )
    .await?;
    tracing::info!(%health, "serving /healthz, /readyz and /metrics");

    // Bind before anything else can fail late: a taken port is an error now.
    let udp = tokio::net::UdpSocket::bind(config.dns_bind_address)
        .await
        .with_context(|| format!("bind UDP {}", config.dns_bind_address))?;
    let tcp = tokio::net::TcpListener::bind(config.dns_bind_address)
        .await
        .with_context(|| format!("bind TCP {}", config.dns_bind_address))?;
    tracing::info!(
        addr = %config.dns_bind_address,
        domain = %zone.origin(),
        upstreams = ?config.upstream_nameservers,
        "serving DNS over UDP and TCP"
    );

    let handler = Handler {
        zone: Arc::new(zone),
        forwarder: Forwarder::new(config.upstream_nameservers.clone()),
        metrics,
        synced,
    };
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, 32);
    server
        .block_until_done()
        .await
        .map_err(|e| anyhow::anyhow!("DNS server stopped: {e}"))
}
