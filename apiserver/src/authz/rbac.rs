//! The RBAC authorizer: a request is allowed when a ClusterRoleBinding, or a
//! RoleBinding in the request's namespace, binds the user (or one of its
//! groups, or its service account) to a role with a rule that covers it.
//! There are no deny rules.
//!
//! Roles and bindings are read from the watch cache into a typed snapshot,
//! rebuilt when any of them changes (upstream reads its informers: the same
//! eventual consistency).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use serde::de::DeserializeOwned;

use super::attributes::{Attributes, Request};
use super::Decision;
use crate::authn::UserInfo;
use crate::watch_cache::WatchCache;

const KINDS: [&str; 4] = [
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
];

/// Every role and binding, decoded.
#[derive(Default)]
struct Snapshot {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// (namespace, name) -> rules.
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_bindings: Vec<ClusterRoleBinding>,
    /// namespace -> bindings in it.
    bindings: HashMap<String, Vec<RoleBinding>>,
}

pub struct Rbac {
    cache: Arc<WatchCache>,
    prefix: String,
    /// Bumped by the follower task on every change to an RBAC object.
    changes: Arc<AtomicU64>,
    snapshot: RwLock<(u64, Arc<Snapshot>)>,
}

impl Rbac {
    /// Follows the cache for changes; needs a Tokio runtime.
    pub fn new(cache: Arc<WatchCache>, prefix: &str) -> Self {
        let changes = Arc::new(AtomicU64::new(1));
        let rbac = Self {
            cache: cache.clone(),
            prefix: prefix.to_string(),
            changes: changes.clone(),
            snapshot: RwLock::new((0, Arc::new(Snapshot::default()))),
        };
        let prefixes: Vec<String> = KINDS.iter().map(|k| format!("{prefix}/{k}/")).collect();
        let all = format!("{prefix}/");
        tokio::spawn(async move {
            let Ok(mut sub) = cache.subscribe(&all, Some(cache.revision())) else {
                tracing::error!("RBAC cannot follow the watch cache");
                return;
            };
            loop {
                use tokio::sync::broadcast::error::RecvError;
                match sub.live.recv().await {
                    Ok(ev) if prefixes.iter().any(|p| ev.key.starts_with(p)) => {
                        changes.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        changes.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        rbac
    }

    fn current(&self) -> Arc<Snapshot> {
        let want = self.changes.load(Ordering::SeqCst);
        {
            let s = self.snapshot.read().expect("rbac snapshot lock");
            if s.0 == want {
                return s.1.clone();
            }
        }
        let fresh = Arc::new(self.load());
        let mut s = self.snapshot.write().expect("rbac snapshot lock");
        *s = (want, fresh.clone());
        fresh
    }

    fn load(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for role in self.objects::<ClusterRole>("clusterroles") {
            let name = role.metadata.name.unwrap_or_default();
            snap.cluster_roles
                .insert(name, role.rules.unwrap_or_default());
        }
        for role in self.objects::<Role>("roles") {
            let key = (
                role.metadata.namespace.unwrap_or_default(),
                role.metadata.name.unwrap_or_default(),
            );
            snap.roles.insert(key, role.rules.unwrap_or_default());
        }
        snap.cluster_bindings = self.objects("clusterrolebindings");
        for b in self.objects::<RoleBinding>("rolebindings") {
            let ns = b.metadata.namespace.clone().unwrap_or_default();
            snap.bindings.entry(ns).or_default().push(b);
        }
        snap
    }

    fn objects<T: DeserializeOwned>(&self, plural: &str) -> Vec<T> {
        let (items, _) = self.cache.list(&format!("{}/{plural}/", self.prefix));
        items.iter().filter_map(|o| o.decode::<T>()).collect()
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        let snap = self.current();
        let allowed = |rules: &[PolicyRule]| rules.iter().any(|r| rule_allows(r, a));
        for b in &snap.cluster_bindings {
            if !applies(b.subjects.as_deref(), &a.user, "") {
                continue;
            }
            if let Some(rules) = snap.cluster_roles.get(&b.role_ref.name) {
                if allowed(rules) {
                    return Decision::Allow;
                }
            }
        }
        let namespace = match &a.target {
            Request::Resource(r) => r.namespace.as_str(),
            Request::NonResource { .. } => "",
        };
        if namespace.is_empty() {
            return Decision::NoOpinion(String::new());
        }
        for b in snap.bindings.get(namespace).into_iter().flatten() {
            if !applies(b.subjects.as_deref(), &a.user, namespace) {
                continue;
            }
            let rules = match b.role_ref.kind.as_str() {
                "ClusterRole" => snap.cluster_roles.get(&b.role_ref.name),
                _ => snap
                    .roles
                    .get(&(namespace.to_string(), b.role_ref.name.clone())),
            };
            if rules.is_some_and(|r| allowed(r)) {
                return Decision::Allow;
            }
        }
        Decision::NoOpinion(String::new())
    }
}

/// Whether a binding's subjects include the user. A service account subject
/// without a namespace is in the binding's namespace.
fn applies(subjects: Option<&[Subject]>, user: &UserInfo, binding_ns: &str) -> bool {
    subjects
        .unwrap_or_default()
        .iter()
        .any(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = match s.namespace.as_deref() {
                    Some(ns) if !ns.is_empty() => ns,
                    _ => binding_ns,
                };
                user.name == format!("system:serviceaccount:{ns}:{}", s.name)
            }
            _ => false,
        })
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// Upstream's RuleAllows.
pub fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    if !has(&rule.verbs, &a.verb) {
        return false;
    }
    match &a.target {
        Request::NonResource { path } => rule
            .non_resource_urls
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|u| {
                u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
            }),
        Request::Resource(r) => {
            let groups = rule.api_groups.as_deref().unwrap_or_default();
            let resources = rule.resources.as_deref().unwrap_or_default();
            if !has(groups, &r.group) {
                return false;
            }
            let combined = r.combined_resource();
            let resource_ok = resources.iter().any(|x| {
                x == "*"
                    || *x == combined
                    || (!r.subresource.is_empty()
                        && x.strip_prefix("*/") == Some(r.subresource.as_str()))
            });
            if !resource_ok {
                return false;
            }
            let names = rule.resource_names.as_deref().unwrap_or_default();
            names.is_empty() || (!r.name.is_empty() && names.contains(&r.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Query;
    use http::Method;
    use serde_json::json;

    fn rule(v: serde_json::Value) -> PolicyRule {
        serde_json::from_value(v).unwrap()
    }

    fn req(method: Method, path: &str) -> Attributes {
        let user = UserInfo {
            name: "alice".into(),
            uid: String::new(),
            groups: vec!["dev".into()],
        };
        Attributes::from_request(user, &method, path, &Query::parse(None))
    }

    #[test]
    fn rules_match_verbs_groups_resources_names_and_urls() {
        let pods =
            rule(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(rule_allows(
            &pods,
            &req(Method::GET, "/api/v1/namespaces/a/pods/x")
        ));
        assert!(!rule_allows(
            &pods,
            &req(Method::DELETE, "/api/v1/namespaces/a/pods/x")
        ));
        assert!(!rule_allows(
            &pods,
            &req(Method::GET, "/api/v1/namespaces/a/pods/x/log")
        ));
        assert!(!rule_allows(
            &pods,
            &req(
                Method::GET,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/x"
            )
        ));
        let any_status =
            rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/status"]}));
        assert!(rule_allows(
            &any_status,
            &req(Method::PUT, "/api/v1/nodes/n/status")
        ));
        assert!(!rule_allows(
            &any_status,
            &req(Method::PUT, "/api/v1/nodes/n")
        ));
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]}),
        );
        assert!(rule_allows(
            &named,
            &req(Method::GET, "/api/v1/namespaces/a/configmaps/cfg")
        ));
        assert!(!rule_allows(
            &named,
            &req(Method::GET, "/api/v1/namespaces/a/configmaps/other")
        ));
        assert!(!rule_allows(
            &named,
            &req(Method::GET, "/api/v1/namespaces/a/configmaps")
        ));
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        assert!(rule_allows(&urls, &req(Method::GET, "/healthz")));
        assert!(rule_allows(&urls, &req(Method::GET, "/apis/apps")));
        assert!(!rule_allows(&urls, &req(Method::GET, "/metrics")));
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let user = UserInfo {
            name: "system:serviceaccount:dev:builder".into(),
            uid: String::new(),
            groups: vec!["system:serviceaccounts".into()],
        };
        let sa: Vec<Subject> =
            serde_json::from_value(json!([{"kind": "ServiceAccount", "name": "builder"}])).unwrap();
        assert!(applies(Some(&sa), &user, "dev"));
        assert!(!applies(Some(&sa), &user, "prod"));
        let group: Vec<Subject> =
            serde_json::from_value(json!([{"kind": "Group", "name": "system:serviceaccounts"}]))
                .unwrap();
        assert!(applies(Some(&group), &user, ""));
        assert!(!applies(None, &user, ""));
    }

    #[tokio::test]
    async fn bindings_grant_roles_in_their_namespace_only() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn crate::storage::Store> = Arc::new(
            crate::storage::embedded::EmbeddedStore::open(dir.path(), Default::default()).unwrap(),
        );
        let put = |key: &str, v: serde_json::Value| {
            let store = store.clone();
            let key = key.to_string();
            async move {
                store
                    .create(&key, serde_json::to_vec(&v).unwrap())
                    .await
                    .unwrap();
            }
        };
        put(
            "/registry/roles/dev/pod-reader",
            json!({"metadata": {"name": "pod-reader", "namespace": "dev"},
                   "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
        )
        .await;
        put(
            "/registry/rolebindings/dev/read",
            json!({"metadata": {"name": "read", "namespace": "dev"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                   "subjects": [{"kind": "Group", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}]}),
        )
        .await;
        let cache = WatchCache::start(store, "/registry/".into(), 100)
            .await
            .unwrap();
        let rbac = Rbac::new(cache, "/registry");
        assert_eq!(
            rbac.authorize(&req(Method::GET, "/api/v1/namespaces/dev/pods")),
            Decision::Allow
        );
        assert!(matches!(
            rbac.authorize(&req(Method::GET, "/api/v1/namespaces/prod/pods")),
            Decision::NoOpinion(_)
        ));
        assert!(matches!(
            rbac.authorize(&req(Method::GET, "/api/v1/pods")),
            Decision::NoOpinion(_)
        ));
    }
}
