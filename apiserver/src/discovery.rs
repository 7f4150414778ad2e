//! Discovery (/api, /apis, resource lists, aggregated discovery v2), the
//! OpenAPI endpoints, /version and the health endpoints: all derived from the
//! registry.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::codec;
use crate::error::{ApiError, ApiResult};
use crate::handler::Api;
use crate::path::Target;
use crate::registry::ResourceInfo;

/// Verbs of subresources, as upstream reports them.
fn subresource_verbs(sub: &str) -> &'static [&'static str] {
    match sub {
        "binding" => &["create"],
        "log" => &["get"],
        "finalize" => &["update"],
        _ => &["get", "patch", "update"],
    }
}

/// The kind a subresource answers with.
fn subresource_kind(info: &ResourceInfo, sub: &str) -> (&'static str, &'static str, &'static str) {
    match sub {
        "scale" => ("autoscaling", "v1", "Scale"),
        "binding" => ("", "v1", "Binding"),
        _ => (info.group, info.version, info.kind),
    }
}

/// Paths that are not API resources. `None` when `path` is not one of them.
pub fn non_resource(
    api: &Api,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<ApiResult<Response>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let resp = match path {
        "/version" | "/version/" => codec::json(StatusCode::OK, &crate::version::info()),
        "/healthz" | "/livez" | "/readyz" => (StatusCode::OK, "ok").into_response(),
        "/openapi/v2" => openapi_v2(api, headers),
        "/openapi/v3" | "/openapi/v3/" => codec::json(StatusCode::OK, &api.openapi.v3_index()),
        p if p.starts_with("/openapi/v3/") => {
            match api.openapi.v3_document(&p["/openapi/v3/".len()..]) {
                Some((bytes, _hash)) => {
                    (StatusCode::OK, [(header::CONTENT_TYPE, codec::JSON)], bytes).into_response()
                }
                None => return Some(Err(ApiError::path_not_found())),
            }
        }
        _ => return None,
    };
    Some(Ok(resp))
}

/// kubectl 1.27/1.28 ask for the v2 document in protobuf first; an empty
/// protobuf answer lets them carry on with what they compiled in.
fn openapi_v2(api: &Api, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first = accept.split(',').next().unwrap_or("").trim();
    if first.starts_with("application/com.github.proto-openapi.spec.v2") {
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            )],
            Vec::<u8>::new(),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, codec::JSON)],
        api.openapi.v2_document(),
    )
        .into_response()
}

/// The aggregated discovery version the client asked for, if any.
fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for entry in accept.split(',') {
        let e = entry.replace(' ', "");
        if e.contains("as=APIGroupDiscoveryList") && e.contains("g=apidiscovery.k8s.io") {
            if e.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if e.contains("v=v2;") || e.ends_with("v=v2") {
                return Some("v2");
            }
        }
        if e.starts_with("application/json") && !e.contains("as=") {
            return None;
        }
    }
    None
}

pub fn serve(
    api: &Api,
    method: &Method,
    target: Target,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    let legacy = matches!(target, Target::LegacyVersions);
    if matches!(target, Target::LegacyVersions | Target::Groups) {
        if let Some(v) = aggregated(headers) {
            let body = aggregated_list(api, legacy, v);
            let ct =
                format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
            return Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, ct)],
                body.to_string(),
            )
                .into_response());
        }
    }
    let body = match target {
        Target::LegacyVersions => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }),
        Target::Groups => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups(api).iter().map(|g| api_group(api, g)).collect::<Vec<_>>(),
        }),
        Target::Group(g) if groups(api).contains(&g.as_str()) => {
            let mut doc = api_group(api, &g);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }
        Target::ResourceList { group, version } => resource_list(api, &group, &version)?,
        _ => return Err(ApiError::path_not_found()),
    };
    Ok(codec::json(StatusCode::OK, &body))
}

/// Named groups (not the legacy core group).
fn groups(api: &Api) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (g, _) in api.registry.group_versions() {
        if !g.is_empty() && !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

fn versions_of(api: &Api, group: &str) -> Vec<&'static str> {
    api.registry
        .group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, v)| v)
        .collect()
}

fn api_group(api: &Api, group: &str) -> Value {
    let versions: Vec<Value> = versions_of(api, group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions.clone(), "preferredVersion": versions[0]})
}

fn resource_list(api: &Api, group: &str, version: &str) -> ApiResult<Value> {
    let rs: Vec<&ResourceInfo> = api
        .registry
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if rs.is_empty() {
        return Err(ApiError::path_not_found());
    }
    let mut resources = Vec::new();
    for r in rs {
        let mut main = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            main["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            main["categories"] = json!(r.categories);
        }
        resources.push(main);
        for sub in r.subresources {
            let (g, v, k) = subresource_kind(r, sub);
            let mut s = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": k,
                "verbs": subresource_verbs(sub),
            });
            if g != r.group || v != r.version {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// apidiscovery.k8s.io APIGroupDiscoveryList for /api (legacy) or /apis.
fn aggregated_list(api: &Api, legacy: bool, v: &str) -> Value {
    let group_names: Vec<&str> = if legacy { vec![""] } else { groups(api) };
    let items: Vec<Value> = group_names
        .iter()
        .map(|g| {
            let versions: Vec<Value> = versions_of(api, g)
                .iter()
                .map(|ver| {
                    let resources: Vec<Value> = api
                        .registry
                        .resources
                        .iter()
                        .filter(|r| r.group == *g && r.version == *ver)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": ver, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut md = json!({"creationTimestamp": null});
            if !g.is_empty() {
                md["name"] = json!(g);
            }
            json!({"metadata": md, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{v}"),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, k) = subresource_kind(r, sub);
            json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": subresource_verbs(sub)})
        })
        .collect();
    let mut doc = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        doc["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        doc["categories"] = json!(r.categories);
    }
    if !subs.is_empty() {
        doc["subresources"] = json!(subs);
    }
    doc
}
