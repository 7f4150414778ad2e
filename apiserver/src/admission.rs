//! What happens around a write beyond the kind's strategy: the namespace must
//! exist and not be terminating; Services get ClusterIPs and NodePorts (and
//! give them back); a new namespace gets its `default` ServiceAccount; a new
//! pod tolerates its node becoming not-ready or unreachable for a while
//! (upstream's DefaultTolerationSeconds plugin), after which the node
//! lifecycle controller evicts it; a pod runs as a service account
//! (`default` unless it names one that exists).
//!
//! The `default` ServiceAccount is made here, in the apiserver, rather than
//! by a controller: every namespace has one from the moment it exists.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handler::{create_object, Api, WriteOptions};
use crate::meta;
use crate::registry::ResourceInfo;
use crate::strategy::FieldError;

pub async fn before_create(
    api: &Api,
    info: &ResourceInfo,
    obj: &mut Value,
    dry_run: bool,
) -> ApiResult<()> {
    if info.namespaced {
        let ns = meta::namespace(obj).unwrap_or("").to_string();
        let ns_info = api
            .registry
            .find("", "v1", "namespaces")
            .expect("namespaces are registered");
        let key = meta::key(&api.prefix, ns_info, None, &ns);
        // The watch cache answers for namespaces, as upstream's admission
        // reads its informer; a namespace it has not seen yet (just created)
        // is looked up in the store.
        let nsobj = match api.cache.get(&key) {
            Some(o) => o.value(),
            None => match api.store.get(&key).await? {
                None => return Err(ApiError::not_found(ns_info, &ns)),
                Some(kv) => serde_json::from_slice(&kv.value).unwrap_or(Value::Null),
            },
        };
        if meta::deletion_timestamp(&nsobj).is_some() {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                info.qualified_resource(),
                meta::name(obj).unwrap_or("")
            )));
        }
    }
    if info.plural == "services" {
        allocate_service(api, info, obj, None)?;
    }
    if info.plural == "pods" && info.group.is_empty() {
        add_default_tolerations(&api.toleration_seconds, obj);
        set_service_account(api, obj).await?;
    }
    let _ = dry_run;
    Ok(())
}

/// Upstream's ServiceAccount admission: a pod runs as `default` unless it
/// names a service account, which must exist in its namespace.
async fn set_service_account(api: &Api, pod: &mut Value) -> ApiResult<()> {
    let ns = meta::namespace(pod).unwrap_or("").to_string();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match spec.get("serviceAccount").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => "default".to_string(),
        },
    };
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    let key = format!("{}/serviceaccounts/{ns}/{name}", api.prefix);
    // The cache may not have seen a service account created just now.
    let sa = match api.cache.get(&key) {
        Some(sa) => Some(sa.value()),
        None => api
            .store
            .get(&key)
            .await?
            .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok()),
    };
    let Some(sa) = sa else {
        return Err(ApiError::forbidden(format!(
            "pods \"{}\" is forbidden: error looking up service account {ns}/{name}: serviceaccount \"{name}\" not found",
            meta::name(pod).unwrap_or("")
        )));
    };
    crate::serviceaccount::mount::add_token_volume(pod, &sa);
    Ok(())
}

/// `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds`.
#[derive(Debug, Clone, Copy)]
pub struct DefaultTolerationSeconds {
    pub not_ready: i64,
    pub unreachable: i64,
}

const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// Add a NoExecute toleration for each of the two node-condition taints the
/// pod does not tolerate already.
fn add_default_tolerations(seconds: &DefaultTolerationSeconds, pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for (key, secs) in [
        (NOT_READY_TAINT, seconds.not_ready),
        (UNREACHABLE_TAINT, seconds.unreachable),
    ] {
        if list.iter().any(|t| tolerates_no_execute(t, key)) {
            continue;
        }
        list.push(json!({
            "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs,
        }));
    }
}

/// Whether toleration `t` covers the NoExecute taint `key` (any value).
fn tolerates_no_execute(t: &Value, key: &str) -> bool {
    let effect_ok = matches!(t["effect"].as_str(), None | Some("") | Some("NoExecute"));
    let key_ok = match t["key"].as_str() {
        None | Some("") => t["operator"].as_str() == Some("Exists"),
        Some(k) => k == key,
    };
    effect_ok && key_ok
}

/// Give back what `before_create` took, when the object was not stored.
pub fn undo_create(api: &Api, info: &ResourceInfo, obj: &Value) {
    if info.plural == "services" {
        release_service(api, obj, None);
    }
}

pub async fn after_create(api: &Api, info: &ResourceInfo, obj: &Value) {
    if info.plural == "namespaces" {
        let Some(ns) = meta::name(obj) else { return };
        let Some(sa) = api.registry.find("", "v1", "serviceaccounts") else {
            return;
        };
        let body =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        match Box::pin(create_object(
            api,
            sa,
            Some(ns),
            body,
            WriteOptions::internal(),
        ))
        .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::warn!(namespace = ns, error = %e, "could not create the default ServiceAccount")
            }
        }
        if let Err(e) = crate::serviceaccount::root_ca::publish(api, ns).await {
            tracing::warn!(namespace = ns, error = %e, "could not publish kube-root-ca.crt");
        }
    }
}

pub fn before_update(
    api: &Api,
    info: &ResourceInfo,
    new: &mut Value,
    old: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    if info.plural == "services" {
        allocate_service(api, info, new, Some(old))?;
        if dry_run {
            undo_update(api, info, new, old);
        }
    }
    Ok(())
}

/// Give back what `before_update` took for `new`, when `new` was not stored.
pub fn undo_update(api: &Api, info: &ResourceInfo, new: &Value, old: &Value) {
    if info.plural == "services" {
        release_service(api, new, Some(old));
    }
}

