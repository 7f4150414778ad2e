//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`):
//! request bodies decoded into the JSON the JSON path would have received,
//! and response objects encoded from their JSON (encode.rs).
//!
//! A body is the magic `k8s\0` and a runtime.Unknown message: {1: typeMeta
//! {1: apiVersion, 2: kind}, 2: raw (the object's message), 3: contentEncoding,
//! 4: contentType}. The object's message is read straight from the wire with a
//! schema (table.rs) that scripts/gen-protobuf-table.py generates from k8s-pb
//! (field numbers and types) and k8s-openapi (JSON names): no per-type code.

mod encode;
mod json;
mod schema;
mod table;
mod wire;

use serde_json::{Map, Value};

pub use encode::encode_response;

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    #[error("the protobuf body does not start with the Kubernetes prefix \"k8s\\x00\"")]
    MissingMagic,
    #[error("the protobuf body does not name its apiVersion and kind")]
    MissingTypeMeta,
    #[error("protobuf bodies of apiVersion {api_version:?}, kind {kind:?} are not supported; send JSON or YAML")]
    UnsupportedKind { api_version: String, kind: String },
    #[error("protobuf bodies with content encoding {0:?} are not supported; send JSON or YAML")]
    UnsupportedEncoding(String),
    #[error("malformed protobuf body{}: {msg}", at(path))]
    Malformed { path: String, msg: String },
    /// An object whose JSON does not fit its protobuf schema (a server bug).
    #[error("cannot encode the object as protobuf{}: {msg}", at(path))]
    Unencodable { path: String, msg: String },
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl ProtobufError {
    /// True when the body may be fine but this server cannot read it (a 415);
    /// false when the body is broken (a 400).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedKind { .. } | Self::UnsupportedEncoding(_)
        )
    }

    /// Prefixes the JSON field name to the error's path (empty names are inline fields).
    fn within(self, field: &str) -> Self {
        let join = |path: String| {
            if path.is_empty() {
                field.to_string()
            } else {
                format!("{field}.{path}")
            }
        };
        match self {
            Self::Malformed { path, msg } if !field.is_empty() => Self::Malformed {
                path: join(path),
                msg,
            },
            Self::Unencodable { path, msg } if !field.is_empty() => Self::Unencodable {
                path: join(path),
                msg,
            },
            other => other,
        }
    }
}

/// Whether a Content-Type names Kubernetes protobuf (parameters ignored).
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// Decodes a protobuf request body into the object's JSON, with apiVersion
/// and kind set.
pub fn decode_request(body: &[u8]) -> Result<Value, ProtobufError> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let envelope = Unknown::decode(unknown)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(
            envelope.content_encoding,
        ));
    }
    if envelope.kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let schema = root(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        ProtobufError::UnsupportedKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        }
    })?;
    let fields = json::message(envelope.raw, schema)?;
    let mut obj = Map::new();
    if !envelope.api_version.is_empty() {
        obj.insert("apiVersion".into(), Value::String(envelope.api_version));
    }
    obj.insert("kind".into(), Value::String(envelope.kind));
    obj.extend(fields);
    Ok(Value::Object(obj))
}

/// The schema of a kind, if it has one.
fn root(api_version: &str, kind: &str) -> Option<&'static schema::Message> {
    table::ROOTS
        .iter()
        .find(|(v, k, _)| *k == kind && (*v == "*" || *v == api_version))
        .map(|(_, _, schema)| *schema)
}

/// runtime.Unknown, the envelope of every protobuf body.
#[derive(Debug, Default)]
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Unknown<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, ProtobufError> {
        let mut out = Unknown::default();
        for record in wire::records(bytes) {
            match record? {
                (1, wire::Value::Bytes(type_meta)) => {
                    for record in wire::records(type_meta) {
                        match record? {
                            (1, v) => out.api_version = text(v)?,
                            (2, v) => out.kind = text(v)?,
                            _ => {}
                        }
                    }
                }
                (2, wire::Value::Bytes(raw)) => out.raw = raw,
                (3, v) => out.content_encoding = text(v)?,
                // 4 (contentType) is empty for protobuf, the only form we read.
                (1 | 2, _) => {
                    return Err(malformed("runtime.Unknown has a field of the wrong type"))
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn text(value: wire::Value) -> Result<String, ProtobufError> {
    match value {
        wire::Value::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(malformed("runtime.Unknown has a field of the wrong type")),
    }
}

fn malformed(msg: impl Into<String>) -> ProtobufError {
    ProtobufError::Malformed {
        path: String::new(),
        msg: msg.into(),
    }
}

#[cfg(test)]
mod tests;
