//! Protobuf message -> the JSON that Go's encoding/json gives for the same
//! object, driven by the schema in table.rs.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::schema::{Field, Label, Message, Type, Zero};
use super::wire::{self, records};
use super::{malformed, ProtobufError};

/// How deep messages may nest. The schema itself nests less than 20 deep;
/// the bound keeps a hostile body from exhausting the stack should the schema
/// ever gain a recursive type.
const MAX_DEPTH: usize = 64;

/// Decodes one message into a JSON object.
pub(super) fn message(bytes: &[u8], msg: &Message) -> Result<Map<String, Value>, ProtobufError> {
    nested(bytes, msg, 0)
}

fn nested(bytes: &[u8], msg: &Message, depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut obj = Map::new();
    fill(&mut obj, bytes, msg, depth)?;
    Ok(obj)
}

/// Adds the fields of `bytes` to `obj` (inline fields share the parent's object).
fn fill(
    obj: &mut Map<String, Value>,
    bytes: &[u8],
    msg: &Message,
    depth: usize,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(malformed("messages nested too deep"));
    }
    for record in records(bytes) {
        let (number, value) = record?;
        // Unknown fields are skipped, as every protobuf reader does.
        let Some(field) = msg.field(number) else {
            continue;
        };
        add(obj, field, value, depth).map_err(|e| e.within(field.json))?;
    }
    Ok(())
}

fn add(
    obj: &mut Map<String, Value>,
    field: &Field,
    value: wire::Value,
    depth: usize,
) -> Result<(), ProtobufError> {
    match field.label {
        Label::Single => {
            if let Some(v) = convert(field.ty, value, depth)? {
                if field.zero == Zero::Keep || !is_zero(&v) {
                    obj.insert(field.json.to_string(), v);
                }
            }
        }
        Label::Repeated => {
            let list = slot(obj, field.json, || Value::Array(Vec::new()));
            let Value::Array(items) = list else {
                return Err(malformed("repeated field collides with another"));
            };
            push_repeated(items, field.ty, value, depth)?;
        }
        Label::Map => {
            let (key, v) = map_entry(field.ty, value, depth)?;
            let map = slot(obj, field.json, || Value::Object(Map::new()));
            let Value::Object(entries) = map else {
                return Err(malformed("map field collides with another"));
            };
            entries.insert(key, v);
        }
        Label::Inline => {
            let (Type::Message(inner), wire::Value::Bytes(bytes)) = (field.ty, value) else {
                return Err(wrong_wire_type(value));
            };
            fill(obj, bytes, inner, depth + 1)?;
        }
    }
    Ok(())
}

fn slot<'m>(obj: &'m mut Map<String, Value>, key: &str, empty: fn() -> Value) -> &'m mut Value {
    obj.entry(key.to_string()).or_insert_with(empty)
}

/// Repeated numbers and bools may come packed (one length-delimited record).
fn push_repeated(
    items: &mut Vec<Value>,
    ty: Type,
    value: wire::Value,
    depth: usize,
) -> Result<(), ProtobufError> {
    match (ty, value) {
        (Type::Bool | Type::Int32 | Type::Int64, wire::Value::Bytes(mut packed)) => {
            while !packed.is_empty() {
                let n = wire::varint(&mut packed)?;
                items.extend(convert(ty, wire::Value::Varint(n), depth)?);
            }
        }
        _ => items.push(convert(ty, value, depth)?.unwrap_or(Value::Null)),
    }
    Ok(())
}

/// A map entry message: key 1 (always a string here), value 2.
fn map_entry(ty: Type, value: wire::Value, depth: usize) -> Result<(String, Value), ProtobufError> {
    let wire::Value::Bytes(bytes) = value else {
        return Err(wrong_wire_type(value));
    };
    let (mut key, mut val) = (String::new(), None);
    for record in records(bytes) {
        match record? {
            (1, v) => key = string(v)?,
            (2, v) => val = convert(ty, v, depth).map_err(|e| e.within(&key))?,
            _ => {}
        }
    }
    // An absent value is the type's zero value, as in Go.
    Ok((key, val.unwrap_or_else(|| zero_value(ty))))
}

