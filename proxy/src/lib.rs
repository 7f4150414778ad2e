//! kube-proxy: watches Services and Endpoints and programs one nftables
//! table (`ip kube-proxy`, see [`rules`]); with `--configure-pod-routes`
//! also the host-gw routes to other nodes' pods ([`routes`]). A change
//! causes a sync at most every `--min-sync-period`; a full sync runs every
//! `--sync-period` anyway. docs/kube-proxy.md.

pub mod nft;
pub mod routes;
pub mod rules;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use component_base::prometheus_client::metrics::counter::Counter;
use component_base::prometheus_client::metrics::gauge::Gauge;
use component_base::prometheus_client::registry::Registry;
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use kube::runtime::reflector::Store;
use kube::Api;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Config {
    pub api: component_base::ClientFlags,
    pub hostname: String,
    pub cluster_cidr: Option<String>,
    /// CIDRs whose local addresses answer NodePorts (empty: all local IPv4).
    pub nodeport_addresses: Vec<String>,
    pub healthz_bind_address: SocketAddr,
    pub metrics_bind_address: SocketAddr,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub configure_pod_routes: bool,
}

#[derive(Clone, Default)]
struct Metrics {
    syncs: Counter,
    last_sync_seconds: Gauge<f64, AtomicU64>,
    rules: Gauge,
    pod_routes: Gauge,
}

impl Metrics {
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("kubeproxy");
        r.register(
            "sync_proxy_rules",
            "Syncs of the nftables table",
            self.syncs.clone(),
        );
        r.register(
            "sync_proxy_rules_last_duration_seconds",
            "How long the last sync took",
            self.last_sync_seconds.clone(),
        );
        r.register(
            "proxy_rules",
            "Lines of the nftables table",
            self.rules.clone(),
        );
        r.register(
            "pod_routes",
            "Routes to other nodes' pod CIDRs",
            self.pod_routes.clone(),
        );
        r
    }
}

/// Remove the table and the pod routes (`--cleanup`).
pub fn cleanup() -> anyhow::Result<()> {
    nft::delete_table()?;
    routes::cleanup()?;
    Ok(())
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = config.api.client().await?;
    let metrics = Metrics::default();
    component_base::serve_health(config.healthz_bind_address, metrics.registry()).await?;
    if config.metrics_bind_address != config.healthz_bind_address {
        component_base::serve_health(config.metrics_bind_address, metrics.registry()).await?;
    }
    let changed = Arc::new(Notify::new());
    let services = poked(Api::<Service>::all(client.clone()), &changed);
    let endpoints = poked(Api::<Endpoints>::all(client.clone()), &changed);
    let nodes = config
        .configure_pod_routes
        .then(|| poked(Api::<Node>::all(client.clone()), &changed));
    for store in [
        services.wait_until_ready().await,
        endpoints.wait_until_ready().await,
    ] {
        store.map_err(|e| anyhow::anyhow!("first list: {e}"))?;
    }
    if let Some(n) = &nodes {
        n.wait_until_ready()
            .await
            .map_err(|e| anyhow::anyhow!("first list of nodes: {e}"))?;
    }
    let settings = rules::Settings {
        cluster_cidr: config.cluster_cidr.clone(),
        nodeport_addresses: nodeport_addresses(&config.nodeport_addresses),
    };
    let mut last_text = String::new();
    let mut last_full = Instant::now() - config.sync_period;
    loop {
        let started = Instant::now();
        let full = started.duration_since(last_full) >= config.sync_period;
        let svcs: Vec<Service> = services.state().iter().map(|s| (**s).clone()).collect();
        let eps: Vec<Endpoints> = endpoints.state().iter().map(|e| (**e).clone()).collect();
        let ports = rules::service_ports(&svcs, &eps);
        let text = rules::render(&ports, &settings);
        // Unchanged rules are not rewritten, except on the periodic full sync
        // (which repairs anything changed behind our back).
        if full || text != last_text {
            match nft::apply(&text) {
                Ok(()) => {
                    metrics.syncs.inc();
                    metrics.rules.set(text.lines().count() as i64);
                    let took = started.elapsed();
                    metrics.last_sync_seconds.set(took.as_secs_f64());
                    tracing::info!(
                        services = ports.len(),
                        full,
                        took_ms = took.as_secs_f64() * 1000.0,
                        "synced proxy rules"
                    );
                    last_text = text;
                    if full {
                        last_full = started;
                    }
                }
                Err(e) => tracing::error!("sync proxy rules: {e}"),
            }
        }
        if let Some(nodes) = &nodes {
            let all: Vec<Node> = nodes.state().iter().map(|n| (**n).clone()).collect();
            match routes::connected()
                .and_then(|c| routes::reconcile(&routes::desired(&all, &config.hostname, &c)))
            {
                Ok(n) => {
                    metrics.pod_routes.set(n as i64);
                }
                Err(e) => tracing::error!("pod routes: {e}"),
            }
        }
        // Wait for a change (or the full sync), then no sooner than the
        // minimum period after this sync.
        let _ = tokio::time::timeout(config.sync_period, changed.notified()).await;
        let next = started + config.min_sync_period;
        tokio::time::sleep_until(next.into()).await;
    }
}

/// A reflector whose every change pokes `changed`.
fn poked<K>(api: Api<K>, changed: &Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let changed = changed.clone();
    component_base::reflect::reflect(api, move |_| changed.notify_one())
}

/// The local IPv4 addresses within `cidrs` as /32s (all local non-loopback
/// addresses when none are given).
fn nodeport_addresses(cidrs: &[String]) -> Vec<String> {
    let local = routes::connected().unwrap_or_default();
    if cidrs.is_empty() {
        return local.iter().map(|(a, _)| format!("{a}/32")).collect();
    }
    cidrs.to_vec()
}
