//! Wire encodings: request bodies in, content negotiation out.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Largest request body accepted, as upstream (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub const JSON: &str = "application/json";
pub const YAML: &str = "application/yaml";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a Content-Type or Accept entry, lower-cased, without parameters.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media_type)
        .unwrap_or_else(|| JSON.to_string())
}

/// Decode a request body that carries an object (create/update/delete options).
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type(headers);
    match ct.as_str() {
        JSON | "" | "*/*" => decode_json(body),
        YAML | "application/yaml+json" | "text/yaml" => decode_yaml(body),
        PROTOBUF => crate::protobuf::decode_request(body).map_err(|e| {
            if e.is_unsupported() {
                ApiError::new(415, "UnsupportedMediaType", e.to_string())
            } else {
                ApiError::bad_request(e.to_string())
            }
        }),
        _ => Err(ApiError::unsupported_media_type(&ct)),
    }
}

pub fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("error converting YAML to JSON: invalid UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// What the client asked to get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// A meta.k8s.io Table (apiVersion v1 or v1beta1).
    Table {
        v1beta1: bool,
    },
    /// PartialObjectMetadata (or ...List for lists).
    Metadata {
        v1beta1: bool,
    },
    /// Kubernetes protobuf (objects, lists and Status; watches and kinds
    /// without a protobuf form are answered in JSON).
    Protobuf,
}

/// Choose the response form from the Accept header: the first entry we can
/// produce wins; an Accept naming only forms we cannot produce is a 406.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<Output> {
    let accept = match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        Some(a) if !a.trim().is_empty() => a,
        _ => return Ok(Output::Json),
    };
    for entry in accept.split(',') {
        if let Some(out) = accept_entry(entry) {
            return Ok(out);
        }
    }
    Err(ApiError::not_acceptable())
}

fn accept_entry(entry: &str) -> Option<Output> {
    let mut parts = entry.split(';').map(str::trim);
    let mt = parts.next().unwrap_or("").to_ascii_lowercase();
    let (mut as_, mut v, mut g) = (None, None, None);
    for p in parts {
        if let Some((k, val)) = p.split_once('=') {
            match k.trim() {
                "as" => as_ = Some(val.trim().to_string()),
                "v" => v = Some(val.trim().to_string()),
                "g" => g = Some(val.trim().to_string()),
                _ => {}
            }
        }
    }
    let json_like = matches!(mt.as_str(), "application/json" | "*/*" | "application/*");
    match as_.as_deref() {
        None => match mt.as_str() {
            "application/json" | "*/*" | "application/*" => Some(Output::Json),
            "application/yaml" => Some(Output::Yaml),
            PROTOBUF => Some(Output::Protobuf),
            _ => None,
        },
        Some(kind) => {
            if !json_like || g.as_deref() != Some("meta.k8s.io") {
                return None;
            }
            let v1beta1 = match v.as_deref() {
                Some("v1") => false,
                Some("v1beta1") => true,
                _ => return None,
            };
            match kind {
                "Table" => Some(Output::Table { v1beta1 }),
                "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                    Some(Output::Metadata { v1beta1 })
                }
                _ => None,
            }
        }
    }
}

/// A response in the negotiated form with the given status code.
pub fn respond(code: StatusCode, output: Output, body: &Value) -> Response {
    if output == Output::Protobuf {
        // A kind without a protobuf form goes out as JSON, which every
        // protobuf-speaking client (client-go, kubectl) also accepts.
        if let Ok(bytes) = crate::protobuf::encode_response(body) {
            return (code, [(header::CONTENT_TYPE, PROTOBUF)], bytes).into_response();
        }
    }
    if output == Output::Yaml {
        match serde_saphyr::to_string(body) {
            Ok(text) => return (code, [(header::CONTENT_TYPE, YAML)], text).into_response(),
            Err(e) => return ApiError::internal(e.to_string()).into_response(),
        }
    }
    json(code, body)
}

pub fn json(code: StatusCode, body: &Value) -> Response {
    json_bytes(code, serde_json::to_vec(body).unwrap_or_default())
}

/// A response of already serialised JSON.
pub fn json_bytes(code: StatusCode, bytes: Vec<u8>) -> Response {
    (code, [(header::CONTENT_TYPE, JSON)], bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(s: &str) -> ApiResult<Output> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(s).unwrap());
        negotiate(&h)
    }

    #[test]
    fn kubectl_get_asks_for_tables() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(accept(a).unwrap(), Output::Table { v1beta1: false });
    }

    #[test]
    fn protobuf_when_asked_first() {
        let a = "application/vnd.kubernetes.protobuf, */*";
        assert_eq!(accept(a).unwrap(), Output::Protobuf);
        let j = "application/json, application/vnd.kubernetes.protobuf";
        assert_eq!(accept(j).unwrap(), Output::Json);
        // A protobuf Table is not offered: the JSON Table after it wins.
        let t = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(accept(t).unwrap(), Output::Table { v1beta1: false });
        assert_eq!(accept("text/html").unwrap_err().code, 406);
    }

    #[test]
    fn metadata_and_yaml() {
        let a = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(accept(a).unwrap(), Output::Metadata { v1beta1: false });
        assert_eq!(accept("application/yaml").unwrap(), Output::Yaml);
    }

    #[test]
    fn bodies_in_json_and_yaml() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        );
        let v = decode_body(&h, b"kind: Pod\nmetadata:\n  name: x\n").unwrap();
        assert_eq!(v["metadata"]["name"], "x");
        assert_eq!(decode_body(&h, b"kind: [").unwrap_err().code, 400);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(decode_body(&h, b"{}").unwrap_err().code, 415);
    }
}
