//! core/v1 Pod: defaults, initial status (Pending + QoS class), validation,
//! field selectors and the `kubectl get pods` table.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::age::age_between;
use super::defaults::{default_pod_only, default_pod_spec};
use super::print::{column, or_none};
use super::quantity::parse_quantity;
use super::validation::pod_spec::{validate_pod_spec, validate_pod_spec_update, SpecContext};
use super::validation::{validate_object_meta, NameRule, Path};
use crate::strategy::{Column, FieldError, KindStrategy};

pub struct PodStrategy;

impl KindStrategy for PodStrategy {
    type Object = Pod;

    fn default(&self, pod: &mut Pod) {
        if let Some(spec) = pod.spec.as_mut() {
            default_pod_only(spec);
            default_pod_spec(spec);
        }
    }

    /// Upstream resets the status: Pending, with the QoS class computed once.
    /// A bound pod that has not finished gets its grace period (the
    /// kubelet stops it, then deletes it for good).
    fn deletion_grace(&self, pod: &Pod, requested: Option<i64>) -> i64 {
        let spec = pod.spec.as_ref();
        let bound = spec
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if !bound || matches!(phase, Some("Succeeded" | "Failed")) {
            return 0;
        }
        requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0)
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, pod: &mut Pod) {
        let empty = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&empty);
        let mut status = PodStatus {
            phase: Some("Pending".to_string()),
            qos_class: Some(qos_class(spec).to_string()),
            ..Default::default()
        };
        if spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            status.conditions = Some(vec![PodCondition {
                type_: "PodScheduled".to_string(),
                status: "False".to_string(),
                reason: Some("SchedulingGated".to_string()),
                message: Some(
                    "Scheduling is blocked due to non-empty scheduling gates".to_string(),
                ),
                last_transition_time: Some(Time(Timestamp::now())),
                ..Default::default()
            }]);
        }
        pod.status = Some(status);
    }

    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        let mut errs = validate_pod_common(pod);
        let spec_path = Path::new("spec");
        let Some(spec) = &pod.spec else {
            return errs;
        };
        if spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            errs.push(FieldError::forbidden(
                &spec_path.child("ephemeralContainers"),
                "cannot be set on create",
            ));
        }
        let gated = spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty());
        if gated && spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
            errs.push(FieldError::forbidden(
                &spec_path.child("nodeName"),
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        let mut errs = validate_pod_common(new);
        let empty = PodSpec::default();
        errs.extend(validate_pod_spec_update(
            new.spec.as_ref().unwrap_or(&empty),
            old.spec.as_ref().unwrap_or(&empty),
        ));
        errs
    }

    fn field_attrs(&self, pod: &Pod) -> Vec<(&'static str, String)> {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let text = |v: Option<&String>| v.cloned().unwrap_or_default();
        vec![
            (
                "spec.nodeName",
                text(spec.and_then(|s| s.node_name.as_ref())),
            ),
            (
                "spec.restartPolicy",
                text(spec.and_then(|s| s.restart_policy.as_ref())),
            ),
            (
                "spec.schedulerName",
                text(spec.and_then(|s| s.scheduler_name.as_ref())),
            ),
            (
                "spec.serviceAccountName",
                text(spec.and_then(|s| s.service_account_name.as_ref())),
            ),
            (
                "spec.hostNetwork",
                spec.and_then(|s| s.host_network)
                    .unwrap_or(false)
                    .to_string(),
            ),
            ("status.phase", text(status.and_then(|s| s.phase.as_ref()))),
            ("status.podIP", pod_ip(pod).unwrap_or_default()),
            (
                "status.nominatedNodeName",
                text(status.and_then(|s| s.nominated_node_name.as_ref())),
            ),
        ]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            column("Status", "string", 0, "The aggregate status of the containers in this pod."),
            column(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            Column::age(),
            column(
                "IP",
                "string",
                1,
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            column("Node", "string", 1, NODE_NAME_DOC),
            column("Nominated Node", "string", 1, NOMINATED_NODE_DOC),
            column("Readiness Gates", "string", 1, READINESS_GATES_DOC),
        ]
    }

    fn cells(&self, pod: &Pod, age: &str) -> Vec<Value> {
        pod_cells(pod, age, Timestamp::now())
    }
}

const NODE_NAME_DOC: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const NOMINATED_NODE_DOC: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const READINESS_GATES_DOC: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

/// Metadata and spec checks common to create and update.
fn validate_pod_common(pod: &Pod) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&pod.metadata, true, NameRule::Dns1123Subdomain);
    match &pod.spec {
        Some(spec) => errs.extend(validate_pod_spec(
            spec,
            &Path::new("spec"),
            SpecContext::Pod,
        )),
        None => errs.push(FieldError::required(
            &Path::new("spec").child("containers"),
            "",
        )),
    }
    errs
}

