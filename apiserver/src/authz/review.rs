//! The create-only review APIs: SubjectAccessReview (may this user do that?
//! asked by kubelets and other delegating servers), LocalSubjectAccessReview,
//! SelfSubjectAccessReview (`kubectl auth can-i`) and SelfSubjectReview
//! (`kubectl auth whoami`). They store nothing: the answer is the request
//! with its status filled in.

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes as Wanted, SubjectAccessReviewStatus,
};
use serde_json::{json, Value};

use super::attributes::{Attributes, Request, ResourceAttributes};
use super::Decision;
use crate::authn::UserInfo;
use crate::codec;
use crate::error::{ApiError, ApiResult};
use crate::handler::Api;
use crate::path::ResourcePath;

const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";

/// Serves `rp` if it is one of the review resources.
pub fn serve(
    api: &Api,
    method: &http::Method,
    rp: &ResourcePath,
    headers: &HeaderMap,
    body: &[u8],
    user: Option<&UserInfo>,
) -> Option<ApiResult<Response>> {
    let kind = match (rp.group.as_str(), rp.version.as_str(), rp.resource.as_str()) {
        (AUTHORIZATION, "v1", "subjectaccessreviews") => "SubjectAccessReview",
        (AUTHORIZATION, "v1", "selfsubjectaccessreviews") => "SelfSubjectAccessReview",
        (AUTHORIZATION, "v1", "localsubjectaccessreviews") => "LocalSubjectAccessReview",
        (AUTHENTICATION, "v1", "selfsubjectreviews") => "SelfSubjectReview",
        _ => return None,
    };
    Some(review(api, method, rp, kind, headers, body, user))
}

fn review(
    api: &Api,
    method: &http::Method,
    rp: &ResourcePath,
    kind: &str,
    headers: &HeaderMap,
    body: &[u8],
    user: Option<&UserInfo>,
) -> ApiResult<Response> {
    if *method != http::Method::POST || rp.name.is_some() || rp.subresource.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let namespaced = kind == "LocalSubjectAccessReview";
    if namespaced != rp.namespace.is_some() {
        return Err(ApiError::path_not_found());
    }
    let output = codec::negotiate(headers)?;
    let mut obj = codec::decode_body(headers, body)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body of the request is not a {kind} object"
        )));
    }
    let group = if kind == "SelfSubjectReview" {
        AUTHENTICATION
    } else {
        AUTHORIZATION
    };
    obj["apiVersion"] = json!(format!("{group}/v1"));
    obj["kind"] = json!(kind);
    // The plain port has no user and may do anything.
    let requester = user.cloned().unwrap_or_else(|| UserInfo {
        name: String::new(),
        uid: String::new(),
        groups: vec!["system:masters".into()],
    });
    if kind == "SelfSubjectReview" {
        let status = SelfSubjectReviewStatus {
            user_info: Some(k8s_openapi::api::authentication::v1::UserInfo {
                username: Some(requester.name.clone()),
                uid: (!requester.uid.is_empty()).then(|| requester.uid.clone()),
                groups: Some(requester.groups.clone()),
                extra: None,
            }),
        };
        let mut out = serde_json::to_value(SelfSubjectReview::default())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        out["metadata"] = obj.get("metadata").cloned().unwrap_or(json!({}));
        out["status"] =
            serde_json::to_value(status).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(codec::respond(StatusCode::CREATED, output, &out));
    }
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let subject = match kind {
        "SelfSubjectAccessReview" => requester,
        _ => subject_of(&spec, kind)?,
    };
    let target = target_of(&spec, kind, rp.namespace.as_deref())?;
    let a = Attributes {
        user: subject,
        verb: target.0,
        target: target.1,
    };
    let status = match api.authz.authorize(&a) {
        Decision::Allow => SubjectAccessReviewStatus {
            allowed: true,
            ..Default::default()
        },
        Decision::Deny(reason) | Decision::NoOpinion(reason) => SubjectAccessReviewStatus {
            allowed: false,
            reason: (!reason.is_empty()).then_some(reason),
            ..Default::default()
        },
    };
    obj["status"] = serde_json::to_value(status).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(codec::respond(StatusCode::CREATED, output, &obj))
}

fn invalid(kind: &str, field: &str, detail: &str) -> ApiError {
    ApiError::with_code(
        422,
        format!("{kind}.{AUTHORIZATION} \"\" is invalid: {field}: {detail}"),
    )
}

fn subject_of(spec: &Value, kind: &str) -> ApiResult<UserInfo> {
    let name = spec["user"].as_str().unwrap_or("").to_string();
    let groups: Vec<String> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect();
    if name.is_empty() && groups.is_empty() {
        return Err(invalid(
            kind,
            "spec.user",
            "Invalid value: \"\": at least one of user or group must be specified",
        ));
    }
    Ok(UserInfo {
        name,
        uid: spec["uid"].as_str().unwrap_or("").to_string(),
        groups,
    })
}

fn target_of(spec: &Value, kind: &str, namespace: Option<&str>) -> ApiResult<(String, Request)> {
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(r), None) => {
            let r: Wanted = serde_json::from_value(r.clone())
                .map_err(|e| ApiError::bad_request(format!("spec.resourceAttributes: {e}")))?;
            let ns = r.namespace.clone().unwrap_or_default();
            if let Some(path_ns) = namespace {
                if ns != path_ns {
                    return Err(invalid(
                        kind,
                        "spec.resourceAttributes.namespace",
                        &format!("Invalid value: {ns:?}: must match metadata.namespace"),
                    ));
                }
            }
            Ok((
                r.verb.unwrap_or_default(),
                Request::Resource(ResourceAttributes {
                    group: r.group.unwrap_or_default(),
                    version: r.version.unwrap_or_default(),
                    resource: r.resource.unwrap_or_default(),
                    subresource: r.subresource.unwrap_or_default(),
                    namespace: ns,
                    name: r.name.unwrap_or_default(),
                    field_selector: r
                        .field_selector
                        .and_then(|f| f.raw_selector)
                        .unwrap_or_default(),
                }),
            ))
        }
        (None, Some(n)) if namespace.is_none() => {
            let n: NonResourceAttributes = serde_json::from_value(n.clone())
                .map_err(|e| ApiError::bad_request(format!("spec.nonResourceAttributes: {e}")))?;
            Ok((
                n.verb.unwrap_or_default(),
                Request::NonResource {
                    path: n.path.unwrap_or_default(),
                },
            ))
        }
        _ => Err(invalid(
            kind,
            "spec.resourceAttributes",
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}
