//! NodeResourcesFit (filter: requests against allocatable minus what the
//! node's pods already request; score: LeastAllocated) and
//! NodeResourcesBalancedAllocation (score: cpu and memory used alike).

use super::{Rejection, MAX_NODE_SCORE};
use crate::node_info::{NodeState, NodeView};
use crate::pod_info::PodInfo;

pub fn filter(pod: &PodInfo, view: &NodeView, node: &NodeState) -> Result<(), Rejection> {
    let mut reasons = Vec::new();
    if node.pod_count() + 1 > view.allowed_pods {
        reasons.push("Too many pods".into());
    }
    let want = &pod.requests;
    let have = &view.allocatable;
    let used = &node.requested;
    if want.milli_cpu > 0 && want.milli_cpu > have.milli_cpu - used.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if want.memory > 0 && want.memory > have.memory - used.memory {
        reasons.push("Insufficient memory".into());
    }
    if want.ephemeral_storage > 0
        && want.ephemeral_storage > have.ephemeral_storage - used.ephemeral_storage
    {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, amount) in &want.scalar {
        if *amount == 0 {
            continue;
        }
        let free = have.scalar.get(name).copied().unwrap_or(0)
            - used.scalar.get(name).copied().unwrap_or(0);
        if *amount > free {
            reasons.push(format!("Insufficient {name}").into());
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Rejection::resolvable(reasons))
    }
}

/// LeastAllocated over cpu and memory (weight 1 each), counting requests
/// with upstream's non-zero defaults: emptier nodes score higher.
pub fn least_allocated(pod: &PodInfo, view: &NodeView, node: &NodeState) -> i64 {
    let pairs = [
        (
            node.non_zero.milli_cpu + pod.non_zero.milli_cpu,
            view.allocatable.milli_cpu,
        ),
        (
            node.non_zero.memory + pod.non_zero.memory,
            view.allocatable.memory,
        ),
    ];
    let mut sum = 0;
    let mut weights = 0;
    for (requested, capacity) in pairs {
        if capacity == 0 {
            continue;
        }
        sum += if requested > capacity {
            0
        } else {
            (capacity - requested) * MAX_NODE_SCORE / capacity
        };
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        sum / weights
    }
}

/// BalancedAllocation over cpu and memory with the actual requests: nodes
/// whose cpu and memory fractions stay close score higher. None when the pod
/// requests neither (upstream skips the plugin for such pods).
pub fn balanced_allocation(pod: &PodInfo, view: &NodeView, node: &NodeState) -> Option<i64> {
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return None;
    }
    let pairs = [
        (
            node.requested.milli_cpu + pod.requests.milli_cpu,
            view.allocatable.milli_cpu,
        ),
        (
            node.requested.memory + pod.requests.memory,
            view.allocatable.memory,
        ),
    ];
    let fraction = |(req, cap): (i64, i64)| (cap != 0).then(|| (req as f64 / cap as f64).min(1.0));
    let std = match (fraction(pairs[0]), fraction(pairs[1])) {
        (Some(a), Some(b)) => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    Some(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{NonZero, Resources};

    fn view(cpu: i64, mem: i64, pods: i64) -> NodeView {
        NodeView {
            name: "n".into(),
            labels: Default::default(),
            unschedulable: false,
            taints: vec![],
            allocatable: Resources {
                milli_cpu: cpu,
                memory: mem,
                ..Default::default()
            },
            allowed_pods: pods,
        }
    }

    fn pod(cpu: i64, mem: i64) -> PodInfo {
        let pod = k8s_openapi::api::core::v1::Pod::default();
        let mut p = PodInfo::from_pod(&pod);
        p.requests = Resources {
            milli_cpu: cpu,
            memory: mem,
            ..Default::default()
        };
        p.non_zero = NonZero {
            milli_cpu: cpu,
            memory: mem,
        };
        p
    }

    #[test]
    fn fit_reasons_in_upstream_order() {
        let v = view(1000, 1000, 1);
        let mut n = NodeState::default();
        n.add_pod(std::sync::Arc::new(pod(600, 100)));
        let err = filter(&pod(500, 2000), &v, &n).unwrap_err();
        assert_eq!(
            err.reasons,
            ["Too many pods", "Insufficient cpu", "Insufficient memory"]
        );
        assert!(err.resolvable);
        assert!(filter(&pod(400, 900), &view(1000, 1000, 2), &n).is_ok());
    }

    #[test]
    fn scores_as_upstream() {
        // Node 4000m / 10000; pod 3000m / 5000: cpu (1000*100/4000)=25, mem 50 -> 37.
        let v = view(4000, 10000, 10);
        let n = NodeState::default();
        let p = pod(3000, 5000);
        assert_eq!(least_allocated(&p, &v, &n), 37);
        // fractions 0.75 and 0.5: std 0.125 -> 87.
        assert_eq!(balanced_allocation(&p, &v, &n), Some(87));
        assert_eq!(balanced_allocation(&pod(0, 0), &v, &n), None);
    }
}
