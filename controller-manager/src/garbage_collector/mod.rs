//! The garbage collector (upstream's pkg/controller/garbagecollector): a
//! metadata-only watch of every deletable resource feeds the ownership
//! graph; workers then
//! - delete objects all of whose owners are gone (background deletion),
//!   checking owners with live reads, never trusting the cache alone;
//! - finish foreground deletions: an owner with deletionTimestamp and the
//!   `foregroundDeletion` finalizer has its blocking dependents deleted
//!   first, then loses the finalizer;
//! - finish orphaning: an owner with the `orphan` finalizer is removed from
//!   its dependents' ownerReferences, then loses the finalizer.

pub mod graph;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;

use crate::informer::{Change, Informer};
use crate::queue::WorkQueue;
use crate::resources::{Resources, ServedResource};
use crate::{is_not_found, ControllerContext, Error, Result};
use graph::{
    Graph, GraphEvent, Identity, ObjectState, Work, FOREGROUND_FINALIZER, ORPHAN_FINALIZER,
};

/// Resources the collector never watches (upstream's default ignore list).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];
/// How often discovery is re-read for new resources.
const RESYNC_PERIOD: Duration = Duration::from_secs(30);
/// Upstream's absent owner cache holds 500 entries.
const ABSENT_OWNER_CACHE: usize = 500;

type Monitor = Arc<Informer<PartialObjectMeta<DynamicObject>>>;

pub struct GarbageCollector {
    client: Client,
    resources: Arc<Resources>,
    graph: Mutex<Graph>,
    events: mpsc::UnboundedSender<GraphEvent>,
    attempt_to_delete: Arc<WorkQueue<String>>,
    attempt_to_orphan: Arc<WorkQueue<String>>,
    /// Owners known not to exist: (owner uid, dependent's namespace).
    absent_owners: Mutex<HashSet<(String, Option<String>)>>,
    monitors: Mutex<HashMap<String, Monitor>>,
}

enum Outcome {
    Done,
    /// The node's object does not exist; a virtual delete event was sent.
    VirtualDeleteSent,
    /// Try again later (e.g. the watch has not seen the object yet).
    Requeue,
}

