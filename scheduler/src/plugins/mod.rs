//! The filter and score plugins of upstream's default profile that apply to
//! this cluster (no volumes, no inter-pod affinity), in upstream's order.

pub mod node_affinity;
pub mod node_ports;
pub mod node_resources;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use std::borrow::Cow;

use crate::node_info::{NodeState, NodeView};
use crate::pod_info::PodInfo;

pub const MAX_NODE_SCORE: i64 = 100;

/// Score plugin weights of upstream's default profile.
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_POD_TOPOLOGY_SPREAD: i64 = 2;
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;

/// Why a node cannot take a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reasons: Vec<Cow<'static, str>>,
    /// Unschedulable (evicting lower-priority pods could help) rather than
    /// UnschedulableAndUnresolvable.
    pub resolvable: bool,
}

impl Rejection {
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            reasons: vec![reason.into()],
            resolvable: false,
        }
    }

    pub fn resolvable(reasons: Vec<Cow<'static, str>>) -> Self {
        Rejection {
            reasons,
            resolvable: true,
        }
    }
}

/// Run the filters in upstream's order; the first that rejects decides.
pub fn filter(pod: &PodInfo, view: &NodeView, state: &NodeState) -> Result<(), Rejection> {
    node_unschedulable::filter(pod, view)?;
    taint_toleration::filter(pod, view)?;
    node_affinity::filter(pod, view)?;
    node_ports::filter(pod, state)?;
    node_resources::filter(pod, view, state)
}

/// Upstream's DefaultNormalizeScore: scale to 0..=100 by the maximum,
/// reversed when fewer is better.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}
