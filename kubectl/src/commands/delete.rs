//! `kubectl delete`: by name, by `-f`, by `-l`/`--all`; one DELETE per object with the
//! propagation policy and grace period, then (unless `--wait=false`) wait until each
//! object is gone, as kubectl does.

use std::time::Duration;

use either::Either;
use kube::api::{DeleteParams, PropagationPolicy};
use serde_json::Value;

use crate::cli::DeleteArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::session::{to_value, Session};
use crate::targets::{self, Target};

use super::wait::{parse_timeout, wait_for_deletion};

pub async fn run(session: &Session, a: DeleteArgs) -> Result<()> {
    let propagation = match a.cascade.as_str() {
        "background" | "true" => PropagationPolicy::Background,
        "foreground" => PropagationPolicy::Foreground,
        "orphan" | "false" => PropagationPolicy::Orphan,
        other => {
            return Err(Error::msg(format!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\"."
            )))
        }
    };
    let mut grace = a.grace_period;
    if a.now {
        if grace != -1 {
            return Err(Error::msg(
                "--now and --grace-period cannot be specified together",
            ));
        }
        grace = 1;
    }
    if grace == 0 && !a.force {
        // As kubectl: a zero grace period without --force means one second.
        grace = 1;
    }
    if a.force && grace < 0 {
        grace = 0;
    }
    if a.force && grace == 0 {
        out::eprintln("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.");
    }
    let timeout = parse_timeout(&a.timeout)?;
    let selecting = a.selector.is_some() || a.field_selector.is_some() || a.all;

    let (targets, mut errors) = if !a.files.filenames.is_empty() {
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?
    } else if a.args.is_empty() {
        return Err(Error::msg(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    } else {
        (
            targets::from_args(session, &a.args, true).await?,
            Vec::new(),
        )
    };
    if targets.iter().any(|t| t.name.is_some()) && selecting && a.files.filenames.is_empty() {
        return Err(Error::msg(
            "name cannot be provided when a selector is specified",
        ));
    }
    if targets.iter().any(|t| t.name.is_none()) && !selecting {
        return Err(Error::msg(
            "resource(s) were provided, but no name was specified",
        ));
    }

    let mut named: Vec<Target> = Vec::new();
    for t in targets {
        if t.name.is_some() {
            named.push(t);
            continue;
        }
        match targets::expand(
            session,
            &t,
            a.selector.as_deref(),
            a.field_selector.as_deref(),
        )
        .await
        {
            Ok(found) => named.extend(found.into_iter().map(|(t, _)| t)),
            Err(e) => errors.push(e),
        }
    }

    let params = DeleteParams {
        propagation_policy: Some(propagation),
        grace_period_seconds: (grace >= 0).then_some(grace as u32),
        ..DeleteParams::default()
    };
    let mut deleted = Vec::new();
    let mut found_any = false;
    for t in named {
        let name = t.name.clone().unwrap_or_default();
        let api = session.api(&t.info, t.namespace.as_deref());
        match api.delete(&name, &params).await {
            Ok(answer) => {
                found_any = true;
                let uid = match &answer {
                    Either::Left(obj) => to_value(obj)
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    Either::Right(status) => status.details.as_ref().map(|d| d.uid.clone()),
                };
                if a.output.as_deref() == Some("name") {
                    out::println(&format!("{}/{name}", t.info.kind_group()));
                } else {
                    out::println(&format!("{} \"{name}\" deleted", t.info.kind_group()));
                }
                deleted.push((t, uid));
            }
            Err(e) => {
                let e = Error::from(e);
                if e.is_not_found() && a.ignore_not_found {
                    continue;
                }
                match &t.manifest {
                    Some(m) => errors.push(e.with_source("deleting", &m.source)),
                    None => errors.push(e),
                }
            }
        }
    }
    if !found_any && errors.is_empty() && selecting {
        if session.all_namespaces {
            out::eprintln("No resources found");
        } else {
            out::eprintln(&format!(
                "No resources found in {} namespace.",
                session.namespace
            ));
        }
    }
    if a.wait && !(a.force && grace == 0) {
        for (t, uid) in &deleted {
            if let Err(e) = wait_for_deletion(session, t, uid.as_deref(), timeout).await {
                errors.push(e);
            }
        }
    }
    Error::aggregate(errors)
}

/// kubectl waits "forever" (a week) when the timeout is zero.
pub fn forever_if_zero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_secs(7 * 24 * 3600)
    } else {
        d
    }
}
