//! kube-scheduler against a real etcd + kube-apiserver. No kubelet exists:
//! the tests create Node objects (Ready, with allocatable) themselves and
//! check where the scheduler binds pods, what it reports when nothing fits,
//! and leader election between two schedulers.
//!
//! Build first: `cargo build -p apiserver -p scheduler --bins`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use e2e_tests::apiserver::TestCluster;
use e2e_tests::component::ComponentProcess;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod, ReplicationController, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);

struct Env {
    cluster: TestCluster,
    client: Client,
    logs: TempDir,
}

impl Env {
    async fn start() -> Env {
        let cluster = TestCluster::start().expect("etcd + kube-apiserver");
        let client = cluster.apiserver.client().await.expect("client");
        let logs = tempfile::Builder::new()
            .prefix("scheduler-test-")
            .tempdir()
            .expect("log dir");
        Env {
            cluster,
            client,
            logs,
        }
    }

    fn scheduler(&self, name: &str, extra: &[&str]) -> ComponentProcess {
        let mut args = vec![
            format!(
                "--kubeconfig={}",
                self.cluster.apiserver.kubeconfig().display()
            ),
            "--bind-address=127.0.0.1".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        if !extra.iter().any(|a| a.starts_with("--secure-port")) {
            args.push("--secure-port=0".into());
        }
        if !extra.iter().any(|a| a.starts_with("--leader-elect")) {
            args.push("--leader-elect=false".into());
        }
        ComponentProcess::start("kube-scheduler", name, self.logs.path(), &args)
            .expect("start kube-scheduler")
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn node(&self, name: &str, cpu: &str, memory: &str, extra: Value) {
        let mut node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            },
        });
        merge(&mut node, extra);
        let node: Node = serde_json::from_value(node).expect("node");
        Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }

    async fn pod(&self, name: &str, cpu: Option<&str>, extra: Value) {
        let mut container = json!({"name": "c", "image": "busybox"});
        if let Some(cpu) = cpu {
            container["resources"] = json!({"requests": {"cpu": cpu, "memory": "64Mi"}});
        }
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [container]},
        });
        merge(&mut pod, extra);
        let pod: Pod = serde_json::from_value(pod).expect("pod");
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
    }

    /// The node the pod gets bound to (panics after the deadline).
    async fn bound(&self, name: &str) -> String {
        let pods = self.pods();
        wait_for(&format!("pod {name} bound"), || async {
            let pod = pods.get(name).await.ok()?;
            pod.spec?.node_name.filter(|n| !n.is_empty())
        })
        .await
    }

    /// The pod's PodScheduled=False condition (reason, message), once set.
    async fn unschedulable(&self, name: &str) -> (String, String) {
        let pods = self.pods();
        wait_for(&format!("pod {name} marked unschedulable"), || async {
            let pod = pods.get(name).await.ok()?;
            let cond = pod
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
            Some((
                cond.reason.unwrap_or_default(),
                cond.message.unwrap_or_default(),
            ))
        })
        .await
    }

    async fn events_for(&self, pod: &str) -> Vec<Event> {
        Api::<Event>::namespaced(self.client.clone(), "default")
            .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
            .await
            .expect("list events")
            .items
    }

    /// Where each pod of the namespace is bound.
    async fn placements(&self) -> HashMap<String, String> {
        self.pods()
            .list(&ListParams::default())
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter_map(|p| {
                let node = p.spec?.node_name.filter(|n| !n.is_empty())?;
                Some((p.metadata.name?, node))
            })
            .collect()
    }
}

