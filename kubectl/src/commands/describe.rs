//! `kubectl describe`: fetch the objects (by name, name prefix, selector or file),
//! what their describer needs (events, pods, endpoints, lease), and print them.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::cli::DescribeArgs;
use crate::describe::{self, typed};
use crate::discovery::ResourceInfo;
use crate::error::{Error, Result};
use crate::out;
use crate::session::Session;
use crate::targets;

pub async fn run(session: &Session, a: DescribeArgs) -> Result<()> {
    let (targets, mut errors) = if !a.files.filenames.is_empty() {
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?
    } else if a.args.is_empty() {
        return Err(Error::msg(
            "You must specify the type of resource to describe. Use \"kubectl api-resources\" for a complete list of supported resources.",
        ));
    } else {
        (
            targets::from_args(session, &a.args, true).await?,
            Vec::new(),
        )
    };
    // The bool: found by name prefix (kubectl prints those each followed by a newline).
    let mut objects: Vec<(ResourceInfo, Value, bool)> = Vec::new();
    for t in &targets {
        match &t.name {
            Some(name) => match targets::get_object(session, t).await {
                Ok(o) => objects.push((t.info.clone(), o, false)),
                Err(e) if e.is_not_found() => {
                    // As upstream: a name that is not found is tried as a prefix.
                    let found: Vec<Value> =
                        targets::list_objects(session, t, a.selector.as_deref(), None)
                            .await
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|o| {
                                o.pointer("/metadata/name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|n| n.starts_with(name.as_str()))
                            })
                            .collect();
                    if found.is_empty() {
                        errors.push(e);
                    }
                    objects.extend(found.into_iter().map(|o| (t.info.clone(), o, true)));
                }
                Err(e) => errors.push(e),
            },
            None => match targets::list_objects(session, t, a.selector.as_deref(), None).await {
                Ok(list) => objects.extend(list.into_iter().map(|o| (t.info.clone(), o, false))),
                Err(e) => errors.push(e),
            },
        }
    }
    let mut first = true;
    for (info, obj, by_prefix) in &objects {
        match describe_object(session, info, obj, a.show_events).await {
            Ok(text) if *by_prefix => out::print(&format!("{text}\n")),
            Ok(text) => {
                if first {
                    first = false;
                    out::print(&text);
                } else {
                    out::print(&format!("\n\n{text}"));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if objects.is_empty() && errors.is_empty() {
        if session.all_namespaces {
            out::eprintln("No resources found");
        } else {
            out::eprintln(&format!(
                "No resources found in {} namespace.",
                session.namespace
            ));
        }
    }
    Error::aggregate(errors)
}

async fn describe_object(
    session: &Session,
    info: &ResourceInfo,
    obj: &Value,
    show_events: bool,
) -> Result<String> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let core = info.group.is_empty();
    let kind_for_events = if core && info.kind == "Pod" {
        None
    } else {
        Some(info.kind.as_str())
    };
    let mut found_events = if show_events {
        Some(search_events(session, namespace, name, kind_for_events, uid).await)
    } else {
        None
    };
    match (core, info.kind.as_str()) {
        (true, "Pod") => Ok(describe::describe_pod(
            &typed(obj)?,
            found_events.as_deref(),
        )),
        (true, "ReplicationController") => {
            let rc: k8s_openapi::api::core::v1::ReplicationController = typed(obj)?;
            let counts = controller_pod_counts(session, namespace.unwrap_or(""), &rc).await?;
            Ok(describe::describe_replication_controller(
                &rc,
                counts,
                found_events.as_deref(),
            ))
        }
        (true, "Service") => {
            let endpoints: Option<Endpoints> =
                Api::<Endpoints>::namespaced(session.client.clone(), namespace.unwrap_or(""))
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten();
            Ok(describe::describe_service(
                &typed(obj)?,
                endpoints.as_ref(),
                found_events.as_deref(),
            ))
        }
        (true, "Node") => {
            if let Some(list) = found_events.as_mut() {
                // The kubelet reports node events with the node's name as the uid.
                list.extend(search_events(session, None, name, Some("Node"), name).await);
            }
            let lp = ListParams {
                field_selector: Some(format!(
                    "spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed"
                )),
                ..ListParams::default()
            };
            let pods = Api::<Pod>::all(session.client.clone())
                .list(&lp)
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let lease = Api::<Lease>::namespaced(session.client.clone(), "kube-node-lease")
                .get(name)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(status) => status.message,
                    other => other.to_string(),
                });
            Ok(describe::describe_node(
                &typed(obj)?,
                &pods,
                lease,
                found_events.as_deref(),
            ))
        }
        (true, "ConfigMap") => Ok(describe::describe_config_map(
            &typed(obj)?,
            found_events.as_deref(),
        )),
        (true, "Namespace") => Ok(describe::describe_namespace(&typed(obj)?)),
        (true, "ServiceAccount") => Ok(describe::describe_service_account(
            &typed(obj)?,
            found_events.as_deref(),
        )),
        _ => Ok(describe::describe_generic(obj, found_events.as_deref())),
    }
}

/// Events about one object (errors count as none, as upstream).
async fn search_events(
    session: &Session,
    namespace: Option<&str>,
    name: &str,
    kind: Option<&str>,
    uid: &str,
) -> Vec<Event> {
    let mut fields = vec![format!("involvedObject.name={name}")];
    if let Some(ns) = namespace {
        fields.push(format!("involvedObject.namespace={ns}"));
    }
    if let Some(kind) = kind {
        fields.push(format!("involvedObject.kind={kind}"));
    }
    if !uid.is_empty() {
        fields.push(format!("involvedObject.uid={uid}"));
    }
    let api: Api<Event> = match namespace {
        Some(ns) => Api::namespaced(session.client.clone(), ns),
        None => Api::all(session.client.clone()),
    };
    let lp = ListParams {
        field_selector: Some(fields.join(",")),
        ..ListParams::default()
    };
    api.list(&lp).await.map(|l| l.items).unwrap_or_default()
}

/// Phases of the pods the controller owns.
async fn controller_pod_counts(
    session: &Session,
    namespace: &str,
    rc: &k8s_openapi::api::core::v1::ReplicationController,
) -> Result<describe::PodCounts> {
    let selector = rc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let lp = ListParams {
        label_selector: Some(
            selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ..ListParams::default()
    };
    let pods = Api::<Pod>::namespaced(session.client.clone(), namespace)
        .list(&lp)
        .await?;
    let uid = rc.metadata.uid.clone().unwrap_or_default();
    let mut counts = describe::PodCounts::default();
    for pod in pods.items {
        let owned = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == uid);
        if !owned {
            continue;
        }
        match pod.status.and_then(|s| s.phase).as_deref() {
            Some("Running") => counts.running += 1,
            Some("Pending") => counts.waiting += 1,
            Some("Succeeded") => counts.succeeded += 1,
            Some("Failed") => counts.failed += 1,
            _ => {}
        }
    }
    Ok(counts)
}
