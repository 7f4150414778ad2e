//! `kubectl run NAME --image=IMG`: one pod, shaped as kubectl's generator makes it.

use serde_json::{json, Map, Value};

use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::output::OutputFormat;
use crate::session::Session;

use super::{create_object, parse_pairs, report_object, DryRun};

pub async fn run(session: &Session, a: RunArgs) -> Result<()> {
    let format = OutputFormat::parse(a.output.as_deref())?;
    let dry_run = DryRun::parse(a.dry_run.as_deref())?;
    let pod = build_pod(&a, &session.namespace)?;
    let info = session.discovery().await?.resolve_one("pods")?;
    let created = if dry_run == DryRun::Client {
        pod
    } else {
        create_object(session, &info, Some(&session.namespace), &pod, dry_run).await?
    };
    report_object(&format, "pod", &created, "created", dry_run)
}

/// The Pod `kubectl run` creates.
pub fn build_pod(a: &RunArgs, namespace: &str) -> Result<Value> {
    let restart = match a.restart.as_str() {
        "Always" | "OnFailure" | "Never" => a.restart.clone(),
        other => return Err(Error::msg(format!("invalid restart policy: {other}"))),
    };
    let labels = match &a.labels {
        Some(l) => parse_pairs(l, "label")?,
        None => {
            let mut m = Map::new();
            m.insert("run".into(), json!(a.name));
            m
        }
    };
    let mut container = Map::new();
    if !a.arguments.is_empty() {
        let key = if a.command { "command" } else { "args" };
        container.insert(key.into(), json!(a.arguments));
    }
    if !a.env.is_empty() {
        let env: Vec<Value> = a
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => json!({"name": k, "value": v}),
                None => json!({"name": e}),
            })
            .collect();
        container.insert("env".into(), json!(env));
    }
    container.insert("image".into(), json!(a.image));
    if let Some(policy) = &a.image_pull_policy {
        container.insert("imagePullPolicy".into(), json!(policy));
    }
    container.insert("name".into(), json!(a.name));
    if let Some(port) = &a.port {
        let port: i64 = port
            .parse()
            .map_err(|_| Error::msg(format!("invalid port: {port}")))?;
        container.insert("ports".into(), json!([{"containerPort": port}]));
    }
    container.insert("resources".into(), json!({}));
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": labels, "name": a.name, "namespace": namespace},
        "spec": {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": restart,
        },
        "status": {},
    }))
}
