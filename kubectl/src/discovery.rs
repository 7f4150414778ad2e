//! What the server serves (aggregated discovery, with the per-group documents as the
//! fallback), and how kubectl's resource arguments map onto it: plural, singular,
//! short names, kinds, `resource.group`, and categories such as `all`.

use kube::api::ApiResource;
use kube::Client;

use crate::error::{Error, Result};

/// One resource the server serves.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<String>,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    /// `pods` or `leases.coordination.k8s.io`: how errors and messages name the resource.
    pub fn resource_group(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `pod` or `lease.coordination.k8s.io`: the prefix of `-o name` and `kind/name`.
    pub fn kind_group(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// The collection's URL path, in `namespace` for namespaced resources (`None`: all).
    pub fn url_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    fn matches_name(&self, name: &str) -> bool {
        self.plural == name
            || self.singular == name
            || self.kind.to_lowercase() == name
            || self.short_names.iter().any(|s| s == name)
    }
}

/// Every resource the server serves, in the server's order (core group first).
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub resources: Vec<ResourceInfo>,
}

impl Discovery {
    pub async fn load(client: &Client) -> Result<Self> {
        match Self::load_aggregated(client).await {
            Ok(d) if !d.resources.is_empty() => Ok(d),
            Err(e @ Error::Connection { .. }) => Err(e),
            _ => Self::load_legacy(client).await,
        }
    }

    async fn load_aggregated(client: &Client) -> Result<Self> {
        let mut resources = Vec::new();
        let core = client.list_core_api_versions_aggregated().await?;
        let groups = client.list_api_groups_aggregated().await?;
        for group in core.items.iter().chain(groups.items.iter()) {
            let group_name = group
                .metadata
                .as_ref()
                .and_then(|m| m.name.clone())
                .unwrap_or_default();
            // The first version is the preferred one.
            let Some(version) = group.versions.first() else {
                continue;
            };
            for r in &version.resources {
                let Some(plural) = r.resource.clone() else {
                    continue;
                };
                let kind = r
                    .response_kind
                    .as_ref()
                    .and_then(|k| k.kind.clone())
                    .unwrap_or_default();
                resources.push(ResourceInfo {
                    group: group_name.clone(),
                    version: version.version.clone().unwrap_or_default(),
                    singular: r
                        .singular_resource
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| kind.to_lowercase()),
                    plural,
                    kind,
                    namespaced: r.scope.as_deref() == Some("Namespaced"),
                    verbs: r.verbs.clone(),
                    short_names: r.short_names.clone(),
                    categories: r.categories.clone(),
                    subresources: r
                        .subresources
                        .iter()
                        .filter_map(|s| s.subresource.clone())
                        .collect(),
                });
            }
        }
        Ok(Self { resources })
    }

    async fn load_legacy(client: &Client) -> Result<Self> {
        let mut lists = Vec::new();
        let core = client.list_core_api_versions().await?;
        for v in &core.versions {
            lists.push((String::new(), client.list_core_api_resources(v).await?));
        }
        let groups = client.list_api_groups().await?;
        for g in &groups.groups {
            let Some(version) = g.preferred_version.as_ref().or(g.versions.first()) else {
                continue;
            };
            lists.push((
                g.name.clone(),
                client
                    .list_api_group_resources(&version.group_version)
                    .await?,
            ));
        }
        let mut resources: Vec<ResourceInfo> = Vec::new();
        for (group, list) in lists {
            let version = list
                .group_version
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            for r in &list.resources {
                if let Some((parent, sub)) = r.name.split_once('/') {
                    if let Some(p) = resources
                        .iter_mut()
                        .find(|p| p.group == group && p.plural == parent)
                    {
                        p.subresources.push(sub.to_string());
                    }
                    continue;
                }
                resources.push(ResourceInfo {
                    group: group.clone(),
                    version: version.clone(),
                    plural: r.name.clone(),
                    singular: if r.singular_name.is_empty() {
                        r.kind.to_lowercase()
                    } else {
                        r.singular_name.clone()
                    },
                    kind: r.kind.clone(),
                    namespaced: r.namespaced,
                    verbs: r.verbs.clone(),
                    short_names: r.short_names.clone().unwrap_or_default(),
                    categories: r.categories.clone().unwrap_or_default(),
                    subresources: Vec::new(),
                });
            }
        }
        Ok(Self { resources })
    }

    /// The resources one type argument names: `po`, `pods`, `Pod`, `pods.v1.`,
    /// `leases.coordination.k8s.io`, or a category (`all`).
    pub fn resolve(&self, arg: &str) -> Result<Vec<ResourceInfo>> {
        let lower = arg.to_lowercase();
        if let Some(found) = self.find(&lower) {
            return Ok(vec![found.clone()]);
        }
        let in_category: Vec<ResourceInfo> = self
            .resources
            .iter()
            .filter(|r| r.categories.contains(&lower))
            .cloned()
            .collect();
        if !in_category.is_empty() {
            return Ok(in_category);
        }
        Err(Error::NoResourceType(arg.to_string()))
    }

    /// Exactly one resource for `arg` (a category is an error here).
    pub fn resolve_one(&self, arg: &str) -> Result<ResourceInfo> {
        self.find(&arg.to_lowercase())
            .cloned()
            .ok_or_else(|| Error::NoResourceType(arg.to_string()))
    }

    fn find(&self, lower: &str) -> Option<&ResourceInfo> {
        // `resource`, `resource.group` or `resource.version.group`.
        let (name, qualifier) = match lower.split_once('.') {
            Some((n, q)) => (n, Some(q)),
            None => (lower, None),
        };
        self.resources.iter().find(|r| {
            r.matches_name(name)
                && match qualifier {
                    None => true,
                    Some(q) => {
                        let q = q.trim_end_matches('.');
                        q == r.group
                            || q == format!("{}.{}", r.version, r.group).trim_end_matches('.')
                            || (q == r.version && r.group.is_empty())
                    }
                }
        })
    }

    /// The resource serving `kind` in `apiVersion` (for objects read from files).
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &str, plural: &str, kind: &str, short: &[&str], cats: &[&str]) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced: true,
            verbs: vec!["get".into(), "list".into()],
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            subresources: vec![],
        }
    }

    #[test]
    fn names_resolve_like_kubectl() {
        let d = Discovery {
            resources: vec![
                info("", "pods", "Pod", &["po"], &["all"]),
                info(
                    "",
                    "replicationcontrollers",
                    "ReplicationController",
                    &["rc"],
                    &["all"],
                ),
                info("coordination.k8s.io", "leases", "Lease", &[], &[]),
            ],
        };
        for arg in ["po", "pods", "pod", "Pod", "PODS", "pods.v1.", "pods.v1"] {
            assert_eq!(d.resolve(arg).unwrap()[0].plural, "pods", "{arg}");
        }
        assert_eq!(
            d.resolve("leases.coordination.k8s.io").unwrap()[0].plural,
            "leases"
        );
        assert_eq!(
            d.resolve("lease").unwrap()[0].kind_group(),
            "lease.coordination.k8s.io"
        );
        assert_eq!(d.resolve("all").unwrap().len(), 2);
        assert_eq!(
            d.resolve("foo").unwrap_err().to_string(),
            "error: the server doesn't have a resource type \"foo\""
        );
        assert_eq!(
            d.resolve("rc").unwrap()[0].url_path(Some("default")),
            "/api/v1/namespaces/default/replicationcontrollers"
        );
    }
}
