//! One scheduling cycle: filter nodes (round robin, stopping once enough
//! feasible nodes are found, as upstream's percentageOfNodesToScore), score
//! the feasible ones with the default profile's weights, and pick the best,
//! ties broken at random.

use rand::Rng;

use crate::cache::Cache;
use crate::fit_error::FitError;
use crate::node_info::{NodeState, NodeView};
use crate::plugins::pod_topology_spread::{self, SpreadSelector};
use crate::plugins::{
    self, default_normalize, node_affinity, node_resources, taint_toleration,
    WEIGHT_BALANCED_ALLOCATION, WEIGHT_NODE_AFFINITY, WEIGHT_NODE_RESOURCES_FIT,
    WEIGHT_POD_TOPOLOGY_SPREAD, WEIGHT_TAINT_TOLERATION,
};
use crate::pod_info::PodInfo;

/// Below this many nodes every node is scored.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("no nodes available to schedule pods")]
    NoNodes,
    #[error("{}", .0.message())]
    Unschedulable(FitError),
}

#[derive(Debug)]
pub struct Algorithm {
    /// 0 = adaptive (50% minus 1% per 125 nodes, at least 5%), as upstream.
    percentage_of_nodes_to_score: u32,
    next_start: usize,
}

impl Algorithm {
    pub fn new(percentage_of_nodes_to_score: u32) -> Self {
        Algorithm {
            percentage_of_nodes_to_score,
            next_start: 0,
        }
    }

    /// Upstream's numFeasibleNodesToFind.
    pub fn num_feasible_nodes_to_find(&self, all: usize) -> usize {
        if all < MIN_FEASIBLE_NODES_TO_FIND {
            return all;
        }
        let mut pct = self.percentage_of_nodes_to_score as usize;
        if pct == 0 {
            pct = 50usize
                .saturating_sub(all / 125)
                .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
        }
        let n = all * pct.min(100) / 100;
        n.max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// The node for `pod`, or why there is none.
    pub fn schedule(
        &mut self,
        cache: &Cache,
        pod: &PodInfo,
        spread: Option<&SpreadSelector>,
    ) -> Result<String, ScheduleError> {
        let all = cache.num_nodes();
        if all == 0 {
            return Err(ScheduleError::NoNodes);
        }
        let to_find = self.num_feasible_nodes_to_find(all);
        let nodes = cache.nodes();
        let len = nodes.len();
        let start = self.next_start % len;
        let mut feasible: Vec<(&NodeView, &NodeState)> = Vec::with_capacity(to_find.min(all));
        let mut fit_error = FitError::new(all, pod.preemption_never);
        let mut visited = 0;
        for offset in 0..len {
            if feasible.len() >= to_find {
                break;
            }
            visited = offset + 1;
            let state = &nodes[(start + offset) % len];
            let Some(view) = state.view.as_deref() else {
                continue;
            };
            match plugins::filter(pod, view, state) {
                Ok(()) => feasible.push((view, state)),
                Err(rejection) => fit_error.add(rejection),
            }
        }
        self.next_start = (start + visited) % len;
        match feasible.len() {
            0 => Err(ScheduleError::Unschedulable(fit_error)),
            1 => Ok(feasible[0].0.name.clone()),
            _ => {
                let scores = score(pod, spread, &feasible, nodes);
                Ok(feasible[select(&scores)].0.name.clone())
            }
        }
    }
}

/// Weighted total of the default profile's scores for each feasible node.
fn score(
    pod: &PodInfo,
    spread: Option<&SpreadSelector>,
    feasible: &[(&NodeView, &NodeState)],
    all: &[NodeState],
) -> Vec<i64> {
    let mut total: Vec<i64> = feasible
        .iter()
        .map(|(v, s)| WEIGHT_NODE_RESOURCES_FIT * node_resources::least_allocated(pod, v, s))
        .collect();
    let mut add = |scores: &[i64], weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += weight * s;
        }
    };
    if pod.requests.milli_cpu != 0 || pod.requests.memory != 0 {
        let balanced: Vec<i64> = feasible
            .iter()
            .map(|(v, s)| node_resources::balanced_allocation(pod, v, s).unwrap_or(0))
            .collect();
        add(&balanced, WEIGHT_BALANCED_ALLOCATION);
    }
    let mut taints: Vec<i64> = feasible
        .iter()
        .map(|(v, _)| taint_toleration::score(pod, v))
        .collect();
    default_normalize(&mut taints, true);
    add(&taints, WEIGHT_TAINT_TOLERATION);
    if !pod.preferred_terms.is_empty() {
        let mut affinity: Vec<i64> = feasible
            .iter()
            .map(|(v, _)| node_affinity::score(pod, v))
            .collect();
        default_normalize(&mut affinity, false);
        add(&affinity, WEIGHT_NODE_AFFINITY);
    }
    if let Some(selector) = spread {
        let everywhere = all.iter().filter_map(|s| s.view.as_deref().map(|v| (v, s)));
        let mut spread_scores = pod_topology_spread::scores(selector, pod, feasible, everywhere);
        pod_topology_spread::normalize(&mut spread_scores);
        add(&spread_scores, WEIGHT_POD_TOPOLOGY_SPREAD);
    }
    total
}