impl Drop for Env {
    /// On failure, show what the schedulers said.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for entry in std::fs::read_dir(self.logs.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect::<Vec<_>>();
            eprintln!("==== {} (last lines) ====", entry.path().display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Give the scheduler time to act on something it should not act on.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[tokio::test]
async fn resource_fit_and_retry_when_a_pod_goes_away() {
    let env = Env::start().await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut sched = env.scheduler(
        "kube-scheduler",
        &[&format!("--secure-port={}", addr.port())],
    );
    env.node("n1", "2", "4Gi", json!({})).await;
    env.node("n2", "2", "4Gi", json!({})).await;

    env.pod("a", Some("1500m"), json!({})).await;
    env.pod("b", Some("1500m"), json!({})).await;
    let (na, nb) = (env.bound("a").await, env.bound("b").await);
    assert_ne!(na, nb, "each node fits one 1500m pod");

    env.pod("c", Some("1500m"), json!({})).await;
    let (reason, message) = env.unschedulable("c").await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        message,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
         2 No preemption victims found for incoming pod."
    );

    // Memory and pod count are counted too.
    env.pod(
        "huge-memory",
        None,
        json!({"spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"memory": "5Gi"}}}]}}),
    )
    .await;
    let (_, message) = env.unschedulable("huge-memory").await;
    assert!(
        message.starts_with("0/2 nodes are available: 2 Insufficient memory."),
        "{message}"
    );

    // Freeing a node lets the waiting pod in, without waiting for a timeout.
    env.pods()
        .delete("a", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete a");
    assert_eq!(env.bound("c").await, na);

    // huge-memory was tried again too and failed the same way: one event
    // whose series counts both attempts.
    let series = wait_for("a FailedScheduling series", || async {
        env.events_for("huge-memory")
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .find_map(|e| e.series.and_then(|s| s.count))
    })
    .await;
    assert!(series >= 2, "series count {series}");
    let failed = env
        .events_for("huge-memory")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .count();
    assert_eq!(failed, 1, "repeated failures make one event");

    let health = http_get(&addr.to_string(), "/healthz");
    assert!(health.ends_with("ok"), "{health}");
    wait_for("metrics", || async {
        let metrics = http_get(&addr.to_string(), "/metrics");
        let scheduled = metrics.contains(
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 3",
        );
        let pending = metrics.contains("scheduler_pending_pods{queue=\"unschedulable\"} 1");
        (scheduled && pending).then_some(())
    })
    .await;
    assert!(sched.alive(), "{}", sched.log());
}

#[tokio::test]
async fn node_selector_and_required_node_affinity() {
    let env = Env::start().await;
    let _sched = env.scheduler("kube-scheduler", &[]);
    env.node(
        "ssd",
        "4",
        "8Gi",
        json!({"metadata": {"labels": {"disk": "ssd", "cores": "8"}}}),
    )
    .await;
    env.node(
        "hdd",
        "4",
        "8Gi",
        json!({"metadata": {"labels": {"disk": "hdd", "cores": "2"}}}),
    )
    .await;
    env.node("plain", "4", "8Gi", json!({})).await;

    for i in 0..3 {
        env.pod(
            &format!("selector-{i}"),
            None,
            json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        )
        .await;
    }
    for i in 0..3 {
        assert_eq!(env.bound(&format!("selector-{i}")).await, "ssd");
    }

    let affinity = |exprs: Value| {
        json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": exprs}]}}}}})
    };
    env.pod(
        "affinity-gt",
        None,
        affinity(json!([{"key": "cores", "operator": "Gt", "values": ["4"]}])),
    )
    .await;
    assert_eq!(env.bound("affinity-gt").await, "ssd");
    env.pod(
        "affinity-in",
        None,
        affinity(json!([{"key": "disk", "operator": "In", "values": ["hdd", "nvme"]}])),
    )
    .await;
    assert_eq!(env.bound("affinity-in").await, "hdd");
    env.pod(
        "affinity-absent",
        None,
        affinity(json!([{"key": "disk", "operator": "DoesNotExist"}])),
    )
    .await;
    assert_eq!(env.bound("affinity-absent").await, "plain");

    env.pod(
        "nowhere",
        None,
        json!({"spec": {"nodeSelector": {"disk": "nvme"}}}),
    )
    .await;
    let (_, message) = env.unschedulable("nowhere").await;
    assert_eq!(
        message,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[tokio::test]
async fn taints_tolerations_cordons_and_readiness() {
    let env = Env::start().await;
    let _sched = env.scheduler("kube-scheduler", &[]);
    env.node(
        "gpu",
        "4",
        "8Gi",
        json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}),
    )
    .await;
    env.node(
        "draining",
        "4",
        "8Gi",
        json!({"spec": {"taints": [{"key": "maintenance", "value": "true", "effect": "NoExecute"}]}}),
    )
    .await;
    env.node(
        "notready",
        "4",
        "8Gi",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    )
    .await;
    env.node(
        "cordoned",
        "4",
        "8Gi",
        json!({"spec": {"unschedulable": true}}),
    )
    .await;
    env.node(
        "soft",
        "4",
        "8Gi",
        json!({"spec": {"taints": [{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]}}),
    )
    .await;

    // PreferNoSchedule only repels: the pod still lands there, nowhere else fits.
    env.pod("plain", None, json!({})).await;
    assert_eq!(env.bound("plain").await, "soft");

    env.pod(
        "gpu-job",
        None,
        json!({"spec": {
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "nodeSelector": {"kubernetes.io/hostname": "gpu"}}}),
    )
    .await;
    assert_eq!(env.bound("gpu-job").await, "gpu");
    env.pod(
        "tolerates-all",
        None,
        json!({"spec": {"tolerations": [{"operator": "Exists"}],
                        "nodeSelector": {"kubernetes.io/hostname": "draining"}}}),
    )
    .await;
    assert_eq!(env.bound("tolerates-all").await, "draining");
    env.pod(
        "daemon-like",
        None,
        json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}],
                        "nodeSelector": {"kubernetes.io/hostname": "notready"}}}),
    )
    .await;
    assert_eq!(env.bound("daemon-like").await, "notready");