fn pod_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .pod_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .map(|ip| ip.ip.clone())
        .or_else(|| status.pod_ip.clone())
}

// ---- QoS class ----

/// Upstream's qos.GetPodQOS over regular and init containers.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for container in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let resources = container.resources.as_ref();
        add_positive(&mut requests, resources.and_then(|r| r.requests.as_ref()));
        let found = add_positive(&mut limits, resources.and_then(|r| r.limits.as_ref()));
        if !(found.contains(&"cpu") && found.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    let matching = requests
        .iter()
        .all(|(name, req)| limits.get(name) == Some(req));
    if guaranteed && matching && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Adds the positive cpu/memory quantities of `list` into `sums`; returns their names.
fn add_positive<'a>(
    sums: &mut BTreeMap<&'a str, i128>,
    list: Option<&'a BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Vec<&'a str> {
    let mut found = Vec::new();
    for (name, quantity) in list.into_iter().flatten() {
        if name != "cpu" && name != "memory" {
            continue;
        }
        if let Some(value) = parse_quantity(&quantity.0).filter(|&v| v > 0) {
            *sums.entry(name.as_str()).or_insert(0) += value;
            found.push(name.as_str());
        }
    }
    found
}

// ---- table ----

/// Counters gathered from container statuses.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &ContainerStatus) {
        self.count += i64::from(status.restart_count);
        let finished = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
            .map(|t| t.0);
        if let Some(f) = finished {
            if self.last.is_none_or(|l| l < f) {
                self.last = Some(f);
            }
        }
    }
}

fn is_restartable(container: Option<&&Container>) -> bool {
    container.is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
}

