//! The pod garbage collector (upstream's pkg/controller/podgc), every 20s:
//! - beyond --terminated-pod-gc-threshold finished pods, the oldest go;
//! - pods bound to a node that no longer exists (checked again with a live
//!   read after a 40s quarantine) are marked Failed and deleted;
//! - terminating pods that were never scheduled are deleted at once;
//! - terminating pods on a not-ready node tainted
//!   node.kubernetes.io/out-of-service are deleted at once.
//!
//! Deletions here are forced (grace period 0): no kubelet will finish them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use crate::informer::{key_of, Informer};
use crate::pod_util::{is_bound, node_name};
use crate::{is_not_found, ControllerContext};

/// Upstream's gcCheckPeriod and quarantineTime.
const CHECK_PERIOD: Duration = Duration::from_secs(20);
const QUARANTINE: Duration = Duration::from_secs(40);
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub struct PodGc {
    client: Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    threshold: i64,
    /// Nodes seen missing, and since when.
    missing_nodes: Mutex<HashMap<String, Instant>>,
}

pub fn start(ctx: &Arc<ControllerContext>) {
    let gc = Arc::new(PodGc {
        client: ctx.client.clone(),
        pods: ctx.informers.pods(),
        nodes: ctx.informers.nodes(),
        threshold: ctx.config.terminated_pod_gc_threshold,
        missing_nodes: Mutex::new(HashMap::new()),
    });
    tokio::spawn(async move {
        gc.pods.wait_synced().await;
        gc.nodes.wait_synced().await;
        tracing::info!(threshold = gc.threshold, "pod garbage collector started");
        let mut tick = tokio::time::interval(CHECK_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            gc.gc().await;
        }
    });
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl PodGc {
    async fn gc(&self) {
        let pods = self.pods.store().state();
        if self.threshold > 0 {
            self.gc_terminated(&pods).await;
        }
        self.gc_terminating_out_of_service(&pods).await;
        self.gc_orphaned(&pods).await;
        self.gc_unscheduled_terminating(&pods).await;
    }

    async fn gc_terminated(&self, pods: &[Arc<Pod>]) {
        let mut terminated: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| is_terminated(p) && p.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = terminated.len() as i64 - self.threshold;
        if excess <= 0 {
            return;
        }
        terminated.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        tracing::info!(excess, "deleting terminated pods over the threshold");
        for pod in terminated.into_iter().take(excess as usize) {
            self.delete(pod, None).await;
        }
    }

    async fn gc_terminating_out_of_service(&self, pods: &[Arc<Pod>]) {
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && is_bound(p))
        {
            let Some(node) = self.nodes.store().get(&ObjectRef::new(node_name(pod))) else {
                continue;
            };
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True");
            let out_of_service = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|ts| {
                    ts.iter()
                        .any(|t| t.key == OUT_OF_SERVICE && t.effect == "NoExecute")
                });
            if !ready && out_of_service {
                self.delete(
                    pod,
                    Some(("DeletionByPodGC", "PodGC: node is out of service")),
                )
                .await;
            }
        }
    }

    async fn gc_orphaned(&self, pods: &[Arc<Pod>]) {
        let nodes_api: Api<Node> = Api::all(self.client.clone());
        let mut missing: Vec<String> = Vec::new();
        for pod in pods.iter().filter(|p| is_bound(p)) {
            let n = node_name(pod).to_string();
            if self.nodes.store().get(&ObjectRef::new(&n)).is_none() && !missing.contains(&n) {
                missing.push(n);
            }
        }
        let now = Instant::now();
        let mut confirmed = Vec::new();
        {
            let mut seen = self.missing_nodes.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|n, _| missing.contains(n));
            for n in &missing {
                let since = *seen.entry(n.clone()).or_insert(now);
                if now.duration_since(since) >= QUARANTINE {
                    confirmed.push(n.clone());
                }
            }
        }
        for n in confirmed {
            // The cache may lag: ask the apiserver.
            match nodes_api.get_opt(&n).await {
                Ok(None) => {}
                _ => continue,
            }
            for pod in pods.iter().filter(|p| node_name(p) == n) {
                tracing::info!(pod = %key_of(pod.as_ref()), node = %n, "deleting pod bound to a node that no longer exists");
                self.delete(
                    pod,
                    Some(("DeletionByPodGC", "PodGC: node no longer exists")),
                )
                .await;
            }
        }
    }

    async fn gc_unscheduled_terminating(&self, pods: &[Arc<Pod>]) {
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && !is_bound(p))
        {
            self.delete(pod, None).await;
        }
    }

    /// Optionally mark the pod Failed with a DisruptionTarget condition,
    /// then delete it with no grace period.
    async fn delete(&self, pod: &Pod, condition: Option<(&str, &str)>) {
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let name = pod.name_any();
        if let Some((reason, message)) = condition {
            let mut status = json!({"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": reason,
                "message": message, "lastTransitionTime": Time(Timestamp::now()),
            }]});
            if !is_terminated(pod) {
                status["phase"] = json!("Failed");
            }
            let patch = json!({"metadata": {"uid": pod.metadata.uid}, "status": status});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                if !is_not_found(&e) {
                    tracing::warn!(pod = %name, error = %e, "could not mark pod failed");
                }
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "pod GC could not delete pod"),
        }
    }
}
