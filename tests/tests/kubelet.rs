//! The kubelet against a real kube-apiserver (on etcd) and a real
//! containerd (the cluster crate's, one per test, in the host's network
//! namespace): real pods in real containers. No scheduler runs: pods are
//! bound by spec.nodeName. Each test makes its own node with a random
//! 10.244.X.0/24 podCIDR; the service and cluster CIDRs are blackholed
//! before any traffic.
//!
//! Build first: cargo build -p apiserver -p kubelet --bins

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster::containerd::{ContainerdConfig, ContainerdProcess};
use cluster::netsafety::{ensure_blackhole_routes, BlackholeRoutes};
use e2e_tests::apiserver::TestCluster;
use e2e_tests::component::ComponentProcess;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// Removes the kubelet's cgroup tree in every hierarchy (the runtime and
/// the kubelet leave empty parents behind only if something went wrong).
struct CgroupGuard(String);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for e in entries.flatten() {
            let dir = e.path().join(self.0.trim_start_matches('/'));
            remove_cgroup_tree(&dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// One node: containerd + kubelet, registered with its own apiserver.
/// Fields drop in order: the kubelet first, then containerd (which removes
/// every container, sandbox and network state), cgroups, the control plane,
/// the files, and the blackhole routes last.
struct TestNode {
    kubelet: Option<ComponentProcess>,
    containerd: ContainerdProcess,
    _cgroups: CgroupGuard,
    cluster: TestCluster,
    dir: tempfile::TempDir,
    _routes: BlackholeRoutes,
    name: String,
    pod_cidr: String,
    kubelet_args: Vec<String>,
    client: kube::Client,
}

fn images_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join("mk-kubelet-test-images");
    cluster::images::build_images(&dir).context("build images")?;
    Ok(dir)
}

fn unique() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::process::id().wrapping_mul(7919) ^ nanos
}

