//! The Endpoints controller: each Service with a selector gets an
//! Endpoints object of the same name listing its pods: `addresses` for
//! ready pods (or all, with publishNotReadyAddresses), `notReadyAddresses`
//! for the rest that have an IP, with the Service's ports resolved per pod
//! (a numeric targetPort, or a container port looked up by name). Services
//! without a selector (e.g. `kubernetes`, whose Endpoints the apiserver
//! keeps) and ExternalName Services are left alone. As upstream's
//! pkg/controller/endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};

use crate::informer::{get_by_key, key_of, split_key, Change, Informer};
use crate::pod_util::{is_ready, selector_matches};
use crate::queue::{spawn_workers, WorkQueue};
use crate::{is_not_found, ControllerContext, Result};

/// Label on the Endpoints of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Set when the addresses were cut to `MAX_CAPACITY`.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// The trigger-time annotation upstream may set; this controller drops it.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Upstream's maxCapacity of addresses in one Endpoints object.
pub const MAX_CAPACITY: usize = 1000;

pub struct EndpointsController {
    client: Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
    queue: Arc<WorkQueue<String>>,
}

pub fn start(ctx: &Arc<ControllerContext>) {
    let c = Arc::new(EndpointsController {
        client: ctx.client.clone(),
        services: ctx.informers.services(),
        pods: ctx.informers.pods(),
        endpoints: ctx.informers.endpoints(),
        queue: WorkQueue::new("endpoint", ctx.queue_metrics.clone()),
    });
    let h = c.clone();
    c.services.add_handler(move |change| {
        let svc = match change {
            Change::Added(s) | Change::Deleted(s) | Change::Updated { new: s, .. } => *s,
        };
        h.queue.add(key_of(svc));
    });
    let h = c.clone();
    c.pods.add_handler(move |change| h.pod_changed(change));
    let h = c.clone();
    c.endpoints.add_handler(move |change| {
        // Someone else changed or removed an Endpoints we keep: put it back.
        if let Change::Deleted(ep) | Change::Updated { new: ep, .. } = change {
            h.queue.add(key_of(*ep));
        }
    });
    let workers = ctx.config.concurrent_endpoint_syncs;
    tokio::spawn(async move {
        c.services.wait_synced().await;
        c.pods.wait_synced().await;
        c.endpoints.wait_synced().await;
        // Endpoints left from Services deleted while we were away.
        for ep in c.endpoints.store().state() {
            c.queue.add(key_of(ep.as_ref()));
        }
        tracing::info!(workers, "endpoints controller started");
        let queue = c.queue.clone();
        spawn_workers(queue, workers, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        });
    });
}

impl EndpointsController {
    fn pod_changed(&self, change: &Change<'_, Pod>) {
        let mut pods: Vec<&Pod> = Vec::new();
        match change {
            Change::Added(p) | Change::Deleted(p) => pods.push(p),
            Change::Updated { old, new } => {
                if !endpoints_relevant_change(old, new) {
                    return;
                }
                pods.push(old);
                pods.push(new);
            }
        }
        let mut keys = BTreeSet::new();
        for pod in pods {
            let ns = pod.metadata.namespace.clone();
            let labels = pod.metadata.labels.as_ref();
            for svc in self.services.store().state_filter(|s| {
                s.metadata.namespace == ns && selector_matches(&service_selector(s), labels)
            }) {
                keys.insert(key_of(svc.as_ref()));
            }
        }
        for k in keys {
            self.queue.add(k);
        }
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or_default();
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = get_by_key(self.services.store(), key) else {
            // The Service is gone: so are its Endpoints.
            if get_by_key(self.endpoints.store(), key).is_some() {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(());
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok(());
        }
        let selector = service_selector(&svc);
        if selector.is_empty() {
            return Ok(());
        }
        let pods = self.pods.store().state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && selector_matches(&selector, p.metadata.labels.as_ref())
        });
        let (subsets, truncated) = subsets_for(&svc, &pods);

