//! The OpenAPI documents: `/openapi/v3` (an index), `/openapi/v3/<group path>`
//! (one OpenAPI 3.0 document per group-version, plus the discovery documents
//! `api`, `apis` and `apis/<group>`) and `/openapi/v2` (one Swagger 2.0
//! document for everything).
//!
//! Everything is derived from the registry: paths and operations from each
//! resource's names, scope, verbs and subresources; schemas from k8s-openapi's
//! `JsonSchema` impls, never written by hand. Documents are built once, at
//! start, and kept as serialized bytes with a content hash each (the `hash`
//! query parameter of the index's URLs, which clients cache by).

mod operations;
mod params;
mod render;
mod schemas;

use std::collections::BTreeMap;
use std::hash::Hasher;

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{json, Map, Value};

use crate::registry::Registry;
use operations::{
    capitalize, discovery_path, group_camel, group_tag, gv_prefix, resource_paths, Gvk, PathItem,
};
use schemas::{name_of, Definitions, Style};

/// A serialized document and its hash.
struct Document {
    json: Bytes,
    hash: String,
}

impl Document {
    fn new(value: &Value) -> Self {
        let json = Bytes::from(value.to_string());
        let hash = content_hash(&json);
        Self { json, hash }
    }
}

/// A 128-bit hex digest of the content. Only equality matters (clients treat
/// the hash as an opaque cache key), so std's fixed-key SipHash is enough.
fn content_hash(bytes: &[u8]) -> String {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    a.write(bytes);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    b.write_u8(0x5a);
    b.write(bytes);
    format!("{:016X}{:016X}", a.finish(), b.finish())
}

/// The served OpenAPI documents, built once from the registry.
pub struct OpenApi {
    /// Keyed by index path: "api", "api/v1", "apis", "apis/<group>", "apis/<group>/<version>".
    v3: BTreeMap<String, Document>,
    v2: Document,
}

impl OpenApi {
    pub fn new(reg: &Registry) -> OpenApi {
        let mut v3 = BTreeMap::new();
        for (key, items, defs) in v3_parts(reg) {
            let value = render::v3_document(&items, defs.finish());
            v3.insert(key, Document::new(&value));
        }
        OpenApi {
            v3,
            v2: Document::new(&v2_value(reg)),
        }
    }

    /// The `/openapi/v3` index: every document with its hash-pinned URL.
    pub fn v3_index(&self) -> Value {
        let paths: Map<String, Value> = self
            .v3
            .iter()
            .map(|(key, doc)| {
                let url = format!("/openapi/v3/{key}?hash={}", doc.hash);
                (key.clone(), json!({"serverRelativeURL": url}))
            })
            .collect();
        json!({"paths": paths})
    }

    /// One OpenAPI 3.0 document ("api/v1", "apis/coordination.k8s.io/v1",
    /// "api", ...) as JSON bytes, with its hash.
    pub fn v3_document(&self, path: &str) -> Option<(Bytes, String)> {
        self.v3
            .get(path.trim_matches('/'))
            .map(|doc| (doc.json.clone(), doc.hash.clone()))
    }

    /// The Swagger 2.0 document as JSON bytes.
    pub fn v2_document(&self) -> Bytes {
        self.v2.json.clone()
    }

    /// The Swagger 2.0 document's hash (an ETag).
    pub fn v2_hash(&self) -> &str {
        &self.v2.hash
    }
}

/// Distinct non-core groups in registration order.
fn groups(reg: &Registry) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (group, _) in reg.group_versions() {
        if !group.is_empty() && !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

fn gv_key(group: &str, version: &str) -> String {
    gv_prefix(group, version)
        .trim_start_matches('/')
        .to_string()
}

/// Each v3 document's index key, paths and definitions.
fn v3_parts(reg: &Registry) -> Vec<(String, Vec<PathItem>, Definitions)> {
    let mut out = Vec::new();
    let mut defs = Definitions::new(Style::V3);
    let items = vec![api_versions_path(&mut defs)];
    out.push(("api".to_string(), items, defs));

    let mut defs = Definitions::new(Style::V3);
    let items = vec![group_list_path(&mut defs)];
    out.push(("apis".to_string(), items, defs));

    for group in groups(reg) {
        let mut defs = Definitions::new(Style::V3);
        let items = vec![group_path(group, &mut defs)];
        out.push((format!("apis/{group}"), items, defs));
    }
    for (group, version) in reg.group_versions() {
        let mut defs = Definitions::new(Style::V3);
        let items = group_version_paths(reg, group, version, &mut defs);
        out.push((gv_key(group, version), items, defs));
    }
    out
}

/// The Swagger 2.0 document: every path and definition in one.
fn v2_value(reg: &Registry) -> Value {
    let mut defs = Definitions::new(Style::V2);
    let mut items = vec![api_versions_path(&mut defs), group_list_path(&mut defs)];
    for group in groups(reg) {
        items.push(group_path(group, &mut defs));
    }
    for (group, version) in reg.group_versions() {
        items.extend(group_version_paths(reg, group, version, &mut defs));
    }
    render::v2_document(&items, defs.finish())
}

/// A meta type answered by discovery, tagged with its core/v1 kind.
fn meta_kind(defs: &mut Definitions, definition: &str) -> String {
    let kind = definition.rsplit('.').next().unwrap_or(definition);
    defs.add_kind(definition, Gvk::new("", "v1", kind));
    definition.to_string()
}

fn api_versions_path(defs: &mut Definitions) -> PathItem {
    let def = meta_kind(defs, &name_of::<meta::APIVersions>());
    discovery_path(
        "/api/",
        "getCoreAPIVersions",
        "get available API versions",
        "core",
        &def,
    )
}

fn group_list_path(defs: &mut Definitions) -> PathItem {
    let def = meta_kind(defs, &name_of::<meta::APIGroupList>());
    discovery_path(
        "/apis/",
        "getAPIVersions",
        "get available API versions",
        "apis",
        &def,
    )
}

fn group_path(group: &str, defs: &mut Definitions) -> PathItem {
    let def = meta_kind(defs, &name_of::<meta::APIGroup>());
    discovery_path(
        &format!("/apis/{group}/"),
        &format!("get{}APIGroup", group_camel(group)),
        "get information of a group",
        &group_tag(group),
        &def,
    )
}

/// A group-version's paths: its resource list, then every resource's paths.
fn group_version_paths(
    reg: &Registry,
    group: &str,
    version: &str,
    defs: &mut Definitions,
) -> Vec<PathItem> {
    let def = meta_kind(defs, &name_of::<meta::APIResourceList>());
    let mut items = vec![discovery_path(
        &format!("{}/", gv_prefix(group, version)),
        &format!(
            "get{}{}APIResources",
            group_camel(group),
            capitalize(version)
        ),
        "get available resources",
        &format!("{}_{version}", group_tag(group)),
        &def,
    )];
    for r in reg
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        items.extend(resource_paths(r, defs));
    }
    // As upstream, the meta types operations use name the kinds they stand for.
    let status = name_of::<meta::Status>();
    let delete_options = name_of::<meta::DeleteOptions>();
    if items.len() > 1 {
        defs.add_kind(&status, Gvk::new("", "v1", "Status"));
        for (g, v) in [("", "v1"), (group, version)] {
            defs.add_kind(&delete_options, Gvk::new(g, v, "DeleteOptions"));
        }
    }
    items
}

#[cfg(test)]
mod tests;
