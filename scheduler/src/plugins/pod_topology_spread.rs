//! PodTopologySpread with upstream's system default constraints (what
//! spreads the pods of one ReplicationController or Service): for pods that
//! belong to a Service or a controller, nodes (kubernetes.io/hostname, max
//! skew 3) and zones (topology.kubernetes.io/zone, max skew 5) that already
//! hold fewer matching pods score higher. ScheduleAnyway: it never filters.

use std::collections::{BTreeMap, HashMap};

use crate::node_info::{NodeState, NodeView, LABEL_ZONE};
use crate::pod_info::PodInfo;

use super::{node_affinity, MAX_NODE_SCORE};

const HOSTNAME_MAX_SKEW: f64 = 3.0;
const ZONE_MAX_SKEW: f64 = 5.0;

/// Which existing pods count as the pod's siblings: those in its namespace
/// matching every label of the merged selectors of its Services and its
/// controller (upstream's DefaultSelector). Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpreadSelector {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl SpreadSelector {
    pub fn matches(&self, pod: &PodInfo) -> bool {
        !pod.terminating
            && pod.namespace == self.namespace
            && self
                .labels
                .iter()
                .all(|(k, v)| pod.labels.get(k) == Some(v))
    }

    fn count_on(&self, node: &NodeState) -> i64 {
        node.pods.iter().filter(|p| self.matches(p)).count() as i64
    }
}

/// Raw scores for the feasible nodes (same order); `all` are every known
/// node, for the zone counts.
pub fn scores<'a>(
    selector: &SpreadSelector,
    pod: &PodInfo,
    feasible: &[(&NodeView, &NodeState)],
    all: impl Iterator<Item = (&'a NodeView, &'a NodeState)>,
) -> Vec<i64> {
    let host_weight = ((feasible.len() + 2) as f64).ln();
    // Zones present among the feasible nodes, with their pod counts over all
    // nodes in them that the pod's node affinity allows.
    let mut zones: HashMap<&str, i64> = feasible
        .iter()
        .filter_map(|(v, _)| v.labels.get(LABEL_ZONE).map(|z| (z.as_str(), 0)))
        .collect();
    if !zones.is_empty() {
        for (view, state) in all {
            let Some(zone) = view.labels.get(LABEL_ZONE) else {
                continue;
            };
            if let Some(count) = zones.get_mut(zone.as_str()) {
                if node_affinity::filter(pod, view).is_ok() {
                    *count += selector.count_on(state);
                }
            }
        }
    }
    let zone_weight = ((zones.len() + 2) as f64).ln();
    feasible
        .iter()
        .map(|(view, state)| {
            let mut score =
                selector.count_on(state) as f64 * host_weight + (HOSTNAME_MAX_SKEW - 1.0);
            if let Some(count) = view
                .labels
                .get(LABEL_ZONE)
                .and_then(|z| zones.get(z.as_str()))
            {
                score += *count as f64 * zone_weight + (ZONE_MAX_SKEW - 1.0);
            }
            score.round() as i64
        })
        .collect()
}

/// Upstream's NormalizeScore for this plugin: fewest siblings -> 100.
pub fn normalize(scores: &mut [i64]) {
    let min = scores.iter().copied().min().unwrap_or(0);
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        *s = if max == 0 {
            MAX_NODE_SCORE
        } else {
            MAX_NODE_SCORE * (max + min - *s) / max
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_siblings_score_higher() {
        let mut s = vec![2, 5, 8];
        normalize(&mut s);
        assert_eq!(s, [100, 62, 25]);
        let mut same = vec![4, 4];
        normalize(&mut same);
        assert_eq!(same, [100, 100]);
    }
}