pub fn after_update(api: &Api, info: &ResourceInfo, new: &Value, old: &Value) {
    if info.plural == "services" {
        // Ports the new version no longer uses go back to the pool.
        release_service(api, old, Some(new));
    }
}

pub fn after_delete(api: &Api, info: &ResourceInfo, obj: &Value) {
    if info.plural == "services" {
        release_service(api, obj, None);
    }
}

/// Mark every stored Service's addresses as taken (at start).
pub async fn rebuild_allocations(api: &Api) -> ApiResult<()> {
    let info = api
        .registry
        .find("", "v1", "services")
        .expect("services are registered");
    let list = api
        .store
        .list(&meta::key_prefix(&api.prefix, info, None), None, None, None)
        .await?;
    for kv in list.items {
        let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if let Some(ip) = cluster_ip(&svc) {
            let _ = api.services.allocate_ip(Some(ip));
        }
        for p in node_ports(&svc) {
            let _ = api.services.allocate_port(Some(p));
        }
    }
    Ok(())
}

fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc["spec"]["clusterIP"].as_str()?.parse().ok()
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default()
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    )
}

/// Allocate what `svc` lacks. On update, addresses the old version holds are
/// kept (an update that omits clusterIP keeps it, as upstream).
fn allocate_service(
    api: &Api,
    info: &ResourceInfo,
    svc: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let name = meta::name(svc).unwrap_or("").to_string();
    let invalid = |field: &str, value: Value, e: String| {
        ApiError::invalid(info, &name, &[FieldError::invalid(field, value, e)])
    };
    let svc_type = svc["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    // ClusterIP.
    let old_ip = old.and_then(|o| o["spec"]["clusterIP"].as_str().map(String::from));
    let requested = svc["spec"]["clusterIP"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from);
    let mut taken_ip = None;
    if svc_type != "ExternalName" {
        match (requested.as_deref(), old_ip.as_deref()) {
            (Some("None"), _) => svc["spec"]["clusterIPs"] = json!(["None"]),
            (None, Some(o)) => {
                svc["spec"]["clusterIP"] = json!(o);
                svc["spec"]["clusterIPs"] = json!([o]);
            }
            (Some(r), Some(o)) if r == o => {}
            (r, _) => {
                let want = match r {
                    Some(s) => Some(s.parse::<Ipv4Addr>().map_err(|_| {
                        invalid(
                            "spec.clusterIPs",
                            json!([s]),
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                        )
                    })?),
                    None => None,
                };
                let ip = api.services.allocate_ip(want).map_err(|e| {
                    invalid(
                        "spec.clusterIPs",
                        json!([r.unwrap_or("")]),
                        format!("failed to allocate IP {}: {e}", r.unwrap_or("")),
                    )
                })?;
                taken_ip = Some(ip);
                svc["spec"]["clusterIP"] = json!(ip.to_string());
                svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
            }
        }
    }
    // NodePorts.
    if needs_node_ports(svc) {
        let old_ports: Vec<(i64, u64)> = old
            .and_then(|o| o["spec"]["ports"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Some((p["port"].as_i64()?, p["nodePort"].as_u64()?)))
            .collect();
        let mut taken_ports = Vec::new();
        let n = svc["spec"]["ports"].as_array().map_or(0, Vec::len);
        for i in 0..n {
            let port = &mut svc["spec"]["ports"][i];
            let kept = old_ports
                .iter()
                .find(|(p, _)| Some(*p) == port["port"].as_i64())
                .map(|(_, np)| *np);
            let result = match (port["nodePort"].as_u64(), kept) {
                (Some(np), Some(k)) if np == k => continue,
                (None, Some(k)) => {
                    port["nodePort"] = json!(k);
                    continue;
                }
                (Some(np), _) => api.services.allocate_port(Some(np as u16)),
                (None, None) => api.services.allocate_port(None),
            };
            match result {
                Ok(p) => {
                    port["nodePort"] = json!(p);
                    taken_ports.push(p);
                }
                Err(e) => {
                    for p in taken_ports {
                        api.services.release_port(p);
                    }
                    if let Some(ip) = taken_ip {
                        api.services.release_ip(ip);
                    }
                    let value = port["nodePort"].clone();
                    return Err(invalid(
                        &format!("spec.ports[{i}].nodePort"),
                        value,
                        e.to_string(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Release what `svc` holds and `keep` (its successor, if any) does not.
fn release_service(api: &Api, svc: &Value, keep: Option<&Value>) {
    let kept_ip = keep.and_then(cluster_ip);
    if let Some(ip) = cluster_ip(svc) {
        if kept_ip != Some(ip) {
            api.services.release_ip(ip);
        }
    }
    let kept_ports = keep
        .map(|k| {
            if needs_node_ports(k) {
                node_ports(k)
            } else {
                Vec::new()
            }
        })
        .unwrap_or_default();
    for p in node_ports(svc) {
        if !kept_ports.contains(&p) {
            api.services.release_port(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: DefaultTolerationSeconds = DefaultTolerationSeconds {
        not_ready: 300,
        unreachable: 120,
    };

    #[test]
    fn new_pods_tolerate_node_trouble_for_a_while() {
        let mut pod = json!({"spec": {"containers": []}});
        add_default_tolerations(&SECS, &mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 120},
            ])
        );
    }

    #[test]
    fn own_tolerations_are_kept() {
        let mine = json!({"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2});
        let mut pod = json!({"spec": {"tolerations": [mine.clone()]}});
        add_default_tolerations(&SECS, &mut pod);
        let list = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], mine);
        assert_eq!(list[1]["key"], NOT_READY_TAINT);

        // Tolerating everything covers both.
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_default_tolerations(&SECS, &mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
