//! The part of a Pod the scheduler needs, extracted once when the watch
//! delivers it, so that scheduling cycles never touch (or clone) whole pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorTerm, Pod, PreferredSchedulingTerm, Toleration};

use crate::resources::{pod_requests, NonZero, Resources};

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// namespace/name
pub type PodKey = String;

/// A host port a container asks for; an empty or 0.0.0.0 IP means every address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    pub const ANY_IP: &'static str = "0.0.0.0";

    /// Whether two pods asking for these could not share a node.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == Self::ANY_IP || other.ip == Self::ANY_IP)
    }
}

/// The pod's controller (the ownerReference with controller=true).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// The pod's PodScheduled condition as last seen, so that an unchanged
/// failure is not written again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledCondition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub controller: Option<ControllerRef>,
    /// spec.nodeName, when bound.
    pub node_name: Option<String>,
    pub scheduler_name: String,
    pub terminating: bool,
    /// spec.schedulingGates is not empty: not to be scheduled yet.
    pub gated: bool,
    pub priority: i32,
    pub preemption_never: bool,
    pub requests: Resources,
    pub non_zero: NonZero,
    pub host_ports: Vec<HostPort>,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity terms (ORed); None when the pod has none.
    pub required_terms: Option<Vec<NodeSelectorTerm>>,
    pub preferred_terms: Vec<PreferredSchedulingTerm>,
    pub tolerations: Vec<Toleration>,
    pub scheduled_condition: Option<ScheduledCondition>,
}

impl PodInfo {
    pub fn from_pod(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let (requests, non_zero) = spec.map(pod_requests).unwrap_or_default();
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| ControllerRef {
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                name: o.name.clone(),
            });
        let node_affinity = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref());
        let scheduled_condition = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .map(|c| ScheduledCondition {
                status: c.status.clone(),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            });
        PodInfo {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            controller,
            node_name: spec
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            scheduler_name: spec
                .and_then(|s| s.scheduler_name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string()),
            terminating: meta.deletion_timestamp.is_some(),
            gated: spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_some_and(|g| !g.is_empty()),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            preemption_never: spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never"),
            requests,
            non_zero,
            host_ports: spec.map(host_ports).unwrap_or_default(),
            node_selector: spec
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default(),
            required_terms: node_affinity
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|s| s.node_selector_terms.clone()),
            preferred_terms: node_affinity
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .clone()
                })
                .unwrap_or_default(),
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
            scheduled_condition,
        }
    }

    pub fn key(&self) -> PodKey {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether a change between two versions of a pending pod could change
    /// where it fits (anything but its status).
    pub fn scheduling_changed(&self, other: &PodInfo) -> bool {
        self.labels != other.labels
            || self.gated != other.gated
            || self.priority != other.priority
            || self.requests != other.requests
            || self.host_ports != other.host_ports
            || self.node_selector != other.node_selector
            || self.required_terms != other.required_terms
            || self.preferred_terms != other.preferred_terms
            || self.tolerations != other.tolerations
    }
}

/// The host ports of the pod's containers and sidecar init containers.
fn host_ports(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<HostPort> {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let mut out: Vec<HostPort> = spec
        .containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            Some(HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| HostPort::ANY_IP.to_string()),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_conflict_on_wildcard_or_same_ip() {
        let any = HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let a = HostPort {
            ip: "10.0.0.1".into(),
            ..any.clone()
        };
        let b = HostPort {
            ip: "10.0.0.2".into(),
            ..any.clone()
        };
        let udp = HostPort {
            protocol: "UDP".into(),
            ..any.clone()
        };
        assert!(any.conflicts(&a));
        assert!(a.conflicts(&any));
        assert!(!a.conflicts(&b));
        assert!(!any.conflicts(&udp));
    }
}