impl TestNode {
    async fn start() -> Result<Self> {
        let routes = ensure_blackhole_routes("10.96.0.0/12", "10.244.0.0/16")?;
        let images = images_dir()?;
        let cluster = TestCluster::start()?;
        let client = cluster.apiserver.client().await?;
        let u = unique();
        let name = format!("node-{:x}", u & 0xffffff);
        let pod_cidr = format!("10.244.{}.0/24", 100 + (u % 150));
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
        }))?;
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await?;
        let dir = tempfile::Builder::new()
            .prefix("mk-kt-")
            .tempdir_in("/tmp")?;
        let mut cfg = ContainerdConfig::new(dir.path().join("c"));
        cfg.pod_cidr = Some(pod_cidr.clone());
        let containerd = ContainerdProcess::start(&cfg)?;
        let cgroup_root = format!("/mk-kt-{u:x}");
        let kubelet_args = vec![
            format!("--kubeconfig={}", cluster.apiserver.kubeconfig().display()),
            format!("--hostname-override={name}"),
            "--node-ip=127.0.0.1".into(),
            format!(
                "--container-runtime-endpoint=unix://{}",
                containerd.socket().display()
            ),
            format!("--image-dir={}", images.display()),
            format!("--root-dir={}", dir.path().join("kubelet").display()),
            format!("--cgroup-root={cgroup_root}"),
            "--port=0".into(),
            "--address=127.0.0.1".into(),
            "--healthz-port=0".into(),
            "--node-status-update-frequency=1s".into(),
            // Running pods' volumes follow ConfigMap changes within seconds.
            "--sync-frequency=2s".into(),
        ];
        let mut me = Self {
            kubelet: None,
            containerd,
            _cgroups: CgroupGuard(cgroup_root),
            cluster,
            dir,
            _routes: routes,
            name,
            pod_cidr,
            kubelet_args,
            client,
        };
        me.start_kubelet()?;
        me.wait_ready().await?;
        Ok(me)
    }

    fn start_kubelet(&mut self) -> Result<()> {
        let k = ComponentProcess::start("kubelet", "kubelet", self.dir.path(), &self.kubelet_args)?;
        self.kubelet = Some(k);
        Ok(())
    }

    fn log(&self) -> String {
        self.kubelet.as_ref().map(|k| k.log()).unwrap_or_default()
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(k) = self.kubelet.as_mut() {
                if !k.alive() {
                    bail!("kubelet exited:\n{}", k.log());
                }
            }
            let node = api.get(&self.name).await?;
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True");
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("node not Ready: {:?}\n{}", node.status, self.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The kubelet server's port, as the node reports it.
    async fn kubelet_port(&self) -> Result<u16> {
        let node = Api::<Node>::all(self.client.clone())
            .get(&self.name)
            .await?;
        let port = node
            .status
            .and_then(|s| s.daemon_endpoints)
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port)
            .context("no daemonEndpoints")?;
        Ok(port as u16)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create_pod(&self, pod: Value) -> Result<Pod> {
        let mut pod = pod;
        pod["spec"]["nodeName"] = json!(self.name);
        let pod: Pod = serde_json::from_value(pod)?;
        Ok(self.pods().create(&PostParams::default(), &pod).await?)
    }

    /// Poll the pod until `pred` holds.
    async fn wait_pod(&self, name: &str, what: &str, pred: impl Fn(&Pod) -> bool) -> Result<Pod> {
        self.wait_pod_for(name, what, WAIT, pred).await
    }

    async fn wait_pod_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Pod) -> bool,
    ) -> Result<Pod> {
        let deadline = Instant::now() + timeout;
        loop {
            let pod = self.pods().get(name).await?;
            if pred(&pod) {
                return Ok(pod);
            }
            if Instant::now() > deadline {
                bail!(
                    "pod {name}: {what} not reached; status: {}\nkubelet log:\n{}",
                    serde_json::to_string_pretty(&pod.status)?,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn wait_gone(&self, name: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.pods().get_opt(name).await?.is_some() {
            if Instant::now() > deadline {
                bail!("pod {name} still there\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Container IDs containerd knows (through ctr).
    fn runtime_containers(&self) -> Result<Vec<String>> {
        let out = std::process::Command::new("ctr")
            .arg("--address")
            .arg(self.containerd.socket())
            .args(["-n", "k8s.io", "containers", "ls", "-q"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn container_status(p: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
}

fn condition(p: &Pod, type_: &str) -> Option<String> {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.clone())
}

fn waiting_reason(p: &Pod) -> Option<String> {
    container_status(p)
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone())
}

fn busybox(name: &str, script: &str, restart: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": "busybox", "imagePullPolicy": "Never",
                "command": ["sh", "-c", script]}]
        }
    })
}

/// An HTTP/1.0 GET with timeouts; the whole answer.
fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let prefix = cidr.trim_end_matches("0/24");
    ip.starts_with(prefix)
}

#[tokio::test]
async fn nginx_pods_run_with_pod_ips_and_serve() -> Result<()> {
    let node = TestNode::start().await?;
    for name in ["web-1", "web-2"] {
        node.create_pod(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx",
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}}]}
        }))
        .await?;
    }
    for name in ["web-1", "web-2"] {
        let pod = node
            .wait_pod(name, "Running and Ready", |p| {
                phase(p) == "Running" && condition(p, "Ready").as_deref() == Some("True")
            })
            .await?;
        let status = pod.status.as_ref().unwrap();
        let ip = status.pod_ip.clone().context("no podIP")?;
        assert!(
            in_cidr(&ip, &node.pod_cidr),
            "{ip} not in {}",
            node.pod_cidr
        );
        assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
        for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(condition(&pod, c).as_deref(), Some("True"), "{c}");
        }
        let cs = container_status(&pod).unwrap();
        assert!(cs.ready);
        assert!(cs
            .container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://"));
        assert!(cs.state.as_ref().unwrap().running.is_some());
        assert_eq!(cs.restart_count, 0);
        assert!(!cs.image_id.is_empty());
        let resp = http_get(SocketAddr::new(ip.parse()?, 80), "/")?;
        assert!(resp.contains("Welcome to nginx!"), "{resp}");
    }
    // nginx logs the request to stdout: read it through the kubelet.
    let port = node.kubelet_port().await?;
    let logs = http_get(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "/containerLogs/default/web-1/nginx",
    )?;
    assert!(body(&logs).contains("GET / HTTP"), "{logs}");
    Ok(())
}

