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
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// PartialObjectMetadataList of objects.
pub fn partial_metadata_list(objs: &[&Value], list_meta: Value, v1beta1: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": list_meta,
        "items": objs.iter().map(|o| partial_metadata(o, v1beta1)).collect::<Vec<_>>(),
    })
}

/// The age cell of an object, as upstream prints it ("<unknown>" without a
/// creationTimestamp).
pub fn age_text(obj: &Value) -> String {
    match meta::age(obj) {
        Some(d) => crate::registry::kinds::human_duration(d),
        None => "<unknown>".to_string(),
    }
}

/// A Table of `objs` with the kind's columns.
pub fn table(
    info: &ResourceInfo,
    objs: &[&Value],
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
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": info.strategy.cells(o, &age_text(o)) });
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o, v1beta1),
                IncludeObject::Object => row["object"] = (*o).clone(),
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
