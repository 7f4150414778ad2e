//! `describe node`: conditions, addresses, capacity, system info, the pods on the
//! node with their requests and limits, and the node's Lease.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{annotations_multiline, events, labels_multiline, time, Writer};
use crate::output::age_since;

/// The node's Lease, or the error text of fetching it.
pub type LeaseLookup = Result<Lease, String>;

pub fn describe_node(
    node: &Node,
    pods: &[Pod],
    lease: LeaseLookup,
    node_events: Option<&[Event]>,
) -> String {
    let mut w = Writer::default();
    let meta = &node.metadata;
    let spec = node.spec.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    let roles = roles(meta.labels.as_ref());
    w.write(
        0,
        &format!(
            "Roles:\t{}\n",
            if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            }
        ),
    );
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            time(meta.creation_timestamp.as_ref())
        ),
    );
    w.write(0, "Taints:\t");
    let mut taints = spec.taints.clone().unwrap_or_default();
    if taints.is_empty() {
        w.write(0, "<none>\n");
    } else {
        taints.sort_by(|a, b| (&a.effect, &a.key).cmp(&(&b.effect, &b.key)));
        for (i, t) in taints.iter().enumerate() {
            if i > 0 {
                w.write(0, "\t");
            }
            match t.value.as_ref().filter(|v| !v.is_empty()) {
                Some(v) => w.write(0, &format!("{}={v}:{}\n", t.key, t.effect)),
                None => w.write(0, &format!("{}:{}\n", t.key, t.effect)),
            }
        }
    }
    w.write(
        0,
        &format!("Unschedulable:\t{}\n", spec.unschedulable.unwrap_or(false)),
    );
    match lease {
        Ok(lease) => {
            let s = lease.spec.unwrap_or_default();
            w.write(0, "Lease:\n");
            w.write(
                1,
                &format!(
                    "HolderIdentity:\t{}\n",
                    s.holder_identity.unwrap_or_else(|| "<unset>".into())
                ),
            );
            let t = |v: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>| match v {
                Some(m) => crate::output::rfc1123z(Some(&m.0.to_string())),
                None => "<unset>".into(),
            };
            w.write(1, &format!("AcquireTime:\t{}\n", t(s.acquire_time)));
            w.write(1, &format!("RenewTime:\t{}\n", t(s.renew_time)));
        }
        Err(e) => w.write(0, &format!("Lease:\tFailed to get lease: {e}\n")),
    }
    if let Some(conditions) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        w.write(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        w.write(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conditions {
            w.write(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    c.type_,
                    c.status,
                    time(c.last_heartbeat_time.as_ref()),
                    time(c.last_transition_time.as_ref()),
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                ),
            );
        }
    }
    w.write(0, "Addresses:\n");
    for a in status.addresses.iter().flatten() {
        w.write(1, &format!("{}:\t{}\n", a.type_, a.address));
    }
    for (title, list) in [
        ("Capacity", &status.capacity),
        ("Allocatable", &status.allocatable),
    ] {
        if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
            w.write(0, &format!("{title}:\n"));
            for (name, q) in list {
                w.write(0, &format!("  {name}:\t{}\n", q.0));
            }
        }
    }
    let info = status.node_info.clone().unwrap_or_default();
    w.write(0, "System Info:\n");
    for (label, value) in [
        ("Machine ID", &info.machine_id),
        ("System UUID", &info.system_uuid),
        ("Boot ID", &info.boot_id),
        ("Kernel Version", &info.kernel_version),
        ("OS Image", &info.os_image),
        ("Operating System", &info.operating_system),
        ("Architecture", &info.architecture),
        ("Container Runtime Version", &info.container_runtime_version),
        ("Kubelet Version", &info.kubelet_version),
        ("Kube-Proxy Version", &info.kube_proxy_version),
    ] {
        w.write(0, &format!("  {label}:\t{value}\n"));
    }
    if let Some(cidr) = spec.pod_cidr.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("PodCIDR:\t{cidr}\n"));
    }
    if let Some(cidrs) = spec.pod_cidrs.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if let Some(p) = spec.provider_id.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("ProviderID:\t{p}\n"));
    }
    describe_node_resources(&mut w, node, pods);
    events(&mut w, node_events);
    w.finish()
}

fn roles(labels: Option<&BTreeMap<String, String>>) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.push(v.clone());
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