#[tokio::test]
async fn exit_codes_and_crash_loop_back_off() -> Result<()> {
    let node = TestNode::start().await?;
    node.create_pod(busybox("fails-once", "echo bye; exit 3", "Never"))
        .await?;
    node.create_pod(busybox("crashes", "echo attempt; exit 3", "Always"))
        .await?;
    node.create_pod(busybox("succeeds", "exit 0", "OnFailure"))
        .await?;

    let pod = node
        .wait_pod("fails-once", "Failed", |p| phase(p) == "Failed")
        .await?;
    let t = container_status(&pod)
        .and_then(|c| c.state.clone())
        .and_then(|s| s.terminated)
        .context("not terminated")?;
    assert_eq!(t.exit_code, 3);
    assert_eq!(t.reason.as_deref(), Some("Error"));
    assert_eq!(container_status(&pod).unwrap().restart_count, 0);

    let pod = node
        .wait_pod("succeeds", "Succeeded", |p| phase(p) == "Succeeded")
        .await?;
    let t = container_status(&pod)
        .and_then(|c| c.state.clone())
        .and_then(|s| s.terminated)
        .context("not terminated")?;
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));

    // Always: restarted at once, then after 10s, then after 20s.
    let back_off_message = |p: &Pod| {
        container_status(p)
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .filter(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
            .and_then(|w| w.message.clone())
            .unwrap_or_default()
    };
    let pod = node
        .wait_pod("crashes", "CrashLoopBackOff 10s", |p| {
            back_off_message(p).contains("back-off 10s")
        })
        .await?;
    let cs = container_status(&pod).unwrap();
    assert_eq!(cs.restart_count, 1);
    let last = cs
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .context("no lastState")?;
    assert_eq!(last.exit_code, 3);
    assert_eq!(phase(&pod), "Running");
    let pod = node
        .wait_pod("crashes", "CrashLoopBackOff 20s", |p| {
            back_off_message(p).contains("back-off 20s")
        })
        .await?;
    assert_eq!(container_status(&pod).unwrap().restart_count, 2);
    // The previous container's log stays readable.
    let port = node.kubelet_port().await?;
    let prev = http_get(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "/containerLogs/default/crashes/main?previous=true",
    )?;
    assert!(
        prev.starts_with("HTTP/1.1 200") || prev.starts_with("HTTP/1.0 200"),
        "{prev}"
    );
    assert_eq!(body(&prev), "attempt\n");
    Ok(())
}

