//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch, applied to the JSON form of an object as upstream's apiserver does
//! (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go).
//!
//! The result is the patched JSON; the caller decodes it into the typed object (which,
//! as upstream, is where unknown fields and wrong types are caught), then defaults and
//! validates it like an update.

pub mod merge_keys;
mod strategic;

use serde_json::Value;

/// Upstream's limit on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The kinds of PATCH body, named by the request's Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header value; parameters such as
    /// `; charset=utf-8` are ignored. `None` means 415 Unsupported Media Type.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        [
            PatchType::Json,
            PatchType::Merge,
            PatchType::StrategicMerge,
            PatchType::Apply,
        ]
        .into_iter()
        .find(|t| t.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The media type naming this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied. Each maps to the HTTP status upstream answers
/// with: see [`PatchError::status_code`].
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of the declared type (400).
    #[error("invalid patch: {0}")]
    InvalidPatch(String),
    /// A JSON patch with too many operations (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// A JSON patch `test` operation did not match (422).
    #[error("the test operation (index {index}) failed: the value at {path:?} does not match")]
    TestFailed { index: usize, path: String },
    /// A JSON patch operation names a path the document lacks (422).
    #[error(
        "{op} operation (index {index}) does not apply: the document is missing path {path:?}"
    )]
    PathNotFound {
        op: &'static str,
        index: usize,
        path: String,
    },
    /// A JSON patch operation failed otherwise (422).
    #[error("{op} operation (index {index}) does not apply: {reason}")]
    OperationFailed {
        op: &'static str,
        index: usize,
        reason: String,
    },
    /// A strategic merge patch that does not fit the object (400).
    #[error("{0}")]
    StrategicMerge(String),
    /// A strategic merge patch the object's lists cannot take (422).
    #[error("{0}")]
    Unprocessable(String),
    /// A patch type this server does not apply (415).
    #[error("{0} patches are not supported")]
    Unsupported(&'static str),
}

impl PatchError {
    /// The HTTP status code for the error's `metav1.Status`.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::InvalidPatch(_) | PatchError::StrategicMerge(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Unsupported(_) => 415,
            PatchError::TestFailed { .. }
            | PatchError::PathNotFound { .. }
            | PatchError::OperationFailed { .. }
            | PatchError::Unprocessable(_) => 422,
        }
    }
}

/// Applies `patch` of `patch_type` to `original`, the JSON form of an object of `kind`
/// (e.g. "Pod"; it picks the strategic merge keys). Never panics on bad input.
pub fn apply_patch(
    kind: &str,
    original: &Value,
    patch_type: PatchType,
    patch: &Value,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => apply_merge_patch(original, patch),
        PatchType::StrategicMerge => strategic::apply(kind, original, patch),
        PatchType::Apply => Err(PatchError::Unsupported(
            "server-side apply (application/apply-patch+yaml)",
        )),
    }
}

fn apply_json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_array() {
        return Err(PatchError::InvalidPatch(
            "a JSON patch must be a list of operations".into(),
        ));
    }
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::InvalidPatch(format!("invalid JSON patch: {e}")))?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: ops.0.len(),
        });
    }
    let mut doc = original.clone();
    // The copy is dropped on failure, so the crate's undo log is not needed.
    json_patch::patch_unsafe(&mut doc, &ops.0).map_err(|e| json_patch_error(&ops.0, e))?;
    Ok(doc)
}

fn json_patch_error(ops: &[json_patch::PatchOperation], err: json_patch::PatchError) -> PatchError {
    use json_patch::{PatchErrorKind, PatchOperation};
    let index = err.operation;
    let op = ops.get(index);
    let op_name = match op {
        Some(PatchOperation::Add(_)) => "add",
        Some(PatchOperation::Remove(_)) => "remove",
        Some(PatchOperation::Replace(_)) => "replace",
        Some(PatchOperation::Move(_)) => "move",
        Some(PatchOperation::Copy(_)) => "copy",
        Some(PatchOperation::Test(_)) | None => "test",
    };
    let path = err.path.as_str().to_string();
    match err.kind {
        PatchErrorKind::TestFailed => PatchError::TestFailed { index, path },
        PatchErrorKind::InvalidPointer => PatchError::PathNotFound {
            op: op_name,
            index,
            path,
        },
        PatchErrorKind::InvalidFromPointer => {
            let from = match op {
                Some(PatchOperation::Move(m)) => m.from.as_str().to_string(),
                Some(PatchOperation::Copy(c)) => c.from.as_str().to_string(),
                _ => path,
            };
            PatchError::PathNotFound {
                op: op_name,
                index,
                path: from,
            }
        }
        other => PatchError::OperationFailed {
            op: op_name,
            index,
            reason: other.to_string(),
        },
    }
}

