//! The garbage collector's dependency graph (upstream's GraphBuilder):
//! every watched object by uid, with its ownerReferences and the objects
//! that name it as owner. Owners not (yet) seen are "virtual" nodes whose
//! existence the workers check with the API. Processing a change returns
//! the work it calls for: objects to check for deletion, owners whose
//! dependents must be orphaned.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub const ORPHAN_FINALIZER: &str = "orphan";
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Which object a node stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    /// For virtual nodes: the namespace of the dependent that named it
    /// (dropped when the kind turns out to be cluster-scoped).
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or(""),
            self.name,
            self.uid
        )
    }
}

/// What the graph needs to know of an object's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectState {
    pub owners: Vec<OwnerReference>,
    pub being_deleted: bool,
    pub finalizers: Vec<String>,
}

impl ObjectState {
    fn has(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }
}

#[derive(Debug)]
pub enum GraphEvent {
    /// Added or updated; `old` is the previous state for updates.
    Upsert {
        identity: Identity,
        state: ObjectState,
        old: Option<ObjectState>,
    },
    Deleted(Identity),
    /// A worker found that a node's object does not exist.
    VirtualDeleted(Identity),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Check whether the object must be deleted (or, deleting its
    /// dependents in the foreground, whether it may go).
    AttemptToDelete(String),
    /// Remove the owner from its dependents' ownerReferences, then its
    /// `orphan` finalizer.
    AttemptToOrphan(String),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub dependents: HashSet<String>,
    pub being_deleted: bool,
    pub deleting_dependents: bool,
    /// Known only from an ownerReference, not seen by a watch.
    pub virtual_: bool,
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Dependents of `uid` whose reference to it has blockOwnerDeletion.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<Node> {
        let Some(n) = self.nodes.get(uid) else {
            return Vec::new();
        };
        n.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
            })
            .cloned()
            .collect()
    }

    pub fn dependents(&self, uid: &str) -> Vec<Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn process(&mut self, event: GraphEvent) -> Vec<Work> {
        let mut work = Vec::new();
        match event {
            GraphEvent::Upsert {
                identity,
                state,
                old,
            } => self.upsert(identity, state, old, &mut work),
            GraphEvent::Deleted(identity) => self.remove(&identity.uid, &mut work),
            GraphEvent::VirtualDeleted(identity) => {
                // Only a node never seen by a watch may go this way; an
                // observed one leaves when its watch says so.
                if self.nodes.get(&identity.uid).is_some_and(|n| n.virtual_) {
                    self.remove(&identity.uid, &mut work);
                }
            }
        }
        work
    }

    fn upsert(
        &mut self,
        identity: Identity,
        state: ObjectState,
        old: Option<ObjectState>,
        work: &mut Vec<Work>,
    ) {
        let uid = identity.uid.clone();
        let previous_owners = match self.nodes.get_mut(&uid) {
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity: identity.clone(),
                        owners: state.owners.clone(),
                        dependents: HashSet::new(),
                        being_deleted: state.being_deleted,
                        deleting_dependents: false,
                        virtual_: false,
                    },
                );
                Vec::new()
            }
            Some(n) => {
                if n.virtual_ {
                    n.virtual_ = false;
                    n.identity = identity.clone();
                }
                let prev = std::mem::replace(&mut n.owners, state.owners.clone());
                if state.being_deleted {
                    n.being_deleted = true;
                }
                prev
            }
        };
        // Link to owners added since, unlink from those removed.
        for r in &state.owners {
            let was = previous_owners.iter().find(|p| p.uid == r.uid);
            if was.is_none() {
                self.add_dependent(&identity, r, work);
            } else if was.is_some_and(|p| p.block_owner_deletion == Some(true))
                && r.block_owner_deletion != Some(true)
            {
                // No longer blocks: a foreground-deleting owner may be done.
                self.recheck_if_deleting_dependents(&r.uid, work);
            }
        }
        for p in &previous_owners {
            if !state.owners.iter().any(|r| r.uid == p.uid) {
                if let Some(owner) = self.nodes.get_mut(&p.uid) {
                    owner.dependents.remove(&uid);
                }
                self.recheck_if_deleting_dependents(&p.uid, work);
            }
        }
        self.transitions(&uid, old.as_ref(), &state, work);
    }

    fn add_dependent(&mut self, dependent: &Identity, r: &OwnerReference, work: &mut Vec<Work>) {
        let owner = self.nodes.entry(r.uid.clone()).or_insert_with(|| {
            // Seen only as an owner so far: the workers check it exists.
            work.push(Work::AttemptToDelete(r.uid.clone()));
            Node {
                identity: Identity {
                    api_version: r.api_version.clone(),
                    kind: r.kind.clone(),
                    namespace: dependent.namespace.clone(),
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                },
                owners: Vec::new(),
                dependents: HashSet::new(),
                being_deleted: false,
                deleting_dependents: false,
                virtual_: true,
            }
        });
        owner.dependents.insert(dependent.uid.clone());
    }

    fn recheck_if_deleting_dependents(&self, uid: &str, work: &mut Vec<Work>) {
        if self.nodes.get(uid).is_some_and(|o| o.deleting_dependents) {
            work.push(Work::AttemptToDelete(uid.to_string()));
        }
    }

    /// Deletion with the orphan or foregroundDeletion finalizer just started.
    fn transitions(
        &mut self,
        uid: &str,
        old: Option<&ObjectState>,
        new: &ObjectState,
        work: &mut Vec<Work>,
    ) {
        let started = |f: &str| {
            new.being_deleted && new.has(f) && !old.is_some_and(|o| o.being_deleted && o.has(f))
        };
        if started(ORPHAN_FINALIZER) {
            work.push(Work::AttemptToOrphan(uid.to_string()));
            return;
        }
        let foreground = new.being_deleted && new.has(FOREGROUND_FINALIZER);
        let Some(n) = self.nodes.get_mut(uid) else {
            return;
        };
        if foreground && (started(FOREGROUND_FINALIZER) || !n.deleting_dependents) {
            n.deleting_dependents = true;
            for d in &n.dependents {
                work.push(Work::AttemptToDelete(d.clone()));
            }
            work.push(Work::AttemptToDelete(uid.to_string()));
        }
    }

    fn remove(&mut self, uid: &str, work: &mut Vec<Work>) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        for r in &node.owners {
            if let Some(owner) = self.nodes.get_mut(&r.uid) {
                owner.dependents.remove(uid);
            }
            self.recheck_if_deleting_dependents(&r.uid, work);
        }
        for d in &node.dependents {
            work.push(Work::AttemptToDelete(d.clone()));
        }
        // Owners that were never seen and have no dependents left are gone too.
        for r in &node.owners {
            if self
                .nodes
                .get(&r.uid)
                .is_some_and(|o| o.virtual_ && o.dependents.is_empty())
            {
                self.nodes.remove(&r.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn owner_ref(kind: &str, name: &str, uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn add(g: &mut Graph, identity: Identity, owners: Vec<OwnerReference>) -> Vec<Work> {
        g.process(GraphEvent::Upsert {
            identity,
            state: ObjectState {
                owners,
                ..Default::default()
            },
            old: None,
        })
    }

    #[test]
    fn unseen_owner_is_virtual_and_checked() {
        let mut g = Graph::default();
        let w = add(
            &mut g,
            id("Pod", "p", "p1"),
            vec![owner_ref("ReplicationController", "rc", "r1", true)],
        );
        assert_eq!(w, [Work::AttemptToDelete("r1".into())]);
        assert!(g.get("r1").unwrap().virtual_);
        // The owner shows up: no longer virtual, no work.
        let w = add(&mut g, id("ReplicationController", "rc", "r1"), vec![]);
        assert!(w.is_empty());
        assert!(!g.get("r1").unwrap().virtual_);
        assert!(g.get("r1").unwrap().dependents.contains("p1"));
    }

    #[test]
    fn deleted_owner_sends_dependents_to_be_checked() {
        let mut g = Graph::default();
        add(&mut g, id("ReplicationController", "rc", "r1"), vec![]);
        add(
            &mut g,
            id("Pod", "a", "p1"),
            vec![owner_ref("ReplicationController", "rc", "r1", true)],
        );
        add(
            &mut g,
            id("Pod", "b", "p2"),
            vec![owner_ref("ReplicationController", "rc", "r1", true)],
        );
        let mut w = g.process(GraphEvent::Deleted(id("ReplicationController", "rc", "r1")));
        w.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(
            w,
            [
                Work::AttemptToDelete("p1".into()),
                Work::AttemptToDelete("p2".into())
            ]
        );
        assert!(g.get("r1").is_none());
    }

    #[test]
    fn orphan_and_foreground_deletion_start_work_once() {
        let mut g = Graph::default();
        add(&mut g, id("ReplicationController", "rc", "r1"), vec![]);
        add(
            &mut g,
            id("Pod", "a", "p1"),
            vec![owner_ref("ReplicationController", "rc", "r1", true)],
        );
        let deleting = |f: &str| ObjectState {
            owners: vec![],
            being_deleted: true,
            finalizers: vec![f.to_string()],
        };
        let w = g.process(GraphEvent::Upsert {
            identity: id("ReplicationController", "rc", "r1"),
            state: deleting(ORPHAN_FINALIZER),
            old: Some(ObjectState::default()),
        });
        assert_eq!(w, [Work::AttemptToOrphan("r1".into())]);
        let again = g.process(GraphEvent::Upsert {
            identity: id("ReplicationController", "rc", "r1"),
            state: deleting(ORPHAN_FINALIZER),
            old: Some(deleting(ORPHAN_FINALIZER)),
        });
        assert!(again.is_empty());

        let mut g = Graph::default();
        add(&mut g, id("ReplicationController", "rc", "r1"), vec![]);
        add(
            &mut g,
            id("Pod", "a", "p1"),
            vec![owner_ref("ReplicationController", "rc", "r1", true)],
        );
        let w = g.process(GraphEvent::Upsert {
            identity: id("ReplicationController", "rc", "r1"),
            state: deleting(FOREGROUND_FINALIZER),
            old: Some(ObjectState::default()),
        });
        assert_eq!(
            w,
            [
                Work::AttemptToDelete("p1".into()),
                Work::AttemptToDelete("r1".into())
            ]
        );
        assert!(g.get("r1").unwrap().deleting_dependents);
        assert_eq!(g.blocking_dependents("r1").len(), 1);
        // The dependent goes: the owner is checked again.
        let w = g.process(GraphEvent::Deleted(id("Pod", "a", "p1")));
        assert_eq!(w, [Work::AttemptToDelete("r1".into())]);
        assert!(g.blocking_dependents("r1").is_empty());
    }

    #[test]
    fn removing_an_owner_reference_unlinks() {
        let mut g = Graph::default();
        add(&mut g, id("ReplicationController", "rc", "r1"), vec![]);
        add(
            &mut g,
            id("Pod", "a", "p1"),
            vec![owner_ref("ReplicationController", "rc", "r1", true)],
        );
        let w = g.process(GraphEvent::Upsert {
            identity: id("Pod", "a", "p1"),
            state: ObjectState::default(),
            old: None,
        });
        assert!(w.is_empty());
        assert!(g.get("r1").unwrap().dependents.is_empty());
    }

    #[test]
    fn virtual_delete_leaves_observed_nodes() {
        let mut g = Graph::default();
        add(&mut g, id("ReplicationController", "rc", "r1"), vec![]);
        g.process(GraphEvent::VirtualDeleted(id(
            "ReplicationController",
            "rc",
            "r1",
        )));
        assert!(g.get("r1").is_some());
        add(
            &mut g,
            id("Pod", "a", "p1"),
            vec![owner_ref("ReplicationController", "gone", "r2", true)],
        );
        let w = g.process(GraphEvent::VirtualDeleted(id(
            "ReplicationController",
            "gone",
            "r2",
        )));
        assert_eq!(w, [Work::AttemptToDelete("p1".into())]);
        assert!(g.get("r2").is_none());
    }
}