#[tokio::test]
async fn limits_in_cgroups_and_oom_kill() -> Result<()> {
    let node = TestNode::start().await?;
    let mut limited = busybox("limited", "sleep 3600", "Never");
    limited["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "250m", "memory": "48Mi"}});
    node.create_pod(limited).await?;
    let mut hog = busybox("hog", "x=aaaaaaaa; while true; do x=$x$x; done", "Never");
    hog["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "16Mi"}});
    node.create_pod(hog).await?;

    let pod = node
        .wait_pod("limited", "Running", |p| phase(p) == "Running")
        .await?;
    let uid = pod.metadata.uid.clone().unwrap();
    let id = container_status(&pod)
        .and_then(|c| c.container_id.clone())
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();
    let cgroup = format!(
        "{}/kubepods/pod{uid}/{id}",
        node._cgroups.0.trim_start_matches('/')
    );
    let read = |ctrl: &str, file: &str| {
        let path = Path::new("/sys/fs/cgroup")
            .join(ctrl)
            .join(&cgroup)
            .join(file);
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .with_context(|| {
                let pod_dir = Path::new("/sys/fs/cgroup")
                    .join(ctrl)
                    .join(&cgroup)
                    .join("..");
                let entries: Vec<_> = std::fs::read_dir(&pod_dir)
                    .map(|d| d.flatten().map(|e| e.file_name()).collect())
                    .unwrap_or_default();
                format!("read {}; pod cgroup has {entries:?}", path.display())
            })
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes")?,
        (48 << 20).to_string()
    );
    assert_eq!(read("cpu", "cpu.cfs_quota_us")?, "25000");
    assert_eq!(read("cpu", "cpu.cfs_period_us")?, "100000");
    assert_eq!(read("cpu", "cpu.shares")?, "256");

    let pod = node
        .wait_pod("hog", "terminated", |p| phase(p) == "Failed")
        .await?;
    let t = container_status(&pod)
        .and_then(|c| c.state.clone())
        .and_then(|s| s.terminated)
        .context("not terminated")?;
    assert_eq!(t.reason.as_deref(), Some("OOMKilled"), "{t:?}");
    assert_eq!(t.exit_code, 137);

    // Deleting removes the pod's cgroups.
    node.pods()
        .delete("limited", &DeleteParams::default())
        .await?;
    node.wait_gone("limited", WAIT).await?;
    assert!(!Path::new("/sys/fs/cgroup/memory")
        .join(node._cgroups.0.trim_start_matches('/'))
        .join(format!("kubepods/pod{uid}"))
        .exists());
    Ok(())
}

#[tokio::test]
async fn liveness_failure_restarts_and_readiness_gates_ready() -> Result<()> {
    let node = TestNode::start().await?;
    let mut live = busybox(
        "live",
        "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600",
        "Always",
    );
    live["spec"]["containers"][0]["livenessProbe"] = json!({
        "exec": {"command": ["cat", "/tmp/healthy"]},
        "periodSeconds": 1, "failureThreshold": 2
    });
    node.create_pod(live).await?;
    let mut ready = busybox("ready", "sleep 5; touch /tmp/ready; sleep 600", "Always");
    ready["spec"]["containers"][0]["readinessProbe"] = json!({
        "exec": {"command": ["cat", "/tmp/ready"]},
        "periodSeconds": 1
    });
    node.create_pod(ready).await?;

    // Readiness: Running but not Ready first, then Ready.
    let pod = node
        .wait_pod("ready", "Running", |p| phase(p) == "Running")
        .await?;
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"));
    assert!(!container_status(&pod).unwrap().ready);
    let pod = node
        .wait_pod("ready", "Ready", |p| {
            condition(p, "Ready").as_deref() == Some("True")
        })
        .await?;
    assert!(container_status(&pod).unwrap().ready);
    assert_eq!(container_status(&pod).unwrap().restart_count, 0);

    // Liveness: the container is killed and restarted.
    let first = node
        .wait_pod("live", "Running", |p| phase(p) == "Running")
        .await?;
    let first_id = container_status(&first).unwrap().container_id.clone();
    let pod = node
        .wait_pod("live", "restarted", |p| {
            container_status(p).is_some_and(|c| c.restart_count >= 1)
        })
        .await?;
    let cs = container_status(&pod).unwrap();
    assert_ne!(cs.container_id, first_id);
    assert!(cs
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .is_some());
    Ok(())
}

/// A running pod sees its ConfigMap volume change (and its token volume
/// stays), as with upstream's kubelet, without a restart.
#[tokio::test]
async fn config_map_changes_reach_running_pods() -> Result<()> {
    let node = TestNode::start().await?;
    let cms = Api::<ConfigMap>::namespaced(node.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "live"}, "data": {"color": "blue"}
    }))?;
    cms.create(&PostParams::default(), &cm).await?;
    let mut pod = busybox(
        "watcher",
        "while true; do echo COLOR=$(cat /etc/live/color) TOKEN=$(head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token); sleep 1; done",
        "Always",
    );
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "live", "mountPath": "/etc/live"}]);
    pod["spec"]["volumes"] = json!([{"name": "live", "configMap": {"name": "live"}}]);
    node.create_pod(pod).await?;
    node.wait_pod("watcher", "Running", |p| phase(p) == "Running")
        .await?;
    let port = node.kubelet_port().await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let logs = || -> Result<String> {
        Ok(body(&http_get(addr, "/containerLogs/default/watcher/main")?).to_string())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !logs()?.contains("COLOR=blue TOKEN=eyJ") {
        if Instant::now() > deadline {
            bail!("no COLOR=blue in:\n{}", logs()?);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut changed = cms.get("live").await?;
    changed.data = Some([("color".to_string(), "green".to_string())].into());
    cms.replace("live", &PostParams::default(), &changed)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !logs()?.contains("COLOR=green TOKEN=eyJ") {
        if Instant::now() > deadline {
            bail!(
                "the change did not reach the pod:\n{}\nkubelet log:\n{}",
                logs()?,
                node.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pod = node.pods().get("watcher").await?;
    let restarts = pod
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.first().map(|c| c.restart_count));
    assert_eq!(restarts, Some(0), "the container was restarted");
    Ok(())
}

#[tokio::test]
async fn env_config_map_volume_and_service_links_in_logs() -> Result<()> {
    let node = TestNode::start().await?;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "app-config"},
        "data": {"color": "blue", "greeting.txt": "hello from a configmap"}
    }))?;
    Api::<ConfigMap>::namespaced(node.client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await?;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "nginx-svc"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 8080, "targetPort": 80}]}
    }))?;
    let svc = Api::<Service>::namespaced(node.client.clone(), "default")
        .create(&PostParams::default(), &svc)
        .await?;
    let cluster_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .context("no clusterIP")?;
    // Give the kubelet's service watch a moment to see it.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut pod = busybox(
        "envy",
        "echo NAME=$MY_NAME; echo NS=$MY_NS; echo IP=$MY_IP; echo NODE=$MY_NODE; \
         echo COLOR=$COLOR; echo GREETING=$(cat /etc/cfg/greeting.txt); \
         echo SVC=$NGINX_SVC_SERVICE_HOST:$NGINX_SVC_SERVICE_PORT; \
         SA=/var/run/secrets/kubernetes.io/serviceaccount; \
         echo SA_NS=$(cat $SA/namespace) SA_TOKEN=$(head -c 3 $SA/token) SA_CA=$(test -f $SA/ca.crt && echo yes); \
         touch /etc/cfg/x 2>/dev/null || echo READONLY",
        "Never",
    );
    pod["spec"]["containers"][0]["env"] = json!([
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "color"}}}
    ]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "cfg", "mountPath": "/etc/cfg"}]);
    pod["spec"]["volumes"] = json!([{"name": "cfg", "configMap": {"name": "app-config"}}]);
    node.create_pod(pod).await?;
    let pod = node
        .wait_pod("envy", "Succeeded", |p| phase(p) == "Succeeded")
        .await?;
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    let port = node.kubelet_port().await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let logs = http_get(addr, "/containerLogs/default/envy/main")?;
    let logs = body(&logs);
    for want in [
        "NAME=envy".to_string(),
        "NS=default".to_string(),
        format!("IP={ip}"),
        format!("NODE={}", node.name),
        "COLOR=blue".to_string(),
        "GREETING=hello from a configmap".to_string(),
        format!("SVC={cluster_ip}:8080"),
        // The service account token volume: a JWT, the CA, the namespace.
        "SA_NS=default SA_TOKEN=eyJ SA_CA=yes".to_string(),
        "READONLY".to_string(),
    ] {
        assert!(
            logs.lines().any(|l| l == want),
            "{want:?} missing in:\n{logs}\nkubelet log:\n{}",
            node.log()
        );
    }
    // Log options: tailLines and timestamps.
    let tail = http_get(
        addr,
        "/containerLogs/default/envy/main?tailLines=1&timestamps=true",
    )?;
    let tail = body(&tail);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.ends_with(" READONLY\n"), "{tail}");
    assert!(tail.starts_with("20"), "{tail}");
    // And through the apiserver's pods/log with the real kubectl.
    let out = node.cluster.kubectl(33, &["logs", "envy", "--tail=2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("READONLY"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn graceful_deletion_honours_the_grace_period() -> Result<()> {
    let node = TestNode::start().await?;
    // sleep as PID 1 ignores SIGTERM: only SIGKILL after the grace period ends it.
    let mut stubborn = busybox("stubborn", "exec sleep 3600", "Always");
    stubborn["spec"]["terminationGracePeriodSeconds"] = json!(4);
    node.create_pod(stubborn).await?;
    let mut polite = busybox(
        "polite",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
        "Always",
    );
    polite["spec"]["terminationGracePeriodSeconds"] = json!(60);
    node.create_pod(polite).await?;
    for name in ["stubborn", "polite"] {
        node.wait_pod(name, "Running", |p| phase(p) == "Running")
            .await?;
    }
    let before = node.runtime_containers()?;
    assert!(before.len() >= 4, "{before:?}");

    let started = Instant::now();
    node.pods()
        .delete("stubborn", &DeleteParams::default())
        .await?;
    node.wait_gone("stubborn", WAIT).await?;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4), "deleted after {took:?}");

    node.pods()
        .delete("polite", &DeleteParams::default())
        .await?;
    // Well within its 60s grace period: it exits on SIGTERM.
    node.wait_gone("polite", Duration::from_secs(30)).await?;
    // Sandboxes and containers are gone from the runtime.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.runtime_containers()?.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            node.runtime_containers()?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn kubelet_restart_adopts_running_pods() -> Result<()> {
    let mut node = TestNode::start().await?;
    node.create_pod(busybox("keeper", "exec sleep 3600", "Always"))
        .await?;
    node.create_pod(busybox("doomed", "exec sleep 3600", "Always"))
        .await?;
    let keeper = node
        .wait_pod("keeper", "Running", |p| phase(p) == "Running")
        .await?;
    let doomed = node
        .wait_pod("doomed", "Running", |p| phase(p) == "Running")
        .await?;
    let id = container_status(&keeper).unwrap().container_id.clone();
    let doomed_id = container_status(&doomed)
        .and_then(|c| c.container_id.clone())
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();

    node.kubelet.as_mut().unwrap().kill9();
    // Removed while the kubelet is down: its containers are orphans now.
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    node.pods().delete("doomed", &force).await?;
    node.wait_gone("doomed", WAIT).await?;
    assert!(node.runtime_containers()?.contains(&doomed_id));

    node.start_kubelet()?;
    let deadline = Instant::now() + WAIT;
    while node.runtime_containers()?.contains(&doomed_id) {
        assert!(
            Instant::now() < deadline,
            "orphan not removed\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give the new kubelet a few syncs, then the pod must be unchanged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = node.pods().get("keeper").await?;
    let cs = container_status(&pod).unwrap();
    assert_eq!(phase(&pod), "Running");
    assert_eq!(cs.container_id, id);
    assert_eq!(cs.restart_count, 0);
    assert!(node.log().contains("kubelet server listening"));
    Ok(())
}

#[tokio::test]
async fn bad_input_gives_clear_waiting_reasons() -> Result<()> {
    let mut node = TestNode::start().await?;
    let mut never = busybox("never-pull", "true", "Always");
    never["spec"]["containers"][0]["image"] = json!("example.invalid/nothing:1.0");
    node.create_pod(never).await?;
    let mut missing = busybox("missing-cm", "echo COLOR=$COLOR; sleep 600", "Always");
    missing["spec"]["containers"][0]["env"] = json!([
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "color"}}}
    ]);
    node.create_pod(missing).await?;

    let pod = node
        .wait_pod("never-pull", "ErrImageNeverPull", |p| {
            waiting_reason(p).as_deref() == Some("ErrImageNeverPull")
        })
        .await?;
    assert_eq!(phase(&pod), "Pending");
    let pod = node
        .wait_pod("missing-cm", "CreateContainerConfigError", |p| {
            waiting_reason(p).as_deref() == Some("CreateContainerConfigError")
        })
        .await?;
    let msg = container_status(&pod)
        .and_then(|c| c.state.clone())
        .and_then(|s| s.waiting)
        .and_then(|w| w.message)
        .unwrap_or_default();
    assert!(msg.contains("configmap \"later\" not found"), "{msg}");

    // Once the configMap exists the container starts.
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "later"}, "data": {"color": "green"}
    }))?;
    Api::<ConfigMap>::namespaced(node.client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await?;
    node.wait_pod("missing-cm", "Running", |p| phase(p) == "Running")
        .await?;
    let log = node.log();
    assert!(node.kubelet.as_mut().unwrap().alive(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}

#[tokio::test]
async fn kubectl_exec_and_logs_through_the_apiserver() -> Result<()> {
    let node = TestNode::start().await?;
    node.create_pod(busybox("shell", "echo started; exec sleep 3600", "Always"))
        .await?;
    node.wait_pod("shell", "Running", |p| phase(p) == "Running")
        .await?;
    for minor in [27, 33] {
        // Output, stderr and the command's exit code come back.
        let out = node.cluster.kubectl(
            minor,
            &[
                "exec",
                "shell",
                "--",
                "sh",
                "-c",
                "echo out-$((6*7)); echo err >&2; exit 7",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(7),
            "kubectl 1.{minor}: {stdout} {stderr}\n{}",
            node.log()
        );
        assert_eq!(stdout, "out-42\n", "kubectl 1.{minor}: {stderr}");
        assert!(stderr.contains("err"), "kubectl 1.{minor}: {stderr}");
        // stdin reaches the command.
        let out = node.cluster.kubectl_stdin(
            minor,
            &["exec", "-i", "shell", "--", "cat"],
            Some("from stdin\n"),
        );
        assert!(
            out.status.success(),
            "kubectl 1.{minor}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");
        let out = node.cluster.kubectl(minor, &["logs", "shell"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    }

    // Our kubectl (WebSocket, v4.channel.k8s.io): the same, with a command
    // that ends by itself on stdin (that protocol cannot close the remote stdin).
    let ours = |args: &[&str], input: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new(e2e_tests::apiserver::bin_dir().join("kubectl"))
            .arg(format!(
                "--kubeconfig={}",
                node.cluster.apiserver.kubeconfig().display()
            ))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("our kubectl");
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i.as_bytes()).unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = ours(
        &[
            "exec",
            "shell",
            "--",
            "sh",
            "-c",
            "echo out-$((6*7)); echo err >&2; exit 7",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "ours: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "out-42\n",
        "ours: {stderr}"
    );
    assert!(
        stderr.contains("err") && stderr.contains("command terminated with exit code 7"),
        "{stderr}"
    );
    let out = ours(
        &["exec", "-i", "shell", "--", "head", "-n", "1"],
        Some("from stdin\n"),
    );
    assert!(
        out.status.success(),
        "ours: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");
    Ok(())
}

#[tokio::test]
async fn init_containers_run_in_order_and_logs_follow() -> Result<()> {
    let node = TestNode::start().await?;
    let step = |name: &str, script: &str| {
        json!({"name": name, "image": "busybox", "imagePullPolicy": "Never",
            "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}]})
    };
    node.create_pod(json!({
        "metadata": {"name": "staged"},
        "spec": {
            "restartPolicy": "Never",
            "initContainers": [step("first", "sleep 1; echo first >> /work/order"),
                               step("second", "echo second >> /work/order")],
            "containers": [step("main", "cat /work/order; for i in 1 2 3; do echo tick$i; sleep 1; done")],
            "volumes": [{"name": "work", "emptyDir": {}}]
        }
    }))
    .await?;
    let mut failing = busybox("init-fails", "echo never", "Never");
    failing["spec"]["initContainers"] = json!([{"name": "bad", "image": "busybox", "imagePullPolicy": "Never", "command": ["sh", "-c", "exit 1"]}]);
    node.create_pod(failing).await?;

    // Pending with Initialized False while the init containers run.
    let pod = node
        .wait_pod("staged", "Running", |p| phase(p) == "Running")
        .await?;
    assert_eq!(condition(&pod, "Initialized").as_deref(), Some("True"));
    let inits = pod
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.clone())
        .unwrap_or_default();
    assert_eq!(inits.len(), 2);
    for s in &inits {
        let t = s.state.as_ref().and_then(|st| st.terminated.as_ref());
        assert_eq!(t.map(|t| t.exit_code), Some(0), "{s:?}");
    }
    // Follow until the container exits: the whole output, in order.
    let out = node.cluster.kubectl(33, &["logs", "-f", "staged"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first\nsecond\ntick1\ntick2\ntick3\n"
    );
    node.wait_pod("staged", "Succeeded", |p| phase(p) == "Succeeded")
        .await?;

    let pod = node
        .wait_pod("init-fails", "Failed", |p| phase(p) == "Failed")
        .await?;
    assert_eq!(condition(&pod, "Initialized").as_deref(), Some("False"));
    let main = container_status(&pod).unwrap();
    assert!(main.state.as_ref().unwrap().waiting.is_some(), "{main:?}");
    Ok(())
}

#[tokio::test]
async fn hollow_kubelet_runs_pods_without_containers() -> Result<()> {
    let _routes = ensure_blackhole_routes("10.96.0.0/12", "10.244.0.0/16")?;
    let cluster = TestCluster::start()?;
    let client = cluster.apiserver.client().await?;
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "hollow"},
        "spec": {"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24"]}
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let dir = tempfile::tempdir()?;
    let mut kubelet = ComponentProcess::start(
        "kubelet",
        "kubelet",
        dir.path(),
        &[
            format!("--kubeconfig={}", cluster.apiserver.kubeconfig().display()),
            "--hostname-override=hollow".into(),
            "--node-ip=127.0.0.1".into(),
            "--runtime=fake".into(),
            format!("--root-dir={}", dir.path().join("root").display()),
            "--port=0".into(),
            "--address=127.0.0.1".into(),
            "--healthz-port=0".into(),
        ],
    )?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        let mut p = busybox(&format!("h{i}"), "true", "Always");
        p["spec"]["nodeName"] = json!("hollow");
        pods.create(&PostParams::default(), &serde_json::from_value(p)?)
            .await?;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let list = pods.list(&Default::default()).await?;
        let running: Vec<&Pod> = list
            .items
            .iter()
            .filter(|p| phase(p) == "Running")
            .collect();
        if running.len() == 3 {
            for p in running {
                let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
                assert!(ip.starts_with("10.244.7."), "{ip}");
                assert!(container_status(p).unwrap().ready);
            }
            break;
        }
        assert!(Instant::now() < deadline, "{}", kubelet.log());
        assert!(kubelet.alive(), "{}", kubelet.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pods.delete("h0", &DeleteParams::default()).await?;
    let deadline = Instant::now() + WAIT;
    while pods.get_opt("h0").await?.is_some() {
        assert!(Instant::now() < deadline, "{}", kubelet.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lease: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, "kube-node-lease");
    let l = lease.get("hollow").await?;
    assert_eq!(
        l.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("hollow")
    );
    Ok(())
}
