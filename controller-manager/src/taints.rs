//! Taints and tolerations (upstream's v1helper.TolerationsTolerateTaint and
//! controller utilities that swap a node's controller taints).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::{is_conflict, is_not_found};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const NO_EXECUTE: &str = "NoExecute";
pub const NO_SCHEDULE: &str = "NoSchedule";

pub fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        value: None,
        time_added: None,
    }
}

/// Same key and effect (how controllers recognise their taints).
pub fn same(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

pub fn node_has(node: &Node, t: &Taint) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|x| same(x, t)))
}

/// Upstream's Toleration.ToleratesTaint.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect = tol.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    let operator = tol.operator.as_deref().unwrap_or("Equal");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match operator {
        // An empty key with Exists matches every taint.
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// Whether every taint is tolerated, and the tolerations used
/// (upstream's GetMatchingTolerations).
pub fn matching_tolerations<'a>(
    taints: &[Taint],
    tolerations: &'a [Toleration],
) -> (bool, Vec<&'a Toleration>) {
    let mut used = Vec::new();
    for t in taints {
        match tolerations.iter().find(|tol| tolerates(tol, t)) {
            Some(tol) => used.push(tol),
            None => return (false, Vec::new()),
        }
    }
    (true, used)
}

/// Add `add` (stamped with the time, replacing a taint with the same key
/// and effect) and remove `remove` from a node's taints, on a fresh read,
/// with the read's resourceVersion as precondition (retried on conflict).
/// Returns whether the node changed.
pub async fn swap_node_taints(
    client: &Client,
    node_name: &str,
    add: &[Taint],
    remove: &[Taint],
) -> Result<bool, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = match api.get(node_name).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let mut taints: Vec<Taint> = current
            .iter()
            .filter(|t| !remove.iter().any(|r| same(r, t)))
            .cloned()
            .collect();
        for a in add {
            let existing = taints.iter().position(|t| same(t, a));
            match existing {
                Some(i) if taints[i].value == a.value => {}
                Some(i) => taints[i] = stamped(a),
                None => taints.push(stamped(a)),
            }
        }
        if taints == current {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        match api
            .patch(node_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) && attempt < 5 => {}
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

fn stamped(t: &Taint) -> Taint {
    let mut t = t.clone();
    if t.effect == NO_EXECUTE {
        t.time_added = Some(Time(Timestamp::now()));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tol(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn toleration_matching_as_upstream() {
        let unreachable = taint(UNREACHABLE, NO_EXECUTE);
        assert!(tolerates(
            &tol(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"})),
            &unreachable
        ));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &unreachable));
        assert!(!tolerates(
            &tol(json!({"key": NOT_READY, "operator": "Exists"})),
            &unreachable
        ));
        assert!(!tolerates(
            &tol(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"})),
            &unreachable
        ));
        let mut valued = taint("dedicated", NO_EXECUTE);
        valued.value = Some("db".into());
        assert!(tolerates(
            &tol(json!({"key": "dedicated", "value": "db"})),
            &valued
        ));
        assert!(!tolerates(
            &tol(json!({"key": "dedicated", "value": "web"})),
            &valued
        ));

        let tols = vec![tol(
            json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}),
        )];
        let (all, used) = matching_tolerations(std::slice::from_ref(&unreachable), &tols);
        assert!(all);
        assert_eq!(used[0].toleration_seconds, Some(2));
        let (all, _) = matching_tolerations(&[unreachable, taint(NOT_READY, NO_EXECUTE)], &tols);
        assert!(!all);
    }
}