    // A pod that tolerates nothing and must avoid "soft": every reason shows.
    env.pod(
        "picky",
        None,
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["soft"]}]}]}}}}}),
    )
    .await;
    let (_, message) = env.unschedulable("picky").await;
    assert_eq!(
        message,
        "0/5 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         1 node(s) had untolerated taint {dedicated: gpu}, \
         1 node(s) had untolerated taint {maintenance: true}, \
         1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
         1 node(s) were unschedulable. \
         preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."
    );

    // The node becomes Ready: the waiting pod goes there.
    Api::<Node>::all(env.client.clone())
        .patch_status(
            "notready",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
        )
        .await
        .expect("node ready");
    assert_eq!(env.bound("picky").await, "notready");
}

#[tokio::test]
async fn host_ports_never_collide() {
    let env = Env::start().await;
    let _sched = env.scheduler("kube-scheduler", &[]);
    env.node("n1", "4", "8Gi", json!({})).await;
    env.node("n2", "4", "8Gi", json!({})).await;
    let with_port = |port: i32| {
        json!({"spec": {"containers": [{"name": "c", "image": "busybox",
            "ports": [{"containerPort": 80, "hostPort": port}]}]}})
    };
    env.pod("web-1", None, with_port(8080)).await;
    env.pod("web-2", None, with_port(8080)).await;
    let (a, b) = (env.bound("web-1").await, env.bound("web-2").await);
    assert_ne!(a, b);
    env.pod("web-3", None, with_port(8080)).await;
    let (_, message) = env.unschedulable("web-3").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    // Another port is fine.
    env.pod("other-port", None, with_port(9090)).await;
    env.bound("other-port").await;
}

