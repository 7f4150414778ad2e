//! kube-proxy on nftables: watches Services and Endpoints and keeps one
//! nftables table, `ip kube-proxy`, in line with them ([`rules`],
//! [`proxier`]). A change causes a partial sync (one transaction touching
//! only the changed Services, found by [`tracker`]) no sooner than
//! `--min-sync-period` after the previous sync; the whole table is rebuilt
//! at start and every `--sync-period`. With `--configure-pod-routes` it also
//! keeps the host-gw routes to the other nodes' pod CIDRs ([`routes`]).
//! docs/kube-proxy.md.

pub mod metrics;
pub mod model;
pub mod netif;
pub mod nft;
pub mod proxier;
pub mod routes;
pub mod rules;
pub mod tracker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use kube::runtime::reflector::Store;
use kube::Api;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::netif::Cidr;
use crate::proxier::{Proxier, SyncKind};
use crate::rules::{NodePortAddresses, Settings};

#[derive(Debug, Clone)]
pub struct Config {
    pub api: component_base::ClientFlags,
    /// This node's name (as its Node object is named).
    pub hostname: String,
    /// The pods' CIDR: clients outside it are masqueraded.
    pub cluster_cidr: Option<Cidr>,
    /// The local addresses within these CIDRs answer NodePorts (empty: all
    /// local addresses but loopback).
    pub nodeport_addresses: Vec<Cidr>,
    pub healthz_bind_address: SocketAddr,
    pub metrics_bind_address: SocketAddr,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub configure_pod_routes: bool,
}

/// Remove the table and the pod routes this proxier made (`--cleanup`).
pub fn cleanup() -> anyhow::Result<()> {
    let table = nft::Nft::new()
        .and_then(|mut n| n.delete_table())
        .context("delete the kube-proxy table");
    let routes = routes::cleanup().context("remove pod routes");
    table?;
    routes?;
    Ok(())
}

