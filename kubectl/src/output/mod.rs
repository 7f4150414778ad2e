//! How kubectl prints objects: `-o` formats, tables, ages and times.

pub mod json;
pub mod jsonpath;
pub mod table;
pub mod yaml;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use jsonpath::JsonPath;

/// The `-o/--output` formats.
#[derive(Clone, Debug)]
pub enum OutputFormat {
    /// The server's table (`get`), or the command's usual message.
    Default,
    Wide,
    Yaml,
    Json,
    Name,
    JsonPath(JsonPath),
}

impl OutputFormat {
    pub fn parse(flag: Option<&str>) -> Result<Self> {
        let Some(flag) = flag else {
            return Ok(OutputFormat::Default);
        };
        let (name, arg) = match flag.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (flag, None),
        };
        Ok(match (name, arg) {
            ("", None) => OutputFormat::Default,
            ("wide", None) => OutputFormat::Wide,
            ("yaml", None) => OutputFormat::Yaml,
            ("json", None) => OutputFormat::Json,
            ("name", None) => OutputFormat::Name,
            ("jsonpath", Some(t)) | ("jsonpath-as-json", Some(t)) => OutputFormat::JsonPath(
                JsonPath::parse(t, name == "jsonpath-as-json")
                    .map_err(|e| Error::msg(format!("error parsing jsonpath {t}, {e}")))?,
            ),
            ("jsonpath", None) | ("jsonpath-as-json", None) => {
                return Err(Error::msg(
                    "template format specified but no template given",
                ))
            }
            _ => {
                return Err(Error::msg(format!(
                    "unable to match a printer suitable for the output format \"{flag}\", allowed formats are: json,jsonpath,jsonpath-as-json,name,wide,yaml"
                )))
            }
        })
    }

    /// Whether this format prints whole objects (not the server's tables).
    pub fn is_structured(&self) -> bool {
        !matches!(self, OutputFormat::Default | OutputFormat::Wide)
    }
}

/// `kind/name` as `-o name` prints it: `pod/web`, `lease.coordination.k8s.io/x`.
pub fn object_name(kind_group: &str, obj: &Value) -> String {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("{kind_group}/{name}")
}

/// The lower-case `kind` or `kind.group` of an object from its apiVersion and kind.
pub fn kind_group_of(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match api_version.split_once('/') {
        Some((group, _)) => format!("{}.{group}", kind.to_lowercase()),
        None => kind.to_lowercase(),
    }
}

/// Objects in one of the structured formats: one object alone, several in a `List`.
pub fn print_objects(format: &OutputFormat, objects: &[Value], single: bool) -> Result<String> {
    let data = if single && objects.len() == 1 {
        objects[0].clone()
    } else {
        as_list(objects)
    };
    Ok(match format {
        OutputFormat::Yaml => yaml::to_yaml(&data),
        OutputFormat::Json => json::to_json_pretty(&data),
        OutputFormat::JsonPath(t) => t
            .execute(&data)
            .map_err(|e| Error::msg(format!("error executing jsonpath: {e}")))?,
        OutputFormat::Name => {
            let mut out = String::new();
            for o in objects {
                out.push_str(&object_name(&kind_group_of(o), o));
                out.push('\n');
            }
            out
        }
        OutputFormat::Default | OutputFormat::Wide => String::new(),
    })
}

/// The `v1 List` kubectl wraps several objects in.
pub fn as_list(objects: &[Value]) -> Value {
    json!({
        "apiVersion": "v1",
        "items": objects,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// apimachinery's `duration.HumanDuration`: `45s`, `3m20s`, `4h5m`, `3d4h`, `2y30d`.
pub fn human_duration(d: std::time::Duration, negative: bool) -> String {
    let seconds = d.as_secs() as i64;
    if negative {
        return if seconds > 1 {
            "<invalid>".into()
        } else {
            "0s".into()
        };
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// How long ago an RFC 3339 timestamp was, as kubectl prints ages (`<unknown>` if unset).
pub fn age_since(timestamp: Option<&str>) -> String {
    let Some(ts) = timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let now = jiff::Timestamp::now();
    let (later, earlier, negative) = if now >= ts {
        (now, ts, false)
    } else {
        (ts, now, true)
    };
    let d = later.duration_since(earlier).unsigned_abs();
    human_duration(d, negative)
}

/// Go's `time.RFC1123Z` in the local zone: `Sun, 22 Nov 2026 08:44:20 +0000`.
pub fn rfc1123z(timestamp: Option<&str>) -> String {
    let Some(ts) = timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        // Go formats the zero time.
        return "Mon, 01 Jan 0001 00:00:00 +0000".into();
    };
    let zoned = ts.to_zoned(jiff::tz::TimeZone::system());
    zoned.strftime("%a, %d %b %Y %H:%M:%S %z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_like_apimachinery() {
        let d = |s| human_duration(Duration::from_secs(s), false);
        assert_eq!(d(0), "0s");
        assert_eq!(d(119), "119s");
        assert_eq!(d(200), "3m20s");
        assert_eq!(d(600), "10m");
        assert_eq!(d(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(d(30 * 3600), "30h");
        assert_eq!(d(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(d(100 * 86400), "100d");
        assert_eq!(d(3 * 365 * 86400 + 86400), "3y1d");
    }

    #[test]
    fn names() {
        let pod =
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}});
        assert_eq!(object_name(&kind_group_of(&pod), &pod), "pod/web");
        let lease = serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n"}});
        assert_eq!(
            object_name(&kind_group_of(&lease), &lease),
            "lease.coordination.k8s.io/n"
        );
    }
}