        let current = get_by_key(self.endpoints.store(), key);
        let labels = endpoints_labels(&svc);
        if let Some(cur) = &current {
            let cur_over = cur
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(OVER_CAPACITY_ANNOTATION));
            if normalized(&cur.subsets) == normalized(&Some(subsets.clone()))
                && cur.metadata.labels.clone().unwrap_or_default() == labels
                && cur_over == truncated
            {
                return Ok(());
            }
        }
        let mut annotations = current
            .as_ref()
            .and_then(|c| c.metadata.annotations.clone())
            .unwrap_or_default();
        annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        if truncated {
            annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY_ANNOTATION);
        }
        let ep = Endpoints {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                resource_version: current
                    .as_ref()
                    .and_then(|c| c.metadata.resource_version.clone()),
                ..Default::default()
            },
            subsets: (!subsets.is_empty()).then_some(subsets),
        };
        let result = match &current {
            None => api.create(&PostParams::default(), &ep).await.map(|_| ()),
            Some(_) => api
                .replace(name, &PostParams::default(), &ep)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(()),
            // A terminating namespace refuses new objects; nothing to do.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

pub fn service_selector(svc: &Service) -> BTreeMap<String, String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// Whether a pod change can change Endpoints (upstream's podEndpointsChanged
/// plus label changes, which move it between Services).
fn endpoints_relevant_change(old: &Pod, new: &Pod) -> bool {
    if old.metadata.resource_version == new.metadata.resource_version {
        return false;
    }
    let ip = |p: &Pod| p.status.as_ref().and_then(|s| s.pod_ip.clone());
    let spec = |p: &Pod| {
        p.spec.as_ref().map(|s| {
            (
                s.node_name.clone(),
                s.hostname.clone(),
                s.subdomain.clone(),
                s.containers
                    .iter()
                    .map(|c| c.ports.clone())
                    .collect::<Vec<_>>(),
            )
        })
    };
    let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    old.metadata.labels != new.metadata.labels
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || ip(old) != ip(new)
        || is_ready(old) != is_ready(new)
        || phase(old) != phase(new)
        || spec(old) != spec(new)
}

/// Upstream's ShouldPodBeInEndpoints.
fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    if matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    if pod_ip(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

fn pod_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| status.pod_ips.as_ref()?.first().map(|p| p.ip.clone()))
        .filter(|ip| !ip.is_empty())
}

