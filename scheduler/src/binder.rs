//! The API writes of a scheduling decision: POST pods/NAME/binding, and the
//! PodScheduled=False condition of a pod that fits nowhere.

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// Bind the pod (its uid as a precondition) to `node`.
pub async fn bind(
    client: Client,
    namespace: &str,
    name: &str,
    uid: &str,
    node: &str,
) -> Result<(), kube::Error> {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid.to_string()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    };
    Api::<Pod>::namespaced(client, namespace)
        .create_subresource::<_, serde_json::Value>(
            "binding",
            name,
            &PostParams::default(),
            &binding,
        )
        .await
        .map(|_| ())
}

/// Set condition PodScheduled=False with `reason` and `message` (a strategic
/// merge on the conditions list, keyed by type). The transition time moves
/// only when the status changes.
pub async fn set_unschedulable(
    client: Client,
    namespace: &str,
    name: &str,
    reason: &str,
    message: &str,
    status_changes: bool,
) -> Result<(), kube::Error> {
    let mut condition = json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
    });
    if status_changes {
        condition["lastTransitionTime"] = json!(Time(Timestamp::now()));
    }
    let patch = json!({"status": {"conditions": [condition]}});
    Api::<Pod>::namespaced(client, namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map(|_| ())
}
