//! kube-controller-manager: the control loops that drive the cluster
//! towards its desired state, each as upstream's, on kube-rs watchers and
//! reflectors with work queues:
//! - `replication`: ReplicationControllers keep their pods;
//! - `endpoints`: Services with a selector get Endpoints of their pods;
//! - `garbage_collector`: dependents follow their owners' deletion
//!   (background, foreground, orphan);
//! - `namespace`: a deleted namespace is emptied, then finalized;
//! - `node_lifecycle`: nodes that stop reporting become Unknown and tainted;
//!   `taint_eviction` deletes pods that do not tolerate NoExecute taints;
//! - `node_ipam`: nodes get pod CIDRs;
//! - `pod_gc`: terminated, orphaned and unscheduled-terminating pods go away.

pub mod context;
pub mod endpoints;
pub mod events;
pub mod expectations;
pub mod garbage_collector;
pub mod informer;
pub mod metrics;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod options;
pub mod pod_gc;
pub mod pod_util;
pub mod queue;
pub mod replication;
pub mod resources;
pub mod taint_eviction;
pub mod taints;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use component_base::leader::LeaderElectionFlags;
use component_base::prometheus_client::registry::Registry;

pub use context::ControllerContext;
pub use options::Options;

/// Errors of a controller's sync; all are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The API's "not found" answer.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The API's "conflict" answer (stale resourceVersion, or already exists).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub api: component_base::ClientFlags,
    pub bind_address: IpAddr,
    /// 0: no health/metrics server.
    pub secure_port: u16,
    pub leader_election: LeaderElectionFlags,
    pub controllers: Vec<String>,
    pub concurrent_rc_syncs: usize,
    pub concurrent_endpoint_syncs: usize,
    pub concurrent_gc_syncs: usize,
    pub concurrent_namespace_syncs: usize,
    pub allocate_node_cidrs: bool,
    pub cluster_cidr: Option<String>,
    pub service_cluster_ip_range: Option<String>,
    pub node_cidr_mask_size: Option<u8>,
    pub node_cidr_mask_size_ipv4: u8,
    pub node_cidr_mask_size_ipv6: u8,
    pub node_monitor_grace_period: Duration,
    pub node_monitor_period: Duration,
    pub node_startup_grace_period: Duration,
    pub node_eviction_rate: f64,
    pub secondary_node_eviction_rate: f64,
    pub large_cluster_size_threshold: usize,
    pub unhealthy_zone_threshold: f64,
    pub terminated_pod_gc_threshold: i64,
}

/// The controllers, by upstream name, with their old aliases and whether
/// '*' enables them.
pub const CONTROLLERS: &[(&str, &str, bool)] = &[
    (
        "replicationcontroller-controller",
        "replicationcontroller",
        true,
    ),
    ("endpoints-controller", "endpoint", true),
    ("garbage-collector-controller", "garbagecollector", true),
    ("namespace-controller", "namespace", true),
    ("node-lifecycle-controller", "nodelifecycle", true),
    (
        "taint-eviction-controller",
        "taint-eviction-controller",
        true,
    ),
    ("node-ipam-controller", "nodeipam", true),
    ("pod-garbage-collector-controller", "podgc", true),
];

impl Config {
    /// Whether --controllers enables the controller with this (upstream) name.
    pub fn enabled(&self, name: &str) -> bool {
        let Some((_, alias, default_on)) = CONTROLLERS.iter().find(|(n, _, _)| *n == name) else {
            return false;
        };
        let named = |s: &str| s == name || s == *alias;
        let mut star = false;
        for entry in &self.controllers {
            let entry = entry.trim();
            if let Some(off) = entry.strip_prefix('-') {
                if named(off) {
                    return false;
                }
            } else if named(entry) {
                return true;
            } else if entry == "*" {
                star = true;
            }
        }
        star && *default_on
    }