pub fn start(ctx: &Arc<ControllerContext>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gc = Arc::new(GarbageCollector {
        client: ctx.client.clone(),
        resources: Resources::new(ctx.client.clone()),
        graph: Mutex::new(Graph::default()),
        events: tx,
        attempt_to_delete: WorkQueue::new(
            "garbage_collector_attempt_to_delete",
            ctx.queue_metrics.clone(),
        ),
        attempt_to_orphan: WorkQueue::new(
            "garbage_collector_attempt_to_orphan",
            ctx.queue_metrics.clone(),
        ),
        absent_owners: Mutex::new(HashSet::new()),
        monitors: Mutex::new(HashMap::new()),
    });
    let workers = ctx.config.concurrent_gc_syncs;
    tokio::spawn(gc.clone().process_graph_changes(rx));
    tokio::spawn(async move {
        // Discovery until it works, then monitors; workers once every
        // monitor has listed (so the graph knows what exists).
        let mut delay = Duration::from_secs(1);
        while let Err(e) = gc.resources.refresh().await {
            tracing::warn!(error = %e, "garbage collector: discovery failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
        let started = gc.sync_monitors();
        for m in started {
            m.wait_synced().await;
        }
        tracing::info!(
            workers,
            monitors = gc.lock_monitors().len(),
            "garbage collector started"
        );
        gc.spawn_workers(workers);
        loop {
            tokio::time::sleep(RESYNC_PERIOD).await;
            if let Err(e) = gc.resources.refresh().await {
                tracing::warn!(error = %e, "garbage collector: discovery failed");
                continue;
            }
            gc.sync_monitors();
        }
    });
}

impl GarbageCollector {
    fn lock_monitors(&self) -> std::sync::MutexGuard<'_, HashMap<String, Monitor>> {
        self.monitors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start a monitor for every deletable resource not watched yet.
    fn sync_monitors(self: &Arc<Self>) -> Vec<Monitor> {
        let mut started = Vec::new();
        for r in self.resources.all() {
            let ignored = IGNORED
                .iter()
                .any(|(g, p)| r.resource.group == *g && r.resource.plural == *p);
            if ignored || !["list", "watch", "delete"].iter().all(|v| r.supports(v)) {
                continue;
            }
            let name = r.qualified_name();
            if self.lock_monitors().contains_key(&name) {
                continue;
            }
            let ar = r.resource.clone();
            let api: Api<PartialObjectMeta<DynamicObject>> =
                Api::all_with(self.client.clone(), &ar);
            let monitor = Informer::new_with(&name, api, watcher::Config::default(), ar);
            let tx = self.events.clone();
            let (api_version, kind) = (r.resource.api_version.clone(), r.resource.kind.clone());
            monitor.add_handler(move |change| {
                let ev = graph_event(&api_version, &kind, change);
                let _ = tx.send(ev);
            });
            monitor.start();
            self.lock_monitors().insert(name, monitor.clone());
            started.push(monitor);
        }
        started
    }

    /// The single task that changes the graph, in event order.
    async fn process_graph_changes(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<GraphEvent>) {
        while let Some(ev) = rx.recv().await {
            let deleted_owner = match &ev {
                GraphEvent::Deleted(id) => Some(id.clone()),
                _ => None,
            };
            let work = {
                let mut g = self.lock_graph();
                if let Some(id) = &deleted_owner {
                    // Remember owners seen deleted: their dependents need no read of them.
                    if g.get(&id.uid).is_some_and(|n| !n.dependents.is_empty()) {
                        self.remember_absent(&id.uid, id.namespace.clone());
                    }
                }
                g.process(ev)
            };
            for w in work {
                match w {
                    Work::AttemptToDelete(uid) => self.attempt_to_delete.add(uid),
                    Work::AttemptToOrphan(uid) => self.attempt_to_orphan.add(uid),
                }
            }
        }
    }

    fn spawn_workers(self: &Arc<Self>, workers: usize) {
        for _ in 0..workers.max(1) {
            let gc = self.clone();
            tokio::spawn(async move {
                while let Some(uid) = gc.attempt_to_delete.get().await {
                    match gc.attempt_to_delete_item(&uid).await {
                        Ok(Outcome::Done) | Ok(Outcome::VirtualDeleteSent) => {
                            gc.attempt_to_delete.forget(&uid)
                        }
                        Ok(Outcome::Requeue) => gc.attempt_to_delete.add_rate_limited(uid.clone()),
                        Err(e) => {
                            tracing::warn!(uid = %uid, error = %e, "garbage collector: will retry");
                            gc.attempt_to_delete.add_rate_limited(uid.clone());
                        }
                    }
                    gc.attempt_to_delete.done(&uid);
                }
            });
        }
        let gc = self.clone();
        tokio::spawn(async move {
            while let Some(uid) = gc.attempt_to_orphan.get().await {
                match gc.attempt_to_orphan_item(&uid).await {
                    Ok(()) => gc.attempt_to_orphan.forget(&uid),
                    Err(e) => {
                        tracing::warn!(uid = %uid, error = %e, "garbage collector: orphaning will retry");
                        gc.attempt_to_orphan.add_rate_limited(uid.clone());
                    }
                }
                gc.attempt_to_orphan.done(&uid);
            }
        });
    }

    fn remember_absent(&self, uid: &str, namespace: Option<String>) {
        let mut cache = self.absent_owners.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= ABSENT_OWNER_CACHE {
            cache.clear();
        }
        cache.insert((uid.to_string(), namespace));
    }

    fn known_absent(&self, uid: &str, namespace: Option<&str>) -> bool {
        let cache = self.absent_owners.lock().unwrap_or_else(|e| e.into_inner());
        cache.contains(&(uid.to_string(), None))
            || cache.contains(&(uid.to_string(), namespace.map(String::from)))
    }

    /// The API for an identity's kind, in its namespace when namespaced.
    async fn api_for(&self, id: &Identity) -> Result<(Api<DynamicObject>, ServedResource)> {
        let r = self
            .resources
            .resolve(&id.api_version, &id.kind)
            .await
            .ok_or_else(|| {
                Error::Other(format!("no resource serves {}/{}", id.api_version, id.kind))
            })?;
        let api = match (&id.namespace, r.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &r.resource),
            (None, true) => {
                return Err(Error::Other(format!(
                    "{id}: a namespaced kind without a namespace"
                )))
            }
            (_, false) => Api::all_with(self.client.clone(), &r.resource),
        };
        Ok((api, r))
    }

    /// Upstream's attemptToDeleteItem.
    async fn attempt_to_delete_item(&self, uid: &str) -> Result<Outcome> {
        let Some(node) = self.lock_graph().get(uid).cloned() else {
            return Ok(Outcome::Done);
        };
        // Being deleted without waiting for dependents: wait for it to go.
        if node.being_deleted && !node.deleting_dependents {
            return Ok(Outcome::Done);
        }
        let (api, _) = self.api_for(&node.identity).await?;
        let latest = match api.get_metadata(&node.identity.name).await {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => return Ok(self.virtual_delete(node.identity)),
            Err(e) => return Err(e.into()),
        };
        if latest.metadata.uid.as_deref() != Some(uid) {
            return Ok(self.virtual_delete(node.identity));
        }
        if node.deleting_dependents {
            self.process_deleting_dependents(&node, &api).await?;
            return Ok(Outcome::Done);
        }
        let owners = latest.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(if node.virtual_ {
                Outcome::Requeue
            } else {
                Outcome::Done
            });
        }
        // Classify the owners: solid (exists, not deleting its dependents),
        // dangling (gone), waiting (deleting its dependents in the foreground).
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for r in &owners {
            let owner_id = Identity {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: node.identity.namespace.clone(),
                name: r.name.clone(),
                uid: r.uid.clone(),
            };
            if self.known_absent(&r.uid, node.identity.namespace.as_deref()) {
                dangling.push(r);
                continue;
            }
            let (owner_api, owner_res) = self.api_for(&owner_id).await?;
            let absent_ns = owner_res
                .namespaced
                .then(|| node.identity.namespace.clone())
                .flatten();
            match owner_api.get_metadata(&r.name).await {
                Err(e) if is_not_found(&e) => {
                    self.remember_absent(&r.uid, absent_ns);
                    dangling.push(r);
                }
                Err(e) => return Err(e.into()),
                Ok(o) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => {
                    self.remember_absent(&r.uid, absent_ns);
                    dangling.push(r);
                }
                Ok(o) => {
                    let deleting = o.metadata.deletion_timestamp.is_some()
                        && has(&o.metadata.finalizers, FOREGROUND_FINALIZER);
                    if deleting {
                        waiting.push(r);
                    } else {
                        solid.push(r);
                    }
                }
            }
        }
        let name = &node.identity.name;
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Outcome::Done);
            }
            // Keep the object; drop the references that would block or dangle.
            let gone: Vec<_> = dangling
                .iter()
                .chain(waiting.iter())
                .map(|r| json!({"$patch": "delete", "uid": r.uid}))
                .collect();
            let patch = json!({"metadata": {"ownerReferences": gone, "uid": uid}});
            tracing::info!(item = %node.identity, "removing dangling and waiting owner references");
            match api
                .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(Outcome::Done);
        }
        let policy = if !waiting.is_empty() && !node.dependents.is_empty() {
            // An owner waits for us and we have dependents: delete in the
            // foreground too, so ours go first.
            PropagationPolicy::Foreground
        } else if has(&latest.metadata.finalizers, ORPHAN_FINALIZER) {
            PropagationPolicy::Orphan
        } else if has(&latest.metadata.finalizers, FOREGROUND_FINALIZER) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(item = %node.identity, ?policy, "deleting object whose owners are gone");
        self.delete_object(&api, &node.identity, policy).await?;
        Ok(Outcome::Done)
    }

    fn virtual_delete(&self, identity: Identity) -> Outcome {
        let _ = self.events.send(GraphEvent::VirtualDeleted(identity));
        Outcome::VirtualDeleteSent
    }

    /// An owner deleting its dependents in the foreground: done when no
    /// blocking dependent is left, else push the blocking ones along.
    async fn process_deleting_dependents(
        &self,
        node: &graph::Node,
        api: &Api<DynamicObject>,
    ) -> Result<()> {
        let blocking = self.lock_graph().blocking_dependents(&node.identity.uid);
        if blocking.is_empty() {
            tracing::info!(item = %node.identity, "dependents deleted; removing the foregroundDeletion finalizer");
            return self
                .remove_finalizer(api, &node.identity, FOREGROUND_FINALIZER)
                .await;
        }
        for d in blocking {
            if !d.deleting_dependents {
                self.attempt_to_delete.add(d.identity.uid.clone());
            }
        }
        Ok(())
    }

    /// Upstream's attemptToOrphanWorker.
    async fn attempt_to_orphan_item(&self, uid: &str) -> Result<()> {
        let Some(owner) = self.lock_graph().get(uid).cloned() else {
            return Ok(());
        };
        let dependents = self.lock_graph().dependents(uid);
        let results = futures::future::join_all(dependents.iter().map(|d| async move {
            let (api, _) = self.api_for(&d.identity).await?;
            let patch = json!({"metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": uid}],
                "uid": d.identity.uid,
            }});
            match api
                .patch(
                    &d.identity.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        }))
        .await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(e);
        }
        let (api, _) = self.api_for(&owner.identity).await?;
        tracing::info!(item = %owner.identity, dependents = dependents.len(), "dependents orphaned; removing the orphan finalizer");
        self.remove_finalizer(&api, &owner.identity, ORPHAN_FINALIZER)
            .await
    }

    async fn remove_finalizer(
        &self,
        api: &Api<DynamicObject>,
        id: &Identity,
        finalizer: &str,
    ) -> Result<()> {
        let patch = json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": [finalizer],
            "uid": id.uid,
        }});
        match api
            .patch(&id.name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_object(
        &self,
        api: &Api<DynamicObject>,
        id: &Identity,
        policy: PropagationPolicy,
    ) -> Result<()> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&id.name, &params).await {
            Ok(_) => Ok(()),
            // Gone already, or replaced by a namesake (uid precondition).
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn has(finalizers: &Option<Vec<String>>, f: &str) -> bool {
    finalizers
        .as_ref()
        .is_some_and(|l| l.iter().any(|x| x == f))
}

fn state_of(m: &PartialObjectMeta<DynamicObject>) -> ObjectState {
    ObjectState {
        owners: m.metadata.owner_references.clone().unwrap_or_default(),
        being_deleted: m.metadata.deletion_timestamp.is_some(),
        finalizers: m.metadata.finalizers.clone().unwrap_or_default(),
    }
}

fn identity_of(api_version: &str, kind: &str, m: &PartialObjectMeta<DynamicObject>) -> Identity {
    Identity {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace: m.metadata.namespace.clone().filter(|n| !n.is_empty()),
        name: m.metadata.name.clone().unwrap_or_default(),
        uid: m.metadata.uid.clone().unwrap_or_default(),
    }
}

fn graph_event(
    api_version: &str,
    kind: &str,
    change: &Change<'_, PartialObjectMeta<DynamicObject>>,
) -> GraphEvent {
    match change {
        Change::Added(m) => GraphEvent::Upsert {
            identity: identity_of(api_version, kind, m),
            state: state_of(m),
            old: None,
        },
        Change::Updated { old, new } => GraphEvent::Upsert {
            identity: identity_of(api_version, kind, new),
            state: state_of(new),
            old: Some(state_of(old)),
        },
        Change::Deleted(m) => GraphEvent::Deleted(identity_of(api_version, kind, m)),
    }
}
