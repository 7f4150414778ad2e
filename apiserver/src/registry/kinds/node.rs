//! core/v1 Node: allocatable default, validation, field selectors and the
//! `kubectl get nodes` table.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, NodeStatus, Taint};
use serde_json::Value;

use super::print::column;
use super::quantity::{parse_quantity, QUANTITY_FORMAT_ERROR};
use super::validation::{
    invalid_each, is_label_value, is_qualified_name, validate_cidr, validate_object_meta, NameRule,
    Path, IS_NEGATIVE,
};
use crate::strategy::{Column, FieldError, KindStrategy};

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const LEGACY_ROLE_LABEL: &str = "kubernetes.io/role";
const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

pub struct NodeStrategy;

impl KindStrategy for NodeStrategy {
    type Object = Node;

    fn default(&self, node: &mut Node) {
        if let Some(status) = node.status.as_mut() {
            if status.allocatable.is_none() {
                status.allocatable.clone_from(&status.capacity);
            }
        }
    }

    fn validate(&self, node: &Node) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&node.metadata, false, NameRule::Dns1123Subdomain);
        let spec = node.spec.clone().unwrap_or_default();
        // Upstream reports taints under metadata (sic).
        errs.extend(validate_taints(
            spec.taints.as_deref().unwrap_or_default(),
            &Path::new("metadata").child("taints"),
        ));
        errs.extend(validate_resources(node.status.as_ref()));
        errs.extend(validate_pod_cidrs(
            spec.pod_cidrs.as_deref().unwrap_or_default(),
        ));
        errs
    }

    fn validate_update(&self, new: &Node, old: &Node) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let addresses = new
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_deref())
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        for (i, address) in addresses.iter().enumerate() {
            if !seen.insert((address.type_.as_str(), address.address.as_str())) {
                errs.push(FieldError::duplicate(
                    &Path::new("status").child("addresses").index(i),
                    address,
                ));
            }
        }
        let (n, o) = (
            new.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        let old_cidrs = o.pod_cidrs.unwrap_or_default();
        if !old_cidrs.is_empty()
            && n.pod_cidrs.as_deref().unwrap_or_default() != old_cidrs.as_slice()
        {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("podCIDRs"),
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_provider = o.provider_id.unwrap_or_default();
        if !old_provider.is_empty() && n.provider_id.as_deref() != Some(old_provider.as_str()) {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("providerID"),
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        if n.external_id != o.external_id {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("externalID"),
                "may not be updated",
            ));
        }
        errs
    }

    fn field_attrs(&self, node: &Node) -> Vec<(&'static str, String)> {
        let unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        vec![("spec.unschedulable", unschedulable.to_string())]
    }

    fn columns(&self) -> Vec<Column> {
        const ADDRESSES_DOC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
        vec![
            Column::name(),
            column("Status", "string", 0, "The status of the node"),
            column("Roles", "string", 0, "The roles of the node"),
            Column::age(),
            column("Version", "string", 0, "Kubelet Version reported by the node."),
            column("Internal-IP", "string", 1, ADDRESSES_DOC),
            column("External-IP", "string", 1, ADDRESSES_DOC),
            column("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            column("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            column("Container-Runtime", "string", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ]
    }

    fn cells(&self, node: &Node, age: &str) -> Vec<Value> {
        let status = node.status.clone().unwrap_or_default();
        let info = status.node_info.clone().unwrap_or_default();
        let unknown = |v: String| {
            if v.is_empty() {
                "<unknown>".to_string()
            } else {
                v
            }
        };
        vec![
            Value::from(node.metadata.name.clone().unwrap_or_default()),
            Value::from(node_status(node)),
            Value::from(roles(node)),
            Value::from(age),
            Value::from(info.kubelet_version.clone()),
            Value::from(address_of(&status, "InternalIP")),
            Value::from(address_of(&status, "ExternalIP")),
            Value::from(unknown(info.os_image)),
            Value::from(unknown(info.kernel_version)),
            Value::from(unknown(info.container_runtime_version)),
        ]
    }
}

fn validate_taints(taints: &[Taint], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut unique = BTreeSet::new();
    for (i, taint) in taints.iter().enumerate() {
        let p = path.index(i);
        errs.extend(invalid_each(
            &p.child("key"),
            &taint.key,
            is_qualified_name(&taint.key),
        ));
        let value = taint.value.as_deref().unwrap_or("");
        let msgs = is_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &p.child("value"),
                value,
                msgs.join(";"),
            ));
        }
        match taint.effect.as_str() {
            "" => errs.push(FieldError::required(&p.child("effect"), "")),
            e if TAINT_EFFECTS.contains(&e) => {}
            e => errs.push(FieldError::not_supported(
                &p.child("effect"),
                e,
                &TAINT_EFFECTS,
            )),
        }
        if !unique.insert((taint.effect.as_str(), taint.key.as_str())) {
            let mut dup = FieldError::duplicate(&p, taint);
            dup.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(dup);
        }
    }
    errs
}

