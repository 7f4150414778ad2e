//! The scheduling loop. One task owns the cache and the queue: it applies
//! what the watchers report, then schedules one pod at a time and sends its
//! binding without waiting for it (bounded), so throughput does not wait on
//! API round trips. Binding results come back as messages.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher::Event;
use kube::Client;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::algorithm::{Algorithm, ScheduleError};
use crate::binder;
use crate::cache::Cache;
use crate::events::{PodRef, Record, Recorder};
use crate::informers::{BindError, Msg, SelectorObject};
use crate::metrics::{Metrics, Outcome};
use crate::pod_info::{PodInfo, PodKey, DEFAULT_SCHEDULER_NAME};
use crate::queue::{Backoff, QueuedPod, SchedulingQueue};
use crate::selectors::{Kind, Selectors};

/// Status patches for unschedulable pods in flight at once.
const CONCURRENT_STATUS_WRITES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("leader election lost")]
    LeadershipLost,
    #[error("all watchers stopped")]
    WatchersGone,
}

/// Knobs of the loop.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub percentage_of_nodes_to_score: u32,
    pub backoff: Backoff,
    /// Bindings in flight at once.
    pub max_concurrent_bindings: usize,
}

struct InFlight {
    pod: QueuedPod,
    node: String,
    started: Instant,
}

/// Which watchers have delivered their first complete list.
#[derive(Default)]
struct Synced {
    pods: bool,
    nodes: bool,
    services: bool,
    rcs: bool,
}

pub struct Scheduler {
    client: Client,
    cfg: LoopConfig,
    cache: Cache,
    queue: SchedulingQueue,
    algorithm: Algorithm,
    selectors: Selectors,
    in_flight: HashMap<PodKey, InFlight>,
    /// Keys seen during a relist, per watcher, to find what vanished.
    relist_pods: Option<HashSet<PodKey>>,
    relist_nodes: Option<HashSet<String>>,
    relist_selectors: HashMap<u8, HashSet<(String, String)>>,
    synced: Synced,
    leading: bool,
    tx: mpsc::Sender<Msg>,
    recorder: Recorder,
    metrics: Metrics,
    status_slots: Arc<Semaphore>,
}