fn has_condition(status: &PodStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Upstream's printPod: READY, STATUS, RESTARTS and the wide columns.
fn pod_cells(pod: &Pod, age: &str, now: Timestamp) -> Vec<Value> {
    let empty_spec = PodSpec::default();
    let empty_status = PodStatus::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    let status = pod.status.as_ref().unwrap_or(&empty_status);
    let phase = status.phase.as_deref().unwrap_or("");
    let mut reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| phase.to_string());
    let gated = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"));
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let init_specs: BTreeMap<&str, &Container> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let total = spec.containers.len()
        + init_specs
            .values()
            .filter(|c| is_restartable(Some(c)))
            .count();
    let mut ready = 0usize;
    let mut all_restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let init_count = spec.init_containers.as_ref().map_or(0, Vec::len);
    let mut initializing = false;

    for (i, cs) in status.init_container_statuses.iter().flatten().enumerate() {
        all_restarts.add(cs);
        let restartable = is_restartable(init_specs.get(cs.name.as_str()));
        if restartable {
            sidecar_restarts.add(cs);
        }
        let state = cs.state.clone().unwrap_or_default();
        let terminated = state.terminated.as_ref();
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if restartable && cs.started == Some(true) {
            if cs.ready {
                ready += 1;
            }
            continue;
        }
        initializing = true;
        let waiting_reason = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing");
        reason = match (terminated, waiting_reason) {
            (Some(t), _) => match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            },
            (None, Some(w)) => format!("Init:{w}"),
            (None, None) => format!("Init:{i}/{init_count}"),
        };
        break;
    }

    let mut restarts = all_restarts;
    if !initializing || has_condition(status, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for cs in status.container_statuses.iter().flatten().rev() {
            restarts.add(cs);
            let state = cs.state.clone().unwrap_or_default();
            let waiting = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty());
            if let Some(w) = waiting {
                reason = w;
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if cs.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(status, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some("NodeLost") {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_text = match restarts.last {
        Some(last) if restarts.count != 0 => {
            format!("{} ({} ago)", restarts.count, age_between(Some(last), now))
        }
        _ => restarts.count.to_string(),
    };
    vec![
        Value::from(pod.metadata.name.clone().unwrap_or_default()),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_text),
        Value::from(age),
        Value::from(or_none(pod_ip(pod).as_deref())),
        Value::from(or_none(spec.node_name.as_deref())),
        Value::from(or_none(status.nominated_node_name.as_deref())),
        Value::from(readiness_gates(spec, status)),
    ]
}

/// "true/total" over the readiness gates, "<none>" without any.
fn readiness_gates(spec: &PodSpec, status: &PodStatus) -> String {
    let gates = spec.readiness_gates.as_deref().unwrap_or_default();
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let satisfied = gates
        .iter()
        .filter(|g| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == g.condition_type)
                .is_some_and(|c| c.status == "True")
        })
        .count();
    format!("{satisfied}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn defaulted(value: Value) -> Pod {
        let mut p = pod(value);
        PodStrategy.default(&mut p);
        p
    }

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn base() -> Value {
        json!({"metadata": {"name": "nginx-abc", "namespace": "default"},
               "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}})
    }

    #[test]
    fn only_bound_running_pods_get_a_grace_period() {
        let pending = defaulted(json!({"spec": {"containers": [{"name": "c", "image": "i"}]}}));
        assert_eq!(PodStrategy.deletion_grace(&pending, None), 0);
        let mut bound = pending.clone();
        bound.spec.as_mut().unwrap().node_name = Some("n1".into());
        assert_eq!(PodStrategy.deletion_grace(&bound, None), 30);
        assert_eq!(PodStrategy.deletion_grace(&bound, Some(5)), 5);
        bound.status.get_or_insert_with(Default::default).phase = Some("Succeeded".into());
        assert_eq!(PodStrategy.deletion_grace(&bound, None), 0);
    }

    #[test]
    fn defaults_and_initial_status() {
        let mut p = defaulted(base());
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.enable_service_links, Some(true));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
        PodStrategy.prepare_for_create(&mut p);
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
        assert!(PodStrategy.validate(&p).is_empty());
    }

    #[test]
    fn scheduling_gates_add_a_condition() {
        let mut v = base();
        v["spec"]["schedulingGates"] = json!([{"name": "example.com/wait"}]);
        let mut p = defaulted(v);
        PodStrategy.prepare_for_create(&mut p);
        let conditions = p.status.unwrap().conditions.unwrap();
        assert_eq!(conditions[0].reason.as_deref(), Some("SchedulingGated"));
    }

    #[test]
    fn qos_classes() {
        let with = |resources: Value| {
            let mut v = base();
            v["spec"]["containers"][0]["resources"] = resources;
            qos_class(defaulted(v).spec.as_ref().unwrap())
        };
        assert_eq!(with(json!({})), "BestEffort");
        assert_eq!(with(json!({"requests": {"cpu": "100m"}})), "Burstable");
        assert_eq!(
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            "Guaranteed"
        );
        assert_eq!(
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})),
            "Burstable"
        );
        assert_eq!(
            with(json!({"limits": {"cpu": "1000m", "memory": "1Gi"}, "requests": {"cpu": "1"}})),
            "Guaranteed"
        );
    }

    #[test]
    fn name_and_create_only_rules() {
        let mut v = base();
        v["metadata"]["name"] = json!("Nginx");
        v["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}]);
        let errs: Vec<String> = PodStrategy
            .validate(&defaulted(v))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(errs[0].starts_with("metadata.name: Invalid value: \"Nginx\""));
        assert_eq!(
            errs.last().unwrap(),
            "spec.ephemeralContainers: Forbidden: cannot be set on create"
        );
    }

    #[test]
    fn field_attrs_cover_upstream_fields() {
        let mut v = base();
        v["spec"]["nodeName"] = json!("node-1");
        v["status"] = json!({"phase": "Running", "podIPs": [{"ip": "10.244.1.5"}]});
        let attrs = PodStrategy.field_attrs(&defaulted(v));
        let get = |k: &str| attrs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("spec.nodeName").as_deref(), Some("node-1"));
        assert_eq!(get("status.phase").as_deref(), Some("Running"));
        assert_eq!(get("status.podIP").as_deref(), Some("10.244.1.5"));
        assert_eq!(get("spec.hostNetwork").as_deref(), Some("false"));
        assert_eq!(get("spec.restartPolicy").as_deref(), Some("Always"));
        assert_eq!(PodStrategy.field_attrs(&Pod::default()).len(), attrs.len());
    }

    fn cells(v: Value) -> Vec<Value> {
        pod_cells(&pod(v), "5m", now())
    }

    #[test]
    fn running_pod_with_a_restart() {
        let mut v = base();
        v["spec"]["nodeName"] = json!("node-1");
        v["status"] = json!({
            "phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "", "ready": true, "restartCount": 1,
                "state": {"running": {"startedAt": "2024-05-01T11:58:00Z"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}}}]
        });
        assert_eq!(
            cells(v),
            vec![
                json!("nginx-abc"),
                json!("1/1"),
                json!("Running"),
                json!("1 (5m ago)"),
                json!("5m"),
                json!("10.244.1.5"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pending_pod_prints_none_for_wide_columns() {
        let mut v = base();
        v["status"] = json!({"phase": "Pending"});
        let c = cells(v);
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[2], json!("Pending"));
        assert_eq!(c[3], json!("0"));
        assert_eq!(c[5], json!("<none>"));
        assert_eq!(c[6], json!("<none>"));
    }

    #[test]
    fn waiting_reason_wins() {
        let mut v = base();
        v["status"] = json!({"phase": "Pending", "containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert_eq!(cells(v)[2], json!("ContainerCreating"));
    }

    #[test]
    fn completed_and_terminated_without_reason() {
        let mut v = base();
        v["status"] = json!({"phase": "Succeeded", "containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        assert_eq!(cells(v.clone())[2], json!("Completed"));
        v["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 137}});
        assert_eq!(cells(v.clone())[2], json!("ExitCode:137"));
        v["status"]["containerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 0, "signal": 9}});
        assert_eq!(cells(v)[2], json!("Signal:9"));
    }

    #[test]
    fn init_containers_progress() {
        let mut v = base();
        v["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        v["status"] = json!({"phase": "Pending", "initContainerStatuses": [{"name": "init", "image": "busybox", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"running": {}}}]});
        assert_eq!(cells(v.clone())[2], json!("Init:0/1"));
        v["status"]["initContainerStatuses"][0]["state"] =
            json!({"waiting": {"reason": "CrashLoopBackOff"}});
        assert_eq!(cells(v.clone())[2], json!("Init:CrashLoopBackOff"));
        v["status"]["initContainerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 2}});
        assert_eq!(cells(v)[2], json!("Init:ExitCode:2"));
    }

    #[test]
    fn sidecars_count_towards_ready() {
        let mut v = base();
        v["spec"]["initContainers"] =
            json!([{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]);
        v["status"] = json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "image": "envoy", "imageID": "", "ready": true, "started": true,
                "restartCount": 2, "state": {"running": {}}}],
            "containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {}}}]});
        let c = cells(v);
        assert_eq!(c[1], json!("2/2"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("2"));
    }

    #[test]
    fn terminating_pods() {
        let mut v = base();
        v["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        v["status"] = json!({"phase": "Running"});
        assert_eq!(cells(v.clone())[2], json!("Terminating"));
        v["status"] = json!({"phase": "Running", "reason": "NodeLost"});
        assert_eq!(cells(v.clone())[2], json!("Unknown"));
        v["status"] = json!({"phase": "Succeeded"});
        assert_eq!(cells(v)[2], json!("Succeeded"));
    }

    #[test]
    fn readiness_gates_column() {
        let mut v = base();
        v["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/lb"}, {"conditionType": "example.com/x"}]);
        v["status"] = json!({"conditions": [{"type": "example.com/lb", "status": "True"}]});
        assert_eq!(cells(v)[8], json!("1/2"));
    }

    #[test]
    fn columns_match_cells() {
        assert_eq!(PodStrategy.columns().len(), cells(base()).len());
        let names: Vec<&str> = PodStrategy.columns().iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
    }
}