fn describe_node_resources(w: &mut Writer, node: &Node, pods: &[Pod]) {
    w.write(
        0,
        &format!("Non-terminated Pods:\t({} in total)\n", pods.len()),
    );
    w.write(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    w.write(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let status = node.status.clone().unwrap_or_default();
    let allocatable = status
        .allocatable
        .filter(|a| !a.is_empty())
        .or(status.capacity)
        .unwrap_or_default();
    let alloc = |name: &str| allocatable.get(name).map(quantity_value).unwrap_or(0.0);
    let pct = |v: f64, total: f64| {
        if total > 0.0 {
            (v / total * 100.0) as i64
        } else {
            0
        }
    };
    let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for pod in pods {
        let (req, lim) = pod_requests_and_limits(pod);
        for (name, v) in &req {
            totals.entry(name.clone()).or_default().0 += v;
        }
        for (name, v) in &lim {
            totals.entry(name.clone()).or_default().1 += v;
        }
        let get = |m: &BTreeMap<String, f64>, n: &str| m.get(n).copied().unwrap_or(0.0);
        w.write(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or(""),
                format_quantity("cpu", get(&req, "cpu")),
                pct(get(&req, "cpu"), alloc("cpu")),
                format_quantity("cpu", get(&lim, "cpu")),
                pct(get(&lim, "cpu"), alloc("cpu")),
                format_quantity("memory", get(&req, "memory")),
                pct(get(&req, "memory"), alloc("memory")),
                format_quantity("memory", get(&lim, "memory")),
                pct(get(&lim, "memory"), alloc("memory")),
                age_since(
                    pod.metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .as_deref()
                )
            ),
        );
    }
    w.write(
        0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    w.write(1, "Resource\tRequests\tLimits\n");
    w.write(1, "--------\t--------\t------\n");
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let (req, lim) = totals.get(name).copied().unwrap_or_default();
        w.write(
            1,
            &format!(
                "{name}\t{} ({}%)\t{} ({}%)\n",
                format_quantity(name, req),
                pct(req, alloc(name)),
                format_quantity(name, lim),
                pct(lim, alloc(name))
            ),
        );
    }
}

/// Requests and limits of a pod: the sum over its containers, or the largest init
/// container's when that is more (upstream's PodRequests), in base units (cores, bytes).
fn pod_requests_and_limits(pod: &Pod) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut req = BTreeMap::new();
    let mut lim = BTreeMap::new();
    let Some(spec) = &pod.spec else {
        return (req, lim);
    };
    for c in &spec.containers {
        let r = c.resources.clone().unwrap_or_default();
        for (n, q) in r.requests.unwrap_or_default() {
            *req.entry(n).or_insert(0.0) += quantity_value(&q);
        }
        for (n, q) in r.limits.unwrap_or_default() {
            *lim.entry(n).or_insert(0.0) += quantity_value(&q);
        }
    }
    for c in spec.init_containers.iter().flatten() {
        let r = c.resources.clone().unwrap_or_default();
        for (n, q) in r.requests.unwrap_or_default() {
            let e = req.entry(n).or_insert(0.0);
            *e = e.max(quantity_value(&q));
        }
        for (n, q) in r.limits.unwrap_or_default() {
            let e = lim.entry(n).or_insert(0.0);
            *e = e.max(quantity_value(&q));
        }
    }
    (req, lim)
}

/// A quantity in base units: `100m` = 0.1, `1Ki` = 1024, `1k` = 1000, `1e3` = 1000.
pub fn quantity_value(q: &Quantity) -> f64 {
    component_base::quantity::to_f64(&q.0).unwrap_or(0.0)
}

/// A total as kubectl prints it: CPU in cores or millicores, memory in the largest
/// binary unit that divides it, else bytes.
fn format_quantity(name: &str, v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if name == "cpu" {
        let milli = (v * 1000.0).round() as i64;
        return if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
    }
    let bytes = v.round() as i64;
    for (suffix, unit) in [
        ("Ti", 1i64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity_value(&Quantity("100m".into())), 0.1);
        assert_eq!(
            quantity_value(&Quantity("2Gi".into())),
            2.0 * 1024.0 * 1024.0 * 1024.0
        );
        assert_eq!(format_quantity("cpu", 0.25), "250m");
        assert_eq!(format_quantity("cpu", 2.0), "2");
        assert_eq!(format_quantity("memory", 128.0 * 1024.0 * 1024.0), "128Mi");
    }
}