/// The rule settings for now (NodePort addresses follow the interfaces).
fn settings(cluster_cidr: Option<Cidr>, nodeport_cidrs: &[Cidr]) -> Settings {
    let nodeport_addresses = if nodeport_cidrs.is_empty()
        || nodeport_cidrs.iter().any(|c| c.len == 0)
    {
        NodePortAddresses::All
    } else {
        let local = netif::local_addresses().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot list local addresses: NodePorts answered nowhere");
            Vec::new()
        });
        let mut ips: Vec<_> = local
            .iter()
            .map(|a| a.ip)
            .filter(|ip| !ip.is_loopback() && nodeport_cidrs.iter().any(|c| c.contains(*ip)))
            .collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            tracing::warn!(cidrs = ?nodeport_cidrs, "no local address within --nodeport-addresses");
        }
        NodePortAddresses::Only(ips)
    };
    Settings {
        cluster_cidr: cluster_cidr.map(|c| c.to_string()),
        nodeport_addresses,
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    // libnftables first: without it there is nothing to do.
    let nft = nft::Nft::new()?;
    let client = config.api.client().await?;
    let metrics = Metrics::default();
    // Ready once the first full sync is in the kernel.
    let ready = Arc::new(AtomicBool::new(false));
    let bound = component_base::serve_health_with_readiness(
        config.healthz_bind_address,
        metrics.registry(),
        ready.clone(),
    )
    .await?;
    tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
    if config.metrics_bind_address != config.healthz_bind_address {
        let bound = component_base::serve_health_with_readiness(
            config.metrics_bind_address,
            metrics.registry(),
            ready.clone(),
        )
        .await?;
        tracing::info!(%bound, "serving /metrics");
    }

    let changed = Arc::new(Notify::new());
    let services = poked(Api::<Service>::all(client.clone()), &changed);
    let endpoints = poked(Api::<Endpoints>::all(client.clone()), &changed);
    if config.configure_pod_routes {
        let nodes_changed = Arc::new(Notify::new());
        let nodes = poked(Api::<Node>::all(client.clone()), &nodes_changed);
        tokio::spawn(pod_routes(
            config.clone(),
            nodes,
            nodes_changed,
            metrics.clone(),
        ));
    }
    // Upstream waits for both lists too: rules from half the data would
    // cut live Services off.
    for store in [
        services.wait_until_ready().await,
        endpoints.wait_until_ready().await,
    ] {
        store.map_err(|e| anyhow::anyhow!("first list: {e}"))?;
    }
    tracing::info!("Services and Endpoints listed: syncing");

    let mut p = Proxier::new(
        nft,
        settings(config.cluster_cidr, &config.nodeport_addresses),
    );
    let mut tracker = tracker::Tracker::default();
    let mut next_full = Instant::now();
    let mut last_sync: Option<Instant> = None;
    let mut failures: u32 = 0;
    loop {
        let wake = p.housekeeping_due().map_or(next_full, |h| h.min(next_full));
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        if let Some(last) = last_sync {
            tokio::time::sleep_until((last + config.min_sync_period).into()).await;
        }
        for c in tracker.changes(services.state(), endpoints.state()) {
            let ports = c
                .service
                .map(|s| model::service_ports(&s, c.endpoints.as_deref()))
                .unwrap_or_default();
            p.update_service(c.name, ports);
        }
        let now = Instant::now();
        if now >= next_full {
            p.set_settings(settings(config.cluster_cidr, &config.nodeport_addresses));
            p.request_full_sync();
            next_full = now + config.sync_period;
        }
        if !p.has_pending_work() {
            continue;
        }
        let (back, result) = tokio::task::spawn_blocking(move || {
            let r = p.sync();
            (p, r)
        })
        .await
        .context("sync task")?;
        p = back;
        last_sync = Some(Instant::now());
        match result {
            Ok(report) => {
                failures = 0;
                metrics.observe_sync(&report);
                if report.kind != SyncKind::Nothing {
                    ready.store(true, Ordering::Release);
                    tracing::info!(
                        kind = ?report.kind,
                        services = report.services_changed,
                        rules = report.rules,
                        took_ms = format!("{:.1}", report.took.as_secs_f64() * 1000.0),
                        "synced proxy rules"
                    );
                }
            }
            Err(e) => {
                // The proxier wants a full sync now; retry it backing off
                // from the minimum period up to the sync period.
                metrics.sync_failures.inc();
                failures = failures.saturating_add(1);
                let delay = config
                    .min_sync_period
                    .max(Duration::from_millis(100))
                    .saturating_mul(1 << failures.min(10))
                    .min(config.sync_period);
                next_full = next_full.min(Instant::now() + delay);
                tracing::error!(error = %e, retry_in = ?delay, "sync failed; retrying with a full sync");
            }
        }
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

/// Keep the host-gw routes to the other nodes' pod CIDRs, after each Node
/// change (no sooner than --min-sync-period apart) and every --sync-period.
async fn pod_routes(config: Config, nodes: Store<Node>, changed: Arc<Notify>, metrics: Metrics) {
    // Never reconcile against a partial list: that would drop live routes.
    if let Err(e) = nodes.wait_until_ready().await {
        tracing::error!(error = %e, "first list of Nodes failed: no pod routes");
        return;
    }
    loop {
        let started = Instant::now();
        let list: Vec<Node> = nodes.state().iter().map(|n| (**n).clone()).collect();
        let hostname = config.hostname.clone();
        let result = tokio::task::spawn_blocking(move || {
            let local = netif::local_addresses().unwrap_or_default();
            routes::reconcile(&routes::desired(&list, &hostname, &local))
        })
        .await;
        match result {
            Ok(Ok(n)) => {
                metrics.pod_routes.set(n as i64);
            }
            Ok(Err(e)) => tracing::error!(error = %e, "pod routes"),
            Err(e) => tracing::error!(error = %e, "pod routes task"),
        }
        let _ = tokio::time::timeout(config.sync_period, changed.notified()).await;
        tokio::time::sleep_until((started + config.min_sync_period).into()).await;
    }
}
