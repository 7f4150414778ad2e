//! The scheduler's cache: every node with the pods bound or assumed to it and
//! their summed requests and host ports. A pod counts against its node from
//! the moment its binding is sent (assumed) until it is deleted; a failed
//! binding forgets it again.

use std::collections::HashMap;
use std::sync::Arc;

use crate::node_info::{NodeState, NodeView};
use crate::pod_info::{PodInfo, PodKey};

/// Where a placed pod is, and whether the watch has confirmed it yet.
#[derive(Debug, Clone)]
struct Placement {
    node: String,
    assumed: bool,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// Real nodes and "ghosts" (pods bound to a node not seen, or deleted).
    nodes: Vec<NodeState>,
    index: HashMap<String, usize>,
    real_nodes: usize,
    pods: HashMap<PodKey, Placement>,
}

impl Cache {
    pub fn nodes(&self) -> &[NodeState] {
        &self.nodes
    }

    /// Nodes that can take pods (ghosts excluded).
    pub fn num_nodes(&self) -> usize {
        self.real_nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// Add or update a node; true when anything that affects placement
    /// changed (so pods that did not fit should be tried again).
    pub fn set_node(&mut self, view: NodeView) -> bool {
        let i = self.entry(&view.name);
        let state = &mut self.nodes[i];
        if state.view.as_deref() == Some(&view) {
            return false;
        }
        if state.view.is_none() {
            self.real_nodes += 1;
        }
        state.view = Some(Arc::new(view));
        true
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.nodes[i].view.take().is_some() {
            self.real_nodes -= 1;
        }
        self.drop_if_empty_ghost(i);
    }

    /// Count a pod against `node` before its binding is confirmed.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        let key = pod.key();
        self.remove_pod(&key);
        let i = self.entry(node);
        self.nodes[i].add_pod(pod);
        self.pods.insert(
            key,
            Placement {
                node: node.to_string(),
                assumed: true,
            },
        );
    }

    /// Undo an assumption whose binding failed; a pod the watch has already
    /// shown bound stays.
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    /// A pod the watch shows bound (confirming an assumption, or bound by
    /// someone else, or updated).
    pub fn set_bound(&mut self, pod: Arc<PodInfo>) {
        let Some(node) = pod.node_name.clone() else {
            return;
        };
        let key = pod.key();
        self.remove_pod(&key);
        let i = self.entry(&node);
        self.nodes[i].add_pod(pod);
        self.pods.insert(
            key,
            Placement {
                node,
                assumed: false,
            },
        );
    }

    /// Whether the pod is counted on a node, and if so whether only assumed.
    pub fn placement(&self, key: &str) -> Option<(&str, bool)> {
        self.pods.get(key).map(|p| (p.node.as_str(), p.assumed))
    }

    /// Stop counting a pod; true if it was counted.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(placement) = self.pods.remove(key) else {
            return false;
        };
        if let Some(&i) = self.index.get(&placement.node) {
            let (namespace, name) = key.split_once('/').unwrap_or(("", key));
            self.nodes[i].remove_pod(namespace, name);
            self.drop_if_empty_ghost(i);
        }
        true
    }

    /// Every pod key the cache counts.
    pub fn pod_keys(&self) -> impl Iterator<Item = &PodKey> {
        self.pods.keys()
    }

    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(|n| n.view.is_some())
            .map(|n| n.name.as_str())
    }

    fn entry(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.nodes.push(NodeState::new(name));
        let i = self.nodes.len() - 1;
        self.index.insert(name.to_string(), i);
        i
    }

    fn drop_if_empty_ghost(&mut self, i: usize) {
        if self.nodes[i].view.is_some() || !self.nodes[i].pods.is_empty() {
            return;
        }
        let gone = self.nodes.swap_remove(i);
        self.index.remove(&gone.name);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn view(name: &str) -> NodeView {
        NodeView {
            name: name.into(),
            labels: Default::default(),
            unschedulable: false,
            taints: vec![],
            allocatable: Default::default(),
            allowed_pods: 10,
        }
    }

    fn pod(name: &str, node: Option<&str>) -> Arc<PodInfo> {
        let mut p = PodInfo::from_pod(&Pod::default());
        p.namespace = "ns".into();
        p.name = name.into();
        p.requests.milli_cpu = 100;
        p.node_name = node.map(String::from);
        Arc::new(p)
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::default();
        c.set_node(view("a"));
        c.set_node(view("b"));
        c.assume(pod("p", None), "a");
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 100);
        assert_eq!(c.placement("ns/p"), Some(("a", true)));
        // Bound elsewhere by someone else: moves.
        c.set_bound(pod("p", Some("b")));
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 0);
        assert_eq!(c.node("b").unwrap().requested.milli_cpu, 100);
        // Forgetting a confirmed pod does nothing.
        c.forget("ns/p");
        assert_eq!(c.placement("ns/p"), Some(("b", false)));
        c.assume(pod("q", None), "a");
        c.forget("ns/q");
        assert_eq!(c.node("a").unwrap().pod_count(), 0);
    }

    #[test]
    fn ghost_nodes_keep_usage_until_empty() {
        let mut c = Cache::default();
        c.set_bound(pod("p", Some("unknown")));
        assert_eq!(c.num_nodes(), 0);
        assert!(c.node("unknown").is_some());
        assert!(c.set_node(view("unknown")));
        assert!(!c.set_node(view("unknown")));
        assert_eq!(c.num_nodes(), 1);
        c.remove_node("unknown");
        assert_eq!(c.num_nodes(), 0);
        assert!(c.node("unknown").is_some());
        c.remove_pod("ns/p");
        assert!(c.node("unknown").is_none());
    }
}
