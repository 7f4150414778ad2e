//! Helpers for the `metadata` of objects held as JSON values, and the
//! storage keys of objects.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::registry::ResourceInfo;

/// `<prefix>/<resource>/[<namespace>/]`: where a resource's objects live.
pub fn key_prefix(prefix: &str, info: &ResourceInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if info.namespaced => format!("{prefix}/{}/{ns}/", info.plural),
        _ => format!("{prefix}/{}/", info.plural),
    }
}

/// The storage key of one object.
pub fn key(prefix: &str, info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    format!("{}{name}", key_prefix(prefix, info, namespace))
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// The object's `metadata`, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let m = obj
        .as_object_mut()
        .expect("just made an object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("just made an object")
}

pub fn str_field<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)?.get(field)?.as_str().filter(|s| !s.is_empty())
}

pub fn name(obj: &Value) -> Option<&str> {
    str_field(obj, "name")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    str_field(obj, "namespace")
}

pub fn uid(obj: &Value) -> Option<&str> {
    str_field(obj, "uid")
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    str_field(obj, "resourceVersion")
}

pub fn set_resource_version(obj: &mut Value, rv: i64) {
    meta_mut(obj).insert("resourceVersion".into(), json!(rv.to_string()));
}

pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    str_field(obj, "deletionTimestamp")
}

/// Now, in RFC 3339 with seconds precision, as metav1.Time serialises.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now plus `secs`, formatted as [`now`].
pub fn now_plus(secs: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Five characters as upstream's generateName suffix (no vowels, no
/// look-alike digits).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Deep-compare two objects ignoring resourceVersion and managedFields, to
/// skip writes that change nothing (as upstream does).
pub fn same_content(a: &Value, b: &Value) -> bool {
    // Compared in place: cloning both trees to strip two fields cost more than
    // the comparison (every binding and status update goes through here).
    fn counted(m: &Map<String, Value>) -> usize {
        m.keys()
            .filter(|k| *k != "resourceVersion" && *k != "managedFields")
            .count()
    }
    fn same_meta(a: &Value, b: &Value) -> bool {
        match (a.as_object(), b.as_object()) {
            (Some(a), Some(b)) => {
                counted(a) == counted(b)
                    && a.iter().all(|(k, v)| {
                        k == "resourceVersion" || k == "managedFields" || b.get(k) == Some(v)
                    })
            }
            _ => a == b,
        }
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().all(|(k, v)| match b.get(k) {
                    Some(w) if k == "metadata" => same_meta(v, w),
                    Some(w) => v == w,
                    None => false,
                })
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_uses_upstream_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn metadata_accessors() {
        let mut o = json!({"metadata": {"name": "a", "labels": {"x": "1"}, "finalizers": ["f"]}});
        assert_eq!(name(&o), Some("a"));
        assert_eq!(labels(&o).get("x").map(String::as_str), Some("1"));
        assert_eq!(finalizers(&o), vec!["f".to_string()]);
        set_resource_version(&mut o, 7);
        assert_eq!(resource_version(&o), Some("7"));
        let mut other = o.clone();
        set_resource_version(&mut other, 9);
        assert!(same_content(&o, &other));
        other["metadata"]["managedFields"] = json!([{"manager": "m"}]);
        assert!(same_content(&o, &other));
        other["metadata"]["labels"]["x"] = json!("2");
        assert!(!same_content(&o, &other));
        let mut extra = o.clone();
        extra["spec"] = json!({});
        assert!(!same_content(&o, &extra) && !same_content(&extra, &o));
        let mut meta_extra = o.clone();
        meta_extra["metadata"]["uid"] = json!("u");
        assert!(!same_content(&o, &meta_extra) && !same_content(&meta_extra, &o));
        assert!(now().ends_with('Z'));
    }
}