    /// Names in --controllers that match no controller.
    pub fn unknown_controllers(&self) -> Vec<String> {
        self.controllers
            .iter()
            .map(|c| c.trim())
            .filter(|c| *c != "*")
            .filter(|c| {
                let c = c.strip_prefix('-').unwrap_or(c);
                !CONTROLLERS.iter().any(|(n, a, _)| c == *n || c == *a)
            })
            .map(String::from)
            .collect()
    }
}

/// Run until leadership is lost (an error, as upstream exits) or SIGTERM/SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let unknown = config.unknown_controllers();
    if !unknown.is_empty() {
        anyhow::bail!("--controllers: unknown controller(s) {unknown:?}");
    }
    let client = config.api.client().await.context("API client")?;
    let mut registry = Registry::default();
    let queue_metrics = metrics::QueueMetrics::register(&mut registry);
    if config.secure_port != 0 {
        let addr = SocketAddr::new(config.bind_address, config.secure_port);
        let bound = component_base::serve_health(addr, registry).await?;
        tracing::info!(%bound, "serving /healthz and /metrics");
    }
    let mut leadership = component_base::leader::acquire(
        client.clone(),
        &config.leader_election,
        "kube-controller-manager",
    )
    .await?;
    let ctx = Arc::new(ControllerContext::new(client, config, queue_metrics));
    start_controllers(&ctx).await?;
    tokio::select! {
        _ = leadership.lost() => anyhow::bail!("leader election lost"),
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            leadership.release().await;
            Ok(())
        }
    }
}

/// Start every enabled controller, then the shared informers they use.
pub async fn start_controllers(ctx: &Arc<ControllerContext>) -> anyhow::Result<()> {
    let c = &ctx.config;
    if c.enabled("replicationcontroller-controller") {
        replication::start(ctx);
    }
    if c.enabled("endpoints-controller") {
        endpoints::start(ctx);
    }
    if c.enabled("garbage-collector-controller") {
        garbage_collector::start(ctx);
    }
    if c.enabled("namespace-controller") {
        namespace::start(ctx);
    }
    if c.enabled("node-lifecycle-controller") {
        node_lifecycle::start(ctx);
    }
    if c.enabled("taint-eviction-controller") {
        taint_eviction::start(ctx);
    }
    if c.enabled("node-ipam-controller") {
        node_ipam::start(ctx).context("node IPAM")?;
    }
    if c.enabled("pod-garbage-collector-controller") {
        pod_gc::start(ctx);
    }
    ctx.informers.start_all();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["kube-controller-manager"];
        argv.extend_from_slice(args);
        Options::parse_from(argv).into_config()
    }

    #[test]
    fn controllers_flag_as_upstream() {
        let c = config(&[]);
        assert!(c.enabled("replicationcontroller-controller"));
        let c = config(&["--controllers=*,-endpoint"]);
        assert!(!c.enabled("endpoints-controller"));
        assert!(c.enabled("namespace-controller"));
        let c = config(&["--controllers=replicationcontroller,garbage-collector-controller"]);
        assert!(c.enabled("replicationcontroller-controller"));
        assert!(c.enabled("garbage-collector-controller"));
        assert!(!c.enabled("namespace-controller"));
        assert_eq!(
            config(&["--controllers=bogus"]).unknown_controllers(),
            ["bogus"]
        );
    }

    #[test]
    fn upstream_defaults() {
        let c = config(&[]);
        assert_eq!(c.secure_port, 10257);
        assert_eq!(c.node_monitor_grace_period, Duration::from_secs(40));
        assert_eq!(c.node_monitor_period, Duration::from_secs(5));
        assert_eq!(c.concurrent_rc_syncs, 5);
        assert!(!c.allocate_node_cidrs);
        assert!(c.leader_election.leader_elect);
        let c = config(&[
            "--allocate-node-cidrs",
            "--cluster-cidr=10.244.0.0/16",
            "--node-monitor-grace-period=4s",
        ]);
        assert!(c.allocate_node_cidrs);
        assert_eq!(c.node_monitor_grace_period, Duration::from_secs(4));
    }
}
