//! The node lifecycle controller (upstream's pkg/controller/nodelifecycle):
//! - every --node-monitor-period it checks each node's heartbeats (its
//!   Lease in kube-node-lease and its Ready condition); a node silent for
//!   --node-monitor-grace-period (--node-startup-grace-period if it never
//!   reported) gets Ready, MemoryPressure, DiskPressure and PIDPressure
//!   set to Unknown ("Kubelet stopped posting node status."), and its pods
//!   are marked Ready=False;
//! - nodes not Ready get the NoExecute taint node.kubernetes.io/unreachable
//!   (Ready Unknown) or node.kubernetes.io/not-ready (Ready False), added
//!   through a per-zone rate limiter (--node-eviction-rate), stopped when a
//!   whole cluster seems down; the taints go when the node recovers. The
//!   taint eviction controller then evicts the pods;
//! - NoSchedule taints follow the node's conditions and spec.unschedulable.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::time::Instant;

use crate::context::NODE_LEASE_NAMESPACE;
use crate::events::Recorder;
use crate::informer::{Change, Informer};
use crate::pod_util::node_name;
use crate::queue::{spawn_workers, WorkQueue};
use crate::taints::{
    self, node_has, swap_node_taints, taint, NOT_READY, NO_EXECUTE, NO_SCHEDULE, UNREACHABLE,
};
use crate::{is_not_found, ControllerContext, Error, Result};

/// Upstream's NodeEvictionPeriod: how often the taint queues are tried.
const NODE_EVICTION_PERIOD: Duration = Duration::from_millis(100);
/// Nodes whose health is updated at the same time.
const NODE_UPDATE_WORKERS: usize = 8;
/// Label excluding a node from the zone disruption count.
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZoneState {
    Initial,
    Normal,
    FullDisruption,
    PartialDisruption,
}

/// What was last seen of a node, and when (on this controller's clock).
#[derive(Debug, Clone)]
struct NodeHealth {
    probe: Timestamp,
    ready_transition: Timestamp,
    ready: Option<NodeCondition>,
    lease_renew: Option<Timestamp>,
}

/// A token bucket (upstream's flowcontrol token bucket with burst 1).
struct Limiter {
    qps: f64,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    fn new(qps: f64) -> Self {
        Self {
            qps,
            tokens: 1.0,
            last: Instant::now(),
        }
    }

    fn try_accept(&mut self) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.qps).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Upstream's RateLimitedTimedQueue: nodes waiting to be tainted, at most
/// one per limiter token. A node stays known after it is processed until it
/// is removed (so it is not queued twice).
struct TaintQueue {
    queue: VecDeque<(String, Instant)>,
    known: HashSet<String>,
    limiter: Limiter,
}

impl TaintQueue {
    fn new(qps: f64) -> Self {
        Self {
            queue: VecDeque::new(),
            known: HashSet::new(),
            limiter: Limiter::new(qps),
        }
    }

    fn add(&mut self, node: &str) -> bool {
        if !self.known.insert(node.to_string()) {
            return false;
        }
        self.queue.push_back((node.to_string(), Instant::now()));
        true
    }

    fn remove(&mut self, node: &str) -> bool {
        self.queue.retain(|(n, _)| n != node);
        self.known.remove(node)
    }

    /// The next node due, if the limiter allows one now.
    fn next_due(&mut self) -> Option<String> {
        let now = Instant::now();
        let i = self.queue.iter().position(|(_, at)| *at <= now)?;
        if !self.limiter.try_accept() {
            return None;
        }
        self.queue.remove(i).map(|(name, _)| name)
    }

    fn retry_later(&mut self, node: String, after: Duration) {
        self.queue.push_back((node, Instant::now() + after));
    }

    fn swap_limiter(&mut self, qps: f64) {
        if (self.limiter.qps - qps).abs() > f64::EPSILON {
            let saturated = self.limiter.tokens < 1.0;
            self.limiter = Limiter::new(qps);
            if saturated {
                self.limiter.tokens = 0.0;
            }
        }
    }
}

struct Zones {
    states: HashMap<String, ZoneState>,
    tainters: HashMap<String, TaintQueue>,
}

