//! The Node object: registration, status (addresses, capacity, nodeInfo,
//! Ready from the runtime's conditions, daemon endpoints) posted when it
//! changes, and the Lease in kube-node-lease renewed every 10s
//! (upstream's kubelet_node_status.go and nodelease).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::cri::Cri;
use crate::error::Result;
use crate::status::now;

pub const KUBELET_VERSION: &str = "v1.33.1";
const LEASE_DURATION_SECONDS: i32 = 40;
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// Status is posted at least this often even when nothing changed.
const STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);

/// Where the node's runtime facts come from.
#[derive(Clone)]
pub enum RuntimeInfo {
    Remote(Box<Cri>),
    /// The hollow kubelet: always ready.
    Fake,
}

impl RuntimeInfo {
    pub async fn version(&self) -> String {
        match self {
            RuntimeInfo::Remote(cri) => match cri.version().await {
                Ok(v) => format!("{}://{}", v.runtime_name, v.runtime_version),
                Err(_) => "unknown".into(),
            },
            RuntimeInfo::Fake => "fake://1.0.0".into(),
        }
    }

    /// Whether the runtime and its network are ready, and why not.
    pub async fn ready(&self) -> (bool, String) {
        let RuntimeInfo::Remote(cri) = self else {
            return (true, String::new());
        };
        match cri.status().await {
            Err(e) => (false, format!("container runtime is down: {e}")),
            Ok(status) => {
                let mut problems = Vec::new();
                for want in ["RuntimeReady", "NetworkReady"] {
                    match status.conditions.iter().find(|c| c.r#type == want) {
                        Some(c) if c.status => {}
                        Some(c) => problems.push(format!(
                            "container runtime {} not ready: {want}=false reason:{} message:{}",
                            if want == "NetworkReady" {
                                "network"
                            } else {
                                "status"
                            },
                            c.reason,
                            c.message
                        )),
                        None => problems.push(format!("{want} missing from runtime status")),
                    }
                }
                (problems.is_empty(), problems.join("; "))
            }
        }
    }
}

/// Facts about this machine for capacity and nodeInfo.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpus: i64,
    pub memory_bytes: i64,
    pub ephemeral_bytes: Option<i64>,
    pub machine_id: String,
    pub boot_id: String,
    pub kernel: String,
    pub os_image: String,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Machine {
    pub fn detect(root_dir: &std::path::Path) -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let memory_bytes = read_trim("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<i64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let os_image = read_trim("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        Self {
            cpus,
            memory_bytes,
            ephemeral_bytes: disk_bytes(root_dir),
            machine_id: read_trim("/etc/machine-id"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            os_image,
        }
    }
}

fn disk_bytes(path: &std::path::Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = path.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the struct we own.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        Some((s.f_blocks as i64).saturating_mul(s.f_frsize as i64))
    }
}

/// What the node status is made of.
pub struct NodeFacts<'a> {
    pub node_name: &'a str,
    pub node_ip: &'a str,
    pub port: u16,
    pub max_pods: u32,
    pub machine: &'a Machine,
    pub runtime_version: &'a str,
    pub ready: bool,
    pub not_ready_message: &'a str,
}

pub fn capacity(f: &NodeFacts) -> BTreeMap<String, Quantity> {
    let mut cap = BTreeMap::from([
        ("cpu".to_string(), Quantity(f.machine.cpus.to_string())),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", f.machine.memory_bytes / 1024)),
        ),
        ("pods".to_string(), Quantity(f.max_pods.to_string())),
    ]);
    if let Some(e) = f.machine.ephemeral_bytes {
        cap.insert(
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Ki", e / 1024)),
        );
    }
    cap
}

pub fn node_labels(node_name: &str) -> BTreeMap<String, String> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), node_name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch.to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch.to_string()),
    ])
}

