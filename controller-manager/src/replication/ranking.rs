//! Which surplus pods go first, as upstream's ActivePodsWithRanks: the
//! pods whose loss hurts least (unscheduled, then pending, then not ready,
//! then the cheapest by pod-deletion-cost, then those doubled up on a node,
//! then the most recently ready, the most restarted and the youngest).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::pod_util::{condition, is_bound, is_ready, node_name};

pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The `n` pods to delete first, out of `pods`. `related` are the pods of
/// the same controller (and its siblings) used to see which nodes are
/// crowded.
pub fn pods_to_delete(pods: &[Arc<Pod>], related: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        if is_bound(p) {
            *per_node.entry(node_name(p)).or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, &Arc<Pod>)> = pods
        .iter()
        .map(|p| {
            let rank = if is_bound(p) {
                per_node.get(node_name(p)).copied().unwrap_or(0)
            } else {
                0
            };
            (rank, p)
        })
        .collect();
    ranked.sort_by(delete_first);
    ranked.into_iter().take(n).map(|(_, p)| p.clone()).collect()
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn ready_since(pod: &Pod) -> Option<i64> {
    condition(pod, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.as_nanosecond() as i64)
}

fn created(pod: &Pod) -> Option<i64> {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_nanosecond() as i64)
}

/// Ordering::Less when `a` should be deleted before `b`.
fn delete_first(a: &(usize, &Arc<Pod>), b: &(usize, &Arc<Pod>)) -> Ordering {
    let (ra, pa) = (a.0, a.1.as_ref());
    let (rb, pb) = (b.0, b.1.as_ref());
    // 1. Unassigned before assigned.
    is_bound(pa)
        .cmp(&is_bound(pb))
        // 2. Pending < Unknown < Running.
        .then(phase_rank(pa).cmp(&phase_rank(pb)))
        // 3. Not ready before ready.
        .then(is_ready(pa).cmp(&is_ready(pb)))
        // 4. Lower deletion cost first.
        .then(deletion_cost(pa).cmp(&deletion_cost(pb)))
        // 5. More pods on the same node first.
        .then(rb.cmp(&ra))
        // 6. Ready for less time first (both ready).
        .then_with(|| match (ready_since(pa), ready_since(pb)) {
            (Some(x), Some(y)) if is_ready(pa) && is_ready(pb) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        // 7. More restarts first.
        .then(max_restarts(pb).cmp(&max_restarts(pa)))
        // 8. Younger first (no timestamp counts as youngest).
        .then_with(|| match (created(pa), created(pb)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: &str) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "lastTransitionTime": created}]}});
        if let Some(n) = node {
            v["spec"]["nodeName"] = json!(n);
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn names(pods: Vec<Arc<Pod>>) -> Vec<String> {
        pods.into_iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn unscheduled_then_pending_then_not_ready_then_youngest() {
        let running_old = pod(
            "running-old",
            Some("n1"),
            "Running",
            true,
            "2024-01-01T00:00:00Z",
        );
        let running_new = pod(
            "running-new",
            Some("n2"),
            "Running",
            true,
            "2024-01-02T00:00:00Z",
        );
        let not_ready = pod(
            "not-ready",
            Some("n3"),
            "Running",
            false,
            "2024-01-01T00:00:00Z",
        );
        let pending = pod(
            "pending",
            Some("n4"),
            "Pending",
            false,
            "2024-01-01T00:00:00Z",
        );
        let unscheduled = pod(
            "unscheduled",
            None,
            "Pending",
            false,
            "2024-01-01T00:00:00Z",
        );
        let all = vec![
            running_old.clone(),
            running_new.clone(),
            not_ready.clone(),
            pending.clone(),
            unscheduled.clone(),
        ];
        assert_eq!(
            names(pods_to_delete(&all, &all, 5)),
            [
                "unscheduled",
                "pending",
                "not-ready",
                "running-new",
                "running-old"
            ]
        );
        assert_eq!(names(pods_to_delete(&all, &all, 1)), ["unscheduled"]);
    }

    #[test]
    fn crowded_nodes_first() {
        let a = pod("a", Some("n1"), "Running", true, "2024-01-01T00:00:00Z");
        let b = pod("b", Some("n1"), "Running", true, "2024-01-01T00:00:00Z");
        let c = pod("c", Some("n2"), "Running", true, "2024-01-01T00:00:00Z");
        let all = vec![c.clone(), a.clone(), b.clone()];
        let first = names(pods_to_delete(&all, &all, 1));
        assert_ne!(first, ["c"]);
    }
}