/// One value; None when it stands for "not set" (a zero Time, empty raw JSON).
fn convert(ty: Type, value: wire::Value, depth: usize) -> Result<Option<Value>, ProtobufError> {
    let v = match (ty, value) {
        (Type::String, v) => Value::String(string(v)?),
        (Type::Bytes, wire::Value::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Type::Bool, wire::Value::Varint(n)) => Value::Bool(n != 0),
        // int32 travels as a sign-extended 64-bit varint; truncation is the rule.
        (Type::Int32, wire::Value::Varint(n)) => Value::from(n as i64 as i32),
        (Type::Int64, wire::Value::Varint(n)) => Value::from(n as i64),
        (Type::Message(m), wire::Value::Bytes(b)) => Value::Object(nested(b, m, depth + 1)?),
        (Type::Time, wire::Value::Bytes(b)) => return time(b, "%Y-%m-%dT%H:%M:%SZ"),
        (Type::MicroTime, wire::Value::Bytes(b)) => return time(b, "%Y-%m-%dT%H:%M:%S%.6fZ"),
        (Type::Quantity, wire::Value::Bytes(b)) => quantity(b)?,
        (Type::IntOrString, wire::Value::Bytes(b)) => int_or_string(b)?,
        (Type::RawJson, wire::Value::Bytes(b)) => return raw_json(b),
        (_, v) => return Err(wrong_wire_type(v)),
    };
    Ok(Some(v))
}

fn string(value: wire::Value) -> Result<String, ProtobufError> {
    let wire::Value::Bytes(b) = value else {
        return Err(wrong_wire_type(value));
    };
    // Go does not check UTF-8 in protobuf strings; its JSON writer replaces bad bytes.
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

fn zero_value(ty: Type) -> Value {
    match ty {
        Type::String | Type::Bytes => Value::String(String::new()),
        Type::Bool => Value::Bool(false),
        Type::Int32 | Type::Int64 | Type::IntOrString => Value::from(0),
        Type::Quantity => Value::String("0".to_string()),
        Type::Message(_) => Value::Object(Map::new()),
        Type::Time | Type::MicroTime | Type::RawJson => Value::Null,
    }
}

/// meta/v1 Time and MicroTime: {1: seconds, 2: nanos}. Go writes a zero time
/// as an empty message, and JSON has null for it.
fn time(bytes: &[u8], format: &str) -> Result<Option<Value>, ProtobufError> {
    let (mut seconds, mut nanos, mut any) = (0i64, 0i32, false);
    for record in records(bytes) {
        match record? {
            (1, wire::Value::Varint(n)) => (seconds, any) = (n as i64, true),
            (2, wire::Value::Varint(n)) => (nanos, any) = (n as i64 as i32, true),
            (1 | 2, v) => return Err(wrong_wire_type(v)),
            _ => {}
        }
    }
    if !any {
        return Ok(None);
    }
    let ts = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| malformed(format!("invalid time: {e}")))?;
    let text = jiff::fmt::strtime::format(format, ts)
        .map_err(|e| malformed(format!("invalid time: {e}")))?;
    Ok(Some(Value::String(text)))
}

/// resource.Quantity: {1: string}; a zero Quantity prints as "0" in Go.
fn quantity(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut text = String::new();
    for record in records(bytes) {
        if let (1, v) = record? {
            text = string(v)?;
        }
    }
    if text.is_empty() {
        text.push('0');
    }
    Ok(Value::String(text))
}

/// intstr.IntOrString: {1: type (0 int, 1 string), 2: intVal, 3: strVal}.
fn int_or_string(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let (mut is_string, mut int, mut text) = (false, 0i32, String::new());
    for record in records(bytes) {
        match record? {
            (1, wire::Value::Varint(n)) => is_string = n == 1,
            (2, wire::Value::Varint(n)) => int = n as i64 as i32,
            (3, v) => text = string(v)?,
            (1 | 2, v) => return Err(wrong_wire_type(v)),
            _ => {}
        }
    }
    Ok(if is_string {
        Value::String(text)
    } else {
        Value::Number(Number::from(int))
    })
}

/// FieldsV1 / RawExtension: {1: raw JSON bytes}; empty is Go's null.
fn raw_json(bytes: &[u8]) -> Result<Option<Value>, ProtobufError> {
    let mut raw: &[u8] = &[];
    for record in records(bytes) {
        match record? {
            (1, wire::Value::Bytes(b)) => raw = b,
            (1, v) => return Err(wrong_wire_type(v)),
            _ => {}
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|e| malformed(format!("embedded JSON: {e}")))
}

fn wrong_wire_type(value: wire::Value) -> ProtobufError {
    let kind = match value {
        wire::Value::Varint(_) => "varint",
        wire::Value::Fixed64(_) => "fixed64",
        wire::Value::Bytes(_) => "length-delimited",
        wire::Value::Fixed32(_) => "fixed32",
    };
    malformed(format!("unexpected {kind} value"))
}
