//! core/v1 Events, as client-go's legacy event recorder writes them: one
//! Event per (object, type, reason, message), its count raised on repeats,
//! and a per-object spam filter (a burst of 25, then one per 5 minutes), all
//! sent by a background task so that controllers never wait for them.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Upstream's EventSourceObjectSpamFilter defaults.
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_EVERY: Duration = Duration::from_secs(300);
/// Events waiting to be sent; more are dropped, as upstream's broadcaster does.
const QUEUE_LEN: usize = 1000;
/// How many distinct events to remember for counting repeats.
const CACHE_LEN: usize = 4096;

struct Item {
    object: ObjectReference,
    type_: &'static str,
    reason: String,
    message: String,
}

/// Sends Events for one component (e.g. "replication-controller").
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Item>,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let sink = Sink {
            client,
            component: component.to_string(),
            host: hostname(),
            seen: HashMap::new(),
            buckets: HashMap::new(),
        };
        tokio::spawn(sink.run(rx));
        Self { tx }
    }

    pub fn normal(&self, object: ObjectReference, reason: &str, message: impl Into<String>) {
        self.record(object, NORMAL, reason, message.into());
    }

    pub fn warning(&self, object: ObjectReference, reason: &str, message: impl Into<String>) {
        self.record(object, WARNING, reason, message.into());
    }

    fn record(&self, object: ObjectReference, type_: &'static str, reason: &str, message: String) {
        tracing::debug!(object = ?object.name, reason, %message, "event");
        let item = Item {
            object,
            type_,
            reason: reason.to_string(),
            message,
        };
        if self.tx.try_send(item).is_err() {
            tracing::debug!("event queue full; dropping event");
        }
    }
}

struct Sink {
    client: Client,
    component: String,
    host: String,
    /// (object, type, reason, message) -> (event namespace, name, count).
    seen: HashMap<String, (String, String, i32)>,
    /// Spam filter token buckets per object: (tokens, last refill).
    buckets: HashMap<String, (f64, Instant)>,
}

impl Sink {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>) {
        while let Some(item) = rx.recv().await {
            if !self.allow(&item) {
                continue;
            }
            if let Err(e) = self.send(&item).await {
                tracing::debug!(error = %e, reason = %item.reason, "could not write event");
            }
        }
    }

    fn object_key(o: &ObjectReference) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            o.api_version.as_deref().unwrap_or_default(),
            o.kind.as_deref().unwrap_or_default(),
            o.namespace.as_deref().unwrap_or_default(),
            o.name.as_deref().unwrap_or_default(),
            o.uid.as_deref().unwrap_or_default()
        )
    }

    fn allow(&mut self, item: &Item) -> bool {
        if self.buckets.len() > CACHE_LEN {
            self.buckets.clear();
        }
        let now = Instant::now();
        let (tokens, last) = self
            .buckets
            .entry(Self::object_key(&item.object))
            .or_insert((SPAM_BURST, now));
        let refill = now.duration_since(*last).as_secs_f64() / SPAM_REFILL_EVERY.as_secs_f64();
        *tokens = (*tokens + refill).min(SPAM_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn send(&mut self, item: &Item) -> Result<(), kube::Error> {
        let key = format!(
            "{}|{}|{}|{}",
            Self::object_key(&item.object),
            item.type_,
            item.reason,
            item.message
        );
        let now = Time(Timestamp::now());
        if let Some((ns, name, count)) = self.seen.get_mut(&key) {
            *count += 1;
            let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
            let patch = json!({"count": *count, "lastTimestamp": now});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let ns = item
            .object
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let nanos = Timestamp::now().as_nanosecond();
        let name = format!(
            "{}.{:x}",
            item.object.name.as_deref().unwrap_or("object"),
            nanos
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: item.object.clone(),
            reason: Some(item.reason.clone()),
            message: Some(item.message.clone()),
            type_: Some(item.type_.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        api.create(&PostParams::default(), &event).await?;
        if self.seen.len() > CACHE_LEN {
            self.seen.clear();
        }
        self.seen.insert(key, (ns, name, 1));
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
