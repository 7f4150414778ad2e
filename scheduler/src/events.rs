//! Events about pods (Scheduled, FailedScheduling), written in the
//! background as upstream's event broadcaster does: never blocking the
//! scheduling loop, dropped when too many wait, and a repeated identical
//! event counted in its series instead of written again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSeries, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::pod_info::DEFAULT_SCHEDULER_NAME;

/// Events waiting to be written beyond this are dropped (upstream: 1000).
const QUEUE_LENGTH: usize = 1000;
/// Event writes in flight at once.
const CONCURRENT_WRITES: usize = 8;
/// An identical event within this window joins the earlier one's series.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// How often grown series are written back.
const SERIES_FLUSH: Duration = Duration::from_secs(30);
/// events.k8s.io limits the note to 1 KiB.
const MAX_NOTE: usize = 1024;

/// The pod an event is about.
#[derive(Debug, Clone)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Debug)]
pub struct Record {
    pub pod: PodRef,
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

/// Hands events to the background writer.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
    metrics: Metrics,
}

impl Recorder {
    pub fn spawn(client: Client, metrics: Metrics) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_LENGTH);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let writer = Writer {
            client,
            instance: format!("{DEFAULT_SCHEDULER_NAME}-{host}"),
            series: HashMap::new(),
            slots: Arc::new(Semaphore::new(CONCURRENT_WRITES)),
        };
        tokio::spawn(writer.run(rx));
        Recorder { tx, metrics }
    }

    pub fn record(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            self.metrics.events_dropped.inc();
        }
    }
}

#[derive(Debug)]
struct Series {
    namespace: String,
    name: String,
    count: i32,
    written_count: i32,
    last_seen: Instant,
    last_seen_at: Timestamp,
}

struct Writer {
    client: Client,
    instance: String,
    /// (pod uid, reason, message) -> the event already written for it.
    series: HashMap<(String, &'static str, String), Series>,
    slots: Arc<Semaphore>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Record>) {
        let mut tick = tokio::time::interval(SERIES_FLUSH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                record = rx.recv() => match record {
                    Some(r) => self.handle(r).await,
                    None => return,
                },
                _ = tick.tick() => self.flush().await,
            }
        }
    }

    async fn handle(&mut self, r: Record) {
        let now = Instant::now();
        let key = (r.pod.uid.clone(), r.reason, r.message.clone());
        if let Some(s) = self.series.get_mut(&key) {
            if now.duration_since(s.last_seen) < SERIES_WINDOW {
                s.count += 1;
                s.last_seen = now;
                s.last_seen_at = Timestamp::now();
                // The second occurrence starts the series at once; later ones
                // are written on the next flush.
                if s.count == 2 {
                    let patch = series_patch(s);
                    s.written_count = s.count;
                    let (ns, name) = (s.namespace.clone(), s.name.clone());
                    self.write(move |client| async move {
                        Api::<Event>::namespaced(client, &ns)
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                    })
                    .await;
                }
                return;
            }
        }
        let event = self.event(&r);
        let name = event.metadata.name.clone().unwrap_or_default();
        if r.warning {
            // Only failures repeat; a Scheduled event is written once.
            self.series.insert(
                key,
                Series {
                    namespace: r.pod.namespace.clone(),
                    name,
                    count: 1,
                    written_count: 1,
                    last_seen: now,
                    last_seen_at: Timestamp::now(),
                },
            );
        }
        let ns = r.pod.namespace.clone();
        self.write(move |client| async move {
            Api::<Event>::namespaced(client, &ns)
                .create(&PostParams::default(), &event)
                .await
                .map(|_| ())
        })
        .await;
    }

    /// Write grown series and forget old ones.
    async fn flush(&mut self) {
        let now = Instant::now();
        self.series
            .retain(|_, s| now.duration_since(s.last_seen) < SERIES_WINDOW);
        let mut patches = Vec::new();
        for s in self.series.values_mut() {
            if s.count > s.written_count {
                s.written_count = s.count;
                patches.push((s.namespace.clone(), s.name.clone(), series_patch(s)));
            }
        }
        for (ns, name, patch) in patches {
            self.write(move |client| async move {
                Api::<Event>::namespaced(client, &ns)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            })
            .await;
        }
    }

    /// Run one write in the background, at most CONCURRENT_WRITES at a time.
    async fn write<F, Fut>(&self, op: F)
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), kube::Error>> + Send,
    {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = op(client).await {
                tracing::warn!(error = %e, "could not write event");
            }
            drop(slot);
        });
    }

    fn event(&self, r: &Record) -> Event {
        let now = Timestamp::now();
        let nanos = now.as_nanosecond();
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", r.pod.name, nanos)),
                namespace: Some(r.pod.namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(r.pod.namespace.clone()),
                name: Some(r.pod.name.clone()),
                uid: Some(r.pod.uid.clone()),
                ..Default::default()
            },
            reason: Some(r.reason.into()),
            message: Some(truncate(&r.message, MAX_NOTE)),
            type_: Some(if r.warning { "Warning" } else { "Normal" }.into()),
            action: Some(r.action.into()),
            event_time: Some(MicroTime(now)),
            reporting_component: Some(DEFAULT_SCHEDULER_NAME.into()),
            reporting_instance: Some(self.instance.clone()),
            source: Some(EventSource {
                component: Some(DEFAULT_SCHEDULER_NAME.into()),
                host: None,
            }),
            ..Default::default()
        }
    }
}

fn series_patch(s: &Series) -> serde_json::Value {
    let series = EventSeries {
        count: Some(s.count),
        last_observed_time: Some(MicroTime(s.last_seen_at)),
    };
    json!({ "series": series })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
