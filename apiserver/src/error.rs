//! API errors: every failure reaches the client as a `metav1.Status` with
//! upstream's code, reason and message.

use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use serde_json::{json, Value};

use crate::registry::ResourceInfo;
use crate::storage::StoreError;
use crate::strategy::FieldError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    /// metav1.StatusReason, e.g. "NotFound".
    pub reason: &'static str,
    pub message: String,
    /// metav1.StatusDetails, if any.
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": info.plural });
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// An error with upstream's reason for `code`.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Expired",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::new(code, reason, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self {
            details: Some(details(info, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", info.qualified_resource(), name),
            )
        }
    }

    /// A 404 for a path that names no resource.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self {
            details: Some(details(info, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", info.qualified_resource(), name),
            )
        }
    }

    pub fn conflict(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self {
            details: Some(details(info, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {}",
                    info.qualified_resource(),
                    name,
                    why
                ),
            )
        }
    }

    /// The 409 of a stale resourceVersion.
    pub fn stale(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// The 409 of a UID precondition that names another object.
    pub fn uid_mismatch(info: &ResourceInfo, name: &str, wanted: &str, actual: &str) -> Self {
        Self::conflict(
            info,
            name,
            &format!(
                "Precondition failed: UID in precondition: {wanted}, UID in object meta: {actual}"
            ),
        )
    }

    pub fn invalid(info: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let list = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!(
                "[{}]",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.kind.reason(), "message": e.message(), "field": e.field}))
            .collect();
        let mut d = json!({ "name": name, "kind": info.kind, "causes": causes });
        if !info.group.is_empty() {
            d["group"] = json!(info.group);
        }
        Self {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                format!("{} \"{}\" is invalid: {}", info.kind, name, list),
            )
        }
    }

    /// A 422 for bad DeleteOptions (upstream validates them as an object of
    /// kind DeleteOptions in group meta.k8s.io).
    pub fn invalid_options(message: String) -> Self {
        Self {
            details: Some(json!({"kind": "DeleteOptions", "group": "meta.k8s.io", "name": ""})),
            ..Self::new(
                422,
                "Invalid",
                format!("DeleteOptions.meta.k8s.io \"\" is invalid: {message}"),
            )
        }
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_old(requested: i64, oldest: i64) -> Self {
        Self::gone(format!("too old resource version: {requested} ({oldest})"))
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"),
        )
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// A store error for an operation on `info`/`name`.
    pub fn from_store(e: StoreError, info: &ResourceInfo, name: &str) -> Self {
        match e {
            StoreError::AlreadyExists(_) => Self::already_exists(info, name),
            StoreError::NotFound(_) => Self::not_found(info, name),
            StoreError::Conflict { .. } => Self::stale(info, name),
            other => Self::from(other),
        }
    }

    /// The metav1.Status document.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Compacted {
                requested,
                compacted,
            } => Self::too_old(requested, compacted),
            StoreError::FutureRevision(rv) => Self::timeout(format!(
                "Too large resource version: {rv}, current: unknown"
            )),
            StoreError::Unavailable(m) => Self::unavailable(m),
            other => Self::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_code_reason_and_details() {
        let reg = crate::registry::Registry::new();
        let pods = reg.find("", "v1", "pods").expect("pods registered");
        let s = ApiError::not_found(pods, "x").status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "pods \"x\" not found");
        assert_eq!(s["details"]["kind"], "pods");
    }
}
