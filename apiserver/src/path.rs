//! Parsing of request paths into what they address.
//!
//! `/api/v1/...` and `/apis/<group>/<version>/...`, then
//! `[watch/][namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`, where
//! `namespaces/<name>[/<sub>]` itself addresses the namespaces resource.

/// The resource part of a path, after the group/version prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    /// The legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`
    LegacyVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    Unknown,
}

/// Parse a request path (without the query).
pub fn parse(path: &str) -> Target {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api"] => Target::LegacyVersions,
        ["apis"] => Target::Groups,
        ["apis", group] => Target::Group(group.to_string()),
        ["api", version] => Target::ResourceList {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group, version] => Target::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Target::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Target {
    let (watch_prefix, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    if rest.iter().any(|s| s.is_empty()) {
        return Target::Unknown;
    }
    let owned = |s: &&str| s.to_string();
    let (namespace, resource, name, subresource) = match rest {
        // namespaces/<ns>/<resource>[/<name>[/<sub>]]: a namespaced resource,
        // except `namespaces/<name>/<sub>` for the namespaces' own subresources.
        ["namespaces", ns, res, tail @ ..]
            if !is_namespace_subresource(res) || !tail.is_empty() =>
        {
            match tail {
                [] => (Some(ns), *res, None, None),
                [name] => (Some(ns), *res, Some(name), None),
                [name, sub] => (Some(ns), *res, Some(name), Some(sub)),
                _ => return Target::Unknown,
            }
        }
        [res] => (None, *res, None, None),
        [res, name] => (None, *res, Some(name), None),
        [res, name, sub] => (None, *res, Some(name), Some(sub)),
        _ => return Target::Unknown,
    };
    Target::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        watch_prefix,
        namespace: namespace.map(owned),
        resource: resource.to_string(),
        name: name.map(owned),
        subresource: subresource.map(owned),
    })
}

fn is_namespace_subresource(s: &str) -> bool {
    matches!(s, "status" | "finalize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(p: &str) -> ResourcePath {
        match parse(p) {
            Target::Resource(r) => r,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_paths() {
        let r = res("/api/v1/namespaces/default/pods/nginx/status");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.name.as_deref(), Some("nginx"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = res("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
        assert_eq!(r.group, "coordination.k8s.io");
        assert_eq!(r.resource, "leases");
        assert_eq!(r.name, None);
    }

    #[test]
    fn namespace_objects_and_their_subresources() {
        let r = res("/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.namespace, r.resource.as_str(), r.name.as_deref()),
            (None, "namespaces", Some("kube-system"))
        );
        let r = res("/api/v1/namespaces/foo/finalize");
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        // A resource named like a subresource inside a namespace.
        let r = res("/api/v1/namespaces/foo/status/x");
        assert_eq!(r.resource, "status");
    }

    #[test]
    fn watch_prefix_and_discovery() {
        let r = res("/api/v1/watch/namespaces/default/pods");
        assert!(r.watch_prefix);
        assert_eq!(parse("/api"), Target::LegacyVersions);
        assert_eq!(
            parse("/apis/coordination.k8s.io"),
            Target::Group("coordination.k8s.io".into())
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/b/c/d"), Target::Unknown);
        assert_eq!(parse("/api/v1/pods//x"), Target::Unknown);
    }
}
