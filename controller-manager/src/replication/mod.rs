//! The ReplicationController controller (upstream's replication manager,
//! which is the ReplicaSet controller for core/v1 RCs): keeps
//! `.spec.replicas` active pods matching the selector. It creates pods from
//! the template (generateName "<rc>-", controller ownerReference) in
//! slow-start batches, deletes the least valuable surplus pods, adopts
//! matching orphans, releases owned pods whose labels stopped matching, and
//! writes the status. Expectations keep it from acting twice on a cache
//! that has not yet seen its own creates and deletes.

mod ranking;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::informer::{get_by_key, key_of, Change, Informer};
use crate::pod_util::{controller_of, is_active, is_ready, pod_key, selector_matches};
use crate::queue::{spawn_workers, WorkQueue};
use crate::{is_not_found, ControllerContext, Error, Result};

pub use ranking::pods_to_delete;
pub use status::ManageFailure;

/// Upstream's BurstReplicas: at most this many creates or deletes per sync.
pub const BURST_REPLICAS: usize = 500;
/// Upstream's SlowStartInitialBatchSize.
const SLOW_START_INITIAL_BATCH: usize = 1;
const KIND: &str = "ReplicationController";

pub struct ReplicationManager {
    client: Client,
    rcs: Arc<Informer<ReplicationController>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    expectations: Expectations,
    recorder: Recorder,
}

/// Register the handlers and start the workers once the caches are filled.
pub fn start(ctx: &Arc<ControllerContext>) {
    let mgr = Arc::new(ReplicationManager {
        client: ctx.client.clone(),
        rcs: ctx.informers.replication_controllers(),
        pods: ctx.informers.pods(),
        queue: WorkQueue::new("replicationmanager", ctx.queue_metrics.clone()),
        expectations: Expectations::default(),
        recorder: Recorder::new(ctx.client.clone(), "replication-controller"),
    });
    let m = mgr.clone();
    mgr.rcs.add_handler(move |change| m.rc_changed(change));
    let m = mgr.clone();
    mgr.pods.add_handler(move |change| m.pod_changed(change));
    let workers = ctx.config.concurrent_rc_syncs;
    tokio::spawn(async move {
        mgr.rcs.wait_synced().await;
        mgr.pods.wait_synced().await;
        tracing::info!(workers, "replication controller started");
        let queue = mgr.queue.clone();
        spawn_workers(queue, workers, move |key: String| {
            let mgr = mgr.clone();
            async move { mgr.sync(&key).await }
        });
    });
}

impl ReplicationManager {
    // ---- event handlers: only bookkeeping and enqueueing ----

    fn rc_changed(&self, change: &Change<'_, ReplicationController>) {
        match change {
            Change::Added(rc) | Change::Updated { new: rc, .. } => self.queue.add(key_of(*rc)),
            Change::Deleted(rc) => {
                let key = key_of(*rc);
                self.expectations.delete(&key);
                self.queue.add(key);
            }
        }
    }

    fn pod_changed(&self, change: &Change<'_, Pod>) {
        match change {
            Change::Added(pod) => self.pod_added(pod),
            Change::Updated { old, new } => self.pod_updated(old, new),
            Change::Deleted(pod) => self.pod_deleted(pod),
        }
    }

    fn pod_added(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            // Seen already terminating (e.g. after a relist): a deletion for us.
            return self.pod_deleted(pod);
        }
        if let Some(r) = controller_of(&pod.metadata) {
            if let Some(rc) = self.resolve(pod.namespace().as_deref(), r) {
                let key = key_of(rc.as_ref());
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            return;
        }
        for rc in self.matching_rcs(pod) {
            self.queue.add(key_of(rc.as_ref()));
        }
    }