/// The status without heartbeat times (for comparisons).
pub fn desired_status(f: &NodeFacts) -> NodeStatus {
    let cap = capacity(f);
    let pressure = |type_: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: "False".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Default::default()
    };
    let ready = if f.ready {
        NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: Some("kubelet is posting ready status".into()),
            ..Default::default()
        }
    } else {
        NodeCondition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: Some("KubeletNotReady".into()),
            message: Some(f.not_ready_message.into()),
            ..Default::default()
        }
    };
    NodeStatus {
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: f.node_ip.into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: f.node_name.into(),
            },
        ]),
        allocatable: Some(cap.clone()),
        capacity: Some(cap),
        conditions: Some(vec![
            pressure(
                "MemoryPressure",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            pressure(
                "DiskPressure",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            pressure(
                "PIDPressure",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ready,
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: f.port as i32,
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH.replace("x86_64", "amd64"),
            boot_id: f.machine.boot_id.clone(),
            container_runtime_version: f.runtime_version.into(),
            kernel_version: f.machine.kernel.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: f.machine.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: f.machine.os_image.clone(),
            system_uuid: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Stamp heartbeat and transition times, keeping transitions of conditions
/// whose status did not change.
fn with_times(mut status: NodeStatus, old: Option<&NodeStatus>) -> NodeStatus {
    let t = now();
    let old_conds = old.and_then(|o| o.conditions.clone()).unwrap_or_default();
    for c in status.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = Some(t.clone());
        c.last_transition_time = match old_conds.iter().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status => o.last_transition_time.clone().or(Some(t.clone())),
            _ => Some(t.clone()),
        };
    }
    status
}

/// Create the Node if it is not there (keeping a spec someone else wrote,
/// such as spec.podCIDR), with this kubelet's labels.
pub async fn register(client: &kube::Client, node_name: &str) -> Result<Node> {
    let api: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(node_name.into()),
            labels: Some(node_labels(node_name)),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &node).await {
        Ok(n) => {
            tracing::info!(node = node_name, "registered node");
            Ok(n)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let patch = json!({"metadata": {"labels": node_labels(node_name)}});
            let n = api
                .patch(node_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            tracing::info!(node = node_name, "node already registered");
            Ok(n)
        }
        Err(e) => Err(e.into()),
    }
}

/// Post status when it differs from the last one posted (or every 5 min).
pub struct StatusReporter {
    last: Option<NodeStatus>,
    last_post: Option<tokio::time::Instant>,
}

impl StatusReporter {
    pub fn new() -> Self {
        Self {
            last: None,
            last_post: None,
        }
    }

    pub async fn report(
        &mut self,
        client: &kube::Client,
        node_name: &str,
        desired: NodeStatus,
    ) -> Result<bool> {
        let due = self
            .last_post
            .is_none_or(|t| t.elapsed() >= STATUS_REPORT_FREQUENCY);
        if !due && self.last.as_ref() == Some(&desired) {
            return Ok(false);
        }
        let api: Api<Node> = Api::all(client.clone());
        let old = api.get(node_name).await?.status;
        let status = with_times(desired.clone(), old.as_ref());
        let patch = json!({"status": status});
        api.patch_status(node_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.last = Some(desired);
        self.last_post = Some(tokio::time::Instant::now());
        Ok(true)
    }
}

impl Default for StatusReporter {
    fn default() -> Self {
        Self::new()
    }
}

/// Renew (or create) the node's Lease forever.
pub async fn lease_loop(client: kube::Client, node_name: String, node_uid: Option<String>) {
    let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let mut tick = tokio::time::interval(LEASE_RENEW);
    loop {
        tick.tick().await;
        if let Err(e) = renew_lease(&api, &node_name, node_uid.as_deref()).await {
            tracing::warn!(error = %e, "renew node lease");
        }
    }
}

async fn renew_lease(api: &Api<Lease>, node_name: &str, node_uid: Option<&str>) -> Result<()> {
    let renew = MicroTime(jiff::Timestamp::now());
    let patch = json!({"spec": {
        "holderIdentity": node_name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": renew,
    }});
    match api
        .patch(node_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node_name.into()),
                    namespace: Some("kube-node-lease".into()),
                    owner_references: node_uid.map(|uid| {
                        vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: node_name.into(),
                            uid: uid.into(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                    holder_identity: Some(node_name.into()),
                    lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                    renew_time: Some(renew),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_has_what_upstream_reports() {
        let m = Machine {
            cpus: 2,
            memory_bytes: 4 << 30,
            ephemeral_bytes: None,
            machine_id: "m".into(),
            boot_id: "b".into(),
            kernel: "6.1".into(),
            os_image: "Debian".into(),
        };
        let f = NodeFacts {
            node_name: "n1",
            node_ip: "10.0.0.2",
            port: 12345,
            max_pods: 110,
            machine: &m,
            runtime_version: "containerd://1.6.20",
            ready: false,
            not_ready_message: "container runtime network not ready",
        };
        let s = desired_status(&f);
        let cap = s.capacity.as_ref().unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(
            s.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
            12345
        );
        let ready = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(s.addresses.as_ref().unwrap()[0].type_, "InternalIP");
        let info = s.node_info.unwrap();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        assert_eq!(node_labels("n1")["kubernetes.io/hostname"], "n1");
    }
}
