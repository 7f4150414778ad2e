//! Pod and container specs -> CRI PodSandboxConfig and ContainerConfig, as
//! upstream's kuberuntime_sandbox.go and kuberuntime_container.go build them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, DnsConfig, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PortMapping, Protocol,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use sha2::{Digest, Sha256};

use crate::env::expand;
use crate::labels;
use crate::resources;

/// Node-wide settings the specs depend on.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub root_dir: PathBuf,
    pub cgroup_root: String,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub node_name: String,
    pub memory_capacity: i64,
}

/// `<root>/logs/pods/<namespace>_<name>_<uid>` (upstream: /var/log/pods/...).
pub fn pod_log_dir(root: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    root.join("logs")
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"))
}

/// The pod's cgroup (cgroupfs driver): `<cgroup-root>/kubepods/pod<uid>`.
pub fn pod_cgroup(cgroup_root: &str, uid: &str) -> String {
    let root = cgroup_root.trim_end_matches('/');
    format!("{root}/kubepods/pod{uid}")
}

fn meta(pod: &Pod) -> (&str, &str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default(),
    )
}

fn namespace_options(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: Option<bool>| f.unwrap_or(false);
    let mode = |host: bool, shared: NamespaceMode| {
        if host {
            NamespaceMode::Node as i32
        } else {
            shared as i32
        }
    };
    let pid_shared = if flag(spec.and_then(|s| s.share_process_namespace)) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: mode(flag(spec.and_then(|s| s.host_network)), NamespaceMode::Pod),
        pid: mode(flag(spec.and_then(|s| s.host_pid)), pid_shared),
        ipc: mode(flag(spec.and_then(|s| s.host_ipc)), NamespaceMode::Pod),
        ..Default::default()
    }
}

/// The pod's hostname: spec.hostname or the pod name, at most 63 chars.
fn hostname(pod: &Pod) -> String {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with('-') || h.ends_with('.') {
        h.pop();
    }
    h
}

/// DNS per dnsPolicy; `None` lets the runtime use the node's resolv.conf.
fn dns_config(pod: &Pod, node: &NodeSettings) -> Option<DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_net = spec.host_network.unwrap_or(false);
    let mut dns = match policy {
        "ClusterFirstWithHostNet" | "ClusterFirst"
            if !node.cluster_dns.is_empty() && (!host_net || policy != "ClusterFirst") =>
        {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let d = &node.cluster_domain;
            DnsConfig {
                servers: node.cluster_dns.clone(),
                searches: vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()],
                options: vec!["ndots:5".into()],
            }
        }
        "None" => DnsConfig::default(),
        _ => {
            // Without cluster DNS or a pod dnsConfig: the node's resolv.conf.
            spec.dns_config.as_ref()?;
            DnsConfig::default()
        }
    };
    if let Some(pc) = &spec.dns_config {
        dns.servers.extend(pc.nameservers.iter().flatten().cloned());
        dns.searches.extend(pc.searches.iter().flatten().cloned());
        for o in pc.options.iter().flatten() {
            let Some(name) = &o.name else { continue };
            dns.options
                .retain(|x| x.split(':').next() != Some(name.as_str()));
            dns.options.push(match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            });
        }
    }
    Some(dns)
}

fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        for p in c.ports.iter().flatten() {
            let host_port = p.host_port.unwrap_or(0);
            if host_port <= 0 {
                continue;
            }
            let protocol = match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            out.push(PortMapping {
                protocol: protocol as i32,
                container_port: p.container_port,
                host_port,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            });
        }
    }
    out
}

pub fn sandbox_config(pod: &Pod, node: &NodeSettings, attempt: u32) -> PodSandboxConfig {
    let (ns, name, uid) = meta(pod);
    let mut labels_map: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels_map.extend(labels::pod_labels(ns, name, uid));
    labels_map.insert(labels::CONTAINER_TYPE.into(), "podsandbox".into());
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: ns.into(),
            attempt,
        }),
        hostname: hostname(pod),
        log_directory: pod_log_dir(&node.root_dir, ns, name, uid)
            .to_string_lossy()
            .into_owned(),
        dns_config: dns_config(pod, node),
        port_mappings: port_mappings(pod),
        labels: labels_map,
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: pod_cgroup(&node.cgroup_root, uid),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A short hash of the container's spec: a container whose spec changed
/// (a new image) is restarted.
pub fn container_hash(container: &Container) -> String {
    let json = serde_json::to_vec(container).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// Everything a container config is made of besides the specs.
pub struct ContainerInputs<'a> {
    pub image_ref: &'a str,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub restart_count: i32,
    pub init: bool,
}