    fn pod_updated(&self, old: &Pod, new: &Pod) {
        if old.metadata.resource_version == new.metadata.resource_version {
            return;
        }
        let labels_changed = old.metadata.labels != new.metadata.labels;
        if new.metadata.deletion_timestamp.is_some() {
            // Graceful deletion started: count it as the deletion we wait for.
            self.pod_deleted(new);
            if labels_changed {
                self.pod_deleted(old);
            }
            return;
        }
        let old_ref = controller_of(&old.metadata);
        let new_ref = controller_of(&new.metadata);
        let ref_changed = old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid);
        if ref_changed {
            if let Some(rc) = old_ref.and_then(|r| self.resolve(old.namespace().as_deref(), r)) {
                self.queue.add(key_of(rc.as_ref()));
            }
        }
        if let Some(r) = new_ref {
            if let Some(rc) = self.resolve(new.namespace().as_deref(), r) {
                let key = key_of(rc.as_ref());
                self.queue.add(key.clone());
                // A pod that became ready counts as available only later.
                let min_ready = rc
                    .spec
                    .as_ref()
                    .and_then(|s| s.min_ready_seconds)
                    .unwrap_or(0);
                if min_ready > 0 && !is_ready(old) && is_ready(new) {
                    self.queue
                        .add_after(key, Duration::from_secs(min_ready as u64 + 1));
                }
            }
            return;
        }
        if labels_changed || ref_changed {
            for rc in self.matching_rcs(new) {
                self.queue.add(key_of(rc.as_ref()));
            }
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        let Some(r) = controller_of(&pod.metadata) else {
            return;
        };
        if let Some(rc) = self.resolve(pod.namespace().as_deref(), r) {
            let key = key_of(rc.as_ref());
            self.expectations.deletion_observed(&key, &pod_key(pod));
            self.queue.add(key);
        }
    }

