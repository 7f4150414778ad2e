//! The registry of kinds: each served resource is listed once, with its
//! names, scope, subresources and strategy. Routes, discovery and OpenAPI are
//! all derived from this list.

pub mod kinds;

use crate::strategy::Strategy;

/// What every served resource supports (discovery's verbs).
pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource (a kind at a group/version).
pub struct ResourceInfo {
    /// API group; "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The resource (plural) name used in paths, e.g. "pods".
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Discovery categories, e.g. ["all"].
    pub categories: &'static [&'static str],
    /// Subresources served under `<plural>/<name>/<sub>`, e.g. ["status", "binding"].
    pub subresources: &'static [&'static str],
    /// The kind keeps a status that the main resource's writes cannot change
    /// (only `<plural>/status` can), and whose spec `/status` cannot change.
    pub has_status: bool,
    /// The OpenAPI definition name, e.g. "io.k8s.api.core.v1.Pod".
    pub definition: &'static str,
    pub strategy: Box<dyn Strategy>,
}

impl ResourceInfo {
    /// "v1" or "group/version".
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The (group-qualified) resource name as in messages: "pods", "leases.coordination.k8s.io".
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether metadata.generation counts spec changes.
    pub fn tracks_generation(&self) -> bool {
        self.strategy.tracks_generation()
    }

    /// Verbs for discovery.
    pub fn verbs(&self) -> &'static [&'static str] {
        &VERBS
    }
}

/// All served resources.
pub struct Registry {
    pub resources: Vec<ResourceInfo>,
}

impl Registry {
    /// The registry of every kind this apiserver serves.
    pub fn new() -> Self {
        Self {
            resources: kinds::all(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Distinct (group, version) pairs in registration order.
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for r in &self.resources {
            if !out.contains(&(r.group, r.version)) {
                out.push((r.group, r.version));
            }
        }
        out
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}
