//! Subresources: status, pods/binding, pods/log, replicationcontrollers/scale,
//! namespaces/finalize. Each is a view or a restricted change of the parent
//! object, written through the same update loop.

use axum::body::Bytes;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::codec;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::patch;

use super::read::{self, current};
use super::write::{self, guaranteed_update, Part, WriteOptions};
use super::{object_response, Ctx};

pub(crate) async fn serve(
    ctx: &Ctx<'_>,
    method: Method,
    name: &str,
    sub: &str,
    body: &Bytes,
) -> ApiResult<Response> {
    match (sub, method.clone()) {
        ("status", Method::GET) => read::get(ctx, name).await,
        ("status", Method::PUT) => write::update(ctx, name, body, Part::Status).await,
        ("status", Method::PATCH) => write::patch(ctx, name, body, Part::Status).await,
        ("finalize", Method::PUT) => finalize(ctx, name, body).await,
        ("binding", Method::POST) => bind(ctx, name, body).await,
        ("scale", Method::GET) => {
            let (rc, _) = current(ctx, name).await?;
            Ok(codec::json(StatusCode::OK, &scale_of(&rc)))
        }
        ("scale", Method::PUT) => scale_update(ctx, name, body, false).await,
        ("scale", Method::PATCH) => scale_update(ctx, name, body, true).await,
        ("token", Method::POST) => {
            let (sa, _) = current(ctx, name).await?;
            crate::serviceaccount::request::create(ctx, name, &sa, body)
        }
        ("log", Method::GET) => super::kubelet_proxy::log(ctx, name).await,
        ("exec" | "attach" | "portforward", Method::GET | Method::POST) => {
            super::kubelet_proxy::stream(ctx, method, name, sub).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// POST pods/NAME/binding: assign a pending pod to a node, once.
async fn bind(ctx: &Ctx<'_>, name: &str, body: &Bytes) -> ApiResult<Response> {
    let binding = codec::decode_body(&ctx.headers, body)?;
    if let Some(k) = binding.get("kind").and_then(Value::as_str) {
        if k != "Binding" {
            return Err(ApiError::bad_request(format!(
                "expected a Binding, got {k}"
            )));
        }
    }
    let node = binding["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                ctx.info,
                name,
                &[crate::strategy::FieldError::required("target.name", "")],
            )
        })?
        .to_string();
    let opts = WriteOptions::from_query(&ctx.query)?;
    guaranteed_update(ctx, name, opts, Part::Raw, |cur| {
        if meta::deletion_timestamp(cur).is_some() {
            return Err(ApiError::conflict(
                ctx.info,
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(n) = cur["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(
                ctx.info,
                name,
                &format!("pod {name} is already assigned to node \"{n}\""),
            ));
        }
        let mut pod = cur.clone();
        meta::meta_mut(&mut pod).remove("resourceVersion");
        pod["spec"]["nodeName"] = json!(node);
        set_condition(&mut pod, "PodScheduled", "True");
        Ok(pod)
    })
    .await?;
    Ok(codec::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// Set (or add) a status condition of the given type.
fn set_condition(obj: &mut Value, type_: &str, status: &str) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let now = meta::now();
    let conds = obj["status"]["conditions"]
        .as_array_mut()
        .expect("made an array");
    match conds.iter_mut().find(|c| c["type"] == type_) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
        }
        None => conds.push(json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": now})),
    }
}

/// PUT namespaces/NAME/finalize: only spec.finalizers changes.
async fn finalize(ctx: &Ctx<'_>, name: &str, body: &Bytes) -> ApiResult<Response> {
    let doc = codec::decode_body(&ctx.headers, body)?;
    let finalizers = doc["spec"]["finalizers"].clone();
    let precondition = meta::resource_version(&doc).map(String::from);
    let opts = WriteOptions::from_query(&ctx.query)?;
    let ns = guaranteed_update(ctx, name, opts, Part::Raw, |cur| {
        let mut o = cur.clone();
        match &precondition {
            Some(rv) => meta::meta_mut(&mut o).insert("resourceVersion".into(), json!(rv)),
            None => meta::meta_mut(&mut o).remove("resourceVersion"),
        };
        o["spec"]["finalizers"] = if finalizers.is_null() {
            json!([])
        } else {
            finalizers.clone()
        };
        Ok(o)
    })
    .await?;
    Ok(object_response(ctx, StatusCode::OK, &ns))
}

/// The autoscaling/v1 Scale of a replication controller.
fn scale_of(rc: &Value) -> Value {
    let selector = rc["spec"]["selector"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let md = &rc["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": md["name"],
            "namespace": md["namespace"],
            "uid": md["uid"],
            "resourceVersion": md["resourceVersion"],
            "creationTimestamp": md["creationTimestamp"],
        },
        "spec": {"replicas": rc["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": rc["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// PUT or PATCH replicationcontrollers/NAME/scale: changes spec.replicas.
async fn scale_update(
    ctx: &Ctx<'_>,
    name: &str,
    body: &Bytes,
    is_patch: bool,
) -> ApiResult<Response> {
    let opts = WriteOptions::from_query(&ctx.query)?;
    let patch_doc = if is_patch {
        Some(write::decode_patch(ctx, body)?)
    } else {
        None
    };
    let put_doc = if is_patch {
        None
    } else {
        Some(codec::decode_body(&ctx.headers, body)?)
    };
    let rc = guaranteed_update(ctx, name, opts, Part::Raw, |cur| {
        let scale = match (&patch_doc, &put_doc) {
            (Some((doc, pt)), _) => patch::apply_patch("Scale", &scale_of(cur), *pt, doc)
                .map_err(|e| ApiError::with_code(e.status_code(), e.to_string()))?,
            (_, Some(doc)) => doc.clone(),
            _ => unreachable!("either a patch or a body"),
        };
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                ctx.info,
                name,
                &[crate::strategy::FieldError::invalid(
                    "spec.replicas",
                    replicas,
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut o = cur.clone();
        let explicit = put_doc
            .as_ref()
            .and_then(meta::resource_version)
            .map(String::from);
        match explicit {
            Some(rv) => meta::meta_mut(&mut o).insert("resourceVersion".into(), json!(rv)),
            None => meta::meta_mut(&mut o).remove("resourceVersion"),
        };
        if o["spec"]["replicas"].as_i64() != Some(replicas) {
            o["spec"]["replicas"] = json!(replicas);
            let g = o["metadata"]["generation"].as_i64().unwrap_or(0);
            o["metadata"]["generation"] = json!(g + 1);
        }
        Ok(o)
    })
    .await?;
    Ok(codec::json(StatusCode::OK, &scale_of(&rc)))
}
