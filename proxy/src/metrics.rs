//! kube-proxy's Prometheus metrics (upstream's names where upstream has
//! the metric).

use std::sync::atomic::AtomicU64;

use component_base::prometheus_client::metrics::counter::Counter;
use component_base::prometheus_client::metrics::family::Family;
use component_base::prometheus_client::metrics::gauge::Gauge;
use component_base::prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use component_base::prometheus_client::registry::Registry;

use crate::proxier::{SyncKind, SyncReport};

type Labels = [(&'static str, &'static str); 1];

#[derive(Clone)]
pub struct Metrics {
    syncs: Family<Labels, Counter>,
    sync_duration: Histogram,
    full_sync_duration: Histogram,
    partial_sync_duration: Histogram,
    last_sync_duration: Gauge<f64, AtomicU64>,
    last_sync_timestamp: Gauge<f64, AtomicU64>,
    rules: Gauge,
    pub sync_failures: Counter,
    pub pod_routes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = || Histogram::new(exponential_buckets(0.001, 2.0, 15));
        Self {
            syncs: Family::default(),
            sync_duration: buckets(),
            full_sync_duration: buckets(),
            partial_sync_duration: buckets(),
            last_sync_duration: Gauge::default(),
            last_sync_timestamp: Gauge::default(),
            rules: Gauge::default(),
            sync_failures: Counter::default(),
            pod_routes: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("kubeproxy");
        r.register(
            "sync_proxy_rules",
            "Syncs of the nftables table, by kind (full or partial)",
            self.syncs.clone(),
        );
        r.register(
            "sync_proxy_rules_duration_seconds",
            "How long syncs take",
            self.sync_duration.clone(),
        );
        r.register(
            "sync_full_proxy_rules_duration_seconds",
            "How long full syncs take",
            self.full_sync_duration.clone(),
        );
        r.register(
            "sync_partial_proxy_rules_duration_seconds",
            "How long partial syncs take",
            self.partial_sync_duration.clone(),
        );
        r.register(
            "sync_proxy_rules_last_duration_seconds",
            "How long the last sync took",
            self.last_sync_duration.clone(),
        );
        r.register(
            "sync_proxy_rules_last_timestamp_seconds",
            "When the last sync succeeded (Unix time)",
            self.last_sync_timestamp.clone(),
        );
        r.register(
            "sync_proxy_rules_nftables_rules",
            "Rules in the kube-proxy table",
            self.rules.clone(),
        );
        r.register(
            "sync_proxy_rules_failures",
            "Syncs that failed",
            self.sync_failures.clone(),
        );
        r.register(
            "pod_routes",
            "Routes to other nodes' pod CIDRs",
            self.pod_routes.clone(),
        );
        r
    }

    pub fn observe_sync(&self, report: &SyncReport) {
        let kind = match report.kind {
            SyncKind::Full => "full",
            SyncKind::Partial => "partial",
            SyncKind::Nothing => return,
        };
        let seconds = report.took.as_secs_f64();
        self.syncs.get_or_create(&[("kind", kind)]).inc();
        self.sync_duration.observe(seconds);
        match report.kind {
            SyncKind::Full => self.full_sync_duration.observe(seconds),
            _ => self.partial_sync_duration.observe(seconds),
        }
        self.last_sync_duration.set(seconds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.last_sync_timestamp.set(now);
        self.rules.set(report.rules as i64);
    }
}
