//! `kubectl describe` output, laid out as upstream's describers lay it out
//! (k8s.io/kubectl/pkg/describe): indentation levels of two spaces, tab-separated
//! label/value cells aligned by Go's tabwriter (padding 2), and the object's Events.

mod config;
mod generic;
mod node;
mod pod;
mod rc;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Toleration};
use serde_json::Value;

use crate::output::{age_since, rfc1123z};
use crate::tabwriter::TabWriter;

pub use config::{describe_config_map, describe_namespace, describe_service_account};
pub use generic::describe_generic;
pub use node::describe_node;
pub use pod::describe_pod;
pub use rc::{describe_replication_controller, PodCounts};
pub use service::describe_service;

/// Annotation values longer than this are folded (upstream's maxAnnotationLen).
const MAX_ANNOTATION_LEN: usize = 140;

/// Upstream's PrefixWriter over a tabwriter.
pub struct Writer {
    tw: TabWriter,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            tw: TabWriter::for_describe(),
        }
    }
}

impl Writer {
    /// Text at an indentation level (two spaces each).
    pub fn write(&mut self, level: usize, text: &str) {
        self.tw.write(&"  ".repeat(level));
        self.tw.write(text);
    }

    /// Lay out what was written so far on its own (upstream flushes before Events).
    pub fn flush(&mut self) {
        self.tw.flush();
    }

    pub fn finish(mut self) -> String {
        self.tw.take()
    }
}

/// `Title:\tk=v` then one `\tk=v` line per further label, sorted; `<none>` if empty.
pub fn labels_multiline(w: &mut Writer, title: &str, labels: Option<&BTreeMap<String, String>>) {
    w.write(0, &format!("{title}:\t"));
    match labels.filter(|l| !l.is_empty()) {
        None => w.write(0, "<none>\n"),
        Some(labels) => {
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    w.write(0, "\t");
                }
                w.write(0, &format!("{k}={v}\n"));
            }
        }
    }
}

/// Annotations as upstream shows them: the last-applied configuration left out, long
/// or multi-line values on their own lines.
pub fn annotations_multiline(
    w: &mut Writer,
    title: &str,
    annotations: Option<&BTreeMap<String, String>>,
) {
    w.write(0, &format!("{title}:\t"));
    let shown: Vec<(&String, &String)> = annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != crate::commands::apply::LAST_APPLIED)
        .collect();
    if shown.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    for (i, (k, v)) in shown.into_iter().enumerate() {
        if i > 0 {
            w.write(0, "\t");
        }
        let value = v.strip_suffix('\n').unwrap_or(v);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.write(0, &format!("{k}:\n"));
            for line in value.split('\n') {
                let line = if line.len() > MAX_ANNOTATION_LEN - 2 {
                    let mut cut = MAX_ANNOTATION_LEN - 2;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    format!("{}...", &line[..cut])
                } else {
                    line.to_string()
                };
                w.write(0, &format!("\t  {line}\n"));
            }
        } else {
            w.write(0, &format!("{k}: {value}\n"));
        }
    }
}

/// `Tolerations:\tkey=value:Effect op=Exists for 300s`, one per line, by key.
pub fn tolerations_multiline(w: &mut Writer, title: &str, tolerations: Option<&Vec<Toleration>>) {
    w.write(0, &format!("{title}:\t"));
    let mut list: Vec<&Toleration> = tolerations.into_iter().flatten().collect();
    if list.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    list.sort_by(|a, b| a.key.cmp(&b.key));
    for (i, t) in list.into_iter().enumerate() {
        if i > 0 {
            w.write(0, "\t");
        }
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        let effect = t.effect.clone().unwrap_or_default();
        let mut text = key.clone();
        if !value.is_empty() {
            text.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        if t.operator.as_deref() == Some("Exists") && value.is_empty() {
            if !key.is_empty() || !effect.is_empty() {
                text.push_str(" op=Exists");
            } else {
                text.push_str("op=Exists");
            }
        }
        if let Some(s) = t.toleration_seconds {
            text.push_str(&format!(" for {s}s"));
        }
        w.write(0, &format!("{text}\n"));
    }
}

/// The Events section: `<none>`, or a table sorted by last timestamp.
pub fn events(w: &mut Writer, events: Option<&[Event]>) {
    let Some(events) = events else { return };
    if events.is_empty() {
        w.write(0, "Events:\t<none>\n");
        return;
    }
    w.flush();
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(1, "----\t------\t----\t----\t-------\n");
    for e in sorted {
        let first = match &e.event_time {
            Some(t) => age_since(Some(&t.0.to_string())),
            None => age_since(
                e.first_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .as_deref(),
            ),
        };
        let interval = if let Some(series) = &e.series {
            format!(
                "{} (x{} over {first})",
                age_since(
                    series
                        .last_observed_time
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .as_deref()
                ),
                series.count.unwrap_or(0)
            )
        } else if e.count.unwrap_or(0) > 1 {
            format!(
                "{} (x{} over {first})",
                age_since(
                    e.last_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .as_deref()
                ),
                e.count.unwrap_or(0)
            )
        } else {
            first
        };
        let source = e
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| e.reporting_component.clone())
            .unwrap_or_default();
        let mut message = e.message.clone().unwrap_or_default().trim().to_string();
        if let Some(fp) = e
            .involved_object
            .field_path
            .as_ref()
            .filter(|f| !f.is_empty())
        {
            message = format!("{fp}: {message}");
        }
        w.write(
            1,
            &format!(
                "{}\t{}\t{interval}\t{source}\t{message}\n",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default()
            ),
        );
    }
}

/// A time as describe prints it (RFC 1123 with numeric zone).
pub fn time(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    rfc1123z(t.map(|t| t.0.to_string()).as_deref())
}

/// `labels.FormatLabels` of a selector map: `k=v,k2=v2` (sorted) or `<none>`.
pub fn format_selector(selector: Option<&BTreeMap<String, String>>) -> String {
    match selector.filter(|s| !s.is_empty()) {
        None => "<none>".into(),
        Some(s) => s
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Decode JSON into a typed object for a describer.
pub fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, crate::error::Error> {
    serde_json::from_value(v.clone())
        .map_err(|e| crate::error::Error::msg(format!("unable to decode the object: {e}")))
}
