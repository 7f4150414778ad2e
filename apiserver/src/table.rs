//! Server-side printing: `meta.k8s.io` Tables (what `kubectl get` shows) and
//! PartialObjectMetadata, built from each kind's columns and cells.

use serde_json::{json, Value};

use crate::meta;
use crate::registry::ResourceInfo;

/// `includeObject` of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn meta_api_version(v1beta1: bool) -> &'static str {
    if v1beta1 {
        "meta.k8s.io/v1beta1"
    } else {
        "meta.k8s.io/v1"
    }
}

/// PartialObjectMetadata of one object.
pub fn partial_metadata(obj: &Value, v1beta1: bool) -> Value {
    partial_metadata_of(
        obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        v1beta1,
    )
}

fn partial_metadata_of(metadata: Value, v1beta1: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": metadata,
    })
}

/// An object to show: parsed already, or JSON bytes (a list from the watch
/// cache), which are decoded one at a time, straight into what is needed.
pub enum Source<'a> {
    Tree(Value),
    Json(&'a [u8]),
}

impl Source<'_> {
    fn into_tree(self) -> Value {
        match self {
            Source::Tree(v) => v,
            Source::Json(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        }
    }

    /// The object's metadata, without building the rest of it.
    fn metadata(self) -> Value {
        #[derive(serde::Deserialize)]
        struct OnlyMetadata {
            metadata: Option<Value>,
        }
        match self {
            Source::Tree(v) => v.get("metadata").cloned(),
            Source::Json(bytes) => serde_json::from_slice::<OnlyMetadata>(bytes)
                .ok()
                .and_then(|o| o.metadata),
        }
        .unwrap_or_else(|| json!({}))
    }
}

/// PartialObjectMetadataList of objects.
/// Objects come one at a time (a list parses each from the cache's bytes
/// only while its item is made).
pub fn partial_metadata_list<'a>(
    objs: impl IntoIterator<Item = Source<'a>>,
    list_meta: Value,
    v1beta1: bool,
) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": list_meta,
        "items": objs
            .into_iter()
            .map(|o| partial_metadata_of(o.metadata(), v1beta1))
            .collect::<Vec<_>>(),
    })
}

/// The age cell of an object, as upstream prints it ("<unknown>" without a
/// creationTimestamp).
pub fn age_text(obj: &Value) -> String {
    age_since(
        meta::str_field(obj, "creationTimestamp").and_then(|t| t.parse::<jiff::Timestamp>().ok()),
    )
}

/// The same from a creationTimestamp already parsed (a typed object's).
pub fn age_since(created: Option<jiff::Timestamp>) -> String {
    match created {
        Some(ts) => {
            let secs = (jiff::Timestamp::now() - ts).get_seconds().max(0);
            crate::registry::kinds::human_duration(std::time::Duration::from_secs(secs as u64))
        }
        None => "<unknown>".to_string(),
    }
}

/// A Table of `objs` with the kind's columns. Objects come one at a time, so
/// that a list of thousands never holds all of them parsed at once.
pub fn table<'a>(
    info: &ResourceInfo,
    objs: impl IntoIterator<Item = Source<'a>>,
    list_meta: Value,
    include: IncludeObject,
    v1beta1: bool,
    with_columns: bool,
) -> Value {
    let columns: Vec<Value> = if with_columns {
        info.strategy
            .columns()
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objs
        .into_iter()
        .map(|src| {
            let typed = match (&src, include) {
                (Source::Json(bytes), IncludeObject::None | IncludeObject::Metadata) => {
                    info.strategy.cells_and_metadata(bytes)
                }
                _ => None,
            };
            let (cells, object) = match typed {
                Some((cells, metadata)) => (
                    cells,
                    (include == IncludeObject::Metadata)
                        .then(|| partial_metadata_of(metadata, v1beta1)),
                ),
                None => {
                    let o = src.into_tree();
                    let cells = info.strategy.cells(&o, &age_text(&o));
                    let object = match include {
                        IncludeObject::None => None,
                        IncludeObject::Metadata => Some(partial_metadata(&o, v1beta1)),
                        IncludeObject::Object => Some(o),
                    };
                    (cells, object)
                }
            };
            let mut row = json!({ "cells": cells });
            if let Some(o) = object {
                row["object"] = o;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    /// A list from the watch cache decodes each object's bytes straight into
    /// its type; the rows must be the ones a parsed object gives.
    #[test]
    fn rows_from_json_bytes_equal_rows_from_trees() {
        let reg = Registry::new();
        let pods = reg.find("", "v1", "pods").unwrap();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "resourceVersion": "7",
                         "labels": {"app": "web"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5",
                       "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2,
                           "image": "nginx", "imageID": "", "state": {"running": {}}}]},
        });
        let bytes = serde_json::to_vec(&pod).unwrap();
        for include in [IncludeObject::None, IncludeObject::Metadata] {
            let from_bytes = table(
                pods,
                [Source::Json(&bytes)],
                json!({}),
                include,
                false,
                true,
            );
            let from_tree = table(
                pods,
                [Source::Tree(pod.clone())],
                json!({}),
                include,
                false,
                true,
            );
            assert_eq!(from_bytes, from_tree);
            assert_eq!(from_bytes["rows"][0]["cells"][0], "web-1");
            assert_eq!(from_bytes["rows"][0]["cells"][1], "1/1");
        }
        let meta = partial_metadata_list([Source::Json(&bytes)], json!({}), false);
        assert_eq!(meta["items"][0]["metadata"], pod["metadata"]);
        // Bytes that are not a pod still make a row (from the tree path).
        let t = table(
            pods,
            [Source::Json(b"{}")],
            json!({}),
            IncludeObject::None,
            false,
            true,
        );
        assert_eq!(t["rows"].as_array().unwrap().len(), 1);
    }
}