/// The port a Service port reaches on this pod (upstream's FindPort): a
/// number, or the named container port with the same protocol.
pub fn find_port(pod: &Pod, svc_port: &ServicePort) -> Option<i32> {
    let protocol = svc_port.protocol.as_deref().unwrap_or("TCP");
    match &svc_port.target_port {
        None => Some(svc_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

fn endpoints_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    let headless = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip == "None");
    if headless {
        labels.insert(HEADLESS_LABEL.to_string(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// The subsets for a Service and its selected pods, repacked as upstream's
/// RepackSubsets does (addresses with the same ports share a subset), and
/// whether addresses were cut to MAX_CAPACITY.
pub fn subsets_for(svc: &Service, pods: &[Arc<Pod>]) -> (Vec<EndpointSubset>, bool) {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec.ports.clone().unwrap_or_default();
    let svc_name = svc.name_any();
    // address key -> (address, ready, ports)
    let mut entries: BTreeMap<String, (EndpointAddress, bool, BTreeSet<PortKey>)> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let pspec = pod.spec.clone().unwrap_or_default();
        let hostname = match (&pspec.hostname, &pspec.subdomain) {
            (Some(h), Some(sub)) if !h.is_empty() && *sub == svc_name => Some(h.clone()),
            _ => None,
        };
        let address = EndpointAddress {
            ip: ip.clone(),
            hostname,
            node_name: pspec.node_name.clone().filter(|n| !n.is_empty()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
        };
        let ready = publish_not_ready || is_ready(pod);
        let mut port_keys = BTreeSet::new();
        if ports.is_empty() {
            if !headless {
                continue;
            }
        } else {
            for sp in &ports {
                match find_port(pod, sp) {
                    Some(port) => {
                        port_keys.insert(PortKey {
                            name: sp.name.clone().unwrap_or_default(),
                            port,
                            protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                            app_protocol: sp.app_protocol.clone(),
                        });
                    }
                    None => tracing::debug!(
                        pod = %pod.name_any(),
                        port = ?sp.name,
                        "service port not found on pod"
                    ),
                }
            }
            if port_keys.is_empty() {
                continue;
            }
        }
        let key = format!("{ip}/{}", pod.metadata.uid.as_deref().unwrap_or_default());
        entries.insert(key, (address, ready, port_keys));
    }

    let total = entries.len();
    let truncated = total > MAX_CAPACITY;
    let mut kept: Vec<(EndpointAddress, bool, BTreeSet<PortKey>)> = entries.into_values().collect();
    if truncated {
        // Keep ready addresses first.
        kept.sort_by_key(|(_, ready, _)| !*ready);
        kept.truncate(MAX_CAPACITY);
    }
    // Group by port set.
    let mut groups: BTreeMap<BTreeSet<PortKey>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for (addr, ready, ports) in kept {
        let g = groups.entry(ports).or_default();
        if ready {
            g.0.push(addr);
        } else {
            g.1.push(addr);
        }
    }
    let subsets = groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(address_order);
            not_ready.sort_by(address_order);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty())
                    .then(|| ports.into_iter().map(PortKey::into_port).collect()),
            }
        })
        .collect();
    (subsets, truncated)
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn into_port(self) -> EndpointPort {
        EndpointPort {
            name: (!self.name.is_empty()).then_some(self.name),
            port: self.port,
            protocol: Some(self.protocol),
            app_protocol: self.app_protocol,
        }
    }
}

fn address_order(a: &EndpointAddress, b: &EndpointAddress) -> std::cmp::Ordering {
    let uid = |x: &EndpointAddress| x.target_ref.as_ref().and_then(|r| r.uid.clone());
    let ip = |x: &EndpointAddress| x.ip.parse::<std::net::IpAddr>().ok();
    ip(a)
        .cmp(&ip(b))
        .then_with(|| a.ip.cmp(&b.ip))
        .then_with(|| uid(a).cmp(&uid(b)))
}

/// Subsets compared without regard to order.
fn normalized(subsets: &Option<Vec<EndpointSubset>>) -> Vec<String> {
    let mut out: Vec<String> = subsets
        .iter()
        .flatten()
        .map(|s| {
            let mut s = s.clone();
            for list in [&mut s.addresses, &mut s.not_ready_addresses] {
                if let Some(l) = list {
                    l.sort_by(address_order);
                    if l.is_empty() {
                        *list = None;
                    }
                }
            }
            if let Some(p) = &mut s.ports {
                p.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
                if p.is_empty() {
                    s.ports = None;
                }
            }
            serde_json::to_string(&s).unwrap_or_default()
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: Option<&str>, ready: bool) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
        if let Some(ip) = ip {
            v["status"]["podIP"] = json!(ip);
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ready_and_not_ready_addresses_with_named_ports() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.9",
                "ports": [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"},
                          {"name": "raw", "port": 81, "targetPort": 9000, "protocol": "TCP"}]}}));
        let pods = vec![
            pod("b", Some("10.244.0.11"), true),
            pod("a", Some("10.244.0.9"), true),
            pod("c", Some("10.244.0.10"), false),
            pod("d", None, true),
        ];
        let (subsets, truncated) = subsets_for(&s, &pods);
        assert!(!truncated);
        assert_eq!(subsets.len(), 1);
        let sub = &subsets[0];
        let ips: Vec<&str> = sub
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ips, ["10.244.0.9", "10.244.0.11"]);
        let nr: Vec<&str> = sub
            .not_ready_addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(nr, ["10.244.0.10"]);
        let ports: Vec<(Option<&str>, i32)> = sub
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.as_deref(), p.port))
            .collect();
        assert_eq!(ports, [(Some("raw"), 9000), (Some("web"), 8080)]);
        let a = &sub.addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref()),
            (Some("Pod"), Some("a"))
        );
    }

    #[test]
    fn pods_without_the_named_port_form_their_own_subset() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "web", "port": 80, "targetPort": "other"}]}}));
        let (subsets, _) = subsets_for(&s, &[pod("a", Some("10.244.0.9"), true)]);
        assert!(subsets.is_empty());
    }

    #[test]
    fn publish_not_ready_and_headless_without_ports() {
        let s = svc(
            json!({"metadata": {"name": "db", "namespace": "ns", "labels": {"x": "y"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "None", "publishNotReadyAddresses": true}}),
        );
        let (subsets, _) = subsets_for(&s, &[pod("a", Some("10.244.0.9"), false)]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1);
        assert!(subsets[0].ports.is_none());
        let labels = endpoints_labels(&s);
        assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
        assert_eq!(labels.get("x").map(String::as_str), Some("y"));
    }

    #[test]
    fn terminating_and_finished_pods_are_left_out() {
        let mut p = (*pod("a", Some("10.244.0.9"), true)).clone();
        assert!(should_be_in_endpoints(&p, false));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        assert!(!should_be_in_endpoints(&p, false));
        assert!(should_be_in_endpoints(&p, true));
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!should_be_in_endpoints(&p, true));
    }
}
