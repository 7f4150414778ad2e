//! Prometheus metrics served on /metrics: the work queues' as client-go
//! names them (workqueue_adds_total, workqueue_depth, workqueue_retries_total,
//! labelled by queue name).

use component_base::prometheus_client::metrics::counter::Counter;
use component_base::prometheus_client::metrics::family::Family;
use component_base::prometheus_client::metrics::gauge::Gauge;
use component_base::prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Work queue metrics; the default is a set registered nowhere (for tests).
#[derive(Clone, Default)]
pub struct QueueMetrics {
    adds: Family<Labels, Counter>,
    depth: Family<Labels, Gauge>,
    retries: Family<Labels, Counter>,
}

impl QueueMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by a workqueue",
            m.adds.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Current depth of a workqueue",
            m.depth.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by a workqueue",
            m.retries.clone(),
        );
        m
    }

    fn labels(name: &str) -> Labels {
        vec![("name".to_string(), name.to_string())]
    }

    pub fn adds(&self, name: &str) {
        self.adds.get_or_create(&Self::labels(name)).inc();
    }

    pub fn retries(&self, name: &str) {
        self.retries.get_or_create(&Self::labels(name)).inc();
    }

    pub fn set_depth(&self, name: &str, depth: usize) {
        self.depth
            .get_or_create(&Self::labels(name))
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}
