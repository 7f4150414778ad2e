//! One object as the watch cache holds it: its JSON (resourceVersion stamped
//! in) and its labels, not a parsed tree. A `serde_json::Value` tree costs
//! about ten times the JSON's size; holding the bytes keeps 10,000 pods in a
//! few tens of MiB, and a LIST or a watch event becomes a copy of bytes.
//! Whoever needs the object's fields parses it (`value`, `decode`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::Value;

use crate::meta;
use crate::registry::ResourceInfo;

pub struct CachedObject {
    json: Box<[u8]>,
    revision: i64,
    labels: BTreeMap<String, String>,
    /// Field-selector attributes, computed on the first field-selected read
    /// (every object under one key prefix is of one kind).
    fields: OnceLock<Box<[(&'static str, String)]>>,
}

impl std::fmt::Debug for CachedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedObject")
            .field("revision", &self.revision)
            .field("json", &String::from_utf8_lossy(&self.json))
            .finish()
    }
}

/// What the cache reads of every object without building a tree.
#[derive(Deserialize)]
struct Head {
    metadata: Option<MetaHead>,
}

#[derive(Deserialize)]
struct MetaHead {
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<IgnoredAny>,
}

impl CachedObject {
    /// From stored bytes at revision `rv`. Stored objects carry no
    /// resourceVersion (it is the key's revision), so it is spliced into the
    /// bytes; anything unusual goes through a parsed tree instead.
    pub fn from_stored(bytes: &[u8], rv: i64) -> Result<Self, serde_json::Error> {
        if let Ok(Head {
            metadata: Some(meta),
        }) = serde_json::from_slice::<Head>(bytes)
        {
            if meta.resource_version.is_none() {
                if let Some(json) = stamp_resource_version(bytes, rv) {
                    return Ok(Self::new(json, rv, meta.labels.unwrap_or_default()));
                }
            }
        }
        let mut v: Value = serde_json::from_slice(bytes)?;
        if !v.is_object() {
            return Err(serde::de::Error::custom(
                "a stored object is not a JSON object",
            ));
        }
        Ok(Self::from_value(&mut v, rv))
    }

    /// From a parsed object, stamping `rv` into it.
    pub fn from_value(v: &mut Value, rv: i64) -> Self {
        meta::set_resource_version(v, rv);
        let json = serde_json::to_vec(v).unwrap_or_default();
        Self::new(json, rv, meta::labels(v))
    }

    fn new(json: Vec<u8>, revision: i64, labels: BTreeMap<String, String>) -> Self {
        Self {
            json: json.into_boxed_slice(),
            revision,
            labels,
            fields: OnceLock::new(),
        }
    }

    /// The same object at another revision (a delete's last state).
    pub fn with_revision(&self, rv: i64) -> Self {
        Self::from_value(&mut self.value(), rv)
    }

    /// The object as JSON, resourceVersion included.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The revision of the write that made this state.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The object as a JSON tree (parsed on each call).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// The object as a typed value, if it is one.
    pub fn decode<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.json).ok()
    }

    /// metadata.name, metadata.namespace and the kind's selectable fields.
    pub fn field_attrs(&self, info: &ResourceInfo) -> &[(&'static str, String)] {
        self.fields.get_or_init(|| {
            // Straight from the bytes into the kind's type: every object of a
            // field-selected watch (the scheduler's, kubelets') passes here.
            let fields = info.strategy.field_attrs(&self.json).unwrap_or_else(|| {
                // Not the kind's shape (odd stored data): name and namespace only.
                let v = self.value();
                vec![
                    ("metadata.name", meta::name(&v).unwrap_or("").to_string()),
                    (
                        "metadata.namespace",
                        meta::namespace(&v).unwrap_or("").to_string(),
                    ),
                ]
            });
            fields.into_boxed_slice()
        })
    }
}