impl Scheduler {
    pub fn new(
        client: Client,
        cfg: LoopConfig,
        tx: mpsc::Sender<Msg>,
        recorder: Recorder,
        metrics: Metrics,
    ) -> Self {
        Scheduler {
            client,
            queue: SchedulingQueue::new(cfg.backoff),
            algorithm: Algorithm::new(cfg.percentage_of_nodes_to_score),
            cfg,
            cache: Cache::default(),
            selectors: Selectors::default(),
            in_flight: HashMap::new(),
            relist_pods: None,
            relist_nodes: None,
            relist_selectors: HashMap::new(),
            synced: Synced::default(),
            leading: false,
            tx,
            recorder,
            metrics,
            status_slots: Arc::new(Semaphore::new(CONCURRENT_STATUS_WRITES)),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) -> Result<(), LoopError> {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg)?,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        return Err(LoopError::WatchersGone)
                    }
                }
            }
            let now = Instant::now();
            self.queue.flush(now);
            self.metrics.pending(self.queue.counts());
            if self.ready() && self.in_flight.len() < self.cfg.max_concurrent_bindings {
                if let Some(pod) = self.queue.pop() {
                    self.schedule_one(pod);
                    // Let the binding and watch tasks run between cycles.
                    tokio::task::consume_budget().await;
                    continue;
                }
            }
            let wake = self.queue.next_wakeup();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg)?,
                    None => return Err(LoopError::WatchersGone),
                },
                _ = sleep_until(wake) => {}
            }
        }
    }

    fn ready(&self) -> bool {
        let s = &self.synced;
        self.leading && s.pods && s.nodes && s.services && s.rcs
    }

    fn handle(&mut self, msg: Msg) -> Result<(), LoopError> {
        match msg {
            Msg::Pod(e) => self.on_pod_event(e),
            Msg::Node(e) => self.on_node_event(e),
            Msg::Selector(kind, e) => self.on_selector_event(kind, e),
            Msg::Bound {
                key,
                uid,
                node,
                result,
                took,
            } => self.on_bound(key, uid, node, result, took),
            Msg::Leading => {
                tracing::info!("leading: scheduling starts");
                self.leading = true;
                self.metrics.leading(true);
            }
            Msg::LostLeadership => return Err(LoopError::LeadershipLost),
        }
        Ok(())
    }

    fn on_pod_event(&mut self, event: Event<Arc<PodInfo>>) {
        match event {
            Event::Apply(pod) => self.on_pod(pod),
            Event::Delete(pod) => self.on_pod_gone(&pod.key()),
            Event::Init => self.relist_pods = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if let Some(seen) = self.relist_pods.as_mut() {
                    seen.insert(pod.key());
                }
                self.on_pod(pod);
            }
            Event::InitDone => {
                let seen = self.relist_pods.take().unwrap_or_default();
                let gone: Vec<PodKey> = self
                    .queue
                    .keys()
                    .chain(self.cache.pod_keys())
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    self.on_pod_gone(&key);
                }
                if !self.synced.pods {
                    tracing::info!(pods = seen.len(), "pods synced");
                }
                self.synced.pods = true;
            }
        }
    }

    fn on_pod(&mut self, pod: Arc<PodInfo>) {
        let key = pod.key();
        if pod.node_name.is_some() {
            self.queue.remove(&key);
            self.cache.set_bound(pod);
            return;
        }
        if let Some((_, assumed)) = self.cache.placement(&key) {
            if assumed {
                // Its binding is in flight; the watch has not caught up yet.
                return;
            }
            self.cache.remove_pod(&key);
        }
        let ours = pod.scheduler_name == DEFAULT_SCHEDULER_NAME && !pod.terminating;
        if ours {
            self.queue.add_or_update(pod, Instant::now());
        } else {
            self.queue.remove(&key);
        }
    }

    fn on_pod_gone(&mut self, key: &str) {
        self.queue.remove(key);
        self.in_flight.remove(key);
        if self.cache.remove_pod(key) {
            // Its resources are free: pods that did not fit may now.
            self.queue.move_all_unschedulable(Instant::now());
        }
    }

    fn on_node_event(&mut self, event: Event<crate::node_info::NodeView>) {
        match event {
            Event::Apply(view) => self.on_node(view),
            Event::Delete(view) => self.cache.remove_node(&view.name),
            Event::Init => self.relist_nodes = Some(HashSet::new()),
            Event::InitApply(view) => {
                if let Some(seen) = self.relist_nodes.as_mut() {
                    seen.insert(view.name.clone());
                }
                self.on_node(view);
            }
            Event::InitDone => {
                let seen = self.relist_nodes.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .cache
                    .node_names()
                    .filter(|n| !seen.contains(*n))
                    .map(String::from)
                    .collect();
                for name in gone {
                    self.cache.remove_node(&name);
                }
                if !self.synced.nodes {
                    tracing::info!(nodes = seen.len(), "nodes synced");
                }
                self.synced.nodes = true;
            }
        }
    }

    fn on_node(&mut self, view: crate::node_info::NodeView) {
        if self.cache.set_node(view) {
            self.queue.move_all_unschedulable(Instant::now());
        }
    }

    fn on_selector_event(&mut self, kind: Kind, event: Event<SelectorObject>) {
        let slot = kind as u8;
        match event {
            Event::Apply(o) => self.selectors.set(kind, &o.namespace, &o.name, o.selector),
            Event::Delete(o) => self.selectors.remove(kind, &o.namespace, &o.name),
            Event::Init => {
                self.relist_selectors.insert(slot, HashSet::new());
            }
            Event::InitApply(o) => {
                if let Some(seen) = self.relist_selectors.get_mut(&slot) {
                    seen.insert((o.namespace.clone(), o.name.clone()));
                }
                self.selectors.set(kind, &o.namespace, &o.name, o.selector);
            }
            Event::InitDone => {
                let seen = self.relist_selectors.remove(&slot).unwrap_or_default();
                for (ns, name) in self.selectors.keys(kind) {
                    if !seen.contains(&(ns.clone(), name.clone())) {
                        self.selectors.remove(kind, &ns, &name);
                    }
                }
                match kind {
                    Kind::Service => self.synced.services = true,
                    Kind::ReplicationController => self.synced.rcs = true,
                }
            }
        }
    }

    /// One scheduling cycle: find a node, assume the pod there, send the
    /// binding in the background.
    fn schedule_one(&mut self, pod: QueuedPod) {
        let started = Instant::now();
        let info = pod.info.clone();
        let spread = self.selectors.spread_selector(&info);
        match self.algorithm.schedule(&self.cache, &info, spread.as_ref()) {
            Ok(node) => {
                let key = info.key();
                self.cache.assume(info.clone(), &node);
                self.in_flight.insert(
                    key.clone(),
                    InFlight {
                        pod,
                        node: node.clone(),
                        started,
                    },
                );
                let client = self.client.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let result =
                        binder::bind(client, &info.namespace, &info.name, &info.uid, &node)
                            .await
                            .map_err(BindError::from);
                    let _ = tx
                        .send(Msg::Bound {
                            key,
                            uid: info.uid.clone(),
                            node,
                            result,
                            took: t.elapsed(),
                        })
                        .await;
                });
            }
            Err(ScheduleError::Unschedulable(fit)) => {
                self.metrics
                    .attempt(Outcome::Unschedulable, started.elapsed());
                self.fail(pod, "Unschedulable", fit.message(), false);
            }
            Err(e @ ScheduleError::NoNodes) => {
                self.metrics.attempt(Outcome::Error, started.elapsed());
                self.fail(pod, "SchedulerError", e.to_string(), true);
            }
        }
    }

    fn on_bound(
        &mut self,
        key: PodKey,
        uid: String,
        node: String,
        result: Result<(), BindError>,
        took: Duration,
    ) {
        let mine = self
            .in_flight
            .get(&key)
            .is_some_and(|f| f.pod.info.uid == uid && f.node == node);
        if !mine {
            return;
        }
        let flight = self.in_flight.remove(&key).expect("checked");
        self.metrics.binding(took);
        let info = &flight.pod.info;
        match result {
            Ok(()) => {
                self.metrics
                    .attempt(Outcome::Scheduled, flight.started.elapsed());
                self.recorder.record(Record {
                    pod: pod_ref(info),
                    warning: false,
                    reason: "Scheduled",
                    action: "Binding",
                    message: format!(
                        "Successfully assigned {}/{} to {}",
                        info.namespace, info.name, node
                    ),
                });
            }
            Err(error) => {
                if let Some((_, false)) = self.cache.placement(&key) {
                    // The watch already shows it bound (by us or another scheduler).
                    return;
                }
                let message = error.message;
                tracing::warn!(pod = %key, node = %node, %message, "binding failed");
                self.cache.forget(&key);
                self.metrics
                    .attempt(Outcome::Error, flight.started.elapsed());
                let now = Instant::now();
                if error.code == Some(409) {
                    // Bound meanwhile (by a previous leader): the watch will
                    // say where; nothing to report, retried only if not.
                    self.queue.add_backoff(flight.pod, now);
                } else {
                    let message = format!("Binding rejected: {message}");
                    self.fail(flight.pod, "SchedulerError", message, true);
                }
                // The forgotten pod's resources are free again.
                self.queue.move_all_unschedulable(now);
            }
        }
    }

    /// Requeue a pod that could not be placed, tell its owner why (an event
    /// and the PodScheduled condition, unless unchanged).
    fn fail(&mut self, pod: QueuedPod, reason: &'static str, message: String, error: bool) {
        let info = pod.info.clone();
        let now = Instant::now();
        if error {
            self.queue.add_backoff(pod, now);
        } else {
            self.queue.add_unschedulable(pod, now);
        }
        tracing::info!(pod = %info.key(), %reason, %message, "unable to schedule pod");
        self.recorder.record(Record {
            pod: pod_ref(&info),
            warning: true,
            reason: "FailedScheduling",
            action: "Scheduling",
            message: message.clone(),
        });
        let current = info.scheduled_condition.as_ref();
        let unchanged = current
            .is_some_and(|c| c.status == "False" && c.reason == reason && c.message == message);
        if unchanged {
            return;
        }
        let status_changes = current.is_none_or(|c| c.status != "False");
        let client = self.client.clone();
        let slots = self.status_slots.clone();
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let r = binder::set_unschedulable(
                client,
                &info.namespace,
                &info.name,
                reason,
                &message,
                status_changes,
            )
            .await;
            if let Err(e) = r {
                tracing::warn!(pod = %info.key(), error = %e, "could not update pod condition");
            }
        });
    }
}

fn pod_ref(info: &PodInfo) -> PodRef {
    PodRef {
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        uid: info.uid.clone(),
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