    /// The RC a controller reference points at, if it is ours and cached.
    fn resolve(&self, ns: Option<&str>, r: &OwnerReference) -> Option<Arc<ReplicationController>> {
        if r.kind != KIND {
            return None;
        }
        let rc = get_by_key(self.rcs.store(), &format!("{}/{}", ns?, r.name))?;
        (rc.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(rc)
    }

    /// RCs in the pod's namespace whose selector matches it (for orphans).
    fn matching_rcs(&self, pod: &Pod) -> Vec<Arc<ReplicationController>> {
        let ns = pod.metadata.namespace.clone();
        let labels = pod.metadata.labels.as_ref();
        self.rcs.store().state_filter(|rc| {
            rc.metadata.namespace == ns && selector_matches(&selector_of(rc), labels)
        })
    }

    // ---- the sync ----

    async fn sync(&self, key: &str) -> Result<()> {
        let Some(rc) = get_by_key(self.rcs.store(), key) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let needs_sync = self.expectations.satisfied(key);
        let ns = rc.metadata.namespace.clone();
        let active: Vec<Arc<Pod>> = self
            .pods
            .store()
            .state_filter(|p| p.metadata.namespace == ns && is_active(p));
        let pods = self.claim_pods(&rc, active).await?;

        let mut failure = None;
        if needs_sync && rc.metadata.deletion_timestamp.is_none() {
            failure = self.manage_replicas(&rc, key, &pods).await.err();
        }
        let new_status = status::calculate(&rc, &pods, failure.as_ref(), Timestamp::now());
        self.update_status(&rc, new_status.clone()).await?;

        if let Some(f) = failure {
            return Err(Error::Other(f.message));
        }
        let min_ready = rc
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let replicas = rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if min_ready > 0
            && new_status.ready_replicas == Some(replicas)
            && new_status.available_replicas != Some(replicas)
        {
            self.queue
                .add_after(key.to_string(), Duration::from_secs(min_ready as u64));
        }
        Ok(())
    }

    /// Upstream's ClaimPods: the active pods this RC owns and whose labels
    /// match, after adopting matching orphans and releasing owned pods whose
    /// labels no longer match.
    async fn claim_pods(
        &self,
        rc: &ReplicationController,
        pods: Vec<Arc<Pod>>,
    ) -> Result<Vec<Arc<Pod>>> {
        let rc_uid = rc.metadata.uid.clone().unwrap_or_default();
        let selector = selector_of(rc);
        let rc_deleting = rc.metadata.deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        let mut adoption_checked = false;
        let mut errors = Vec::new();
        for pod in pods {
            let matches = selector_matches(&selector, pod.metadata.labels.as_ref());
            let pod_deleting = pod.metadata.deletion_timestamp.is_some();
            match controller_of(&pod.metadata) {
                Some(r) if r.uid == rc_uid => {
                    if matches {
                        claimed.push(pod);
                    } else if !rc_deleting && !pod_deleting {
                        if let Err(e) = self.release(rc, &pod).await {
                            errors.push(e);
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if rc_deleting || !matches || pod_deleting {
                        continue;
                    }
                    if !adoption_checked {
                        // Recheck with a live read that the RC is still the
                        // one we know and is not being deleted.
                        self.can_adopt(rc).await?;
                        adoption_checked = true;
                    }
                    match self.adopt(rc, &pod).await {
                        Ok(true) => claimed.push(pod),
                        Ok(false) => {}
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }

    async fn can_adopt(&self, rc: &ReplicationController) -> Result<()> {
        let api: Api<ReplicationController> = self.rc_api(rc);
        let fresh = api.get(&rc.name_any()).await?;
        if fresh.metadata.uid != rc.metadata.uid {
            return Err(Error::Other(format!(
                "original ReplicationController {} is gone: got uid {:?}, wanted {:?}",
                rc.name_any(),
                fresh.metadata.uid,
                rc.metadata.uid
            )));
        }
        if fresh.metadata.deletion_timestamp.is_some() {
            return Err(Error::Other(format!(
                "ReplicationController {} has just been deleted",
                rc.name_any()
            )));
        }
        Ok(())
    }

    /// Make the RC the pod's controller; the pod's uid in the patch makes it
    /// apply only to the pod we saw. Ok(false): the pod is gone.
    async fn adopt(&self, rc: &ReplicationController, pod: &Pod) -> Result<bool> {
        let patch = json!({"metadata": {
            "ownerReferences": [controller_ref(rc)],
            "uid": pod.metadata.uid,
        }});
        tracing::info!(rc = %key_of(rc), pod = %pod.name_any(), "adopting pod");
        match self
            .pod_api(pod)
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the RC's ownerReference from a pod whose labels stopped matching.
    async fn release(&self, rc: &ReplicationController, pod: &Pod) -> Result<()> {
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": rc.metadata.uid}],
            "uid": pod.metadata.uid,
        }});
        tracing::info!(rc = %key_of(rc), pod = %pod.name_any(), "releasing pod");
        match self
            .pod_api(pod)
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Gone, or being deleted (the patch is invalid then): nothing to release.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Create or delete pods towards `.spec.replicas`.
    async fn manage_replicas(
        &self,
        rc: &ReplicationController,
        key: &str,
        pods: &[Arc<Pod>],
    ) -> Result<(), ManageFailure> {
        let want = rc
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        let have = pods.len();
        if have < want {
            let n = (want - have).min(BURST_REPLICAS);
            // Expect the creates before sending them: their watch events may
            // arrive before the requests return.
            self.expectations.expect_creations(key, n);
            tracing::debug!(rc = key, need = want, creating = n, "too few replicas");
            let template = pod_template(rc).map_err(|e| ManageFailure {
                reason: "FailedCreate",
                message: e.to_string(),
            })?;
            let (created, err) = slow_start_batch(n, SLOW_START_INITIAL_BATCH, || {
                self.create_pod(rc, &template)
            })
            .await;
            // Creates never sent will never be observed.
            for _ in created..n {
                self.expectations.creation_observed(key);
            }
            if let Some(e) = err {
                return Err(ManageFailure {
                    reason: "FailedCreate",
                    message: e.to_string(),
                });
            }
        } else if have > want {
            let n = (have - want).min(BURST_REPLICAS);
            tracing::debug!(rc = key, need = want, deleting = n, "too many replicas");
            let related = self.related_pods(rc);
            let victims = pods_to_delete(pods, &related, n);
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| pod_key(p)).collect());
            let results = join_all(victims.iter().map(|p| self.delete_pod(rc, p))).await;
            let mut first_err = None;
            for (pod, r) in victims.iter().zip(results) {
                if let Err(e) = r {
                    // This delete will not be observed.
                    self.expectations.deletion_observed(key, &pod_key(pod));
                    if !is_not_found(&e) && first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
            if let Some(e) = first_err {
                return Err(ManageFailure {
                    reason: "FailedDelete",
                    message: e.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn create_pod(
        &self,
        rc: &ReplicationController,
        template: &Pod,
    ) -> Result<(), kube::Error> {
        let ns = rc.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), template).await {
            Ok(pod) => {
                self.recorder.normal(
                    rc.object_ref(&()),
                    "SuccessfulCreate",
                    format!("Created pod: {}", pod.name_any()),
                );
                Ok(())
            }
            // A terminating namespace refuses new pods; nothing to do about it.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
                Ok(())
            }
            Err(e) => {
                self.recorder.warning(
                    rc.object_ref(&()),
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                Err(e)
            }
        }
    }

    async fn delete_pod(&self, rc: &ReplicationController, pod: &Pod) -> Result<(), kube::Error> {
        match self
            .pod_api(pod)
            .delete(&pod.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.recorder.normal(
                    rc.object_ref(&()),
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", pod.name_any()),
                );
                Ok(())
            }
            Err(e) if is_not_found(&e) => Err(e),
            Err(e) => {
                self.recorder.warning(
                    rc.object_ref(&()),
                    "FailedDelete",
                    format!("Error deleting: {e}"),
                );
                Err(e)
            }
        }
    }

    /// Active pods of this RC and of RCs with the same owner (upstream's
    /// getIndirectlyRelatedPods), to see how crowded each node is.
    fn related_pods(&self, rc: &ReplicationController) -> Vec<Arc<Pod>> {
        let owner = controller_of(&rc.metadata).map(|r| r.uid.clone());
        let ns = rc.metadata.namespace.clone();
        let siblings: Vec<String> = self
            .rcs
            .store()
            .state_filter(|o| {
                o.metadata.namespace == ns
                    && (o.metadata.uid == rc.metadata.uid
                        || (owner.is_some()
                            && controller_of(&o.metadata).map(|r| r.uid.clone()) == owner))
            })
            .iter()
            .filter_map(|o| o.metadata.uid.clone())
            .collect();
        self.pods.store().state_filter(|p| {
            p.metadata.namespace == ns
                && is_active(p)
                && controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid))
        })
    }

    /// Write the status if it changed; on a conflict retry once on a fresh copy.
    async fn update_status(
        &self,
        rc: &ReplicationController,
        new_status: k8s_openapi::api::core::v1::ReplicationControllerStatus,
    ) -> Result<()> {
        if !status::differs(rc.status.as_ref(), &new_status) {
            return Ok(());
        }
        let api = self.rc_api(rc);
        let name = rc.name_any();
        let mut current = rc.clone();
        for attempt in 0..2 {
            current.status = Some(new_status.clone());
            match api
                .replace_status(&name, &PostParams::default(), &current)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) if attempt == 1 => return Err(e.into()),
                Err(_) => {
                    current = match api.get_opt(&name).await? {
                        Some(fresh) if fresh.metadata.uid == rc.metadata.uid => fresh,
                        _ => return Ok(()),
                    };
                    let mut status = new_status.clone();
                    status.observed_generation = current.metadata.generation;
                    if !status::differs(current.status.as_ref(), &status) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn pod_api(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default())
    }

    fn rc_api(&self, rc: &ReplicationController) -> Api<ReplicationController> {
        Api::namespaced(self.client.clone(), &rc.namespace().unwrap_or_default())
    }
}

pub fn selector_of(rc: &ReplicationController) -> BTreeMap<String, String> {
    rc.spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// The controller reference an RC puts on its pods.
pub fn controller_ref(rc: &ReplicationController) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_string(),
        kind: KIND.to_string(),
        name: rc.name_any(),
        uid: rc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod to create from the RC's template (upstream's GetPodFromTemplate).
pub fn pod_template(rc: &ReplicationController) -> Result<Pod> {
    let template = rc
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or_else(|| {
            Error::Other(format!(
                "ReplicationController {} has no pod template",
                rc.name_any()
            ))
        })?;
    let tmeta = template.metadata.unwrap_or_default();
    let name = rc.name_any();
    // Upstream falls back to the bare name when "<name>-" is not a valid prefix.
    let prefix = if name.len() < 253 {
        format!("{name}-")
    } else {
        name.clone()
    };
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: rc.namespace(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(rc)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// Upstream's slowStartBatch: call `f` `count` times in batches of 1, 2, 4,
/// ... (each batch concurrently), stopping after the first batch with an
/// error. Returns how many calls succeeded and the first error.
pub async fn slow_start_batch<F, Fut, E>(count: usize, initial: usize, f: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        let results = join_all((0..batch).map(|_| f())).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        if first_err.is_some() {
            return (successes, first_err);
        }
        remaining -= batch;
        batch = remaining.min(batch * 2);
    }
    (successes, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_on_error() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, 1, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), ()>(()) }
        })
        .await;
        assert_eq!((ok, err), (10, None));
        assert_eq!(calls.load(Ordering::SeqCst), 10);

        // Batches 1, 2, 4: the 5th call fails, so the batch of 4 is the last.
        let n = Mutex::new(0);
        let (ok, err) = slow_start_batch(20, 1, || {
            let mut g = n.lock().unwrap();
            *g += 1;
            let fail = *g == 5;
            async move {
                if fail {
                    Err("boom")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!((ok, err), (6, Some("boom")));
        assert_eq!(*n.lock().unwrap(), 7);
    }

    #[test]
    fn pods_from_the_template() {
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"replicas": 2, "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap();
        let pod = pod_template(&rc).unwrap();
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.metadata.labels.unwrap()["app"], "web");
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("ReplicationController", "web", "u1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("nginx")
        );
    }
}
