//! What a request asks to do, in authorization's terms (upstream's
//! RequestInfo): a verb on a resource (group, resource, subresource,
//! namespace, name) or on a non-resource path.

use http::Method;

use crate::authn::UserInfo;
use crate::handler::Query;
use crate::path::{self, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
    /// Empty for collection requests.
    pub name: String,
    /// The raw fieldSelector of a list or watch, for authorizers that allow
    /// only selected collections (the Node authorizer's pods).
    pub field_selector: String,
}

impl ResourceAttributes {
    /// "pods" or "pods/status", as RBAC rules and messages spell it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Resource(ResourceAttributes),
    NonResource { path: String },
}

#[derive(Debug, Clone)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub target: Request,
}

impl Attributes {
    pub fn resource(&self) -> Option<&ResourceAttributes> {
        match &self.target {
            Request::Resource(r) => Some(r),
            Request::NonResource { .. } => None,
        }
    }

    /// Upstream's RequestInfo for an HTTP request.
    pub fn from_request(user: UserInfo, method: &Method, path: &str, query: &Query) -> Self {
        let rp = match path::parse(path) {
            Target::Resource(rp) => rp,
            _ => {
                return Self {
                    user,
                    verb: method.as_str().to_ascii_lowercase(),
                    target: Request::NonResource {
                        path: path.to_string(),
                    },
                }
            }
        };
        let watch = rp.watch_prefix || query.flag("watch");
        let field_selector = query.get("fieldSelector").unwrap_or("").to_string();
        let mut name = rp.name.clone().unwrap_or_default();
        let verb = match *method {
            Method::GET | Method::HEAD if watch => "watch",
            Method::GET | Method::HEAD if name.is_empty() => "list",
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if name.is_empty() => "deletecollection",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        // A collection narrowed to one name by `metadata.name=` is a request
        // for that object (what informers of one object send).
        if name.is_empty() && (verb == "list" || verb == "watch") {
            if let Some(n) = single_name(&field_selector) {
                name = n.to_string();
            }
        }
        // A namespace is in itself: a RoleBinding in "dev" may grant reading
        // the "dev" Namespace.
        let namespace = match (&rp.namespace, rp.resource.as_str()) {
            (Some(ns), _) => ns.clone(),
            (None, "namespaces") if rp.group.is_empty() => name.clone(),
            (None, _) => String::new(),
        };
        Self {
            user,
            verb,
            target: Request::Resource(ResourceAttributes {
                group: rp.group,
                version: rp.version,
                resource: rp.resource,
                subresource: rp.subresource.unwrap_or_default(),
                namespace,
                name,
                field_selector,
            }),
        }
    }
}

/// The name in a `metadata.name=<name>` (or `==`) field selector of one term.
fn single_name(selector: &str) -> Option<&str> {
    if selector.contains(',') {
        return None;
    }
    let rest = selector.strip_prefix("metadata.name")?;
    let name = rest.strip_prefix("==").or_else(|| rest.strip_prefix('='))?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            uid: String::new(),
            groups: vec![],
        }
    }

    fn attrs(method: Method, path: &str, query: &str) -> Attributes {
        Attributes::from_request(user(), &method, path, &Query::parse(Some(query)))
    }

    fn res(a: &Attributes) -> (&str, &str, &str, &str, &str) {
        let r = a.resource().expect("a resource request");
        (
            a.verb.as_str(),
            r.combined_resource().leak(),
            r.namespace.as_str(),
            r.name.as_str(),
            r.group.as_str(),
        )
    }

    #[test]
    fn verbs_follow_method_and_name() {
        let a = attrs(Method::GET, "/api/v1/namespaces/dev/pods", "");
        assert_eq!(res(&a), ("list", "pods", "dev", "", ""));
        let a = attrs(Method::GET, "/api/v1/pods", "watch=true");
        assert_eq!(res(&a), ("watch", "pods", "", "", ""));
        let a = attrs(Method::GET, "/api/v1/watch/namespaces/dev/pods/x", "");
        assert_eq!(res(&a), ("watch", "pods", "dev", "x", ""));
        let a = attrs(Method::PATCH, "/api/v1/namespaces/dev/pods/x/status", "");
        assert_eq!(res(&a), ("patch", "pods/status", "dev", "x", ""));
        let a = attrs(Method::DELETE, "/api/v1/namespaces/dev/pods", "");
        assert_eq!(res(&a), ("deletecollection", "pods", "dev", "", ""));
        let a = attrs(
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "",
        );
        assert_eq!(
            res(&a),
            (
                "create",
                "clusterroles",
                "",
                "",
                "rbac.authorization.k8s.io"
            )
        );
    }

    #[test]
    fn name_selector_and_namespaces_name_themselves() {
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/dev/configmaps",
            "fieldSelector=metadata.name%3Dcfg&watch=1",
        );
        assert_eq!(res(&a), ("watch", "configmaps", "dev", "cfg", ""));
        let a = attrs(Method::GET, "/api/v1/namespaces/dev", "");
        assert_eq!(res(&a), ("get", "namespaces", "dev", "dev", ""));
        let a = attrs(Method::GET, "/healthz", "");
        assert_eq!(a.verb, "get");
        assert_eq!(
            a.target,
            Request::NonResource {
                path: "/healthz".into()
            }
        );
    }
}
