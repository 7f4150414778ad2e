//! core/v1 Event: upstream's legacy (core/v1) validation, field selectors and
//! the `kubectl get events` table.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::age::age_between;
use super::print::column;
use super::validation::{invalid_each, is_dns1123_subdomain, is_qualified_name, Path};
use crate::strategy::{Column, FieldError, KindStrategy};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

pub struct EventStrategy;

impl KindStrategy for EventStrategy {
    type Object = Event;

    /// core/v1 events get only upstream's legacy checks (no name rules).
    fn validate(&self, event: &Event) -> Vec<FieldError> {
        let namespace = event.metadata.namespace.as_deref().unwrap_or("");
        let involved_ns = event.involved_object.namespace.as_deref().unwrap_or("");
        let involved_object_path = Path::new("involvedObject");
        let ns_path = involved_object_path.child("namespace");
        let mismatch =
            || FieldError::invalid(&ns_path, involved_ns, "does not match event.namespace");
        let mut errs = Vec::new();
        if event.event_time.is_none() {
            let matches = if involved_ns.is_empty() {
                namespace.is_empty() || namespace == "default"
            } else {
                namespace == involved_ns
            };
            if !matches {
                errs.push(mismatch());
            }
        } else {
            if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
                errs.push(mismatch());
            }
            errs.extend(validate_new_style_fields(event));
        }
        errs.extend(invalid_each(
            &Path::new("namespace"),
            namespace,
            is_dns1123_subdomain(namespace),
        ));
        errs
    }

    fn validate_update(&self, new: &Event, _old: &Event) -> Vec<FieldError> {
        self.validate(new)
    }

    fn field_attrs(&self, event: &Event) -> Vec<(&'static str, String)> {
        let o = &event.involved_object;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let source = event
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| event.reporting_component.clone())
            .unwrap_or_default();
        vec![
            ("involvedObject.kind", text(&o.kind)),
            ("involvedObject.namespace", text(&o.namespace)),
            ("involvedObject.name", text(&o.name)),
            ("involvedObject.uid", text(&o.uid)),
            ("involvedObject.apiVersion", text(&o.api_version)),
            ("involvedObject.resourceVersion", text(&o.resource_version)),
            ("involvedObject.fieldPath", text(&o.field_path)),
            ("reason", text(&event.reason)),
            ("reportingComponent", text(&event.reporting_component)),
            ("source", source),
            ("type", text(&event.type_)),
        ]
    }

    fn columns(&self) -> Vec<Column> {
        let mut name = Column::name();
        name.priority = 1;
        vec![
            column("Last Seen", "string", 0, "The time at which the most recent occurrence of this event was recorded."),
            column("Type", "string", 0, "Type of this event (Normal, Warning), new types could be added in the future"),
            column("Reason", "string", 0, "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            column("Object", "string", 0, "The object that this event is about."),
            column("Subobject", "string", 1, "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object."),
            column("Source", "string", 1, "The component reporting this event. Should be a short machine understandable string."),
            column("Message", "string", 0, "A human-readable description of the status of this operation."),
            column("First Seen", "string", 1, "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
            column("Count", "string", 1, "The number of times this event has occurred."),
            name,
        ]
    }

    fn cells(&self, event: &Event, _age: &str) -> Vec<Value> {
        event_cells(event, Timestamp::now())
    }
}

/// Checks for events written with eventTime (the events.k8s.io shape).
fn validate_new_style_fields(event: &Event) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let controller = event.reporting_component.as_deref().unwrap_or("");
    if controller.is_empty() {
        errs.push(FieldError::required(&Path::new("reportingController"), ""));
    }
    errs.extend(invalid_each(
        &Path::new("reportingController"),
        controller,
        is_qualified_name(controller),
    ));
    let limited = [
        (
            "reportingInstance",
            event.reporting_instance.as_deref(),
            REPORTING_INSTANCE_LIMIT,
            true,
        ),
        ("action", event.action.as_deref(), ACTION_LIMIT, true),
        ("reason", event.reason.as_deref(), REASON_LIMIT, true),
        ("message", event.message.as_deref(), NOTE_LIMIT, false),
    ];
    for (field, value, limit, required) in limited {
        let value = value.unwrap_or("");
        if required && value.is_empty() {
            errs.push(FieldError::required(&Path::new(field), ""));
        }
        if value.len() > limit {
            errs.push(FieldError::invalid(
                &Path::new(field),
                "",
                format!("can have at most {limit} characters"),
            ));
        }
    }
    errs
}

