//! The describer for kinds without their own: every field, with labels made
//! readable (`creationTimestamp` -> `Creation Timestamp`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Event;
use serde_json::{Map, Value};

use super::{annotations_multiline, events, labels_multiline, Writer};

pub fn describe_generic(obj: &Value, obj_events: Option<&[Event]>) -> String {
    let mut w = Writer::default();
    let str_map = |ptr: &str| -> Option<BTreeMap<String, String>> {
        obj.pointer(ptr).and_then(Value::as_object).map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
    };
    let s = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    w.write(0, &format!("Name:\t{}\n", s("/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s("/metadata/namespace")));
    labels_multiline(&mut w, "Labels", str_map("/metadata/labels").as_ref());
    annotations_multiline(
        &mut w,
        "Annotations",
        str_map("/metadata/annotations").as_ref(),
    );
    if let Some(m) = obj.as_object() {
        content(
            &mut w,
            0,
            m,
            "",
            &[
                ".metadata.managedFields",
                ".metadata.name",
                ".metadata.namespace",
                ".metadata.labels",
                ".metadata.annotations",
            ],
        );
    }
    events(&mut w, obj_events);
    w.finish()
}

fn content(w: &mut Writer, level: usize, map: &Map<String, Value>, prefix: &str, skip: &[&str]) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let path = format!("{prefix}.{key}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match &map[key.as_str()] {
            Value::Object(m) => {
                w.write(level, &format!("{}:\n", smart_label(key)));
                content(w, level + 1, m, &path, skip);
            }
            Value::Array(items) => {
                w.write(level, &format!("{}:\n", smart_label(key)));
                for item in items {
                    match item {
                        Value::Object(m) => content(w, level + 1, m, &path, skip),
                        other => w.write(level + 1, &format!("{}\n", scalar(other))),
                    }
                }
            }
            other => w.write(
                level,
                &format!("{}:\t{}\n", smart_label(key), scalar(other)),
            ),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// `apiVersion` -> `API Version`, `podIPs` -> `Pod I Ps` is avoided by keeping
/// upper-case runs together; names with other characters stay as they are.
pub fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    // Split camelCase: a new word at each upper-case letter after a lower-case one,
    // and before the last capital of an upper-case run followed by lower case.
    let chars: Vec<char> = field.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && (prev.is_some_and(|p| p.is_lowercase())
                || (prev.is_some_and(|p| p.is_uppercase())
                    && next.is_some_and(|n| n.is_lowercase())));
        if boundary && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
        .into_iter()
        .map(|p| {
            if ["API", "URL", "UID", "GUID"].contains(&p.to_uppercase().as_str()) {
                p.to_uppercase()
            } else if p.chars().all(|c| !c.is_uppercase()) {
                let mut cs = p.chars();
                match cs.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + cs.as_str(),
                    None => p,
                }
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("holderIdentity"), "Holder Identity");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("a.b"), "a.b");
    }
}
