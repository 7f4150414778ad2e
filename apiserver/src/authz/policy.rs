//! The bootstrap RBAC policy (upstream's plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy): the ClusterRoles and ClusterRoleBindings every cluster
//! starts with, reconciled at each apiserver start. Missing ones are created;
//! existing ones annotated `rbac.authorization.kubernetes.io/autoupdate:
//! "true"` get missing rules and subjects added back (never removed), so an
//! upgrade can grant new permissions while an admin's additions stay.

use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::handler::{create_object, Api, WriteOptions};
use crate::registry::kinds::rbac::GROUP;

const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

fn events() -> Value {
    rule(
        &["create", "patch", "update"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

fn delegation() -> [Value; 2] {
    [
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
    ]
}

/// What a namespace's users read (upstream's `view`, for the kinds served here).
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "pods",
                "pods/log",
                "pods/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "replicationcontrollers/status",
                "services",
                "services/status",
                "endpoints",
                "configmaps",
                "serviceaccounts",
                "events",
                "namespaces",
                "namespaces/status",
            ],
        ),
        rule(READ, &["events.k8s.io"], &["events"]),
    ]
}

/// `edit`: view plus changing the workload kinds and using pods.
fn edit_rules() -> Vec<Value> {
    let mut rules = view_rules();
    rules.push(rule(
        WRITE,
        &[""],
        &[
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "services",
            "endpoints",
            "configmaps",
            "serviceaccounts",
        ],
    ));
    rules.push(rule(
        &["create", "get"],
        &[""],
        &["pods/exec", "pods/attach", "pods/portforward"],
    ));
    rules.push(rule(&["create"], &[""], &["pods/eviction"]));
    rules
}

fn admin_rules() -> Vec<Value> {
    let mut rules = edit_rules();
    rules.push(rule(
        &crate::registry::VERBS,
        &[GROUP],
        &["roles", "rolebindings"],
    ));
    rules
}

/// (name, rules) of every bootstrap ClusterRole.
pub fn cluster_roles() -> Vec<(&'static str, Vec<Value>)> {
    let mut node_proxier = vec![
        rule(&["list", "watch"], &[""], &["services", "endpoints"]),
        rule(READ, &[""], &["nodes"]),
        rule(
            &["list", "watch"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
    ];
    node_proxier.push(events());
    let mut scheduler = vec![
        events(),
        rule(&["create"], &["coordination.k8s.io"], &["leases"]),
        named(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(
            READ,
            &[""],
            &["nodes", "namespaces", "replicationcontrollers", "services"],
        ),
        rule(&["delete", "get", "list", "watch"], &[""], &["pods"]),
        rule(&["create"], &[""], &["bindings", "pods/binding"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
    ];
    scheduler.extend(delegation());
    // Upstream's controllers each run as their own service account; ours run
    // as the controller-manager itself, so its role is the union of what the
    // controllers need: every read (the garbage collector follows all
    // kinds), deletes anywhere (garbage collector, namespace deletion) and
    // the writes of the replication, endpoints, node and namespace
    // controllers.
    let mut controller_manager = vec![
        events(),
        rule(READ, &["*"], &["*"]),
        rule(
            &["delete", "deletecollection", "patch", "update"],
            &["*"],
            &["*"],
        ),
        rule(
            &["create"],
            &[""],
            &["pods", "endpoints", "serviceaccounts"],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(&["patch", "update"], &["*"], &["*/status", "*/finalize"]),
        rule(&["create"], &["coordination.k8s.io"], &["leases"]),
    ];
    controller_manager.extend(delegation());
    vec![
        (
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        ("admin", admin_rules()),
        ("edit", edit_rules()),
        ("view", view_rules()),
        (
            "system:discovery",
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        (
            "system:public-info-viewer",
            vec![urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        (
            "system:basic-user",
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        ("system:auth-delegator", delegation().to_vec()),
        ("system:node-proxier", node_proxier),
        ("system:kube-scheduler", scheduler),
        ("system:kube-controller-manager", controller_manager),
        (
            "system:kube-dns",
            vec![rule(&["list", "watch"], &[""], &["endpoints", "services"])],
        ),
        (
            "system:kubelet-api-admin",
            vec![
                rule(&["get", "list", "watch", "proxy"], &[""], &["nodes"]),
                rule(
                    &["*"],
                    &[""],
                    &["nodes/proxy", "nodes/log", "nodes/stats", "nodes/metrics"],
                ),
            ],
        ),
    ]
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": GROUP, "name": name})
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": GROUP, "name": name})
}

/// (binding name, cluster role, subjects) of every bootstrap ClusterRoleBinding.
pub fn cluster_role_bindings() -> Vec<(&'static str, &'static str, Vec<Value>)> {
    vec![
        (
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        (
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        (
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        (
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        (
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        (
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        (
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        (
            "system:kube-dns",
            "system:kube-dns",
            vec![
                user("system:kube-dns"),
                json!({"kind": "ServiceAccount", "apiGroup": "", "name": "kube-dns", "namespace": "kube-system"}),
            ],
        ),
        (
            "system:kube-apiserver-kubelet-client",
            "system:kubelet-api-admin",
            vec![user("kube-apiserver-kubelet-client")],
        ),
    ]
}

fn bootstrap_meta(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {AUTOUPDATE: "true"},
    })
}

/// Create or complete every bootstrap role and binding.
pub async fn reconcile(api: &Api) -> ApiResult<()> {
    for (name, rules) in cluster_roles() {
        let obj = json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole",
            "metadata": bootstrap_meta(name), "rules": rules,
        });
        ensure(api, "clusterroles", obj, "rules").await?;
    }
    for (name, role, subjects) in cluster_role_bindings() {
        let obj = json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRoleBinding",
            "metadata": bootstrap_meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        });
        ensure(api, "clusterrolebindings", obj, "subjects").await?;
    }
    Ok(())
}

/// Create `obj`, or add the entries of its `list` field that the stored one
/// lacks (when the stored one allows automatic updates).
async fn ensure(api: &Api, plural: &str, obj: Value, list: &str) -> ApiResult<()> {
    let info = api
        .registry
        .find(GROUP, "v1", plural)
        .expect("RBAC kinds are registered");
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let key = crate::meta::key(&api.prefix, info, None, name);
    let Some(kv) = api.store.get(&key).await? else {
        return match create_object(api, info, None, obj, WriteOptions::internal()).await {
            Err(e) if e.code != 409 => Err(e),
            _ => Ok(()),
        };
    };
    let Ok(mut stored) = serde_json::from_slice::<Value>(&kv.value) else {
        return Ok(());
    };
    if stored["metadata"]["annotations"][AUTOUPDATE].as_str() == Some("false") {
        return Ok(());
    }
    let have = stored[list].as_array().cloned().unwrap_or_default();
    let missing: Vec<Value> = obj[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|want| !have.contains(want))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(
        kind = plural,
        name,
        added = missing.len(),
        "completing bootstrap RBAC object"
    );
    let mut all = have;
    all.extend(missing);
    stored[list] = Value::Array(all);
    // A concurrent change wins; the next start tries again.
    if let Err(e) = api
        .store
        .update(
            &key,
            serde_json::to_vec(&stored).unwrap_or_default(),
            kv.mod_revision,
        )
        .await
    {
        tracing::warn!(name, error = %e, "could not complete a bootstrap RBAC object");
    }
    Ok(())
}
