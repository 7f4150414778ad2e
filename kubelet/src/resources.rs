//! Container resources -> Linux cgroup settings, as upstream's
//! pkg/kubelet/cm/helpers_linux.go and kuberuntime's
//! container_linux.go compute them (cgroup v1, cfs period 100ms).

use k8s_cri::v1::LinuxContainerResources;
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};

const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262144;
const SHARES_PER_CPU: i64 = 1024;
const MILLI_CPU_TO_CPU: i64 = 1000;
pub const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1000;

/// The named quantity of a requests or limits map, through `convert`.
fn quantity(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    name: &str,
    convert: fn(&str) -> Result<i64, component_base::quantity::InvalidQuantity>,
) -> Option<i64> {
    map.and_then(|m| m.get(name))
        .and_then(|q| convert(&q.0).ok())
}

pub fn milli_cpu(r: Option<&ResourceRequirements>, limit: bool) -> Option<i64> {
    let r = r?;
    let map = if limit {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    };
    quantity(map, "cpu", component_base::quantity::milli_value)
}

pub fn memory_bytes(r: Option<&ResourceRequirements>, limit: bool) -> Option<i64> {
    let r = r?;
    let map = if limit {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    };
    quantity(map, "memory", component_base::quantity::value)
}

/// cpu.shares for a cpu request in millicores.
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli == 0 {
        return MIN_SHARES;
    }
    (milli * SHARES_PER_CPU / MILLI_CPU_TO_CPU).clamp(MIN_SHARES, MAX_SHARES)
}

/// cpu.cfs_quota_us for a cpu limit in millicores.
pub fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli == 0 {
        return 0;
    }
    (milli * period / MILLI_CPU_TO_CPU).max(MIN_QUOTA)
}

/// The pod's QoS class, as upstream's qos.GetPodQOS.
pub fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod.spec.iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.as_ref();
        for res in ["cpu", "memory"] {
            // Milli-units compare both resources exactly (as upstream's QoS does).
            let milli = component_base::quantity::milli_value;
            let req = r.and_then(|r| quantity(r.requests.as_ref(), res, milli));
            let lim = r.and_then(|r| quantity(r.limits.as_ref(), res, milli));
            if req.is_some_and(|v| v > 0) || lim.is_some_and(|v| v > 0) {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// oom_score_adj by QoS (upstream's pkg/kubelet/qos/policy.go).
fn oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i64) -> i64 {
    match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let request = memory_bytes(container.resources.as_ref(), false).unwrap_or(0);
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * request) / memory_capacity;
            adj.clamp(3, 999)
        }
    }
}

/// The container's Linux resources.
pub fn linux_resources(
    pod: &Pod,
    container: &Container,
    memory_capacity: i64,
) -> LinuxContainerResources {
    let r = container.resources.as_ref();
    let cpu_request = milli_cpu(r, false);
    let cpu_limit = milli_cpu(r, true);
    // A limit without a request means request = limit (apiserver defaulting
    // does this too; be safe for objects that skipped it).
    let shares = milli_cpu_to_shares(cpu_request.or(cpu_limit).unwrap_or(0));
    let mut out = LinuxContainerResources {
        cpu_shares: shares,
        oom_score_adj: oom_score_adj(pod, container, memory_capacity),
        ..Default::default()
    };
    if let Some(limit) = cpu_limit.filter(|l| *l > 0) {
        out.cpu_period = QUOTA_PERIOD;
        out.cpu_quota = milli_cpu_to_quota(limit, QUOTA_PERIOD);
    }
    if let Some(mem) = memory_bytes(r, true).filter(|m| *m > 0) {
        out.memory_limit_in_bytes = mem;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cpu_conversions_match_upstream() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(500), 512);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_quota(500, QUOTA_PERIOD), 50_000);
        assert_eq!(milli_cpu_to_quota(1, QUOTA_PERIOD), 1000);
    }

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}
        }))
        .unwrap()
    }

    #[test]
    fn limits_become_cgroup_values() {
        let p = pod(json!({"limits": {"cpu": "250m", "memory": "32Mi"}}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let r = linux_resources(&p, c, 1 << 30);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.cpu_quota, 25_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 32 << 20);
        assert_eq!(qos_class(&p), "Guaranteed");
    }

    #[test]
    fn best_effort_gets_min_shares() {
        let p = pod(json!({}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let r = linux_resources(&p, c, 1 << 30);
        assert_eq!(r.cpu_shares, 2);
        assert_eq!(r.cpu_quota, 0);
        assert_eq!(r.memory_limit_in_bytes, 0);
        assert_eq!(r.oom_score_adj, 1000);
        assert_eq!(qos_class(&p), "BestEffort");
        let b = pod(json!({"requests": {"cpu": "100m"}}));
        assert_eq!(qos_class(&b), "Burstable");
    }
}
