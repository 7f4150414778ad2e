//! JSON object -> Kubernetes protobuf response body, the inverse of json.rs,
//! driven by the same schema (table.rs).
//!
//! Fields are written in field-number order, as Go's marshaller does. A JSON
//! field that is absent or null is not written; readers take it as the zero
//! value or nil, which is what the JSON meant. JSON fields the schema does not
//! know are skipped.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{Field, Label, Message, Type};
use super::{root, ProtobufError, MAGIC};

/// Deeper than any schema message nests; guards against a recursive schema.
const MAX_DEPTH: usize = 64;

/// Encodes an object (k8s-openapi's JSON form, apiVersion and kind set) as a
/// protobuf response body: `k8s\0` + runtime.Unknown{typeMeta, raw, "", ""}.
/// Kinds without a protobuf schema here give an error whose
/// `is_unsupported()` is true.
pub fn encode_response(obj: &Value) -> Result<Vec<u8>, ProtobufError> {
    let text = |key| obj.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let unsupported = || ProtobufError::UnsupportedKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    };
    let fields = obj.as_object().ok_or_else(unsupported)?;
    let schema = root(api_version, kind).ok_or_else(unsupported)?;
    let raw = message(fields, schema, 0)?;

    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    // contentEncoding and contentType: empty for a plain protobuf object.
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// Encodes the fields of `obj` that `msg` knows.
fn message(
    obj: &Map<String, Value>,
    msg: &Message,
    depth: usize,
) -> Result<Vec<u8>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(unencodable("objects nested too deep"));
    }
    let mut out = Vec::new();
    for field in msg.fields {
        write_field(&mut out, obj, field, depth).map_err(|e| e.within(field.json))?;
    }
    Ok(out)
}

fn write_field(
    out: &mut Vec<u8>,
    obj: &Map<String, Value>,
    field: &Field,
    depth: usize,
) -> Result<(), ProtobufError> {
    if field.label == Label::Inline {
        // An embedded Go struct: its JSON fields sit in the parent's object.
        let Type::Message(inner) = field.ty else {
            return Err(unencodable("inline field is not a message"));
        };
        let bytes = message(obj, inner, depth + 1)?;
        put_bytes(out, field.number, &bytes);
        return Ok(());
    }
    let value = match obj.get(field.json) {
        None | Some(Value::Null) => return Ok(()),
        Some(v) => v,
    };
    match field.label {
        Label::Single | Label::Inline => put_value(out, field.number, field.ty, value, depth),
        Label::Repeated => {
            let items = value
                .as_array()
                .ok_or_else(|| unencodable("expected an array"))?;
            for item in items.iter().filter(|v| !v.is_null()) {
                put_value(out, field.number, field.ty, item, depth)?;
            }
            Ok(())
        }
        Label::Map => {
            let entries = value
                .as_object()
                .ok_or_else(|| unencodable("expected an object"))?;
            // Sorted keys, as Go writes maps: equal objects, equal bytes.
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            for key in keys {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, key.as_bytes());
                if let Some(v) = entries.get(key).filter(|v| !v.is_null()) {
                    put_value(&mut entry, 2, field.ty, v, depth).map_err(|e| e.within(key))?;
                }
                put_bytes(out, field.number, &entry);
            }
            Ok(())
        }
    }
}

/// Writes one value as field `number`.
fn put_value(
    out: &mut Vec<u8>,
    number: u32,
    ty: Type,
    value: &Value,
    depth: usize,
) -> Result<(), ProtobufError> {
    match ty {
        Type::String => put_bytes(out, number, expect_str(value)?.as_bytes()),
        Type::Bytes => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(expect_str(value)?)
                .map_err(|e| unencodable(format!("invalid base64: {e}")))?;
            put_bytes(out, number, &bytes);
        }
        Type::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| unencodable("expected a boolean"))?;
            put_varint_field(out, number, u64::from(b));
        }
        Type::Int32 => {
            let n = i32::try_from(integer(value)?)
                .map_err(|_| unencodable("number out of int32 range"))?;
            put_varint_field(out, number, i64::from(n) as u64);
        }
        Type::Int64 => put_varint_field(out, number, integer(value)? as u64),
        Type::Message(m) => {
            let obj = value
                .as_object()
                .ok_or_else(|| unencodable("expected an object"))?;
            put_bytes(out, number, &message(obj, m, depth + 1)?);
        }
        Type::Time => put_bytes(out, number, &time(value)?),
        Type::MicroTime => put_bytes(out, number, &time(value)?),
        Type::Quantity => {
            let mut q = Vec::new();
            put_bytes(&mut q, 1, quantity(value)?.as_bytes());
            put_bytes(out, number, &q);
        }
        Type::IntOrString => put_bytes(out, number, &int_or_string(value)?),
        Type::RawJson => {
            let raw = serde_json::to_vec(value)
                .map_err(|e| unencodable(format!("embedded JSON: {e}")))?;
            let mut m = Vec::new();
            put_bytes(&mut m, 1, &raw);
            put_bytes(out, number, &m);
        }
    }
    Ok(())
}

fn expect_str(value: &Value) -> Result<&str, ProtobufError> {
    value
        .as_str()
        .ok_or_else(|| unencodable("expected a string"))
}

/// A JSON integer; a float with no fraction (1.0) is accepted as Go accepts it.
fn integer(value: &Value) -> Result<i64, ProtobufError> {
    let n = value
        .as_number()
        .ok_or_else(|| unencodable("expected a number"))?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        _ => Err(unencodable(format!("expected an integer, got {n}"))),
    }
}

/// meta/v1 Time and MicroTime: RFC 3339 text -> {1: seconds, 2: nanos}.
fn time(value: &Value) -> Result<Vec<u8>, ProtobufError> {
    let text = expect_str(value)?;
    let ts: jiff::Timestamp = text
        .parse()
        .map_err(|e| unencodable(format!("invalid time {text:?}: {e}")))?;
    let mut out = Vec::new();
    put_varint_field(&mut out, 1, ts.as_second() as u64);
    put_varint_field(&mut out, 2, i64::from(ts.subsec_nanosecond()) as u64);
    Ok(out)
}

/// resource.Quantity: JSON has its string form (a bare number is allowed too).
fn quantity(value: &Value) -> Result<String, ProtobufError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(unencodable("expected a quantity string")),
    }
}

/// intstr.IntOrString: {1: type (0 int, 1 string), 2: intVal, 3: strVal};
/// all three are written, as Go does.
fn int_or_string(value: &Value) -> Result<Vec<u8>, ProtobufError> {
    let (kind, int, text) = match value {
        Value::String(s) => (1, 0, s.as_str()),
        Value::Number(_) => {
            let n = i32::try_from(integer(value)?)
                .map_err(|_| unencodable("number out of int32 range"))?;
            (0, n, "")
        }
        _ => return Err(unencodable("expected a number or a string")),
    };
    let mut out = Vec::new();
    put_varint_field(&mut out, 1, kind);
    put_varint_field(&mut out, 2, i64::from(int) as u64);
    put_bytes(&mut out, 3, text.as_bytes());
    Ok(out)
}

fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, value);
}

/// A length-delimited record (wire type 2).
fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn unencodable(msg: impl Into<String>) -> ProtobufError {
    ProtobufError::Unencodable {
        path: String::new(),
        msg: msg.into(),
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