/// The index of a highest score; among equals, each is equally likely
/// (reservoir sampling, as upstream's selectHost).
fn select(scores: &[i64]) -> usize {
    let mut rng = rand::rng();
    let mut best = 0;
    let mut ties = 0u32;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;
    use k8s_openapi::api::core::v1::Pod;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn view(name: &str, cpu: i64) -> NodeView {
        NodeView {
            name: name.into(),
            labels: BTreeMap::from([("kubernetes.io/hostname".to_string(), name.to_string())]),
            unschedulable: false,
            taints: vec![],
            allocatable: Resources {
                milli_cpu: cpu,
                memory: 8 << 30,
                ..Default::default()
            },
            allowed_pods: 110,
        }
    }

    fn pod(name: &str, cpu: i64, labels: &[(&str, &str)]) -> PodInfo {
        let mut p = PodInfo::from_pod(&Pod::default());
        p.namespace = "ns".into();
        p.name = name.into();
        p.requests.milli_cpu = cpu;
        p.non_zero.milli_cpu = cpu;
        p.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p
    }

    #[test]
    fn adaptive_percentage_as_upstream() {
        let a = Algorithm::new(0);
        assert_eq!(a.num_feasible_nodes_to_find(50), 50);
        assert_eq!(a.num_feasible_nodes_to_find(100), 100);
        assert_eq!(a.num_feasible_nodes_to_find(1000), 420);
        assert_eq!(a.num_feasible_nodes_to_find(5000), 500);
        assert_eq!(a.num_feasible_nodes_to_find(10000), 500);
        assert_eq!(Algorithm::new(100).num_feasible_nodes_to_find(1000), 1000);
    }

    #[test]
    fn picks_the_least_allocated_node() {
        let mut cache = Cache::default();
        cache.set_node(view("small", 1000));
        cache.set_node(view("big", 8000));
        let mut a = Algorithm::new(0);
        for _ in 0..5 {
            assert_eq!(
                a.schedule(&cache, &pod("p", 500, &[]), None).unwrap(),
                "big"
            );
        }
    }

    #[test]
    fn reports_every_node_when_nothing_fits() {
        let mut cache = Cache::default();
        cache.set_node(view("a", 1000));
        cache.set_node(view("b", 1000));
        let mut a = Algorithm::new(0);
        let err = a.schedule(&cache, &pod("p", 2000, &[]), None).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("0/2 nodes are available: 2 Insufficient cpu."));
    }

    #[test]
    fn spreads_siblings_across_nodes() {
        let mut cache = Cache::default();
        for n in ["a", "b", "c"] {
            cache.set_node(view(n, 100_000));
        }
        let selector = SpreadSelector {
            namespace: "ns".into(),
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
        };
        let mut a = Algorithm::new(0);
        for i in 0..30 {
            let p = pod(&format!("web-{i}"), 10, &[("app", "web")]);
            let node = a.schedule(&cache, &p, Some(&selector)).unwrap();
            cache.assume(Arc::new(p), &node);
        }
        for n in ["a", "b", "c"] {
            assert_eq!(cache.node(n).unwrap().pod_count(), 10, "node {n}");
        }
    }
}
