//! The Node authorizer and the NodeRestriction admission check: a kubelet
//! (user `system:node:<name>` in group `system:nodes`) may read what its pods
//! need and write only its own Node, its own Lease and the pods bound to it.
//!
//! Upstream keeps a graph of pods, nodes and what pods reference; this reads
//! the watch cache instead (a pod's node and references are one lookup away).
//! Like upstream, list and watch of pods need the `spec.nodeName=<node>` field
//! selector (AuthorizeNodeWithSelectors), and a kubelet may not create a Node
//! or Lease named for another node (NodeRestriction).

use std::sync::Arc;

use serde_json::Value;

use super::attributes::{Attributes, ResourceAttributes};
use super::Decision;
use crate::authn::UserInfo;
use crate::error::{ApiError, ApiResult};
use crate::registry::{Registry, ResourceInfo};
use crate::watch_cache::{CachedObject, WatchCache};

const NODES_GROUP: &str = "system:nodes";
const NODE_USER_PREFIX: &str = "system:node:";
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node a user speaks for, if it is a node's identity.
pub fn node_of(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

pub struct NodeAuthorizer {
    cache: Arc<WatchCache>,
    prefix: String,
    /// The pods resource: the cache keeps each pod's spec.nodeName as a field.
    pods: &'static ResourceInfo,
}

const READ: [&str; 3] = ["get", "list", "watch"];

impl NodeAuthorizer {
    pub fn new(cache: Arc<WatchCache>, prefix: &str, registry: &'static Registry) -> Self {
        Self {
            cache,
            prefix: prefix.to_string(),
            pods: registry
                .find("", "v1", "pods")
                .expect("pods are registered"),
        }
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        let Some(node) = node_of(&a.user) else {
            return Decision::NoOpinion(String::new());
        };
        let Some(r) = a.resource() else {
            return Decision::NoOpinion(String::new());
        };
        let verb = a.verb.as_str();
        let allow = |ok: bool, reason: String| {
            if ok {
                Decision::Allow
            } else {
                Decision::NoOpinion(reason)
            }
        };
        let sub = r.subresource.as_str();
        match (r.group.as_str(), r.resource.as_str()) {
            ("", "nodes") => match (verb, sub) {
                (v, "") if READ.contains(&v) => Decision::Allow,
                // The name is in the body: admission checks it.
                ("create", "") => Decision::Allow,
                ("update" | "patch" | "delete", "") | ("update" | "patch", "status") => allow(
                    r.name == node,
                    format!("node '{node}' cannot modify node '{}'", r.name),
                ),
                _ => Decision::NoOpinion(String::new()),
            },
            ("", "pods") => self.pods(node, verb, r),
            ("", "services") if READ.contains(&verb) && sub.is_empty() => Decision::Allow,
            ("", "endpoints") if verb == "get" => Decision::Allow,
            ("", "events") if ["create", "update", "patch"].contains(&verb) => Decision::Allow,
            ("", "configmaps") if READ.contains(&verb) && sub.is_empty() => {
                if r.name.is_empty() {
                    return Decision::NoOpinion(
                        "can only read individual configmaps referenced by pods on the node".into(),
                    );
                }
                allow(
                    self.pods_on(node, &r.namespace)
                        .iter()
                        .any(|p| references_config_map(&p.value(), &r.name)),
                    no_relationship(node),
                )
            }
            // Tokens for the service accounts its pods run as.
            ("", "serviceaccounts") if verb == "create" && sub == "token" => allow(
                self.pods_on(node, &r.namespace).iter().any(|p| {
                    p.value()
                        .pointer("/spec/serviceAccountName")
                        .and_then(Value::as_str)
                        == Some(r.name.as_str())
                }),
                no_relationship(node),
            ),
            ("coordination.k8s.io", "leases") if r.namespace == LEASE_NAMESPACE => {
                match verb {
                    // The name is in the body: admission checks it.
                    "create" => Decision::Allow,
                    "get" | "update" | "patch" | "delete" => allow(
                        r.name == node,
                        format!("node '{node}' can only access its own lease"),
                    ),
                    _ => Decision::NoOpinion(String::new()),
                }
            }
            ("authentication.k8s.io", "tokenreviews")
            | ("authorization.k8s.io", "subjectaccessreviews" | "localsubjectaccessreviews")
                if verb == "create" =>
            {
                Decision::Allow
            }
            _ => Decision::NoOpinion(String::new()),
        }
    }

    fn pods(&self, node: &str, verb: &str, r: &ResourceAttributes) -> Decision {
        let bound = || {
            self.cache
                .get(&format!("{}/pods/{}/{}", self.prefix, r.namespace, r.name))
                .is_some_and(|p| self.pod_node(&p) == Some(node))
        };
        let decide = |ok: bool| {
            if ok {
                Decision::Allow
            } else {
                Decision::NoOpinion(no_relationship(node))
            }
        };
        match (verb, r.subresource.as_str()) {
            ("list" | "watch", "") if r.name.is_empty() => {
                let own = format!("spec.nodeName={node}");
                if r.field_selector
                    .split(',')
                    .any(|t| t == own || t == format!("spec.nodeName=={node}"))
                {
                    Decision::Allow
                } else {
                    Decision::NoOpinion(format!(
                        "can only list/watch pods with spec.nodeName={node} field selector"
                    ))
                }
            }
            ("get" | "list" | "watch" | "delete", "") | ("update" | "patch", "status") => {
                decide(bound())
            }
            _ => Decision::NoOpinion(String::new()),
        }
    }

    /// The pods in `namespace` bound to `node`.
    fn pods_on(&self, node: &str, namespace: &str) -> Vec<Arc<CachedObject>> {
        let (pods, _) = self
            .cache
            .list(&format!("{}/pods/{namespace}/", self.prefix));
        pods.into_iter()
            .filter(|p| self.pod_node(p) == Some(node))
            .collect()
    }

    fn pod_node<'a>(&self, pod: &'a CachedObject) -> Option<&'a str> {
        pod.field(self.pods, "spec.nodeName")
            .filter(|n| !n.is_empty())
    }
}

