//! `kubectl expose (rc|pod|svc) NAME`: a Service selecting the object's pods, on
//! its ports unless `--port` says otherwise.

use serde_json::{json, Map, Value};

use crate::cli::ExposeArgs;
use crate::error::{Error, Result};
use crate::output::OutputFormat;
use crate::session::Session;
use crate::targets;

use super::{create_object, parse_pairs, report_object, DryRun};

pub async fn run(session: &Session, a: ExposeArgs) -> Result<()> {
    let format = OutputFormat::parse(a.output.as_deref())?;
    let dry_run = DryRun::parse(a.dry_run.as_deref())?;
    let (mut targets, errors) = if !a.files.filenames.is_empty() {
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?
    } else {
        (
            targets::from_args(session, &a.args, false).await?,
            Vec::new(),
        )
    };
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    if targets.len() != 1 || targets[0].name.is_none() {
        return Err(Error::msg(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let t = targets.remove(0);
    let obj = targets::get_object(session, &t).await?;
    let service = build_service(&a, &t.info.kind, &obj)?;
    let info = session.discovery().await?.resolve_one("services")?;
    let namespace = t
        .namespace
        .clone()
        .unwrap_or_else(|| session.namespace.clone());
    let created = if dry_run == DryRun::Client {
        service
    } else {
        create_object(session, &info, Some(&namespace), &service, dry_run).await?
    };
    report_object(&format, "service", &created, "exposed", dry_run)
}

/// The Service for `obj` (a ReplicationController, Pod or Service).
pub fn build_service(a: &ExposeArgs, kind: &str, obj: &Value) -> Result<Value> {
    let selector = match &a.selector {
        Some(s) => parse_pairs(s, "selector")?,
        None => {
            let found = match kind {
                "ReplicationController" => obj.pointer("/spec/selector"),
                "Pod" => obj.pointer("/metadata/labels"),
                "Service" => obj.pointer("/spec/selector"),
                other => return Err(Error::msg(format!("cannot expose a {other}"))),
            };
            match found.and_then(Value::as_object) {
                Some(m) if !m.is_empty() => m.clone(),
                _ => {
                    return Err(Error::msg(format!(
                        "couldn't retrieve selectors via --selector flag or introspection: the {} has no labels and cannot be exposed",
                        kind.to_lowercase()
                    )))
                }
            }
        }
    };
    let labels = match &a.labels {
        Some(l) => parse_pairs(l, "label")?,
        None => obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    };
    // Ports: --port, else the object's own.
    let ports: Vec<(i64, String)> = match &a.port {
        Some(p) => p
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<i64>()
                    .map(|n| (n, a.protocol.clone().unwrap_or_else(|| "TCP".into())))
                    .map_err(|_| {
                        Error::msg(format!("strconv.Atoi: parsing \"{p}\": invalid syntax"))
                    })
            })
            .collect::<Result<_>>()?,
        None => introspect_ports(kind, obj, a.protocol.as_deref()),
    };
    if ports.is_empty() {
        return Err(Error::msg(
            "couldn't find port via --port flag or introspection",
        ));
    }
    let several = ports.len() > 1;
    let service_ports: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, (port, protocol))| {
            let mut p = Map::new();
            if several {
                p.insert("name".into(), json!(format!("port-{}", i + 1)));
            }
            p.insert("port".into(), json!(port));
            p.insert("protocol".into(), json!(protocol));
            let target = match &a.target_port {
                Some(t) => match t.parse::<i64>() {
                    Ok(n) => json!(n),
                    Err(_) => json!(t),
                },
                None => json!(port),
            };
            p.insert("targetPort".into(), target);
            Value::Object(p)
        })
        .collect();
    let name = match &a.name {
        Some(n) => n.clone(),
        None => obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    let mut metadata = json!({"name": name});
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    let mut spec = json!({"ports": service_ports, "selector": selector});
    if let Some(ty) = &a.service_type {
        spec["type"] = json!(ty);
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": spec,
    }))
}

fn introspect_ports(kind: &str, obj: &Value, protocol: Option<&str>) -> Vec<(i64, String)> {
    let containers = match kind {
        "Pod" => obj.pointer("/spec/containers"),
        "ReplicationController" => obj.pointer("/spec/template/spec/containers"),
        "Service" => {
            return obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let port = p.get("port")?.as_i64()?;
                    let proto = protocol
                        .or(p.get("protocol").and_then(Value::as_str))
                        .unwrap_or("TCP");
                    Some((port, proto.to_string()))
                })
                .collect();
        }
        _ => None,
    };
    containers
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| {
            let port = p.get("containerPort")?.as_i64()?;
            let proto = protocol
                .or(p.get("protocol").and_then(Value::as_str))
                .unwrap_or("TCP");
            Some((port, proto.to_string()))
        })
        .collect()
}
