//! The taint eviction controller (upstream's pkg/controller/tainteviction):
//! pods on a node with NoExecute taints they do not tolerate are deleted at
//! once; pods tolerating them for tolerationSeconds are deleted that long
//! after the taint was seen (the shortest such toleration counts); the
//! deletion is cancelled when the taints go. Before deleting, the pod gets
//! the DisruptionTarget condition, as upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::events::Recorder;
use crate::informer::{get_by_key, key_of, split_key, Change, Informer};
use crate::pod_util::node_name;
use crate::queue::{spawn_workers, WorkQueue};
use crate::taints::{matching_tolerations, NO_EXECUTE};
use crate::{is_not_found, ControllerContext, Result};

const WORKERS: usize = 8;
/// Upstream retries a failed eviction this often.
const DELETE_RETRIES: usize = 5;

struct Scheduled {
    created: Instant,
    fire_at: Instant,
    task: AbortHandle,
}

pub struct TaintEviction {
    client: Client,
    nodes: Arc<Informer<Node>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
    /// NoExecute taints per node.
    tainted: Mutex<HashMap<String, Vec<Taint>>>,
    /// Evictions waiting for their time, by pod key.
    scheduled: Mutex<HashMap<String, Scheduled>>,
    /// Keys "node:<name>" and "pod:<ns>/<name>".
    queue: Arc<WorkQueue<String>>,
}

pub fn start(ctx: &Arc<ControllerContext>) {
    let tc = Arc::new(TaintEviction {
        client: ctx.client.clone(),
        nodes: ctx.informers.nodes(),
        pods: ctx.informers.pods(),
        recorder: Recorder::new(ctx.client.clone(), "taint-eviction-controller"),
        tainted: Mutex::new(HashMap::new()),
        scheduled: Mutex::new(HashMap::new()),
        queue: WorkQueue::new("noexec_taint", ctx.queue_metrics.clone()),
    });
    let h = tc.clone();
    tc.nodes.add_handler(move |change| {
        let (old, new) = match change {
            Change::Added(n) => (None, Some(*n)),
            Change::Updated { old, new } => (Some(*old), Some(*new)),
            Change::Deleted(n) => (Some(*n), None),
        };
        if let (Some(o), Some(n)) = (old, new) {
            if no_execute_taints(o) == no_execute_taints(n) {
                return;
            }
        }
        let name = new.or(old).map(|n| n.name_any()).unwrap_or_default();
        h.queue.add(format!("node:{name}"));
    });
    let h = tc.clone();
    tc.pods.add_handler(move |change| {
        let (old, new) = match change {
            Change::Added(p) => (None, Some(*p)),
            Change::Updated { old, new } => (Some(*old), Some(*new)),
            Change::Deleted(p) => (Some(*p), None),
        };
        if let (Some(o), Some(n)) = (old, new) {
            let tolerations = |p: &Pod| p.spec.as_ref().and_then(|s| s.tolerations.clone());
            if tolerations(o) == tolerations(n) && node_name(o) == node_name(n) {
                return;
            }
        }
        if let Some(p) = new.or(old) {
            h.queue.add(format!("pod:{}", key_of(p)));
        }
    });
    tokio::spawn(async move {
        tc.nodes.wait_synced().await;
        tc.pods.wait_synced().await;
        tracing::info!("taint eviction controller started");
        let worker = tc.clone();
        spawn_workers(tc.queue.clone(), WORKERS, move |key: String| {
            let tc = worker.clone();
            async move { tc.handle(&key).await }
        });
    });
}

fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.effect == NO_EXECUTE)
        .collect()
}

fn pod_ref(key: &str) -> ObjectReference {
    let (ns, name) = split_key(key);
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: ns.map(String::from),
        name: Some(name.to_string()),
        ..Default::default()
    }
}

impl TaintEviction {
    fn lock_scheduled(&self) -> std::sync::MutexGuard<'_, HashMap<String, Scheduled>> {
        self.scheduled.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(self: &Arc<Self>, key: &str) -> Result<()> {
        if let Some(node) = key.strip_prefix("node:") {
            self.handle_node(node);
        } else if let Some(pod) = key.strip_prefix("pod:") {
            self.handle_pod(pod);
        }
        Ok(())
    }

