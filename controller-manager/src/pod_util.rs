//! Small facts about pods and object metadata that several controllers use
//! (upstream's pkg/api/v1/pod and pkg/controller helpers).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Not finished and not being deleted (upstream's IsPodActive).
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

pub fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// Ready for at least `min_ready_seconds` (upstream's IsPodAvailable).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    let Some(ready) = condition(pod, "Ready").filter(|c| c.status == "True") else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    match &ready.last_transition_time {
        Some(t) => t.0.as_second() + i64::from(min_ready_seconds) < now.as_second(),
        None => false,
    }
}

pub fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

/// The owner reference with controller=true, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// An equality-based selector (a map, as RCs and Services have) matches
/// labels when every pair is present. An empty selector matches nothing here:
/// the apiserver never stores one for these kinds.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if selector.is_empty() {
        return false;
    }
    let Some(labels) = labels else { return false };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// "namespace/name" of a pod (the key expectations and queues use).
pub fn pod_key(pod: &Pod) -> String {
    crate::informer::key_of(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn activity_and_readiness() {
        let p = pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
        );
        assert!(is_active(&p));
        assert!(is_ready(&p));
        let now: Timestamp = "2024-01-01T00:00:05Z".parse().unwrap();
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 4, now));
        assert!(!is_available(&p, 5, now));
        let done = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}}));
        assert!(!is_active(&done));
        let deleting =
            pod(json!({"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"}}));
        assert!(!is_active(&deleting));
    }

    #[test]
    fn map_selectors() {
        let sel: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "x".to_string()),
        ]
        .into();
        assert!(selector_matches(&sel, Some(&labels)));
        assert!(!selector_matches(&BTreeMap::new(), Some(&labels)));
        assert!(!selector_matches(&sel, None));
    }
}
