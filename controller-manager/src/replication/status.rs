//! A ReplicationController's status from its pods, as upstream's
//! calculateStatus: replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas (ready for minReadySeconds), observedGeneration and the
//! ReplicaFailure condition while creating or deleting pods fails.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Pod, ReplicationController, ReplicationControllerCondition, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pod_util::{is_available, is_ready};

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What went wrong while creating or deleting pods in this sync.
pub struct ManageFailure {
    /// "FailedCreate" or "FailedDelete".
    pub reason: &'static str,
    pub message: String,
}

pub fn calculate(
    rc: &ReplicationController,
    pods: &[Arc<Pod>],
    failure: Option<&ManageFailure>,
    now: Timestamp,
) -> ReplicationControllerStatus {
    let spec = rc.spec.clone().unwrap_or_default();
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let old = rc.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicationControllerCondition {
            type_: REPLICA_FAILURE.to_string(),
            status: "True".to_string(),
            reason: Some(f.reason.to_string()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(now)),
        }),
        None if has_failure => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    ReplicationControllerStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: rc.metadata.generation,
        conditions: if conditions.is_empty() {
            None
        } else {
            Some(conditions)
        },
    }
}

/// Whether writing `new` would change anything (upstream compares the
/// counts, the observed generation and the conditions).
pub fn differs(
    old: Option<&ReplicationControllerStatus>,
    new: &ReplicationControllerStatus,
) -> bool {
    let Some(old) = old else { return true };
    let n = |v: Option<i32>| v.unwrap_or(0);
    old.replicas != new.replicas
        || n(old.fully_labeled_replicas) != n(new.fully_labeled_replicas)
        || n(old.ready_replicas) != n(new.ready_replicas)
        || n(old.available_replicas) != n(new.available_replicas)
        || old.observed_generation != new.observed_generation
        || old.conditions.clone().unwrap_or_default() != new.conditions.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_labels_readiness_and_availability() {
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": 3, "minReadySeconds": 10, "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}}}
        }))
        .unwrap();
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        let pod = |labels: serde_json::Value, ready_at: Option<&str>| -> Arc<Pod> {
            let mut v = json!({"metadata": {"name": "p", "labels": labels}});
            if let Some(t) = ready_at {
                v["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]});
            }
            Arc::new(serde_json::from_value(v).unwrap())
        };
        let pods = vec![
            pod(
                json!({"app": "web", "tier": "front"}),
                Some("2024-01-01T00:00:00Z"),
            ),
            pod(json!({"app": "web"}), Some("2024-01-01T00:00:55Z")),
            pod(json!({"app": "web", "tier": "front"}), None),
        ];
        let s = calculate(&rc, &pods, None, now);
        assert_eq!(s.replicas, 3);
        assert_eq!(s.fully_labeled_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(3));
        assert!(s.conditions.is_none());
        let failed = calculate(
            &rc,
            &pods,
            Some(&ManageFailure {
                reason: "FailedCreate",
                message: "quota".into(),
            }),
            now,
        );
        let c = &failed.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.reason.as_deref()),
            ("ReplicaFailure", Some("FailedCreate"))
        );
        assert!(differs(Some(&s), &failed));
        assert!(!differs(Some(&s), &s.clone()));
    }
}
