//! The namespace controller (upstream's pkg/controller/namespace/deletion):
//! a namespace being deleted (deletionTimestamp set, phase Terminating,
//! spec.finalizers ["kubernetes"]) is emptied: pods first (upstream's
//! ordered namespace deletion), then every other namespaced resource found
//! by discovery, each with a DELETE of the collection. Its status
//! conditions say how far that got. Once nothing is left, PUT
//! namespaces/NAME/finalize drops the "kubernetes" finalizer and the
//! apiserver removes the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::core::DynamicObject;
use kube::{Api, Client};

use crate::informer::{Change, Informer};
use crate::queue::{spawn_workers, WorkQueue};
use crate::resources::{Resources, ServedResource};
use crate::{is_not_found, ControllerContext, Error, Result};

pub const KUBERNETES_FINALIZER: &str = "kubernetes";
/// Upstream re-checks every namespace this often.
const RESYNC_PERIOD: Duration = Duration::from_secs(5 * 60);

pub struct NamespaceController {
    client: Client,
    namespaces: Arc<Informer<Namespace>>,
    resources: Arc<Resources>,
    queue: Arc<WorkQueue<String>>,
}

pub fn start(ctx: &Arc<ControllerContext>) {
    let c = Arc::new(NamespaceController {
        client: ctx.client.clone(),
        namespaces: ctx.informers.namespaces(),
        resources: Resources::new(ctx.client.clone()),
        // Upstream's namespace queue backs off from 5ms to 60s.
        queue: WorkQueue::with_backoff(
            "namespace",
            ctx.queue_metrics.clone(),
            Duration::from_millis(5),
            Duration::from_secs(60),
        ),
    });
    let h = c.clone();
    c.namespaces.add_handler(move |change| {
        if let Change::Added(ns) | Change::Updated { new: ns, .. } = change {
            if ns.metadata.deletion_timestamp.is_some() {
                h.queue.add(ns.metadata.name.clone().unwrap_or_default());
            }
        }
    });
    let workers = ctx.config.concurrent_namespace_syncs;
    tokio::spawn(async move {
        c.namespaces.wait_synced().await;
        tracing::info!(workers, "namespace controller started");
        let queue = c.queue.clone();
        let worker = c.clone();
        spawn_workers(queue, workers, move |name: String| {
            let c = worker.clone();
            async move { c.sync(&name).await }
        });
        loop {
            tokio::time::sleep(RESYNC_PERIOD).await;
            for ns in c.namespaces.store().state() {
                if ns.metadata.deletion_timestamp.is_some() {
                    c.queue.add(ns.metadata.name.clone().unwrap_or_default());
                }
            }
        }
    });
}

/// What deleting a namespace's content found.
#[derive(Default, Debug)]
struct Progress {
    /// Seconds until pods still terminating should be gone (0: none).
    estimate: i64,
    /// Remaining objects per resource, and per finalizer holding them.
    remaining: BTreeMap<String, usize>,
    finalizers: BTreeMap<String, usize>,
    errors: Vec<String>,
    discovery_error: Option<String>,
}

