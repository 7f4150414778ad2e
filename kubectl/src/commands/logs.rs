//! `kubectl logs`: pods/log through the apiserver (which asks the pod's kubelet);
//! `-f` streams, `--tail`, `-c`, `--previous`, `--timestamps`, `--since`.

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;

use crate::cli::LogsArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::session::Session;
use crate::targets;

pub async fn run(session: &Session, a: LogsArgs) -> Result<()> {
    let (first, rest) = a
        .args
        .split_first()
        .ok_or_else(|| Error::msg("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command"))?;
    let mut container = a.container.clone();
    if let Some(c) = rest.first() {
        if container.is_some() {
            return Err(Error::msg(
                "only one of -c or an inline [CONTAINER] arg is allowed",
            ));
        }
        container = Some(c.clone());
    }
    let pods: Api<Pod> = Api::namespaced(session.client.clone(), &session.namespace);
    let pod_name = pod_for(session, first).await?;
    let pod = match pods.get(&pod_name).await {
        Ok(p) => serde_json::to_value(p)?,
        Err(e) => {
            let e = Error::from(e);
            if e.is_not_found() {
                return Err(Error::msg(format!(
                    "error from server (NotFound): pods \"{pod_name}\" not found in namespace \"{}\"",
                    session.namespace
                )));
            }
            return Err(e);
        }
    };
    let names: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let containers: Vec<String> = if a.all_containers {
        names.clone()
    } else {
        match container {
            Some(c) => vec![c],
            None => {
                let default = pod
                    .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| names.first().cloned())
                    .unwrap_or_default();
                if names.len() > 1
                    && pod
                        .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                        .is_none()
                {
                    out::eprintln(&format!(
                        "Defaulted container \"{default}\" out of: {}",
                        names.join(", ")
                    ));
                }
                vec![default]
            }
        }
    };
    let since_seconds = match &a.since {
        Some(s) => Some(
            component_base::parse_duration(s)
                .map_err(|e| {
                    Error::msg(format!(
                        "invalid argument \"{s}\" for \"--since\" flag: {e}"
                    ))
                })?
                .as_secs()
                .max(1) as i64,
        ),
        None => None,
    };
    for c in containers {
        let lp = LogParams {
            container: Some(c),
            follow: a.follow,
            previous: a.previous,
            timestamps: a.timestamps,
            tail_lines: (a.tail >= 0).then_some(a.tail),
            since_seconds,
            ..LogParams::default()
        };
        let stream = pods.log_stream(&pod_name, &lp).await?;
        let mut stream = std::pin::pin!(stream);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| Error::msg(format!("error reading the log stream: {e}")))?;
            if n == 0 {
                break;
            }
            out::print(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    Ok(())
}

/// The pod a logs argument means: `NAME`, `pod/NAME`, or the first pod of a
/// controller or service (`rc/NAME`, `svc/NAME`) by its selector.
pub(crate) async fn pod_for(session: &Session, arg: &str) -> Result<String> {
    let Some((ty, name)) = arg.split_once('/') else {
        return Ok(arg.to_string());
    };
    let info = session.discovery().await?.resolve_one(ty)?;
    if info.kind == "Pod" {
        return Ok(name.to_string());
    }
    let t = targets::from_args(session, &[arg.to_string()], false)
        .await?
        .remove(0);
    let obj = targets::get_object(session, &t).await?;
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .or_else(|| obj.pointer("/spec/selector"))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            Error::msg(format!(
                "cannot get the logs from {}",
                info.resource_group()
            ))
        })?;
    let mut pairs: Vec<String> = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    let pods: Api<Pod> = Api::namespaced(session.client.clone(), &session.namespace);
    let lp = ListParams::default().labels(&pairs.join(","));
    let list = pods.list(&lp).await?;
    let mut names: Vec<String> = list
        .items
        .iter()
        .map(to_value_pod)
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    names.sort();
    let first = names.first().cloned().ok_or_else(|| {
        Error::msg(format!(
            "timed out waiting for the condition on {}/{name}",
            info.resource_group()
        ))
    })?;
    if names.len() > 1 {
        out::eprintln(&format!("Found {} pods, using pod/{first}", names.len()));
    }
    Ok(first)
}

fn to_value_pod(p: &Pod) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}
