//! POST `serviceaccounts/<name>/token` (TokenRequest): a token for the
//! service account, for the requested audiences and lifetime, optionally
//! bound to a pod (then it dies with the pod) or a node.

use axum::body::Bytes;
use axum::response::Response;
use http::StatusCode;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::token::{user_name, Claims, KubernetesClaims, ObjectRef};
use crate::codec;
use crate::error::{ApiError, ApiResult};
use crate::handler::Ctx;
use crate::strategy::FieldError;

/// Upstream's defaults and limits.
const DEFAULT_SECONDS: i64 = 3600;
const MIN_SECONDS: i64 = 600;
const MAX_SECONDS: i64 = 1 << 32;
/// Kubelets ask for this lifetime; such pod-bound tokens live a year (while
/// warning after the hour) so that clients that never re-read the token
/// keep working (upstream's --service-account-extend-token-expiration).
const KUBELET_SECONDS: i64 = 3607;
const EXTENDED_SECONDS: i64 = 365 * 24 * 3600;

fn invalid(name: &str, field: &str, value: i64, detail: &str) -> ApiError {
    ApiError::with_code(
        422,
        format!(
            "TokenRequest.authentication.k8s.io \"{name}\" is invalid: {}",
            FieldError::invalid(field, value, detail)
        ),
    )
}

/// The object a token is bound to, checked against the store: (pod, node).
fn bound_object(
    ctx: &Ctx<'_>,
    namespace: &str,
    service_account: &str,
    kind: &str,
    name: &str,
    uid: Option<&str>,
) -> ApiResult<(Option<ObjectRef>, Option<ObjectRef>)> {
    let (plural, key) = match kind {
        "Pod" => (
            "pods",
            format!("{}/pods/{namespace}/{name}", ctx.api.prefix),
        ),
        "Node" => ("nodes", format!("{}/nodes/{name}", ctx.api.prefix)),
        other => {
            return Err(ApiError::bad_request(format!(
                "cannot bind a token to a {other}: only Pod and Node are supported"
            )))
        }
    };
    let obj = ctx
        .api
        .cache
        .get(&key)
        .ok_or_else(|| ApiError::with_code(404, format!("{plural} \"{name}\" not found")))?
        .value();
    let have = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if uid.is_some_and(|u| !u.is_empty() && u != have) {
        return Err(ApiError::with_code(409, format!(
            "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
            uid.unwrap_or("")
        )));
    }
    let me = ObjectRef {
        name: name.to_string(),
        uid: have.to_string(),
    };
    if kind == "Node" {
        return Ok((None, Some(me)));
    }
    let runs_as = obj
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    if runs_as != service_account {
        return Err(ApiError::bad_request(format!(
            "cannot bind token for serviceaccount \"{service_account}\" to pod running with different serviceaccount name."
        )));
    }
    let node = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let uid = ctx
                .api
                .cache
                .get(&format!("{}/nodes/{n}", ctx.api.prefix))
                .and_then(|o| {
                    o.value()
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_default();
            ObjectRef {
                name: n.to_string(),
                uid,
            }
        });
    Ok((Some(me), node))
}

/// `sa` is the service account as stored.
pub(crate) fn create(ctx: &Ctx<'_>, name: &str, sa: &Value, body: &Bytes) -> ApiResult<Response> {
    let namespace = ctx.ns().unwrap_or("").to_string();
    let mut raw = codec::decode_body(&ctx.headers, body)?;
    // The status is the answer; clients send an empty one.
    if let Some(o) = raw.as_object_mut() {
        o.remove("status");
    }
    let mut req: TokenRequest = serde_json::from_value(raw)
        .map_err(|e| ApiError::bad_request(format!("decoding the TokenRequest: {e}")))?;
    let sa_uid = sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let tokens = &ctx.api.tokens;
    let seconds = req.spec.expiration_seconds.unwrap_or(DEFAULT_SECONDS);
    if seconds < MIN_SECONDS {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > MAX_SECONDS {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if req.spec.audiences.is_empty() {
        req.spec.audiences = tokens.audiences.clone();
    }
    let (pod, node) = match &req.spec.bound_object_ref {
        Some(r) => bound_object(
            ctx,
            &namespace,
            name,
            r.kind.as_deref().unwrap_or(""),
            r.name.as_deref().unwrap_or(""),
            r.uid.as_deref(),
        )?,
        None => (None, None),
    };
    let uid_given = req
        .spec
        .bound_object_ref
        .as_ref()
        .and_then(|r| r.uid.as_deref())
        .is_some_and(|u| !u.is_empty());
    crate::authz::node::admit_token_request(
        ctx.user.as_ref(),
        name,
        pod.is_some(),
        uid_given,
        node.as_ref().map(|n| n.name.as_str()),
    )?;
    let now = jiff::Timestamp::now();
    let extended = seconds == KUBELET_SECONDS && pod.is_some();
    let lifetime = if extended { EXTENDED_SECONDS } else { seconds };
    let claims = Claims {
        iss: tokens.issuer().to_string(),
        sub: user_name(&namespace, name),
        aud: req.spec.audiences.clone(),
        exp: now.as_second() + lifetime,
        iat: now.as_second(),
        nbf: now.as_second(),
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: KubernetesClaims {
            namespace: namespace.clone(),
            serviceaccount: ObjectRef {
                name: name.to_string(),
                uid: sa_uid,
            },
            pod,
            node,
            warnafter: extended.then(|| now.as_second() + seconds),
        },
    };
    let token = tokens
        .issue(&claims)
        .map_err(|e| ApiError::internal(format!("signing the token: {e}")))?;
    req.spec.expiration_seconds = Some(seconds);
    let expires = now
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    req.status = Some(TokenRequestStatus {
        token,
        expiration_timestamp: Time(expires),
    });
    req.metadata.name = Some(name.to_string());
    req.metadata.namespace = Some(namespace);
    let mut out = serde_json::to_value(&req).map_err(|e| ApiError::internal(e.to_string()))?;
    out["apiVersion"] = "authentication.k8s.io/v1".into();
    out["kind"] = "TokenRequest".into();
    Ok(codec::respond(StatusCode::CREATED, ctx.output, &out))
}