pub struct NodeLifecycle {
    client: Client,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
    health: Mutex<HashMap<String, NodeHealth>>,
    known: Mutex<HashSet<String>>,
    zones: Mutex<Zones>,
    /// Nodes whose pods could not all be marked not ready.
    retry_pods: Mutex<HashSet<String>>,
    node_queue: Arc<WorkQueue<String>>,
    pod_queue: Arc<WorkQueue<String>>,
    monitor_period: Duration,
    grace: Duration,
    startup_grace: Duration,
    eviction_rate: f64,
    secondary_eviction_rate: f64,
    large_cluster: usize,
    unhealthy_threshold: f64,
}

pub fn start(ctx: &Arc<ControllerContext>) {
    let c = &ctx.config;
    let nc = Arc::new(NodeLifecycle {
        client: ctx.client.clone(),
        nodes: ctx.informers.nodes(),
        leases: ctx.informers.node_leases(),
        pods: ctx.informers.pods(),
        recorder: Recorder::new(ctx.client.clone(), "node-controller"),
        health: Mutex::new(HashMap::new()),
        known: Mutex::new(HashSet::new()),
        zones: Mutex::new(Zones {
            states: HashMap::new(),
            tainters: HashMap::new(),
        }),
        retry_pods: Mutex::new(HashSet::new()),
        node_queue: WorkQueue::new("node_lifecycle_controller", ctx.queue_metrics.clone()),
        pod_queue: WorkQueue::new("node_lifecycle_controller_pods", ctx.queue_metrics.clone()),
        monitor_period: c.node_monitor_period,
        grace: c.node_monitor_grace_period,
        startup_grace: c.node_startup_grace_period,
        eviction_rate: c.node_eviction_rate,
        secondary_eviction_rate: c.secondary_node_eviction_rate,
        large_cluster: c.large_cluster_size_threshold,
        unhealthy_threshold: c.unhealthy_zone_threshold,
    });
    let h = nc.clone();
    nc.nodes.add_handler(move |change| {
        if let Change::Added(n) | Change::Updated { new: n, .. } = change {
            h.node_queue.add(n.name_any());
        }
    });
    let h = nc.clone();
    nc.pods.add_handler(move |change| {
        // Pods newly assigned to a node: mark them not ready if it is not.
        let (old, new) = match change {
            Change::Added(p) => (None, *p),
            Change::Updated { old, new } => (Some(*old), *new),
            Change::Deleted(_) => return,
        };
        let node = node_name(new);
        if !node.is_empty() && old.is_none_or(|o| node_name(o) != node) {
            h.pod_queue.add(crate::informer::key_of(new));
        }
    });
    tokio::spawn(async move {
        nc.nodes.wait_synced().await;
        nc.leases.wait_synced().await;
        nc.pods.wait_synced().await;
        tracing::info!("node lifecycle controller started");
        let worker = nc.clone();
        spawn_workers(
            nc.node_queue.clone(),
            NODE_UPDATE_WORKERS,
            move |name: String| {
                let nc = worker.clone();
                async move {
                    nc.no_schedule_tainting_pass(&name).await?;
                    nc.reconcile_node_labels(&name).await
                }
            },
        );
        let worker = nc.clone();
        spawn_workers(nc.pod_queue.clone(), 4, move |key: String| {
            let nc = worker.clone();
            async move { nc.process_pod(&key).await }
        });
        let tainter = nc.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(NODE_EVICTION_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                tainter.no_execute_tainting_pass().await;
            }
        });
        let mut tick = tokio::time::interval(nc.monitor_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            nc.monitor_node_health().await;
        }
    });
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Upstream's zone key: region and zone labels.
fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let get = |a: &str, b: &str| {
        labels
            .get(a)
            .or_else(|| labels.get(b))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\u{0}:{zone}")
    }
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

