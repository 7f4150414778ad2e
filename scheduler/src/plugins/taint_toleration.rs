//! TaintToleration: a node's NoSchedule and NoExecute taints keep off every
//! pod that does not tolerate them; PreferNoSchedule taints only lower the
//! node's score.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::Rejection;
use crate::node_info::NodeView;
use crate::pod_info::PodInfo;

/// Upstream's Toleration.ToleratesTaint.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

pub fn filter(pod: &PodInfo, node: &NodeView) -> Result<(), Rejection> {
    let untolerated = node.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t)
    });
    match untolerated {
        None => Ok(()),
        Some(t) => Err(Rejection::unresolvable(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        ))),
    }
}

/// Raw score: how many PreferNoSchedule taints the pod does not tolerate
/// (normalised in reverse: fewer is better).
pub fn score(pod: &PodInfo, node: &NodeView) -> i64 {
    node.taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| {
            !pod.tolerations.iter().any(|tol| {
                let effect = tol.effect.as_deref().unwrap_or("");
                (effect.is_empty() || effect == "PreferNoSchedule") && tolerates(tol, t)
            })
        })
        .count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: Some(value.into()),
            effect: Some(effect.into()),
            ..Default::default()
        }
    }

    #[test]
    fn toleration_matching_as_upstream() {
        let t = taint("dedicated", "gpu", "NoSchedule");
        assert!(tolerates(
            &tol("dedicated", "Equal", "gpu", "NoSchedule"),
            &t
        ));
        assert!(tolerates(&tol("dedicated", "Equal", "gpu", ""), &t));
        assert!(tolerates(&tol("dedicated", "Exists", "", ""), &t));
        assert!(tolerates(&tol("", "Exists", "", ""), &t));
        assert!(!tolerates(&tol("dedicated", "Equal", "cpu", ""), &t));
        assert!(!tolerates(
            &tol("dedicated", "Equal", "gpu", "NoExecute"),
            &t
        ));
        assert!(!tolerates(&tol("other", "Exists", "", ""), &t));
    }
}
