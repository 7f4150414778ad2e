//! Authorization (`--authorization-mode`): after authentication, each request
//! on the secure port is checked by the configured authorizers in order; the
//! first to allow or deny decides, and a request nobody allows gets 403 with
//! upstream's message. Members of system:masters are always allowed, as
//! upstream's privileged-group authorizer does. The plain loopback port skips
//! this (it has no user).

pub mod attributes;
pub mod escalation;
pub mod node;
pub mod policy;
pub mod rbac;
pub mod review;

use std::sync::Arc;

use anyhow::bail;

pub use attributes::{Attributes, Request, ResourceAttributes};

use crate::error::ApiError;
use crate::watch_cache::WatchCache;

const PRIVILEGED_GROUP: &str = "system:masters";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    /// Not this authorizer's to allow; the reason says why, for the 403.
    NoOpinion(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
}

/// `--authorization-mode` values, e.g. "Node,RBAC".
pub fn parse_modes(values: &[String]) -> anyhow::Result<Vec<Mode>> {
    let mut modes = Vec::new();
    for v in values {
        let mode = match v.as_str() {
            "AlwaysAllow" => Mode::AlwaysAllow,
            "AlwaysDeny" => Mode::AlwaysDeny,
            "Node" => Mode::Node,
            "RBAC" => Mode::Rbac,
            other => bail!(
                "--authorization-mode {other:?} is not supported (AlwaysAllow, AlwaysDeny, Node, RBAC)"
            ),
        };
        if modes.contains(&mode) {
            bail!("--authorization-mode has {v} twice");
        }
        modes.push(mode);
    }
    if modes.is_empty() {
        bail!("--authorization-mode needs at least one mode");
    }
    Ok(modes)
}

pub struct Authorizer {
    modes: Vec<Mode>,
    node: Option<node::NodeAuthorizer>,
    rbac: Option<rbac::Rbac>,
}

impl Authorizer {
    pub fn new(
        modes: Vec<Mode>,
        cache: &Arc<WatchCache>,
        prefix: &str,
        registry: &'static crate::registry::Registry,
    ) -> Self {
        Self {
            node: modes
                .contains(&Mode::Node)
                .then(|| node::NodeAuthorizer::new(cache.clone(), prefix, registry)),
            rbac: modes
                .contains(&Mode::Rbac)
                .then(|| rbac::Rbac::new(cache.clone(), prefix)),
            modes,
        }
    }

    /// Whether RBAC decides (then its escalation checks apply).
    pub fn enforces_rbac(&self) -> bool {
        self.rbac.is_some()
    }

    /// Whether NodeRestriction applies (it comes with the Node authorizer).
    pub fn restricts_nodes(&self) -> bool {
        self.node.is_some()
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        if a.user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return Decision::Allow;
        }
        let mut reasons = Vec::new();
        for mode in &self.modes {
            let decision = match mode {
                Mode::AlwaysAllow => Decision::Allow,
                Mode::AlwaysDeny => Decision::Deny(String::new()),
                Mode::Node => self
                    .node
                    .as_ref()
                    .map_or(Decision::Allow, |n| n.authorize(a)),
                Mode::Rbac => self
                    .rbac
                    .as_ref()
                    .map_or(Decision::Allow, |r| r.authorize(a)),
            };
            match decision {
                Decision::NoOpinion(reason) => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
                decided => return decided,
            }
        }
        Decision::Deny(reasons.join(", "))
    }
}

/// Upstream's 403 for a request its authorizers did not allow.
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let user = &a.user.name;
    let mut text = match &a.target {
        Request::NonResource { path } => {
            format!("User {user:?} cannot {} path {path:?}", a.verb)
        }
        Request::Resource(r) if r.namespace.is_empty() => format!(
            "User {user:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            a.verb,
            r.combined_resource(),
            r.group
        ),
        Request::Resource(r) => format!(
            "User {user:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            a.verb,
            r.combined_resource(),
            r.group,
            r.namespace
        ),
    };
    if !reason.is_empty() {
        text = format!("{text}: {reason}");
    }
    let Some(r) = a.resource() else {
        return ApiError::forbidden(format!("forbidden: {text}"));
    };
    let qualified = if r.group.is_empty() {
        r.resource.clone()
    } else {
        format!("{}.{}", r.resource, r.group)
    };
    let message = if r.name.is_empty() {
        format!("{qualified} is forbidden: {text}")
    } else {
        format!("{qualified} {:?} is forbidden: {text}", r.name)
    };
    let mut details = serde_json::json!({"name": r.name, "kind": r.resource});
    if !r.group.is_empty() {
        details["group"] = r.group.clone().into();
    }
    ApiError {
        details: Some(details),
        ..ApiError::forbidden(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;
    use crate::handler::Query;
    use http::Method;

    fn attrs(user: &str, groups: &[&str], method: Method, path: &str) -> Attributes {
        let user = UserInfo {
            name: user.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        Attributes::from_request(user, &method, path, &Query::parse(None))
    }

    #[test]
    fn modes_parse_as_upstream_spells_them() {
        assert_eq!(
            parse_modes(&["Node".into(), "RBAC".into()]).unwrap(),
            vec![Mode::Node, Mode::Rbac]
        );
        assert!(parse_modes(&["rbac".into()]).is_err());
        assert!(parse_modes(&["RBAC".into(), "RBAC".into()]).is_err());
    }

    #[test]
    fn forbidden_messages_match_upstream() {
        let a = attrs("bob", &[], Method::GET, "/api/v1/namespaces/dev/pods/web");
        let e = forbidden(&a, "");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"web\" is forbidden: User \"bob\" cannot get resource \"pods\" in API group \"\" in the namespace \"dev\""
        );
        let a = attrs(
            "bob",
            &[],
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        );
        assert_eq!(
            forbidden(&a, "").message,
            "clusterroles.rbac.authorization.k8s.io is forbidden: User \"bob\" cannot create resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
        let a = attrs("bob", &[], Method::GET, "/metrics");
        assert_eq!(
            forbidden(&a, "").message,
            "forbidden: User \"bob\" cannot get path \"/metrics\""
        );
        let a = attrs("n", &[], Method::PATCH, "/api/v1/nodes/x/status");
        assert!(forbidden(&a, "because").message.ends_with(
            "cannot patch resource \"nodes/status\" in API group \"\" at the cluster scope: because"
        ));
    }

    #[test]
    fn masters_pass_and_nobody_else_without_rules() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store: Arc<dyn crate::storage::Store> = Arc::new(
                crate::storage::embedded::EmbeddedStore::open(dir.path(), Default::default())
                    .unwrap(),
            );
            let cache = WatchCache::start(store, "/registry/".into(), 10)
                .await
                .unwrap();
            let registry = Box::leak(Box::new(crate::registry::Registry::new()));
            let authz =
                Authorizer::new(vec![Mode::Node, Mode::Rbac], &cache, "/registry", registry);
            let admin = attrs(
                "admin",
                &["system:masters"],
                Method::DELETE,
                "/api/v1/nodes/x",
            );
            assert_eq!(authz.authorize(&admin), Decision::Allow);
            let node = attrs(
                "system:node:a",
                &["system:nodes"],
                Method::DELETE,
                "/api/v1/nodes/b",
            );
            assert_eq!(
                authz.authorize(&node),
                Decision::Deny("node 'a' cannot modify node 'b'".into())
            );
            let own = attrs(
                "system:node:a",
                &["system:nodes"],
                Method::PATCH,
                "/api/v1/nodes/a/status",
            );
            assert_eq!(authz.authorize(&own), Decision::Allow);
        });
    }
}