impl NodeLifecycle {
    fn lock_health(&self) -> std::sync::MutexGuard<'_, HashMap<String, NodeHealth>> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_zones(&self) -> std::sync::MutexGuard<'_, Zones> {
        self.zones.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_zone(&self, node: &Node) {
        let zone = zone_key(node);
        let mut z = self.lock_zones();
        if !z.states.contains_key(&zone) {
            z.states.insert(zone.clone(), ZoneState::Initial);
            z.tainters.insert(zone, TaintQueue::new(self.eviction_rate));
        }
    }

    /// Upstream's monitorNodeHealth.
    async fn monitor_node_health(self: &Arc<Self>) {
        let nodes: Vec<Arc<Node>> = self.nodes.store().state();
        let names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        let (added, deleted): (Vec<Arc<Node>>, Vec<String>) = {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            let added: Vec<Arc<Node>> = nodes
                .iter()
                .filter(|n| !known.contains(&n.name_any()))
                .cloned()
                .collect();
            let deleted: Vec<String> = known
                .iter()
                .filter(|k| !names.contains(*k))
                .cloned()
                .collect();
            for n in &added {
                known.insert(n.name_any());
            }
            for d in &deleted {
                known.remove(d);
            }
            (added, deleted)
        };
        for n in &nodes {
            self.add_zone(n);
        }
        for n in &added {
            self.recorder.normal(
                n.object_ref(&()),
                "RegisteredNode",
                format!("Registered Node {} in Controller", n.name_any()),
            );
            self.mark_node_as_reachable(n).await;
        }
        for d in &deleted {
            tracing::info!(node = %d, "node deleted");
            self.lock_health().remove(d);
            let mut z = self.lock_zones();
            for q in z.tainters.values_mut() {
                q.remove(d);
            }
        }

        let results: Vec<Option<(String, Option<NodeCondition>)>> = stream::iter(nodes.clone())
            .map(|node| {
                let nc = self.clone();
                async move { nc.update_node(node).await }
            })
            .buffer_unordered(NODE_UPDATE_WORKERS)
            .collect()
            .await;
        let mut zone_conditions: BTreeMap<String, Vec<Option<NodeCondition>>> = BTreeMap::new();
        let by_name: HashMap<String, Arc<Node>> =
            nodes.iter().map(|n| (n.name_any(), n.clone())).collect();
        for (name, current) in results.into_iter().flatten() {
            let Some(node) = by_name.get(&name) else {
                continue;
            };
            let excluded = node
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION));
            if !excluded {
                zone_conditions
                    .entry(zone_key(node))
                    .or_default()
                    .push(current);
            }
        }
        self.handle_disruption(zone_conditions, &nodes).await;
    }

    /// Health update and taint decision for one node; returns its current
    /// Ready condition (None when the update failed).
    async fn update_node(&self, node: Arc<Node>) -> Option<(String, Option<NodeCondition>)> {
        let name = node.name_any();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut node = (*node).clone();
        let mut outcome = None;
        for _ in 0..5 {
            match self.try_update_node_health(&api, &mut node).await {
                Ok(r) => {
                    outcome = Some(r);
                    break;
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "updating node health failed; retrying");
                    match api.get(&name).await {
                        Ok(fresh) => node = fresh,
                        Err(_) => return None,
                    }
                }
            }
        }
        let (observed, current) = outcome?;
        if let Some(cur) = &current {
            self.process_taint_based_eviction(&node, &observed).await;
            let needs_retry = self
                .retry_pods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&name);
            let became_not_ready = cur.status != "True" && observed.status == "True";
            if became_not_ready {
                tracing::info!(node = %name, status = %cur.status, "node became not ready");
                self.recorder.normal(
                    node.object_ref(&()),
                    "NodeNotReady",
                    format!("Node {name} status is now: NodeNotReady"),
                );
            }
            if became_not_ready || (needs_retry && observed.status != "True") {
                let pods = self.pods.store().state_filter(|p| node_name(p) == name);
                if let Err(e) = self.mark_pods_not_ready(&pods, &name).await {
                    tracing::warn!(node = %name, error = %e, "could not mark all pods not ready; will retry");
                    self.retry_pods
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name.clone());
                    return Some((name, current));
                }
            }
        }
        self.retry_pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        Some((name, current))
    }

    /// Upstream's tryUpdateNodeHealth: returns the Ready condition as the
    /// node had it and as it is now (after marking it Unknown if silent).
    async fn try_update_node_health(
        &self,
        api: &Api<Node>,
        node: &mut Node,
    ) -> Result<(NodeCondition, Option<NodeCondition>)> {
        let name = node.name_any();
        let now = Timestamp::now();
        let created = node
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(now);
        let saved = self.lock_health().get(&name).cloned();
        let current_ready = ready_condition(node).cloned();
        let (observed, grace) = match &current_ready {
            Some(c) => (c.clone(), self.grace),
            None => (
                NodeCondition {
                    type_: "Ready".into(),
                    status: "Unknown".into(),
                    last_heartbeat_time: Some(Time(created)),
                    last_transition_time: Some(Time(created)),
                    ..Default::default()
                },
                self.startup_grace,
            ),
        };
        let mut health = match (saved, &current_ready) {
            (None, None) => NodeHealth {
                probe: created,
                ready_transition: created,
                ready: None,
                lease_renew: None,
            },
            (None, Some(_)) => NodeHealth {
                probe: now,
                ready_transition: now,
                ready: current_ready.clone(),
                lease_renew: None,
            },
            (Some(h), None) => NodeHealth { ready: None, ..h },
            (Some(h), Some(cur)) => match &h.ready {
                None => NodeHealth {
                    probe: now,
                    ready_transition: now,
                    ready: Some(cur.clone()),
                    lease_renew: h.lease_renew,
                },
                Some(prev) if prev.last_heartbeat_time != cur.last_heartbeat_time => NodeHealth {
                    probe: now,
                    ready_transition: if prev.last_transition_time != cur.last_transition_time {
                        now
                    } else {
                        h.ready_transition
                    },
                    ready: Some(cur.clone()),
                    lease_renew: h.lease_renew,
                },
                Some(_) => h,
            },
        };
        // A renewed Lease counts as a heartbeat.
        let lease = self
            .leases
            .store()
            .get(&ObjectRef::new(&name).within(NODE_LEASE_NAMESPACE));
        let renew = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        if let Some(r) = renew {
            if health.lease_renew.is_none_or(|prev| prev < r) {
                health.lease_renew = Some(r);
                health.probe = now;
            }
        }

        let mut result = (observed.clone(), current_ready.clone());
        if now > plus(health.probe, grace) {
            let status = node.status.get_or_insert_with(Default::default);
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            for type_ in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
                match conditions.iter_mut().find(|c| c.type_ == type_) {
                    None => conditions.push(NodeCondition {
                        type_: type_.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_heartbeat_time: Some(Time(created)),
                        last_transition_time: Some(Time(now)),
                    }),
                    Some(c) if c.status != "Unknown" => {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(Time(now));
                    }
                    Some(_) => {}
                }
            }
            let new_ready = ready_condition(node).cloned();
            if new_ready.as_ref() != Some(&observed) {
                tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
                api.replace_status(&name, &PostParams::default(), node)
                    .await
                    .map_err(Error::from)?;
                health = NodeHealth {
                    probe: health.probe,
                    ready_transition: now,
                    ready: new_ready.clone(),
                    lease_renew: health.lease_renew,
                };
            }
            result = (observed, new_ready);
        }
        self.lock_health().insert(name, health);
        Ok(result)
    }

    async fn process_taint_based_eviction(&self, node: &Node, observed: &NodeCondition) {
        let unreachable = taint(UNREACHABLE, NO_EXECUTE);
        let not_ready = taint(NOT_READY, NO_EXECUTE);
        let name = node.name_any();
        match observed.status.as_str() {
            "False" => {
                if node_has(node, &unreachable) {
                    if let Err(e) =
                        swap_node_taints(&self.client, &name, &[not_ready], &[unreachable]).await
                    {
                        tracing::warn!(node = %name, error = %e, "could not swap to the not-ready taint");
                    }
                } else {
                    self.mark_node_for_tainting(node, "False");
                }
            }
            "Unknown" => {
                if node_has(node, &not_ready) {
                    if let Err(e) =
                        swap_node_taints(&self.client, &name, &[unreachable], &[not_ready]).await
                    {
                        tracing::warn!(node = %name, error = %e, "could not swap to the unreachable taint");
                    }
                } else {
                    self.mark_node_for_tainting(node, "Unknown");
                }
            }
            "True" if self.mark_node_as_reachable(node).await => {
                tracing::info!(node = %name, "node is healthy again; removed its NoExecute taints");
            }
            _ => {}
        }
    }

    fn mark_node_for_tainting(&self, node: &Node, status: &str) {
        let name = node.name_any();
        let mut z = self.lock_zones();
        let Some(q) = z.tainters.get_mut(&zone_key(node)) else {
            return;
        };
        let wanted = if status == "False" {
            NOT_READY
        } else {
            UNREACHABLE
        };
        if !node_has(node, &taint(wanted, NO_EXECUTE)) {
            q.remove(&name);
        }
        if q.add(&name) {
            tracing::info!(node = %name, status, "node queued for the NoExecute taint");
        }
    }

    /// Remove both NoExecute taints; true when the node was queued or tainted.
    async fn mark_node_as_reachable(&self, node: &Node) -> bool {
        let name = node.name_any();
        let both = [taint(UNREACHABLE, NO_EXECUTE), taint(NOT_READY, NO_EXECUTE)];
        let mut changed = false;
        if both.iter().any(|t| node_has(node, t)) {
            match swap_node_taints(&self.client, &name, &[], &both).await {
                Ok(c) => changed = c,
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "could not remove NoExecute taints")
                }
            }
        }
        let mut z = self.lock_zones();
        if let Some(q) = z.tainters.get_mut(&zone_key(node)) {
            changed |= q.remove(&name);
        }
        changed
    }

    /// Taint queued nodes, as far as each zone's limiter allows.
    async fn no_execute_tainting_pass(&self) {
        let zones: Vec<String> = self.lock_zones().tainters.keys().cloned().collect();
        for zone in zones {
            loop {
                let next = {
                    let mut z = self.lock_zones();
                    z.tainters.get_mut(&zone).and_then(|q| q.next_due())
                };
                let Some(name) = next else { break };
                let node = self.nodes.store().get(&ObjectRef::new(&name));
                let Some(node) = node else { continue };
                let Some(ready) = ready_condition(&node) else {
                    let mut z = self.lock_zones();
                    if let Some(q) = z.tainters.get_mut(&zone) {
                        q.retry_later(name, Duration::from_millis(50));
                    }
                    continue;
                };
                let (add, remove) = match ready.status.as_str() {
                    "False" => (taint(NOT_READY, NO_EXECUTE), taint(UNREACHABLE, NO_EXECUTE)),
                    "Unknown" => (taint(UNREACHABLE, NO_EXECUTE), taint(NOT_READY, NO_EXECUTE)),
                    // Ready again: nothing to taint.
                    _ => continue,
                };
                match swap_node_taints(&self.client, &name, std::slice::from_ref(&add), &[remove])
                    .await
                {
                    Ok(_) => {
                        tracing::info!(node = %name, taint = %add.key, "tainted node NoExecute")
                    }
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "could not taint node; will retry");
                        let mut z = self.lock_zones();
                        if let Some(q) = z.tainters.get_mut(&zone) {
                            q.retry_later(name, Duration::from_millis(1));
                        }
                    }
                }
            }
        }
    }

    /// Upstream's handleDisruption: zone states drive the taint rate, and
    /// when every zone is fully down, tainting stops (a control-plane
    /// network problem is likelier than all nodes failing).
    async fn handle_disruption(
        &self,
        zone_conditions: BTreeMap<String, Vec<Option<NodeCondition>>>,
        nodes: &[Arc<Node>],
    ) {
        let mut new_states = HashMap::new();
        let mut all_fully_disrupted = true;
        for (zone, conds) in &zone_conditions {
            let state = self.compute_zone_state(conds);
            if state != ZoneState::FullDisruption {
                all_fully_disrupted = false;
            }
            new_states.insert(zone.clone(), state);
        }
        let all_were_fully_disrupted = {
            let mut z = self.lock_zones();
            for zone in zone_conditions.keys() {
                z.states.entry(zone.clone()).or_insert(ZoneState::Initial);
            }
            let gone: Vec<String> = z
                .states
                .keys()
                .filter(|k| !zone_conditions.contains_key(*k))
                .cloned()
                .collect();
            for k in gone {
                z.states.remove(&k);
            }
            z.states.values().all(|s| *s == ZoneState::FullDisruption)
        };
        if all_fully_disrupted && all_were_fully_disrupted {
            return;
        }
        if all_fully_disrupted {
            tracing::info!("all nodes are not ready: entering master disruption mode (no taint-based evictions)");
            for n in nodes {
                self.mark_node_as_reachable(n).await;
            }
            let mut z = self.lock_zones();
            for q in z.tainters.values_mut() {
                q.swap_limiter(0.0);
            }
            for s in z.states.values_mut() {
                *s = ZoneState::FullDisruption;
            }
            return;
        }
        if all_were_fully_disrupted {
            tracing::info!("some nodes are ready: exiting master disruption mode");
            let now = Timestamp::now();
            {
                let mut h = self.lock_health();
                for n in nodes {
                    if let Some(v) = h.get_mut(&n.name_any()) {
                        v.probe = now;
                        v.ready_transition = now;
                    }
                }
            }
            let mut z = self.lock_zones();
            let zones: Vec<String> = z.states.keys().cloned().collect();
            for k in zones {
                let state = new_states.get(&k).copied().unwrap_or(ZoneState::Normal);
                let size = zone_conditions.get(&k).map(Vec::len).unwrap_or(0);
                let qps = self.zone_qps(size, state);
                if let Some(q) = z.tainters.get_mut(&k) {
                    q.swap_limiter(qps);
                }
                z.states.insert(k, state);
            }
            return;
        }
        let mut z = self.lock_zones();
        let zones: Vec<String> = z.states.keys().cloned().collect();
        for k in zones {
            let new_state = new_states.get(&k).copied().unwrap_or(ZoneState::Normal);
            if z.states.get(&k) == Some(&new_state) {
                continue;
            }
            tracing::info!(zone = %k, state = ?new_state, "zone state changed");
            let size = zone_conditions.get(&k).map(Vec::len).unwrap_or(0);
            let qps = self.zone_qps(size, new_state);
            if let Some(q) = z.tainters.get_mut(&k) {
                q.swap_limiter(qps);
            }
            z.states.insert(k, new_state);
        }
    }

    fn zone_qps(&self, size: usize, state: ZoneState) -> f64 {
        match state {
            ZoneState::PartialDisruption if size > self.large_cluster => {
                self.secondary_eviction_rate
            }
            ZoneState::PartialDisruption => 0.0,
            _ => self.eviction_rate,
        }
    }

    fn compute_zone_state(&self, conds: &[Option<NodeCondition>]) -> ZoneState {
        let ready = conds
            .iter()
            .filter(|c| c.as_ref().is_some_and(|c| c.status == "True"))
            .count();
        let not_ready = conds.len() - ready;
        if ready == 0 && not_ready > 0 {
            ZoneState::FullDisruption
        } else if not_ready > 2
            && not_ready as f64 / (ready + not_ready) as f64 >= self.unhealthy_threshold
        {
            ZoneState::PartialDisruption
        } else {
            ZoneState::Normal
        }
    }

    /// Set the Ready condition of the node's pods to False (upstream's MarkPodsNotReady).
    async fn mark_pods_not_ready(&self, pods: &[Arc<Pod>], node: &str) -> Result<()> {
        let mut first_err = None;
        for pod in pods {
            if node_name(pod) != node {
                continue;
            }
            let mut p = (**pod).clone();
            let Some(status) = p.status.as_mut() else {
                continue;
            };
            let Some(cond) = status
                .conditions
                .as_mut()
                .and_then(|cs| cs.iter_mut().find(|c| c.type_ == "Ready"))
            else {
                continue;
            };
            if cond.status == "False" {
                continue;
            }
            cond.status = "False".into();
            cond.last_transition_time = Some(Time(Timestamp::now()));
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
            match api
                .replace_status(&p.name_any(), &PostParams::default(), &p)
                .await
            {
                Ok(_) => {
                    tracing::info!(pod = %crate::informer::key_of(&p), node, "marked pod not ready");
                    self.recorder
                        .warning(p.object_ref(&()), "NodeNotReady", "Node is not ready");
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// A pod newly assigned to a node that is not ready is marked not ready.
    async fn process_pod(&self, key: &str) -> Result<()> {
        let Some(pod) = crate::informer::get_by_key(self.pods.store(), key) else {
            return Ok(());
        };
        let node = node_name(&pod).to_string();
        let ready = {
            let h = self.lock_health();
            match h.get(&node) {
                None => return Ok(()),
                Some(health) => health.ready.clone(),
            }
        };
        let Some(ready) = ready else { return Ok(()) };
        if ready.status != "True" {
            self.mark_pods_not_ready(&[pod], &node).await?;
        }
        Ok(())
    }

    /// Upstream's reconcileNodeLabels: the beta OS and arch labels follow
    /// the stable ones.
    async fn reconcile_node_labels(&self, name: &str) -> Result<()> {
        let Some(node) = self.nodes.store().get(&ObjectRef::new(name)) else {
            return Ok(());
        };
        let Some(labels) = node.metadata.labels.as_ref() else {
            return Ok(());
        };
        let mut update = serde_json::Map::new();
        for (primary, secondary) in [
            ("kubernetes.io/os", "beta.kubernetes.io/os"),
            ("kubernetes.io/arch", "beta.kubernetes.io/arch"),
        ] {
            if let Some(v) = labels.get(primary) {
                if labels.get(secondary) != Some(v) {
                    update.insert(secondary.to_string(), serde_json::Value::from(v.clone()));
                }
            }
        }
        if update.is_empty() {
            return Ok(());
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = serde_json::json!({"metadata": {"labels": update}});
        match api
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Upstream's doNoScheduleTaintingPass: NoSchedule taints mirror the
    /// node's conditions and spec.unschedulable.
    async fn no_schedule_tainting_pass(&self, name: &str) -> Result<()> {
        let Some(node) = self.nodes.store().get(&ObjectRef::new(name)) else {
            return Ok(());
        };
        let mut wanted: Vec<Taint> = Vec::new();
        for c in node
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
        {
            let key = match (c.type_.as_str(), c.status.as_str()) {
                ("Ready", "False") => Some(NOT_READY),
                ("Ready", "Unknown") => Some(UNREACHABLE),
                ("MemoryPressure", "True") => Some(taints::MEMORY_PRESSURE),
                ("DiskPressure", "True") => Some(taints::DISK_PRESSURE),
                ("NetworkUnavailable", "True") => Some(taints::NETWORK_UNAVAILABLE),
                ("PIDPressure", "True") => Some(taints::PID_PRESSURE),
                _ => None,
            };
            if let Some(k) = key {
                wanted.push(taint(k, NO_SCHEDULE));
            }
        }
        if node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
        {
            wanted.push(taint(taints::UNSCHEDULABLE, NO_SCHEDULE));
        }
        let managed = [
            NOT_READY,
            UNREACHABLE,
            taints::MEMORY_PRESSURE,
            taints::DISK_PRESSURE,
            taints::NETWORK_UNAVAILABLE,
            taints::PID_PRESSURE,
            taints::UNSCHEDULABLE,
        ];
        let current: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.effect == NO_SCHEDULE && managed.contains(&t.key.as_str()))
            .collect();
        let add: Vec<Taint> = wanted
            .iter()
            .filter(|w| !current.iter().any(|c| taints::same(c, w)))
            .cloned()
            .collect();
        let remove: Vec<Taint> = current
            .iter()
            .filter(|c| !wanted.iter().any(|w| taints::same(c, w)))
            .cloned()
            .collect();
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        swap_node_taints(&self.client, name, &add, &remove).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn taint_queue_is_rate_limited_and_unique() {
        let mut q = TaintQueue::new(0.1);
        assert!(q.add("a"));
        assert!(!q.add("a"));
        assert!(q.add("b"));
        assert_eq!(q.next_due().as_deref(), Some("a"));
        // One token per 10s.
        assert_eq!(q.next_due(), None);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(q.next_due().as_deref(), Some("b"));
        // Processed nodes stay known until removed.
        assert!(!q.add("a"));
        assert!(q.remove("a"));
        assert!(q.add("a"));
        q.swap_limiter(0.0);
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn zone_keys() {
        let n: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n",
            "labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}}))
        .unwrap();
        assert_eq!(zone_key(&n), "r:\u{0}:z");
        let bare: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}})).unwrap();
        assert_eq!(zone_key(&bare), "");
    }
}