pub fn container_config(
    pod: &Pod,
    container: &Container,
    node: &NodeSettings,
    inputs: ContainerInputs,
) -> ContainerConfig {
    let (ns, name, uid) = meta(pod);
    let env_map: HashMap<&str, &str> = inputs
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let lookup = |k: &str| env_map.get(k).map(|v| v.to_string());
    let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|s| expand(s, lookup)).collect()
    };
    let mut labels_map = labels::pod_labels(ns, name, uid);
    labels_map.insert(labels::CONTAINER_NAME.into(), container.name.clone());
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let mut annotations = HashMap::from([
        (
            labels::CONTAINER_HASH.to_string(),
            container_hash(container),
        ),
        (
            labels::RESTART_COUNT.to_string(),
            inputs.restart_count.to_string(),
        ),
        (
            labels::TERMINATION_MESSAGE_PATH.to_string(),
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            labels::TERMINATION_GRACE_PERIOD.to_string(),
            grace.to_string(),
        ),
    ]);
    if inputs.init {
        annotations.insert(labels::INIT_CONTAINER.to_string(), "true".into());
    }
    let sc = container.security_context.as_ref();
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user));
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group));
    let capabilities = sc
        .and_then(|s| s.capabilities.as_ref())
        .map(|c| Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            ..Default::default()
        });
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: inputs.restart_count.max(0) as u32,
        }),
        image: Some(ImageSpec {
            image: inputs.image_ref.to_string(),
            user_specified_image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: inputs
            .env
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts: inputs.mounts,
        labels: labels_map,
        annotations,
        log_path: format!("{}/{}.log", container.name, inputs.restart_count),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources::linux_resources(
                pod,
                container,
                node.memory_capacity,
            )),
            security_context: Some(LinuxContainerSecurityContext {
                capabilities,
                privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
                namespace_options: Some(namespace_options(pod)),
                run_as_user: run_as_user.map(|value| Int64Value { value }),
                run_as_group: run_as_group.map(|value| Int64Value { value }),
                readonly_rootfs: sc
                    .and_then(|s| s.read_only_root_filesystem)
                    .unwrap_or(false),
                no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> NodeSettings {
        NodeSettings {
            root_dir: "/var/lib/kubelet".into(),
            cgroup_root: "/".into(),
            cluster_dns: vec!["10.96.0.10".into()],
            cluster_domain: "cluster.local".into(),
            node_name: "n1".into(),
            memory_capacity: 1 << 30,
        }
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx",
                "command": ["sh", "-c"], "args": ["echo $(GREETING)"],
                "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]}
        }))
        .unwrap()
    }

    #[test]
    fn sandbox_config_as_upstream() {
        let c = sandbox_config(&pod(), &node(), 2);
        let m = c.metadata.as_ref().unwrap();
        assert_eq!(
            (
                m.name.as_str(),
                m.namespace.as_str(),
                m.uid.as_str(),
                m.attempt
            ),
            ("web", "prod", "u-1", 2)
        );
        assert_eq!(c.hostname, "web");
        assert_eq!(c.log_directory, "/var/lib/kubelet/logs/pods/prod_web_u-1");
        assert_eq!(c.labels[labels::POD_UID], "u-1");
        assert_eq!(c.labels["app"], "web");
        let dns = c.dns_config.as_ref().unwrap();
        assert_eq!(dns.servers, vec!["10.96.0.10"]);
        assert_eq!(
            dns.searches,
            vec![
                "prod.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(dns.options, vec!["ndots:5"]);
        assert_eq!(c.port_mappings.len(), 1);
        assert_eq!(c.port_mappings[0].host_port, 8080);
        let linux = c.linux.as_ref().unwrap();
        assert_eq!(linux.cgroup_parent, "/kubepods/podu-1");
        let nso = linux
            .security_context
            .as_ref()
            .unwrap()
            .namespace_options
            .as_ref()
            .unwrap();
        assert_eq!(nso.pid, NamespaceMode::Container as i32);
        assert_eq!(nso.network, NamespaceMode::Pod as i32);
    }

    #[test]
    fn no_cluster_dns_uses_the_nodes() {
        let mut n = node();
        n.cluster_dns.clear();
        assert!(sandbox_config(&pod(), &n, 0).dns_config.is_none());
    }

    #[test]
    fn container_config_as_upstream() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let cfg = container_config(
            &p,
            c,
            &node(),
            ContainerInputs {
                image_ref: "sha256:abc",
                env: vec![("GREETING".into(), "hi".into())],
                mounts: vec![],
                restart_count: 3,
                init: false,
            },
        );
        assert_eq!(cfg.metadata.as_ref().unwrap().attempt, 3);
        assert_eq!(cfg.log_path, "nginx/3.log");
        assert_eq!(cfg.args, vec!["echo hi"]);
        assert_eq!(cfg.image.as_ref().unwrap().image, "sha256:abc");
        assert_eq!(cfg.labels[labels::CONTAINER_NAME], "nginx");
        assert_eq!(labels::restart_count(&cfg.annotations), 3);
        assert_eq!(cfg.annotations[labels::CONTAINER_HASH], container_hash(c));
    }
}