impl CachedObject {
    /// One selectable field's value (see `field_attrs`).
    pub fn field(&self, info: &ResourceInfo, name: &str) -> Option<&str> {
        self.field_attrs(info)
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `json` with `"resourceVersion":"<rv>"` as the first member of its
/// top-level `metadata` object; `None` if it has no such object.
pub fn stamp_resource_version(json: &[u8], rv: i64) -> Option<Vec<u8>> {
    let open = metadata_object_start(json)?;
    let rv = rv.to_string();
    let rest = &json[open + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(json.len() + rv.len() + 22);
    out.extend_from_slice(&json[..=open]);
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.as_bytes());
    out.push(b'"');
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The index of the `{` that opens the top-level "metadata" member's value.
/// Expects valid JSON (the caller parsed it already).
fn metadata_object_start(json: &[u8]) -> Option<usize> {
    let skip_ws = |mut i: usize| {
        while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                let end = string_end(json, start)?;
                if depth == 1 && &json[start..end] == b"metadata" {
                    let colon = skip_ws(end + 1);
                    if json.get(colon) == Some(&b':') {
                        let value = skip_ws(colon + 1);
                        return (json.get(value) == Some(&b'{')).then_some(value);
                    }
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string starting at `i`.
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stamped(v: &Value, rv: i64) -> Value {
        let o = CachedObject::from_stored(&serde_json::to_vec(v).unwrap(), rv).unwrap();
        assert_eq!(o.revision(), rv);
        serde_json::from_slice(o.json()).unwrap()
    }

    #[test]
    fn stamps_the_revision_into_top_level_metadata_only() {
        let pod = json!({
            "kind": "Pod",
            "spec": {"metadata": {"x": "y"}, "note": "\"metadata\":{"},
            "metadata": {"name": "p", "labels": {"app": "nginx"}},
        });
        let v = stamped(&pod, 42);
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["metadata"]["name"], "p");
        assert_eq!(v["spec"], pod["spec"]);
        let o = CachedObject::from_stored(&serde_json::to_vec(&pod).unwrap(), 42).unwrap();
        assert_eq!(o.labels().get("app").map(String::as_str), Some("nginx"));
    }

    #[test]
    fn empty_metadata_and_odd_spacing() {
        let v = stamped(&json!({"metadata": {}}), 7);
        assert_eq!(v, json!({"metadata": {"resourceVersion": "7"}}));
        let raw = br#" { "a" : [ {"metadata":1} ] , "metadata" :  { } } "#;
        let o = CachedObject::from_stored(raw, 8).unwrap();
        let v: Value = serde_json::from_slice(o.json()).unwrap();
        assert_eq!(v["metadata"], json!({"resourceVersion": "8"}));
        assert_eq!(v["a"], json!([{"metadata": 1}]));
    }

    #[test]
    fn a_stored_resource_version_or_missing_metadata_is_replaced_through_a_tree() {
        let v = stamped(
            &json!({"metadata": {"resourceVersion": "3", "name": "a"}}),
            9,
        );
        assert_eq!(v["metadata"], json!({"resourceVersion": "9", "name": "a"}));
        let v = stamped(&json!({"kind": "Namespace"}), 5);
        assert_eq!(v["metadata"]["resourceVersion"], "5");
        // Labels that are not strings are dropped from the selector view.
        let raw = br#"{"metadata":{"labels":{"a":"b","n":1}}}"#;
        let o = CachedObject::from_stored(raw, 1).unwrap();
        assert_eq!(o.labels().len(), 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(CachedObject::from_stored(b"{\"metadata\":", 1).is_err());
        assert!(CachedObject::from_stored(b"[1,2]", 1).is_err());
        assert!(CachedObject::from_stored(b"", 1).is_err());
    }

    #[test]
    fn with_revision_restamps() {
        let o = CachedObject::from_stored(br#"{"metadata":{"name":"a"}}"#, 3).unwrap();
        let d = o.with_revision(10);
        assert_eq!(d.revision(), 10);
        assert_eq!(d.value()["metadata"]["resourceVersion"], "10");
        assert_eq!(d.value()["metadata"]["name"], "a");
    }
}
