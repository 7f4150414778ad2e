//! A node as the scheduler sees it: what it offers (from the Node object) and
//! what the pods bound or assumed to it already take (kept up to date as pods
//! come and go, never recomputed per scheduling cycle).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::pod_info::{HostPort, PodInfo};
use crate::resources::{NonZero, Resources};
use component_base::quantity;

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// What a Node object says that matters for placement.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub unschedulable: bool,
    /// spec.taints, plus the NoSchedule taint upstream's node lifecycle
    /// controller puts on a node that is not Ready (not-ready, or unreachable
    /// when the Ready condition is Unknown), if the node lacks it.
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub allowed_pods: i64,
}

impl NodeView {
    pub fn from_node(node: &Node) -> Self {
        let name = node.metadata.name.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let mut taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        let condition_taint = match ready {
            Some("True") => None,
            Some("Unknown") => Some(TAINT_UNREACHABLE),
            _ => Some(TAINT_NOT_READY),
        };
        if let Some(key) = condition_taint {
            if !taints
                .iter()
                .any(|t| t.key == key && t.effect == "NoSchedule")
            {
                taints.push(Taint {
                    key: key.to_string(),
                    effect: "NoSchedule".to_string(),
                    ..Default::default()
                });
            }
        }
        let allocatable_list = status.and_then(|s| s.allocatable.as_ref());
        let allocatable = allocatable_list
            .map(Resources::from_list)
            .unwrap_or_default();
        let allowed_pods = allocatable_list
            .and_then(|l| l.get("pods"))
            .and_then(|q| quantity::value(&q.0).ok())
            .unwrap_or(0);
        NodeView {
            name,
            labels: node.metadata.labels.clone().unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints,
            allocatable,
            allowed_pods,
        }
    }

    /// The node's hostname label, or its name when the label is missing.
    pub fn hostname(&self) -> &str {
        self.labels
            .get(LABEL_HOSTNAME)
            .map(String::as_str)
            .unwrap_or(&self.name)
    }
}

/// A node and the pods on it (bound, or assumed: binding sent).
#[derive(Debug, Default)]
pub struct NodeState {
    pub name: String,
    /// None while pods name a node the scheduler has not seen (or that was
    /// deleted): their usage is kept, the node is never chosen.
    pub view: Option<Arc<NodeView>>,
    pub requested: Resources,
    pub non_zero: NonZero,
    pub pods: Vec<Arc<PodInfo>>,
    used_ports: HashMap<HostPort, u32>,
}

impl NodeState {
    pub fn new(name: &str) -> Self {
        NodeState {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero.milli_cpu += pod.non_zero.milli_cpu;
        self.non_zero.memory += pod.non_zero.memory;
        for p in &pod.host_ports {
            *self.used_ports.entry(p.clone()).or_insert(0) += 1;
        }
        self.pods.push(pod);
    }

    /// Remove the pod with this namespace/name; false if it was not here.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some(i) = self
            .pods
            .iter()
            .position(|p| p.name == name && p.namespace == namespace)
        else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero.milli_cpu -= pod.non_zero.milli_cpu;
        self.non_zero.memory -= pod.non_zero.memory;
        for p in &pod.host_ports {
            if let Some(n) = self.used_ports.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    self.used_ports.remove(p);
                }
            }
        }
        true
    }

    pub fn pod_count(&self) -> i64 {
        self.pods.len() as i64
    }

    /// Whether any of `wanted` collides with a port already in use here.
    pub fn ports_conflict(&self, wanted: &[HostPort]) -> bool {
        if self.used_ports.is_empty() {
            return false;
        }
        wanted
            .iter()
            .any(|w| self.used_ports.keys().any(|used| used.conflicts(w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};

    fn node(ready: Option<&str>) -> Node {
        Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                conditions: ready.map(|s| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: s.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn not_ready_nodes_carry_the_lifecycle_taint() {
        assert!(NodeView::from_node(&node(Some("True"))).taints.is_empty());
        let keys = |n: &Node| {
            NodeView::from_node(n)
                .taints
                .iter()
                .map(|t| t.key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&node(Some("False"))), [TAINT_NOT_READY]);
        assert_eq!(keys(&node(None)), [TAINT_NOT_READY]);
        assert_eq!(keys(&node(Some("Unknown"))), [TAINT_UNREACHABLE]);
    }
}