/// Upstream's printEvent, always wide (server-side tables).
fn event_cells(event: &Event, now: Timestamp) -> Vec<Value> {
    let first_seen = match &event.first_timestamp {
        Some(t) => age_between(Some(t.0), now),
        None => age_between(event.event_time.as_ref().map(|t| t.0), now),
    };
    let mut last_seen = match &event.last_timestamp {
        Some(t) => age_between(Some(t.0), now),
        None => first_seen.clone(),
    };
    let mut count = event.count.unwrap_or(0);
    if let Some(series) = &event.series {
        last_seen = age_between(series.last_observed_time.as_ref().map(|t| t.0), now);
        count = series.count.unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let o = &event.involved_object;
    let kind = o.kind.clone().unwrap_or_default().to_lowercase();
    let target = match o.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let source = event.source.clone().unwrap_or_default();
    let component = source
        .component
        .filter(|c| !c.is_empty())
        .or_else(|| event.reporting_component.clone())
        .unwrap_or_default();
    let host = source
        .host
        .filter(|h| !h.is_empty())
        .or_else(|| event.reporting_instance.clone())
        .unwrap_or_default();
    let source_text = if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    };
    vec![
        Value::from(last_seen),
        Value::from(event.type_.clone().unwrap_or_default()),
        Value::from(event.reason.clone().unwrap_or_default()),
        Value::from(target),
        Value::from(o.field_path.clone().unwrap_or_default()),
        Value::from(source_text),
        Value::from(event.message.clone().unwrap_or_default().trim().to_string()),
        Value::from(first_seen),
        Value::from(count),
        Value::from(event.metadata.name.clone().unwrap_or_default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Value) -> Event {
        serde_json::from_value(value).unwrap()
    }

    fn scheduled() -> Value {
        json!({
            "metadata": {"name": "nginx-abc.17c1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx-abc", "uid": "u1", "apiVersion": "v1"},
            "reason": "Scheduled", "message": "Successfully assigned default/nginx-abc to node-1 ", "type": "Normal",
            "source": {"component": "default-scheduler"},
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:55:00Z", "count": 2
        })
    }

    #[test]
    fn legacy_namespace_rules() {
        assert!(EventStrategy.validate(&event(scheduled())).is_empty());
        let mut v = scheduled();
        v["involvedObject"]["namespace"] = json!("other");
        let errs: Vec<String> = EventStrategy
            .validate(&event(v))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs, vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]);
    }

    #[test]
    fn new_style_events_need_reporting_fields() {
        let mut v = scheduled();
        v["eventTime"] = json!("2024-05-01T11:50:00.000000Z");
        let errs: Vec<String> = EventStrategy
            .validate(&event(v))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs[0], "reportingController: Required value");
        assert_eq!(
            errs[1],
            "reportingController: Invalid value: \"\": name part must be non-empty"
        );
        assert!(
            errs[2].starts_with("reportingController: Invalid value: \"\": name part must consist")
        );
        assert!(errs.contains(&"reportingInstance: Required value".to_string()));
        assert!(errs.contains(&"action: Required value".to_string()));
    }

    #[test]
    fn table_row() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            event_cells(&event(scheduled()), now),
            vec![
                json!("5m"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/nginx-abc"),
                json!(""),
                json!("default-scheduler"),
                json!("Successfully assigned default/nginx-abc to node-1"),
                json!("10m"),
                json!(2),
                json!("nginx-abc.17c1")
            ]
        );
        assert_eq!(EventStrategy.columns().len(), 10);
    }

    #[test]
    fn field_attrs() {
        let attrs = EventStrategy.field_attrs(&event(scheduled()));
        assert!(attrs.contains(&("involvedObject.name", "nginx-abc".to_string())));
        assert!(attrs.contains(&("source", "default-scheduler".to_string())));
        assert_eq!(
            EventStrategy.field_attrs(&Event::default()).len(),
            attrs.len()
        );
    }
}
