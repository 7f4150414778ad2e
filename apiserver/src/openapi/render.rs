//! Renders the operations model and the collected definitions as an OpenAPI
//! 3.0 document or a Swagger 2.0 document, in upstream's shapes.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::operations::{Operation, PathItem, Payload};
use super::params::Param;
use super::schemas::Style;

/// `info.version`: the Kubernetes release whose API this server speaks.
const API_RELEASE: &str = "v1.33.0";

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "",
    }
}

fn payload_schema(style: Style, payload: &Payload) -> Value {
    match payload {
        Payload::Definition(d) => json!({"$ref": style.reference(d)}),
        Payload::Text => json!({"type": "string"}),
    }
}

/// The fields both flavours share, in upstream's (sorted) key order.
fn common_fields(op: &Operation) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("description".into(), op.description.clone().into());
    o.insert("operationId".into(), op.id.clone().into());
    o
}

fn extensions(op: &Operation, o: &mut Map<String, Value>) {
    o.insert("tags".into(), json!([op.tag]));
    if let Some(action) = op.action {
        o.insert("x-kubernetes-action".into(), action.into());
    }
    if let Some(gvk) = &op.gvk {
        o.insert("x-kubernetes-group-version-kind".into(), gvk.to_json());
    }
}

fn v3_param(p: &Param) -> Value {
    let mut o = Map::new();
    o.insert("description".into(), p.description.as_ref().into());
    o.insert("in".into(), if p.in_path { "path" } else { "query" }.into());
    o.insert("name".into(), p.name.into());
    if p.in_path {
        o.insert("required".into(), true.into());
    }
    o.insert(
        "schema".into(),
        json!({"type": p.ty.as_str(), "uniqueItems": true}),
    );
    Value::Object(o)
}

fn v3_operation(op: &Operation) -> Value {
    let style = Style::V3;
    let mut o = common_fields(op);
    if !op.params.is_empty() {
        o.insert(
            "parameters".into(),
            op.params.iter().map(v3_param).collect(),
        );
    }
    if let Some(body) = &op.body {
        let schema = json!({"schema": {"$ref": style.reference(&body.definition)}});
        let content: Map<String, Value> = body
            .media_types
            .iter()
            .map(|m| (m.to_string(), schema.clone()))
            .collect();
        let mut rb = Map::new();
        rb.insert("content".into(), Value::Object(content));
        if body.required {
            rb.insert("required".into(), true.into());
        }
        o.insert("requestBody".into(), Value::Object(rb));
    }
    let schema = json!({"schema": payload_schema(style, &op.payload)});
    let content: Map<String, Value> = op
        .media_types
        .iter()
        .map(|m| (m.to_string(), schema.clone()))
        .collect();
    let mut responses = Map::new();
    for code in op.codes {
        responses.insert(
            code.to_string(),
            json!({"content": content, "description": status_text(*code)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    o.insert("responses".into(), Value::Object(responses));
    extensions(op, &mut o);
    Value::Object(o)
}

fn v2_param(p: &Param) -> Value {
    let mut o = Map::new();
    o.insert("description".into(), p.description.as_ref().into());
    o.insert("in".into(), if p.in_path { "path" } else { "query" }.into());
    o.insert("name".into(), p.name.into());
    if p.in_path {
        o.insert("required".into(), true.into());
    }
    o.insert("type".into(), p.ty.as_str().into());
    o.insert("uniqueItems".into(), true.into());
    Value::Object(o)
}

fn v2_operation(op: &Operation) -> Value {
    let style = Style::V2;
    let mut o = common_fields(op);
    let consumes: &[&str] = op.body.as_ref().map_or(&["*/*"], |b| b.media_types);
    o.insert("consumes".into(), json!(consumes));
    o.insert("produces".into(), json!(op.media_types));
    o.insert("schemes".into(), json!(["https"]));
    let mut params: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        let mut b = Map::new();
        b.insert("in".into(), "body".into());
        b.insert("name".into(), "body".into());
        if body.required {
            b.insert("required".into(), true.into());
        }
        b.insert(
            "schema".into(),
            json!({"$ref": style.reference(&body.definition)}),
        );
        params.push(Value::Object(b));
    }
    params.extend(op.params.iter().map(v2_param));
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    let mut responses = Map::new();
    for code in op.codes {
        responses.insert(
            code.to_string(),
            json!({"description": status_text(*code), "schema": payload_schema(style, &op.payload)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    o.insert("responses".into(), Value::Object(responses));
    extensions(op, &mut o);
    Value::Object(o)
}

/// `paths`, sorted by path; operations of items sharing a path are merged.
fn paths(items: &[PathItem], op: fn(&Operation) -> Value, param: fn(&Param) -> Value) -> Value {
    let mut out: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for item in items {
        let entry = out.entry(item.path.as_str()).or_default();
        for o in &item.operations {
            entry.insert(o.method.to_string(), op(o));
        }
        if !item.params.is_empty() && !entry.contains_key("parameters") {
            entry.insert("parameters".into(), item.params.iter().map(param).collect());
        }
    }
    Value::Object(
        out.into_iter()
            .map(|(k, v)| (k.to_string(), Value::Object(v)))
            .collect(),
    )
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": API_RELEASE})
}

/// An OpenAPI 3.0 document.
pub(super) fn v3_document(items: &[PathItem], schemas: Map<String, Value>) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths(items, v3_operation, v3_param),
        "components": {"schemas": schemas},
    })
}

/// A Swagger 2.0 document.
pub(super) fn v2_document(items: &[PathItem], definitions: Map<String, Value>) -> Value {
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths(items, v2_operation, v2_param),
        "definitions": definitions,
    })
}