#[tokio::test]
async fn spreads_the_pods_of_one_rc_and_one_service_across_nodes() {
    let env = Env::start().await;
    let _sched = env.scheduler("kube-scheduler", &[]);
    for n in ["n1", "n2", "n3"] {
        env.node(n, "8", "16Gi", json!({})).await;
    }
    // Without the controller-manager the RC makes no pods: the test makes
    // them, owned by the RC as the RC manager would.
    let rc: ReplicationController = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {"replicas": 9, "selector": {"app": "web"},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .expect("rc");
    let rc = Api::<ReplicationController>::namespaced(env.client.clone(), "default")
        .create(&PostParams::default(), &rc)
        .await
        .expect("create rc");
    let uid = rc.metadata.uid.expect("rc uid");
    for i in 0..9 {
        env.pod(
            &format!("web-{i}"),
            Some("100m"),
            json!({"metadata": {"labels": {"app": "web"}, "ownerReferences": [{
                "apiVersion": "v1", "kind": "ReplicationController", "name": "web",
                "uid": uid, "controller": true}]}}),
        )
        .await;
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..9 {
        *per_node
            .entry(env.bound(&format!("web-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        [3, 3, 3],
        "{per_node:?}"
    );

    // Pods selected by a Service spread the same way.
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]},
    }))
    .expect("service");
    Api::<Service>::namespaced(env.client.clone(), "default")
        .create(&PostParams::default(), &svc)
        .await
        .expect("create service");
    settle().await;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        env.pod(
            &format!("db-{i}"),
            Some("100m"),
            json!({"metadata": {"labels": {"app": "db"}}}),
        )
        .await;
    }
    for i in 0..6 {
        *per_node
            .entry(env.bound(&format!("db-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_node:?}"
    );
}

#[tokio::test]
async fn unschedulable_pod_gets_condition_and_event_then_schedules_on_a_new_node() {
    let env = Env::start().await;
    let _sched = env.scheduler("kube-scheduler", &[]);
    env.node("small", "1", "2Gi", json!({})).await;
    env.pod("big", Some("2"), json!({})).await;

    let expected =
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
                    1 No preemption victims found for incoming pod.";
    let (reason, message) = env.unschedulable("big").await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(message, expected);
    let failed = wait_for("FailedScheduling event", || async {
        env.events_for("big")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.message.as_deref(), Some(expected));
    assert_eq!(
        failed.reporting_component.as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(
        failed.source.and_then(|s| s.component).as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(failed.involved_object.kind.as_deref(), Some("Pod"));

    // Not retried in a loop: nothing changes, the pod stays put and the
    // condition is not rewritten.
    let rv = env
        .pods()
        .get("big")
        .await
        .expect("pod")
        .metadata
        .resource_version;
    settle().await;
    let pod = env.pods().get("big").await.expect("pod");
    assert_eq!(
        pod.metadata.resource_version, rv,
        "pod rewritten while nothing changed"
    );

    // The real kubectl shows why.
    let out = env.cluster.kubectl(33, &["describe", "pod", "big"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FailedScheduling"), "{text}");
    assert!(text.contains("default-scheduler"), "{text}");

    env.node("large", "4", "8Gi", json!({})).await;
    assert_eq!(env.bound("big").await, "large");
    let scheduled = wait_for("Scheduled event", || async {
        env.events_for("big")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await;
    assert_eq!(
        scheduled.message.as_deref(),
        Some("Successfully assigned default/big to large")
    );
    assert_eq!(scheduled.type_.as_deref(), Some("Normal"));
    let pod = env.pods().get("big").await.expect("pod");
    let cond = pod
        .status
        .and_then(|s| s.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "PodScheduled"))
        .expect("PodScheduled");
    assert_eq!(cond.status, "True");
}

#[tokio::test]
async fn leader_election_failover_binds_each_pod_once() {
    let env = Env::start().await;
    let flags = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=2s",
        "--leader-elect-renew-deadline=1500ms",
        "--leader-elect-retry-period=300ms",
    ];
    let mut first = env.scheduler("kube-scheduler-1", &flags);
    let mut second = env.scheduler("kube-scheduler-2", &flags);
    for n in ["n1", "n2", "n3"] {
        env.node(n, "8", "16Gi", json!({})).await;
    }
    let leases = Api::<Lease>::namespaced(env.client.clone(), "kube-system");
    wait_for("a leader", || async {
        leases
            .get("kube-scheduler")
            .await
            .ok()?
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    })
    .await;

    for i in 0..20 {
        env.pod(&format!("before-{i}"), Some("100m"), json!({}))
            .await;
    }
    for i in 0..20 {
        env.bound(&format!("before-{i}")).await;
    }
    let before = env.placements().await;

    // Which process leads? Only it says so.
    let leads = |p: &ComponentProcess| p.log().contains("leading: scheduling starts");
    let first_leads = leads(&first);
    assert_ne!(first_leads, leads(&second), "exactly one leader");
    let (leader, follower) = if first_leads {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    // Pods created as the leader dies get bound once, by the follower.
    for i in 0..10 {
        env.pod(&format!("during-{i}"), Some("100m"), json!({}))
            .await;
    }
    leader.kill9();
    for i in 0..10 {
        env.pod(&format!("after-{i}"), Some("100m"), json!({}))
            .await;
    }
    for i in 0..10 {
        env.bound(&format!("during-{i}")).await;
        env.bound(&format!("after-{i}")).await;
    }
    assert!(leads(follower), "{}", follower.log());
    assert!(follower.alive());

    let after = env.placements().await;
    for (pod, node) in &before {
        assert_eq!(after.get(pod), Some(node), "pod {pod} moved");
    }
    assert_eq!(after.len(), 40);
    for pod in after.keys() {
        let scheduled = env
            .events_for(pod)
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .count();
        assert!(scheduled <= 1, "pod {pod} bound {scheduled} times");
    }
}