fn no_relationship(node: &str) -> String {
    format!("no relationship found between node '{node}' and this object")
}

/// Whether the pod uses the ConfigMap: a volume, a projected source, or an
/// environment reference of any container.
fn references_config_map(pod: &Value, name: &str) -> bool {
    let is = |v: Option<&Value>| v.and_then(Value::as_str) == Some(name);
    let spec = &pod["spec"];
    let volumes = spec["volumes"].as_array().into_iter().flatten();
    for v in volumes {
        if is(v.pointer("/configMap/name")) {
            return true;
        }
        let sources = v.pointer("/projected/sources").and_then(Value::as_array);
        if sources
            .into_iter()
            .flatten()
            .any(|s| is(s.pointer("/configMap/name")))
        {
            return true;
        }
    }
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .any(|c| {
            c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| is(e.pointer("/valueFrom/configMapKeyRef/name")))
                || c["envFrom"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| is(e.pointer("/configMapRef/name")))
        })
}

/// NodeRestriction on create: a node may create only its own Node and its
/// own Lease.
pub fn admit_create(user: Option<&UserInfo>, info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    let Some(node) = user.and_then(node_of) else {
        return Ok(());
    };
    let name = crate::meta::name(obj).unwrap_or("");
    let what = match (info.group, info.plural) {
        ("", "nodes") => "node",
        ("coordination.k8s.io", "leases") => "lease",
        _ => return Ok(()),
    };
    if name == node {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: node \"{node}\" is not allowed to modify {what} \"{name}\"",
        info.qualified_resource()
    )))
}

/// NodeRestriction on TokenRequest: a node may ask only for tokens bound to
/// a pod scheduled on it (`bound_pod_node`: the bound pod's node, when the
/// token is bound to a pod).
pub fn admit_token_request(
    user: Option<&UserInfo>,
    service_account: &str,
    bound_to_pod: bool,
    uid_given: bool,
    bound_pod_node: Option<&str>,
) -> ApiResult<()> {
    let Some(node) = user.and_then(node_of) else {
        return Ok(());
    };
    let why = if !bound_to_pod {
        "node requested token not bound to a pod"
    } else if !uid_given {
        "node requested token with a pod binding without a uid"
    } else if bound_pod_node != Some(node) {
        "node requested token bound to a pod scheduled on a different node"
    } else {
        return Ok(());
    };
    Err(ApiError::forbidden(format!(
        "serviceaccounts \"{service_account}\" is forbidden: {why}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_identity_needs_the_group() {
        let mut u = UserInfo {
            name: "system:node:n1".into(),
            uid: String::new(),
            groups: vec!["system:nodes".into()],
        };
        assert_eq!(node_of(&u), Some("n1"));
        u.groups.clear();
        assert_eq!(node_of(&u), None);
    }

    #[test]
    fn nodes_get_tokens_only_for_their_own_pods() {
        let n1 = UserInfo {
            name: "system:node:n1".into(),
            uid: String::new(),
            groups: vec!["system:nodes".into()],
        };
        assert!(admit_token_request(Some(&n1), "default", true, true, Some("n1")).is_ok());
        let other = admit_token_request(Some(&n1), "default", true, true, Some("n2")).unwrap_err();
        assert_eq!(other.code, 403);
        assert!(
            other.message.contains("scheduled on a different node"),
            "{}",
            other.message
        );
        let unbound = admit_token_request(Some(&n1), "default", false, false, None).unwrap_err();
        assert!(unbound
            .message
            .ends_with("node requested token not bound to a pod"));
        let no_uid =
            admit_token_request(Some(&n1), "default", true, false, Some("n1")).unwrap_err();
        assert!(no_uid.message.ends_with("with a pod binding without a uid"));
        // Anyone else is left to RBAC.
        let admin = UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        };
        assert!(admit_token_request(Some(&admin), "default", false, false, None).is_ok());
        assert!(admit_token_request(None, "default", false, false, None).is_ok());
    }

    #[test]
    fn config_map_references() {
        let pod = json!({"spec": {
            "volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "proj"}}]}}],
            "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "env"}}],
                            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "key", "key": "k"}}}]}],
        }});
        for name in ["proj", "env", "key"] {
            assert!(references_config_map(&pod, name), "{name}");
        }
        assert!(!references_config_map(&pod, "other"));
    }
}