    fn handle_node(self: &Arc<Self>, name: &str) {
        let Some(node) = self.nodes.store().get(&ObjectRef::new(name)) else {
            self.tainted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return;
        };
        let taints = no_execute_taints(&node);
        {
            let mut t = self.tainted.lock().unwrap_or_else(|e| e.into_inner());
            if taints.is_empty() {
                t.remove(name);
            } else {
                t.insert(name.to_string(), taints.clone());
            }
        }
        let pods = self.pods.store().state_filter(|p| node_name(p) == name);
        let now = Instant::now();
        for pod in pods {
            let key = key_of(pod.as_ref());
            if taints.is_empty() {
                self.cancel(&key);
            } else {
                self.process_pod_on_node(&key, &pod, &taints, now);
            }
        }
    }

    fn handle_pod(self: &Arc<Self>, key: &str) {
        let Some(pod) = get_by_key(self.pods.store(), key) else {
            self.cancel(key);
            return;
        };
        let node = node_name(&pod);
        if node.is_empty() {
            return;
        }
        let taints = self
            .tainted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .cloned();
        let Some(taints) = taints else { return };
        self.process_pod_on_node(key, &pod, &taints, Instant::now());
    }

    /// Upstream's processPodOnNode.
    fn process_pod_on_node(self: &Arc<Self>, key: &str, pod: &Pod, taints: &[Taint], now: Instant) {
        if taints.is_empty() {
            self.cancel(key);
            return;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let (all_tolerated, used) = matching_tolerations(taints, &tolerations);
        if !all_tolerated {
            tracing::info!(
                pod = key,
                node = node_name(pod),
                "pod does not tolerate the node's NoExecute taints"
            );
            self.cancel(key);
            self.schedule(key, now, now);
            return;
        }
        // The shortest tolerationSeconds; none at all means for ever.
        let seconds: Vec<i64> = used.iter().filter_map(|t| t.toleration_seconds).collect();
        if seconds.is_empty() {
            self.cancel(key);
            return;
        }
        let min = Duration::from_secs(seconds.into_iter().min().unwrap_or(0).max(0) as u64);
        let trigger = now + min;
        let mut start = now;
        if let Some(s) = self.lock_scheduled().get(key) {
            start = s.created;
            if start + min < trigger {
                // Already due earlier than a fresh schedule would be.
                return;
            }
        }
        self.cancel(key);
        self.schedule(key, start, trigger);
    }

    fn schedule(self: &Arc<Self>, key: &str, created: Instant, fire_at: Instant) {
        let tc = self.clone();
        let k = key.to_string();
        // Hold the map while spawning, so a task due at once finds its entry.
        let mut scheduled = self.lock_scheduled();
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(fire_at).await;
            tc.evict(&k).await;
            let mut s = tc.lock_scheduled();
            if s.get(&k).is_some_and(|x| x.fire_at == fire_at) {
                s.remove(&k);
            }
        })
        .abort_handle();
        scheduled.insert(
            key.to_string(),
            Scheduled {
                created,
                fire_at,
                task,
            },
        );
    }

    fn cancel(&self, key: &str) {
        let removed = self.lock_scheduled().remove(key);
        if let Some(s) = removed {
            s.task.abort();
            if s.fire_at > Instant::now() {
                self.recorder.normal(
                    pod_ref(key),
                    "TaintManagerEviction",
                    format!("Cancelling deletion of Pod {key}"),
                );
            }
        }
    }

    /// Mark the pod as a disruption target and delete it (upstream's
    /// addConditionAndDeletePod), retrying a few times.
    async fn evict(&self, key: &str) {
        tracing::info!(pod = key, "evicting pod from a NoExecute-tainted node");
        self.recorder.normal(
            pod_ref(key),
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let (ns, name) = split_key(key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns.unwrap_or_default());
        for attempt in 0..DELETE_RETRIES {
            match self.condition_and_delete(&api, name).await {
                Ok(()) => return,
                Err(e) if is_not_found(&e) => return,
                Err(e) => {
                    tracing::warn!(pod = key, attempt, error = %e, "eviction failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn condition_and_delete(&self, api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
        let pod = api.get(name).await?;
        let has_condition = crate::pod_util::condition(&pod, "DisruptionTarget").is_some_and(|c| {
            c.status == "True" && c.reason.as_deref() == Some("DeletionByTaintManager")
        });
        if !has_condition {
            let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
            let patch = json!({
                "metadata": {"uid": pod.metadata.uid},
                "status": {"conditions": [{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByTaintManager",
                    "message": "Taint manager: deleting due to NoExecute taint",
                    "lastTransitionTime": now,
                }]}
            });
            api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await?;
        }
        api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }
}