fn validate_resources(status: Option<&NodeStatus>) -> Vec<FieldError> {
    let Some(status) = status else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    for (field, list) in [
        ("capacity", &status.capacity),
        ("allocatable", &status.allocatable),
    ] {
        for (name, quantity) in list.iter().flatten() {
            let status_path = Path::new("status");
            let field_path = status_path.child(field);
            let p = field_path.child(name);
            match parse_quantity(&quantity.0) {
                None => errs.push(FieldError::invalid(&p, &quantity.0, QUANTITY_FORMAT_ERROR)),
                Some(v) if v < 0 => errs.push(FieldError::invalid(&p, &quantity.0, IS_NEGATIVE)),
                Some(_) => {}
            }
        }
    }
    errs
}

fn validate_pod_cidrs(cidrs: &[String]) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let path = spec_path.child("podCIDRs");
    let mut errs: Vec<FieldError> = cidrs
        .iter()
        .enumerate()
        .flat_map(|(i, c)| validate_cidr(&path.index(i), c))
        .collect();
    if cidrs.len() > 1 {
        let v6 = cidrs
            .iter()
            .filter(|c| {
                c.split('/')
                    .next()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_some_and(|ip| ip.is_ipv6())
            })
            .count();
        if cidrs.len() > 2 || v6 != 1 {
            errs.push(FieldError::invalid(
                &path,
                cidrs,
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(FieldError::duplicate(&path.index(i), c));
            }
        }
    }
    errs
}

/// "Ready", "NotReady" or "Unknown", plus ",SchedulingDisabled".
fn node_status(node: &Node) -> String {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().rev().find(|c| c.type_ == "Ready"));
    let mut status = match ready {
        Some(c) if c.status == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// Roles from node-role.kubernetes.io/<role> and kubernetes.io/role labels.
fn roles(node: &Node) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in node.metadata.labels.iter().flatten() {
        if let Some(role) = key
            .strip_prefix(ROLE_LABEL_PREFIX)
            .filter(|r| !r.is_empty())
        {
            roles.insert(role.to_string());
        } else if key == LEGACY_ROLE_LABEL && !value.is_empty() {
            roles.insert(value.clone());
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn address_of(status: &NodeStatus, type_: &str) -> String {
    status
        .addresses
        .iter()
        .flatten()
        .find(|a| a.type_ == type_)
        .map_or_else(|| "<none>".to_string(), |a| a.address.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: Value) -> Node {
        let mut n: Node = serde_json::from_value(value).unwrap();
        NodeStrategy.default(&mut n);
        n
    }

    fn ready_node() -> Value {
        json!({
            "metadata": {"name": "node-1", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"podCIDRs": ["10.244.1.0/24"]},
            "status": {
                "capacity": {"cpu": "2", "memory": "4Gi"},
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0",
                    "containerRuntimeVersion": "containerd://1.6.20", "architecture": "amd64", "bootID": "", "kubeProxyVersion": "",
                    "machineID": "", "operatingSystem": "linux", "systemUUID": ""}
            }
        })
    }

    #[test]
    fn allocatable_defaults_to_capacity() {
        let n = node(ready_node());
        assert_eq!(
            n.status.as_ref().unwrap().allocatable.as_ref().unwrap()["cpu"].0,
            "2"
        );
        assert!(NodeStrategy.validate(&n).is_empty());
    }

    #[test]
    fn nodes_are_cluster_scoped_and_taints_checked() {
        let mut v = ready_node();
        v["metadata"]["namespace"] = json!("default");
        v["spec"]["taints"] = json!([{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "Bogus"}]);
        let errs: Vec<String> = NodeStrategy
            .validate(&node(v))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs[0],
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        assert!(errs[1].starts_with("metadata.taints[1]: Duplicate value: "));
        assert!(errs[1].ends_with(": taints must be unique by key and effect pair"));
        assert_eq!(
            errs[2],
            "metadata.taints[2].effect: Unsupported value: \"Bogus\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
    }

    #[test]
    fn pod_cidrs_are_set_once() {
        let old = node(ready_node());
        let mut v = ready_node();
        v["spec"]["podCIDRs"] = json!(["10.244.2.0/24"]);
        let errs: Vec<String> = NodeStrategy
            .validate_update(&node(v), &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs, vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]);
    }

    #[test]
    fn table_row_and_field_attrs() {
        let mut v = ready_node();
        v["spec"]["unschedulable"] = json!(true);
        let n = node(v);
        assert_eq!(
            NodeStrategy.cells(&n, "3d"),
            vec![
                json!("node-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,worker"),
                json!("3d"),
                json!("v1.33.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0"),
                json!("containerd://1.6.20")
            ]
        );
        assert_eq!(
            NodeStrategy.field_attrs(&n),
            vec![("spec.unschedulable", "true".to_string())]
        );
        let bare = node(json!({"metadata": {"name": "n"}}));
        let cells = NodeStrategy.cells(&bare, "1s");
        assert_eq!(
            (cells[1].clone(), cells[2].clone(), cells[7].clone()),
            (json!("Unknown"), json!("<none>"), json!("<unknown>"))
        );
    }
}
