//! The scheduler's Prometheus metrics, with upstream's names where upstream
//! has the metric.

use std::time::Duration;

use component_base::prometheus_client::metrics::counter::Counter;
use component_base::prometheus_client::metrics::family::Family;
use component_base::prometheus_client::metrics::gauge::Gauge;
use component_base::prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use component_base::prometheus_client::registry::Registry;

use crate::queue::Counts;

type Labels = [(&'static str, &'static str); 2];

#[derive(Clone)]
pub struct Metrics {
    /// scheduler_schedule_attempts_total{result, profile}
    attempts: Family<Labels, Counter>,
    /// scheduler_scheduling_attempt_duration_seconds{result, profile}
    attempt_duration: Family<Labels, Histogram>,
    /// scheduler_pending_pods{queue}
    pending: Family<[(&'static str, &'static str); 1], Gauge>,
    /// scheduler_binding_duration_seconds: POST pods/binding round trip.
    binding_duration: Histogram,
    /// scheduler_events_dropped_total: events not sent because the queue was full.
    pub events_dropped: Counter,
    /// leader_election_master_status{name="kube-scheduler"}
    leader: Gauge,
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Scheduled,
    Unschedulable,
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Scheduled => "scheduled",
            Outcome::Unschedulable => "unschedulable",
            Outcome::Error => "error",
        }
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(latency_histogram),
            pending: Family::default(),
            binding_duration: latency_histogram(),
            events_dropped: Counter::default(),
            leader: Gauge::default(),
        };
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result.",
            m.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding).",
            m.attempt_duration.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type.",
            m.pending.clone(),
        );
        registry.register(
            "scheduler_binding_duration_seconds",
            "Binding latency in seconds (POST pods/binding).",
            m.binding_duration.clone(),
        );
        registry.register(
            "scheduler_events_dropped",
            "Events not sent because too many were waiting.",
            m.events_dropped.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "1 while this process leads (or runs without leader election).",
            m.leader.clone(),
        );
        m
    }

    pub fn attempt(&self, outcome: Outcome, took: Duration) {
        let labels = [
            ("result", outcome.label()),
            ("profile", "default-scheduler"),
        ];
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn binding(&self, took: Duration) {
        self.binding_duration.observe(took.as_secs_f64());
    }

    pub fn pending(&self, c: Counts) {
        for (queue, n) in [
            ("active", c.active),
            ("backoff", c.backoff),
            ("unschedulable", c.unschedulable),
            ("gated", c.gated),
        ] {
            self.pending
                .get_or_create(&[("queue", queue)])
                .set(n as i64);
        }
    }

    pub fn leading(&self, yes: bool) {
        self.leader.set(i64::from(yes));
    }
}