fn apply_merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::InvalidPatch(
            "a merge patch must be a JSON object".into(),
        ));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn two_container_pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "sidecar", "image": "busybox:1.35", "args": ["sleep", "3600"]}
                ]
            }
        })
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("Application/Strategic-Merge-Patch+JSON"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(PatchType::from_content_type(""), None);
    }

    #[test]
    fn json_patch_operations() {
        let pod = two_container_pod();
        let patch = json!([
            {"op": "test", "path": "/metadata/labels/app", "value": "web"},
            {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.26"},
            {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"},
            {"op": "move", "from": "/metadata/labels/copy", "path": "/metadata/labels/moved"},
            {"op": "remove", "path": "/spec/containers/1/args/1"},
            {"op": "add", "path": "/spec/containers/1/args/-", "value": "60"}
        ]);
        let out = apply_patch("Pod", &pod, PatchType::Json, &patch).unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "tier": "front", "moved": "web"})
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.26");
        assert_eq!(out["spec"]["containers"][1]["args"], json!(["sleep", "60"]));
    }

    #[test]
    fn json_patch_errors() {
        let pod = two_container_pod();
        let failed_test = json!([{"op": "test", "path": "/metadata/name", "value": "other"}]);
        let err = apply_patch("Pod", &pod, PatchType::Json, &failed_test).unwrap_err();
        assert!(
            matches!(err, PatchError::TestFailed { index: 0, .. }),
            "{err}"
        );
        assert_eq!(err.status_code(), 422);

        let missing = json!([
            {"op": "add", "path": "/metadata/labels/x", "value": "y"},
            {"op": "replace", "path": "/spec/nothing/here", "value": 1}
        ]);
        let err = apply_patch("Pod", &pod, PatchType::Json, &missing).unwrap_err();
        match &err {
            PatchError::PathNotFound { op, index, path } => {
                assert_eq!(
                    (*op, *index, path.as_str()),
                    ("replace", 1, "/spec/nothing/here")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("/spec/nothing/here"));

        let bad_from = json!([{"op": "move", "from": "/nope", "path": "/metadata/x"}]);
        let err = apply_patch("Pod", &pod, PatchType::Json, &bad_from).unwrap_err();
        assert!(matches!(err, PatchError::PathNotFound { ref path, .. } if path == "/nope"));

        let index_out_of_range = json!([{"op": "remove", "path": "/spec/containers/7"}]);
        assert!(apply_patch("Pod", &pod, PatchType::Json, &index_out_of_range).is_err());

        for invalid in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "no-slash", "value": 1}]),
            json!([{"path": "/a"}]),
        ] {
            let err = apply_patch("Pod", &pod, PatchType::Json, &invalid).unwrap_err();
            assert!(
                matches!(err, PatchError::InvalidPatch(_)),
                "{invalid}: {err}"
            );
            assert_eq!(err.status_code(), 400);
        }
    }

    #[test]
    fn json_patch_operation_limit() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/kind", "value": "Pod"}))
            .collect();
        let err = apply_patch(
            "Pod",
            &two_container_pod(),
            PatchType::Json,
            &Value::Array(ops),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 413);
    }

    #[test]
    fn kubectl_label_and_annotate_merge_patches() {
        let pod = two_container_pod();
        let label = json!({"metadata": {"labels": {"env": "prod"}}});
        let out = apply_patch("Pod", &pod, PatchType::Merge, &label).unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "env": "prod"})
        );

        // `kubectl label pod web app-` removes a label with a null.
        let unlabel = json!({"metadata": {"labels": {"app": null}}});
        let out = apply_patch("Pod", &out, PatchType::Merge, &unlabel).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"env": "prod"}));

        let annotate = json!({"metadata": {"annotations": {"note": "hi"}}});
        let out = apply_patch("Pod", &out, PatchType::Merge, &annotate).unwrap();
        assert_eq!(out["metadata"]["annotations"], json!({"note": "hi"}));
        assert_eq!(out["spec"], pod["spec"]);
    }

    #[test]
    fn merge_patch_replaces_lists_and_rejects_non_objects() {
        let pod = two_container_pod();
        let patch = json!({"spec": {"containers": [{"name": "only"}]}});
        let out = apply_patch("Pod", &pod, PatchType::Merge, &patch).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "only"}]));
        for bad in [json!(null), json!([1]), json!("x")] {
            let err = apply_patch("Pod", &pod, PatchType::Merge, &bad).unwrap_err();
            assert_eq!(err.status_code(), 400);
        }
    }

    #[test]
    fn kubectl_scale_merge_patch() {
        let rc = json!({"kind": "ReplicationController", "spec": {"replicas": 2, "selector": {"app": "web"}}});
        let patch = json!({"spec": {"replicas": 5}});
        let out = apply_patch("ReplicationController", &rc, PatchType::Merge, &patch).unwrap();
        assert_eq!(
            out["spec"],
            json!({"replicas": 5, "selector": {"app": "web"}})
        );
    }

    #[test]
    fn strategic_patch_changes_one_container_image() {
        let pod = two_container_pod();
        let patch = json!({"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.36"}]}});
        let out = apply_patch("Pod", &pod, PatchType::StrategicMerge, &patch).unwrap();
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0], pod["spec"]["containers"][0]);
        assert_eq!(containers[1]["name"], "sidecar");
        assert_eq!(containers[1]["image"], "busybox:1.36");
        assert_eq!(containers[1]["args"], json!(["sleep", "3600"]));
    }

    #[test]
    fn strategic_patch_deletes_list_element() {
        let pod = two_container_pod();
        let patch = json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}});
        let out = apply_patch("Pod", &pod, PatchType::StrategicMerge, &patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([pod["spec"]["containers"][0]])
        );
    }

    #[test]
    fn strategic_patch_merges_ports_env_and_rc_template() {
        let rc = json!({"spec": {"replicas": 1, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "nginx",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
            }]}
        }}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{
            "name": "nginx",
            "ports": [{"containerPort": 443}],
            "env": [{"name": "B", "value": "3"}]
        }]}}}});
        let out = apply_patch(
            "ReplicationController",
            &rc,
            PatchType::StrategicMerge,
            &patch,
        )
        .unwrap();
        let nginx = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            nginx["ports"],
            json!([{"containerPort": 443}, {"containerPort": 80}])
        );
        assert_eq!(
            nginx["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
        );
        assert_eq!(
            out["spec"]["template"]["metadata"],
            rc["spec"]["template"]["metadata"]
        );
        assert_eq!(out["spec"]["replicas"], 1);
    }

    /// The shape of the patch `kubectl apply` sends after an image change and a container
    /// rename in the manifest.
    #[test]
    fn kubectl_apply_patch_with_order_and_deletion() {
        let rc = json!({"metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"},
            {"name": "injected", "image": "x"}
        ]}}}});
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "b"}],
                "containers": [{"image": "b:1", "name": "b"}, {"$patch": "delete", "name": "a"}]
            }}}
        });
        let out = apply_patch(
            "ReplicationController",
            &rc,
            PatchType::StrategicMerge,
            &patch,
        )
        .unwrap();
        // As upstream: the server-only container keeps its place before the new one.
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "injected", "image": "x"}, {"image": "b:1", "name": "b"}])
        );
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"new\":1}"
        );
    }

    #[test]
    fn kubectl_apply_retain_keys_on_volumes() {
        let pod = json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}});
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "data"}],
            "volumes": [{"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/srv"}, "name": "data"}]
        }});
        let out = apply_patch("Pod", &pod, PatchType::StrategicMerge, &patch).unwrap();
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/srv"}}])
        );
    }

    #[test]
    fn strategic_patch_null_deletes_and_finalizers_merge() {
        let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}});
        let patch = json!({"metadata": {"labels": {"a": null}, "finalizers": ["y"]}});
        let out = apply_patch("Pod", &pod, PatchType::StrategicMerge, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["y", "x"]));
        let remove = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}});
        let out = apply_patch("Pod", &out, PatchType::StrategicMerge, &remove).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn strategic_patch_leaves_no_directives_behind() {
        let mut pod = two_container_pod();
        pod["spec"]["tolerations"] = json!([{"key": "old"}]);
        let patch = json!({"spec": {"containers": [
            {"name": "new", "image": "n", "$retainKeys": ["name", "image"], "env": null}
        ], "tolerations": [{"key": "k", "$patch": "delete"}]}});
        let out = apply_patch("Pod", &pod, PatchType::StrategicMerge, &patch).unwrap();
        assert_eq!(
            out["spec"]["containers"][0],
            json!({"name": "new", "image": "n"})
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "k"}]));
    }

    #[test]
    fn node_status_patch_merges_conditions_and_addresses() {
        let node = json!({"status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
        }});
        let patch = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "n1"}]
        }});
        let out = apply_patch("Node", &node, PatchType::StrategicMerge, &patch).unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
        );
        assert_eq!(
            out["status"]["addresses"],
            json!([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}])
        );
    }

    #[test]
    fn apply_patches_are_unsupported() {
        let err = apply_patch("Pod", &json!({}), PatchType::Apply, &json!({})).unwrap_err();
        assert!(matches!(err, PatchError::Unsupported(_)));
        assert_eq!(err.status_code(), 415);
    }
}
