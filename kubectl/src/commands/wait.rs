//! `kubectl wait --for=condition=X[=V] | --for=delete | --for=jsonpath={...}=V`:
//! check the object, then watch it until the condition holds or the timeout passes.

use std::time::Duration;

use futures::StreamExt;
use kube::api::WatchParams;
use kube::core::WatchEvent;
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::WaitArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::output::jsonpath::JsonPath;
use crate::session::{to_value, Session};
use crate::targets::{self, Target};

/// What `--for` asks.
enum Condition {
    Delete,
    /// `condition=NAME[=VALUE]` (VALUE defaults to True, compared without case).
    Status {
        name: String,
        value: String,
    },
    /// `jsonpath={expr}=VALUE` (or just `{expr}`: the field exists).
    JsonPath {
        path: JsonPath,
        value: Option<String>,
    },
}

impl Condition {
    fn parse(flag: &str) -> Result<Self> {
        if flag == "delete" {
            return Ok(Condition::Delete);
        }
        if let Some(rest) = flag.strip_prefix("condition=") {
            let (name, value) = match rest.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (rest.to_string(), "True".to_string()),
            };
            return Ok(Condition::Status { name, value });
        }
        if let Some(rest) = flag.strip_prefix("jsonpath=") {
            let (expr, value) = match rest.rfind("}=") {
                Some(i) => (&rest[..=i], Some(rest[i + 2..].to_string())),
                None => (rest, None),
            };
            let expr = expr.trim_matches('\'');
            let path = JsonPath::parse(expr, false)
                .map_err(|e| Error::msg(format!("unrecognized JSONPath expression {expr}: {e}")))?;
            return Ok(Condition::JsonPath { path, value });
        }
        Err(Error::msg(format!("unrecognized condition: \"{flag}\"")))
    }

    fn met(&self, obj: &Value) -> bool {
        match self {
            Condition::Delete => false,
            Condition::Status { name, value } => {
                let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c.get("type").and_then(Value::as_str) == Some(name.as_str())
                            && c.get("status")
                                .and_then(Value::as_str)
                                .is_some_and(|s| s.eq_ignore_ascii_case(value))
                            && match (
                                c.get("observedGeneration").and_then(Value::as_i64),
                                generation,
                            ) {
                                (Some(observed), Some(current)) => observed >= current,
                                _ => true,
                            }
                    })
            }
            Condition::JsonPath { path, value } => match path.execute(obj) {
                Ok(text) => match value {
                    Some(v) => text == *v,
                    None => !text.is_empty(),
                },
                Err(_) => false,
            },
        }
    }
}

pub async fn run(session: &Session, a: WaitArgs) -> Result<()> {
    let condition = Condition::parse(&a.for_)?;
    let timeout = parse_timeout(&a.timeout)?;
    let (targets, mut errors) = if !a.files.filenames.is_empty() {
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?
    } else {
        (
            targets::from_args(session, &a.args, false).await?,
            Vec::new(),
        )
    };
    let mut named = Vec::new();
    for t in targets {
        if t.name.is_some() {
            named.push(t);
        } else if a.selector.is_some() || a.all {
            named.extend(
                targets::expand(session, &t, a.selector.as_deref(), None)
                    .await?
                    .into_iter()
                    .map(|(t, _)| t),
            );
        } else {
            return Err(Error::msg(
                "resource(s) were provided, but no name was specified",
            ));
        }
    }
    if named.is_empty() && errors.is_empty() {
        return Err(Error::msg("no matching resources found"));
    }
    for t in named {
        let result = match &condition {
            Condition::Delete => {
                let uid = match targets::get_object(session, &t).await {
                    Ok(o) => o
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    Err(e) if e.is_not_found() => {
                        out::println(&format!(
                            "{}/{} condition met",
                            t.info.kind_group(),
                            t.name.as_deref().unwrap_or("")
                        ));
                        continue;
                    }
                    Err(e) => Err(e)?,
                };
                wait_for_deletion(session, &t, uid.as_deref(), timeout).await
            }
            other => wait_for(session, &t, other, timeout).await,
        };
        match result {
            Ok(()) => out::println(&format!(
                "{}/{} condition met",
                t.info.kind_group(),
                t.name.as_deref().unwrap_or("")
            )),
            Err(e) => errors.push(e),
        }
    }
    Error::aggregate(errors)
}

/// Go durations for `--timeout`; zero and negative mean "a week" where kubectl says so.
pub fn parse_timeout(flag: &str) -> Result<Duration> {
    if let Some(rest) = flag.strip_prefix('-') {
        component_base::parse_duration(rest)
            .map_err(|e| Error::msg(format!("invalid argument \"{flag}\": {e}")))?;
        return Ok(Duration::from_secs(7 * 24 * 3600));
    }
    component_base::parse_duration(flag).map_err(|e| {
        Error::msg(format!(
            "invalid argument \"{flag}\" for \"--timeout\" flag: {e}"
        ))
    })
}

fn timed_out(t: &Target) -> Error {
    Error::msg(format!(
        "timed out waiting for the condition on {}/{}",
        t.info.resource_group(),
        t.name.as_deref().unwrap_or("")
    ))
}

/// Wait until the object's condition holds.
async fn wait_for(
    session: &Session,
    t: &Target,
    condition: &Condition,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let obj = targets::get_object(session, t).await?;
        if condition.met(&obj) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out(t));
        }
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_string();
        let outcome = watch_object(session, t, &rv, deadline, |event| match event {
            Seen::Changed(o) => condition.met(o),
            Seen::Deleted => false,
        })
        .await?;
        if outcome {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out(t));
        }
    }
}

/// Wait until the object (with this uid, when known) no longer exists.
pub async fn wait_for_deletion(
    session: &Session,
    t: &Target,
    uid: Option<&str>,
    timeout: Duration,
) -> Result<()> {
    let timeout = super::delete::forever_if_zero(timeout);
    let deadline = Instant::now() + timeout;
    loop {
        let obj = match targets::get_object(session, t).await {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let current_uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
        if uid.is_some() && current_uid != uid {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out(t));
        }
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_string();
        let gone = watch_object(session, t, &rv, deadline, |event| match event {
            Seen::Deleted => true,
            Seen::Changed(_) => false,
        })
        .await?;
        if gone {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out(t));
        }
    }
}

enum Seen<'a> {
    Changed(&'a Value),
    Deleted,
}

/// Watch one object from `rv` until `done` says so (true), the watch ends or the
/// deadline passes (false).
async fn watch_object(
    session: &Session,
    t: &Target,
    rv: &str,
    deadline: Instant,
    mut done: impl FnMut(Seen<'_>) -> bool,
) -> Result<bool> {
    let api = session.api(&t.info, t.namespace.as_deref());
    let remaining = deadline.saturating_duration_since(Instant::now());
    let wp = WatchParams {
        field_selector: Some(format!("metadata.name={}", t.name.as_deref().unwrap_or(""))),
        timeout: Some(remaining.as_secs().clamp(1, 290) as u32),
        ..WatchParams::default()
    };
    let stream = api.watch(&wp, rv).await?;
    let mut stream = std::pin::pin!(stream);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let event = match next {
            Err(_) | Ok(None) => return Ok(false),
            Ok(Some(event)) => event?,
        };
        let finished = match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => done(Seen::Changed(&to_value(&o))),
            WatchEvent::Deleted(_) => done(Seen::Deleted),
            WatchEvent::Bookmark(_) => false,
            WatchEvent::Error(status) if status.code == 410 => return Ok(false),
            WatchEvent::Error(status) => return Err(Error::Api(status)),
        };
        if finished {
            return Ok(true);
        }
    }
}