impl NamespaceController {
    async fn sync(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = match api.get(name).await {
            Ok(ns) => ns,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(());
        }
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            return Ok(());
        }
        let progress = self.delete_all_content(name).await;
        self.update_conditions(&api, &ns, &progress).await?;
        if let Some(e) = &progress.discovery_error {
            return Err(Error::Other(format!(
                "namespace {name}: discovery failed: {e}"
            )));
        }
        if !progress.errors.is_empty() {
            return Err(Error::Other(format!(
                "namespace {name}: {}",
                progress.errors.join("; ")
            )));
        }
        if progress.estimate > 0 {
            // Wait for graceful terminations, as upstream (estimate/2 + 1 seconds).
            let wait = Duration::from_secs((progress.estimate / 2 + 1) as u64);
            tracing::info!(namespace = name, ?wait, "content still terminating");
            self.queue.add_after(name.to_string(), wait);
            return Ok(());
        }
        if !progress.remaining.is_empty() {
            return Err(Error::Other(format!(
                "namespace {name}: content remains: {}",
                remaining_message(&progress.remaining)
            )));
        }
        self.finalize(&api, ns).await
    }

    /// Delete every namespaced resource's objects in the namespace; pods first.
    async fn delete_all_content(&self, ns: &str) -> Progress {
        let mut progress = Progress::default();
        if let Err(e) = self.resources.refresh().await {
            if self.resources.all().is_empty() {
                progress.discovery_error = Some(e.to_string());
                return progress;
            }
        }
        let deletable: Vec<ServedResource> = self
            .resources
            .all()
            .into_iter()
            .filter(|r| r.namespaced && r.supports("delete") && r.supports("list"))
            .collect();
        let (pods, rest): (Vec<_>, Vec<_>) = deletable
            .into_iter()
            .partition(|r| r.resource.group.is_empty() && r.resource.plural == "pods");
        for r in &pods {
            self.delete_resource(ns, r, &mut progress).await;
        }
        if !progress.remaining.is_empty() || !progress.errors.is_empty() {
            // Everything else waits until the pods are gone.
            return progress;
        }
        for r in &rest {
            self.delete_resource(ns, r, &mut progress).await;
        }
        progress
    }

    async fn delete_resource(&self, ns: &str, r: &ServedResource, progress: &mut Progress) {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &r.resource);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        let name = r.qualified_name();
        if r.supports("deletecollection") {
            if let Err(e) = api.delete_collection(&params, &ListParams::default()).await {
                if !is_not_found(&e) {
                    progress.errors.push(format!("delete {name}: {e}"));
                    return;
                }
            }
        } else {
            match api.list_metadata(&ListParams::default()).await {
                Ok(list) => {
                    for item in list.items {
                        let Some(n) = item.metadata.name else {
                            continue;
                        };
                        if let Err(e) = api.delete(&n, &params).await {
                            if !is_not_found(&e) {
                                progress.errors.push(format!("delete {name} {n}: {e}"));
                            }
                        }
                    }
                }
                Err(e) => {
                    progress.errors.push(format!("list {name}: {e}"));
                    return;
                }
            }
        }
        // What is left: terminating pods (with their grace), objects held by finalizers.
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                if list.items.is_empty() {
                    return;
                }
                progress.remaining.insert(name.clone(), list.items.len());
                for item in &list.items {
                    for f in item.metadata.finalizers.iter().flatten() {
                        *progress.finalizers.entry(f.clone()).or_default() += 1;
                    }
                    if r.resource.plural == "pods" {
                        let grace = item
                            .metadata
                            .deletion_grace_period_seconds
                            .or_else(|| item.data["spec"]["terminationGracePeriodSeconds"].as_i64())
                            .unwrap_or(0);
                        progress.estimate = progress.estimate.max(grace);
                    }
                }
            }
            Err(e) => progress.errors.push(format!("list {name}: {e}")),
        }
    }

    /// Write upstream's deletion conditions when they changed.
    async fn update_conditions(
        &self,
        api: &Api<Namespace>,
        ns: &Namespace,
        p: &Progress,
    ) -> Result<()> {
        let wanted = conditions_for(p);
        let mut updated = ns.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let mut conditions = status.conditions.clone().unwrap_or_default();
        let mut changed = status.phase.as_deref() != Some("Terminating");
        status.phase = Some("Terminating".into());
        for (type_, cond_status, reason, message) in wanted {
            match conditions.iter_mut().find(|c| c.type_ == type_) {
                Some(c)
                    if c.status == cond_status
                        && c.reason.as_deref() == Some(reason)
                        && c.message.as_deref() == Some(message.as_str()) => {}
                Some(c) => {
                    if c.status != cond_status {
                        c.last_transition_time = Some(Time(Timestamp::now()));
                    }
                    c.status = cond_status.to_string();
                    c.reason = Some(reason.to_string());
                    c.message = Some(message);
                    changed = true;
                }
                None => {
                    conditions.push(NamespaceCondition {
                        type_: type_.to_string(),
                        status: cond_status.to_string(),
                        reason: Some(reason.to_string()),
                        message: Some(message),
                        last_transition_time: Some(Time(Timestamp::now())),
                    });
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(());
        }
        status.conditions = Some(conditions);
        let name = ns.metadata.name.clone().unwrap_or_default();
        match api
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // A conflict: the next pass writes them.
            Err(e) if crate::is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drop the "kubernetes" finalizer; the apiserver then removes the namespace.
    async fn finalize(&self, api: &Api<Namespace>, mut ns: Namespace) -> Result<()> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        if let Some(spec) = ns.spec.as_mut() {
            if let Some(f) = spec.finalizers.as_mut() {
                f.retain(|x| x != KUBERNETES_FINALIZER);
            }
        }
        tracing::info!(namespace = %name, "namespace empty; finalizing");
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), &ns)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn remaining_message(remaining: &BTreeMap<String, usize>) -> String {
    remaining
        .iter()
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Upstream's namespace deletion conditions: (type, status, reason, message).
fn conditions_for(p: &Progress) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let mut out = Vec::new();
    out.push(match &p.discovery_error {
        Some(e) => (
            "NamespaceDeletionDiscoveryFailure",
            "True",
            "DiscoveryFailed",
            format!("Discovery failed for some groups: {e}"),
        ),
        None => (
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
    });
    out.push((
        "NamespaceDeletionGroupVersionParsingFailure",
        "False",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed".into(),
    ));
    out.push(if p.errors.is_empty() {
        (
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        (
            "NamespaceDeletionContentFailure",
            "True",
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                p.errors.len(),
                p.errors.join(", ")
            ),
        )
    });
    out.push(if p.remaining.is_empty() {
        (
            "NamespaceContentRemaining",
            "False",
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        (
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            format!(
                "Some resources are remaining: {}",
                remaining_message(&p.remaining)
            ),
        )
    });
    out.push(if p.finalizers.is_empty() {
        (
            "NamespaceFinalizersRemaining",
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        let list = p
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ");
        (
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            format!("Some content in the namespace has finalizers remaining: {list}"),
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_as_upstream() {
        let mut p = Progress::default();
        let c = conditions_for(&p);
        assert_eq!(c.len(), 5);
        assert_eq!(c[3].3, "All content successfully removed");
        p.remaining.insert("pods".into(), 2);
        p.finalizers.insert("example.com/hold".into(), 1);
        let c = conditions_for(&p);
        assert_eq!(c[3].1, "True");
        assert_eq!(
            c[3].3,
            "Some resources are remaining: pods has 2 resource instances"
        );
        assert_eq!(
            c[4].3,
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        );
    }
}
