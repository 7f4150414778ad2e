//! Our kubectl (kubectl/, on kube-rs) against a live apiserver on etcd, side by side
//! with the real kubectl 1.33 where the output must match. No scheduler,
//! controller-manager or kubelet runs here: pod status is set through pods/status,
//! and logs come from a stand-in kubelet on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use e2e_tests::apiserver::{bin_dir, TestCluster};
use k8s_openapi::api::core::v1::{Node, Pod, ReplicationController, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

fn manifest(name: &str) -> String {
    manifests().join(name).display().to_string()
}

fn ours_command(c: &TestCluster, args: &[&str]) -> Command {
    let bin = bin_dir().join("kubectl");
    assert!(
        bin.is_file(),
        "{} is missing: cargo build -p kubectl --bins",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg(format!(
        "--kubeconfig={}",
        c.apiserver.kubeconfig().display()
    ))
    .args(args)
    .env("HOME", c.apiserver.dir())
    .env_remove("KUBECONFIG")
    .env_remove("RUST_LOG")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Run our kubectl to completion.
fn ours(c: &TestCluster, args: &[&str]) -> Output {
    ours_command(c, args).output().expect("run our kubectl")
}

/// Run our kubectl with `input` on stdin.
fn ours_stdin(c: &TestCluster, args: &[&str], input: &str) -> Output {
    let mut child = ours_command(c, args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run our kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Our kubectl must succeed; its stdout.
fn ok(c: &TestCluster, args: &[&str]) -> String {
    let out = ours(c, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Our kubectl must fail with exit code 1; its stderr.
fn fails(c: &TestCluster, args: &[&str]) -> String {
    let out = ours(c, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kubectl {args:?} should fail with 1\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// Our output and the real kubectl 1.33's for the same command must be identical
/// (stdout, stderr, exit code). Ages are computed at print time, so a pair of runs
/// straddling a second may differ there: such a pair is run again.
fn same_as_real(c: &TestCluster, args: &[&str]) -> String {
    let mut last = None;
    for _ in 0..5 {
        let real = c.kubectl(33, args);
        let mine = ours(c, args);
        let real_err = strip_client_noise(&text(&real.stderr));
        if real.stdout == mine.stdout
            && real_err == text(&mine.stderr)
            && real.status.code() == mine.status.code()
        {
            return text(&mine.stdout);
        }
        last = Some((real, real_err, mine));
    }
    let (real, real_err, mine) = last.expect("ran");
    panic!(
        "kubectl {args:?} differs from the real kubectl\n--- real (exit {:?}):\n{}{}\n--- ours (exit {:?}):\n{}{}",
        real.status.code(),
        text(&real.stdout),
        real_err,
        mine.status.code(),
        text(&mine.stdout),
        text(&mine.stderr)
    );
}

/// The real kubectl's client-go log lines (klog `E1122 ...`) are not part of its answer.
fn strip_client_noise(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !(l.starts_with('E') && l.contains(".go:")))
        .map(|l| format!("{l}\n"))
        .collect()
}

async fn client(c: &TestCluster) -> kube::Client {
    c.apiserver.client().await.expect("client")
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = secs / 86400;
    let (h, m, s) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// A node with status, as a kubelet would report it.
async fn create_ready_node(c: &TestCluster, name: &str, kubelet_port: u16) {
    let nodes: Api<Node> = Api::all(client(c).await);
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let t = now();
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": t, "lastTransitionTime": t}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                      {"type": "Hostname", "address": name}],
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b",
                     "kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                     "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "containerd://1.6.20",
                     "kubeletVersion": "v1.33.1", "kubeProxyVersion": "v1.33.1"},
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// A pod bound to `node`, Running and Ready (or not), as the kubelet would report it.
async fn create_pod(c: &TestCluster, name: &str, labels: Value, node: Option<&str>, ready: bool) {
    let pods: Api<Pod> = Api::namespaced(client(c).await, "default");
    let mut spec = json!({"containers": [{"name": "nginx", "image": "nginx",
                                          "ports": [{"containerPort": 80}]}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    if node.is_some() {
        set_pod_ready(c, name, ready).await;
    }
}

async fn set_pod_ready(c: &TestCluster, name: &str, ready: bool) {
    let pods: Api<Pod> = Api::namespaced(client(c).await, "default");
    let t = now();
    let flag = if ready { "True" } else { "False" };
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "10.244.1.5",
        "podIPs": [{"ip": "10.244.1.5"}],
        "startTime": t,
        "conditions": [
            {"type": "Ready", "status": flag, "lastTransitionTime": t},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
        ],
        "containerStatuses": [{"name": "nginx", "ready": ready, "restartCount": 0,
                               "image": "nginx", "imageID": "sha256:0123",
                               "containerID": "containerd://abc", "started": true,
                               "state": {"running": {"startedAt": t}}}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

// ---------------------------------------------------------------- tests

/// The seed's workflow, as far as the API goes: create, get, scale, label,
/// annotate, delete.
#[tokio::test]
async fn seed_workflow() {
    let c = TestCluster::start().unwrap();
    let rc = manifest("nginx-rc.yaml");
    let svc = manifest("nginx-svc.yaml");
    let out = ok(&c, &["create", "-f", &rc, "-f", &svc]);
    assert_eq!(
        out,
        "replicationcontroller/nginx created\nservice/nginx created\n"
    );

    let out = same_as_real(&c, &["get", "rc,pods,svc"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "{out}"
    );
    assert!(out.contains("replicationcontroller/nginx   2 "), "{out}");
    assert!(
        out.contains("\n\nNAME ") && out.contains("service/nginx "),
        "{out}"
    );

    let out = ok(&c, &["scale", "rc", "nginx", "--replicas=3"]);
    assert_eq!(out, "replicationcontroller/nginx scaled\n");
    let rcs: Api<ReplicationController> = Api::namespaced(client(&c).await, "default");
    let live = rcs.get("nginx").await.unwrap();
    assert_eq!(live.spec.unwrap().replicas, Some(3));

    assert_eq!(
        ok(&c, &["label", "rc", "nginx", "tier=web"]),
        "replicationcontroller/nginx labeled\n"
    );
    let err = fails(&c, &["label", "rc", "nginx", "tier=db"]);
    assert_eq!(
        err,
        "error: 'tier' already has a value (web), and --overwrite is false\n"
    );
    ok(&c, &["label", "rc/nginx", "tier=db", "--overwrite"]);
    assert_eq!(
        ok(&c, &["annotate", "rc", "nginx", "note=hello"]),
        "replicationcontroller/nginx annotated\n"
    );
    let live = rcs.get("nginx").await.unwrap();
    assert_eq!(live.metadata.labels.unwrap()["tier"], "db");
    assert_eq!(live.metadata.annotations.unwrap()["note"], "hello");
    assert_eq!(
        ok(&c, &["label", "rc", "nginx", "tier-"]),
        "replicationcontroller/nginx unlabeled\n"
    );
    ok(&c, &["annotate", "rc", "nginx", "note-"]);
    let live = rcs.get("nginx").await.unwrap();
    assert!(!live.metadata.labels.unwrap().contains_key("tier"));
    assert!(!live
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("note"));

    let out = ok(&c, &["delete", "-f", &rc, "-f", &svc]);
    assert_eq!(
        out,
        "replicationcontroller \"nginx\" deleted\nservice \"nginx\" deleted\n"
    );
    assert!(rcs.get_opt("nginx").await.unwrap().is_none());
    let svcs: Api<Service> = Api::namespaced(client(&c).await, "default");
    assert!(svcs.get_opt("nginx").await.unwrap().is_none());
    // Nothing left: the same message as the real kubectl.
    same_as_real(&c, &["get", "rc"]);
}

/// Client-side apply: created, unchanged, configured; the three-way merge removes
/// what the file dropped and keeps what others added; the real kubectl agrees.
#[tokio::test]
async fn apply_created_configured_unchanged() {
    let c = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    let path = file.display().to_string();
    let v1 = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    app: web\n    stage: beta\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n  - name: https\n    port: 443\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  a: \"1\"\n  b: two\n";
    std::fs::write(&file, v1).unwrap();
    assert_eq!(
        ok(&c, &["apply", "-f", &path]),
        "service/web created\nconfigmap/web-config created\n"
    );
    assert_eq!(
        ok(&c, &["apply", "-f", &path]),
        "service/web unchanged\nconfigmap/web-config unchanged\n"
    );
    // Written as kubectl writes it: the real kubectl sees nothing to change.
    let real = c.kubectl(33, &["apply", "-f", &path]);
    assert_eq!(
        text(&real.stdout),
        "service/web unchanged\nconfigmap/web-config unchanged\n",
        "{}",
        text(&real.stderr)
    );

    let svcs: Api<Service> = Api::namespaced(client(&c).await, "default");
    let node_port = svcs.get("web").await.unwrap().spec.unwrap().ports.unwrap()[0].node_port;
    // Someone else labels it; the file drops a label, a port and a key, changes a value.
    ok(&c, &["label", "svc", "web", "owner=ops"]);
    let v2 = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  a: \"2\"\n";
    std::fs::write(&file, v2).unwrap();
    assert_eq!(
        ok(&c, &["apply", "-f", &path]),
        "service/web configured\nconfigmap/web-config configured\n"
    );
    let live = svcs.get("web").await.unwrap();
    let labels = live.metadata.labels.clone().unwrap();
    assert_eq!(labels.get("stage"), None, "{labels:?}");
    assert_eq!(labels["owner"], "ops");
    let ports = live.spec.unwrap().ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 80);
    // The allocated nodePort survives the patch.
    assert_eq!(ports[0].node_port, node_port);
    let cm = ok(&c, &["get", "cm", "web-config", "-o", "jsonpath={.data}"]);
    assert_eq!(cm, "{\"a\":\"2\"}");
    let real = c.kubectl(33, &["apply", "-f", &path]);
    assert_eq!(
        text(&real.stdout),
        "service/web unchanged\nconfigmap/web-config unchanged\n"
    );
    // An object created without apply: configured, with kubectl's warning.
    let out = ours(&c, &["create", "-f", &manifest("nginx-rc.yaml")]);
    assert!(out.status.success());
    let out = ours(&c, &["apply", "-f", &manifest("nginx-rc.yaml")]);
    assert_eq!(
        text(&out.stdout),
        "replicationcontroller/nginx configured\n"
    );
    assert!(
        text(&out.stderr).starts_with("Warning: resource replicationcontrollers/nginx is missing the kubectl.kubernetes.io/last-applied-configuration annotation"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        ok(&c, &["apply", "-f", &manifest("nginx-rc.yaml")]),
        "replicationcontroller/nginx unchanged\n"
    );
    // From stdin.
    let out = ours_stdin(
        &c,
        &["apply", "-f", "-"],
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"from-stdin\"}}",
    );
    assert_eq!(text(&out.stdout), "configmap/from-stdin created\n");
    let out = ours(&c, &["apply", "--server-side", "-f", &path]);
    assert_eq!(out.status.code(), Some(1));
}

/// `get` prints what the real kubectl prints for the same objects.
#[tokio::test]
async fn get_output_matches_real_kubectl() {
    let c = TestCluster::start().unwrap();
    ok(&c, &["create", "-f", &manifests().display().to_string()]);
    create_ready_node(&c, "n1", 10250).await;
    create_pod(&c, "nginx-a", json!({"app": "nginx"}), Some("n1"), true).await;
    create_pod(
        &c,
        "nginx-b",
        json!({"app": "nginx", "tier": "web"}),
        Some("n1"),
        false,
    )
    .await;
    create_pod(&c, "pending", json!({"app": "other"}), None, false).await;

    for args in [
        vec!["get", "pods"],
        vec!["get", "po", "-o", "wide"],
        vec!["get", "rc"],
        vec!["get", "svc"],
        vec!["get", "nodes"],
        vec!["get", "no", "-o", "wide"],
        vec!["get", "rc,pods,svc"],
        vec!["get", "all"],
        vec!["get", "ns"],
        vec!["get", "pods", "-A"],
        vec!["get", "pods", "--show-labels"],
        vec!["get", "pods", "-L", "tier"],
        vec!["get", "pods", "-l", "app=nginx"],
        vec!["get", "pods", "--field-selector", "status.phase=Running"],
        vec!["get", "pods", "--no-headers"],
        vec!["get", "pod/nginx-a", "rc/nginx"],
        vec!["get", "pods", "-o", "name"],
        vec!["get", "rc,svc", "-o", "name"],
        vec!["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"],
        vec![
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\t\"}{.status.phase}{\"\\n\"}{end}",
        ],
        vec![
            "get",
            "pod",
            "nginx-a",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        vec!["get", "rc", "nginx", "-o", "yaml"],
        vec!["get", "pods", "-o", "yaml"],
        vec!["get", "svc", "nginx", "-o", "json"],
        vec!["get", "nodes", "-o", "json"],
        vec!["get", "pods", "-l", "app=nothing"],
        vec!["get", "cm"],
        vec![
            "get",
            "rc",
            "-o",
            "jsonpath-as-json={.items[*].metadata.name}",
        ],
        vec!["config", "view"],
        vec!["config", "view", "-o", "json"],
        vec!["config", "get-contexts"],
        vec!["api-resources"],
        vec!["api-resources", "-o", "name"],
        vec!["cluster-info"],
    ] {
        same_as_real(&c, &args);
    }
    // (The real kubectl names itself in this message: kubectl.1.33 here.)
    let err = fails(&c, &["get", "pod", "nginx-a", "pod/nginx-b"]);
    assert!(
        err.starts_with(
            "error: there is no need to specify a resource type as a separate argument"
        ),
        "{err}"
    );
    let out = ok(&c, &["get", "pods"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["hello-world", "nginx-a", "nginx-b", "pending"]);
}

/// `-w` prints the table, then a row per change.
#[tokio::test]
async fn get_watch_prints_changes() {
    let c = TestCluster::start().unwrap();
    create_pod(&c, "watched", json!({"app": "w"}), None, false).await;
    let mut child: Child = ours_command(&c, &["get", "pods", "-w", "--request-timeout=60s"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let header = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(header.starts_with("NAME "), "{header}");
    let row = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        row.starts_with("watched ") && row.contains("Pending"),
        "{row}"
    );
    ok(&c, &["label", "pod", "watched", "changed=yes"]);
    let row = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        row.starts_with("watched ") && row.contains("Pending"),
        "{row}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `describe` prints what the real kubectl prints, Events included.
#[tokio::test]
async fn describe_matches_real_kubectl() {
    let c = TestCluster::start().unwrap();
    ok(
        &c,
        &[
            "create",
            "-f",
            &manifest("nginx-rc.yaml"),
            "-f",
            &manifest("nginx-svc.yaml"),
        ],
    );
    create_ready_node(&c, "n1", 10250).await;
    create_pod(&c, "web", json!({"app": "web"}), Some("n1"), true).await;
    let uid = ok(&c, &["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    let t = now();
    let event = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\ninvolvedObject:\n  apiVersion: v1\n  kind: Pod\n  name: web\n  namespace: default\n  uid: {uid}\nreason: Scheduled\nmessage: Successfully assigned default/web to n1\ntype: Normal\nsource:\n  component: default-scheduler\nfirstTimestamp: \"{t}\"\nlastTimestamp: \"{t}\"\ncount: 1\n"
    );
    let out = ours_stdin(&c, &["create", "-f", "-"], &event);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let pod = same_as_real(&c, &["describe", "pod", "web"]);
    for line in [
        "Name:             web\n",
        "Namespace:        default\n",
        "Service Account:  default\n",
        "Node:             n1/127.0.0.1\n",
        "Status:           Running\n",
        "IP:               10.244.1.5\n",
        "      /var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-",
        "    ConfigMapName:           kube-root-ca.crt\n",
        "    Image:          nginx\n",
        "    Port:           80/TCP\n",
        "    State:          Running\n",
        "    Ready:          True\n",
        "  Ready          True \n",
        "QoS Class:",
        "Events:\n  Type    Reason     Age",
        "default-scheduler  Successfully assigned default/web to n1\n",
    ] {
        assert!(pod.contains(line), "{line:?} missing in:\n{pod}");
    }
    let rc = same_as_real(&c, &["describe", "rc", "nginx"]);
    for line in [
        "Selector:     app=nginx\n",
        "Replicas:     0 current / 2 desired\n",
        "Pod Template:\n",
        "Events:            <none>\n",
    ] {
        assert!(rc.contains(line), "{line:?} missing in:\n{rc}");
    }
    let svc = same_as_real(&c, &["describe", "svc", "nginx"]);
    for line in [
        "Type:                     ClusterIP\n",
        "Port:                     <unset>  80/TCP\n",
        "TargetPort:               80/TCP\n",
    ] {
        assert!(svc.contains(line), "{line:?} missing in:\n{svc}");
    }
    let node = same_as_real(&c, &["describe", "node", "n1"]);
    for line in [
        "Name:               n1\n",
        "  Ready   True    ",
        "  InternalIP:  127.0.0.1\n",
        "Non-terminated Pods:          (1 in total)\n",
        "  default                     web",
    ] {
        assert!(node.contains(line), "{line:?} missing in:\n{node}");
    }
    same_as_real(&c, &["describe", "pods"]);
    same_as_real(&c, &["describe", "po", "we"]);
    same_as_real(&c, &["describe", "sa", "default"]);
    same_as_real(&c, &["describe", "ns", "default"]);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n  b: two\n";
    assert!(ours_stdin(&c, &["create", "-f", "-"], cm).status.success());
    same_as_real(&c, &["describe", "cm", "settings"]);
}

/// `delete`: waits for the object to go, sends the propagation policy, -l, --all.
#[tokio::test]
async fn delete_cascade_and_selectors() {
    let c = TestCluster::start().unwrap();
    ok(&c, &["create", "-f", &manifest("nginx-rc.yaml")]);
    let out = ok(
        &c,
        &["delete", "rc", "nginx", "--cascade=orphan", "--wait=false"],
    );
    assert_eq!(out, "replicationcontroller \"nginx\" deleted\n");
    // No garbage collector runs here: the Orphan finalizer stays, the rc is marked.
    let rcs: Api<ReplicationController> = Api::namespaced(client(&c).await, "default");
    let live = rcs.get("nginx").await.unwrap();
    assert_eq!(live.metadata.finalizers, Some(vec!["orphan".to_string()]));
    assert!(live.metadata.deletion_timestamp.is_some());
    // kubectl waits for the object to go: a delete that cannot finish times out.
    let err = fails(
        &c,
        &["delete", "rc", "nginx", "--cascade=orphan", "--timeout=1s"],
    );
    assert_eq!(
        err,
        "error: timed out waiting for the condition on replicationcontrollers/nginx\n"
    );
    rcs.patch(
        "nginx",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();

    ok(&c, &["create", "-f", &manifest("nginx-rc.yaml")]);
    ok(
        &c,
        &[
            "delete",
            "rc",
            "nginx",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    let live = rcs.get("nginx").await.unwrap();
    assert_eq!(
        live.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );

    for name in ["a", "b", "c"] {
        create_pod(
            &c,
            name,
            json!({"app": if name == "c" { "keep" } else { "drop" }}),
            None,
            false,
        )
        .await;
    }
    assert_eq!(
        ok(&c, &["delete", "pods", "-l", "app=drop"]),
        "pod \"a\" deleted\npod \"b\" deleted\n"
    );
    assert_eq!(ok(&c, &["get", "pods", "-o", "name"]), "pod/c\n");
    assert_eq!(
        ok(
            &c,
            &["delete", "pods", "--all", "--grace-period=0", "--force"]
        ),
        "pod \"c\" deleted\n"
    );
    same_as_real(&c, &["delete", "pod", "nope"]);
    same_as_real(&c, &["delete", "pods"]);
    same_as_real(&c, &["delete", "pod", "nope", "--ignore-not-found"]);
}

/// `wait --for=condition=Ready` returns once the condition is set; times out otherwise.
#[tokio::test]
async fn wait_for_ready_and_delete() {
    let c = TestCluster::start().unwrap();
    create_pod(&c, "web", json!({"app": "web"}), Some("n1"), false).await;
    let err = fails(
        &c,
        &["wait", "--for=condition=Ready", "pod/web", "--timeout=1s"],
    );
    assert_eq!(
        err,
        "error: timed out waiting for the condition on pods/web\n"
    );

    let child = ours_command(
        &c,
        &["wait", "--for=condition=Ready", "pod/web", "--timeout=120s"],
    )
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_pod_ready(&c, "web", true).await;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "pod/web condition met\n");
    assert_eq!(
        ok(
            &c,
            &[
                "wait",
                "--for=jsonpath={.status.phase}=Running",
                "pods",
                "--all"
            ]
        ),
        "pod/web condition met\n"
    );

    let child = ours_command(&c, &["wait", "--for=delete", "pod/web", "--timeout=120s"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    ok(&c, &["delete", "pod", "web", "--grace-period=0", "--force"]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    same_as_real(
        &c,
        &["wait", "--for=condition=Ready", "pod/nope", "--timeout=1s"],
    );
}

/// Answers each request with `body` and reports the request line (a kubelet's
/// containerLogs endpoint, as far as the apiserver's proxy cares).
fn stand_in_kubelet(body: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let _ = tx.send(line.trim().to_string());
            let (status, text) = if line.contains("/missing?") {
                ("404 Not Found", "container \"missing\" not found")
            } else {
                ("200 OK", body)
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, rx)
}

/// `logs` through pods/log to the pod's kubelet (a stand-in here).
#[tokio::test]
async fn logs_reach_the_kubelet() {
    let c = TestCluster::start().unwrap();
    let (port, requests) = stand_in_kubelet("line one\nline two\n");
    create_ready_node(&c, "n1", port).await;
    create_pod(&c, "web", json!({"app": "web"}), Some("n1"), true).await;

    let out = ok(&c, &["logs", "web", "--tail=2", "--timestamps"]);
    assert_eq!(out, "line one\nline two\n");
    let line = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        line.starts_with("GET /containerLogs/default/web/nginx?"),
        "{line}"
    );
    assert!(
        line.contains("tailLines=2") && line.contains("timestamps=true"),
        "{line}"
    );

    assert_eq!(
        ok(&c, &["logs", "pod/web", "-c", "nginx", "--previous"]),
        "line one\nline two\n"
    );
    let line = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(line.contains("previous=true"), "{line}");
    assert_eq!(ok(&c, &["logs", "-f", "web"]), "line one\nline two\n");
    let line = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(line.contains("follow=true"), "{line}");

    let err = fails(&c, &["logs", "web", "-c", "missing"]);
    assert!(
        err.contains("container missing is not valid for pod web"),
        "{err}"
    );
    create_pod(&c, "pending", json!({"app": "p"}), None, false).await;
    let err = fails(&c, &["logs", "pending"]);
    assert!(err.contains("does not have a host assigned"), "{err}");
    same_as_real(&c, &["logs", "nope"]);
}

/// `run` and `expose` make the objects the real kubectl makes.
#[tokio::test]
async fn run_and_expose() {
    let c = TestCluster::start().unwrap();
    assert_eq!(
        ok(
            &c,
            &[
                "run",
                "web",
                "--image=nginx",
                "--port=80",
                "--labels=app=web,tier=fe"
            ]
        ),
        "pod/web created\n"
    );
    let real = c.kubectl(
        33,
        &[
            "run",
            "real-web",
            "--image=nginx",
            "--port=80",
            "--labels=app=web,tier=fe",
        ],
    );
    assert!(real.status.success());
    let spec = |name: &str| {
        ok(
            &c,
            &[
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.spec.containers[0].ports} {.metadata.labels} {.spec.restartPolicy}",
            ],
        )
    };
    assert_eq!(spec("web"), spec("real-web"));

    assert_eq!(
        ok(
            &c,
            &[
                "run",
                "once",
                "--image=busybox",
                "--restart=Never",
                "--",
                "sh",
                "-c",
                "echo hi"
            ]
        ),
        "pod/once created\n"
    );
    assert_eq!(
        ok(
            &c,
            &[
                "get",
                "pod",
                "once",
                "-o",
                "jsonpath={.spec.containers[0].args} {.spec.restartPolicy} {.metadata.labels.run}"
            ]
        ),
        "[\"sh\",\"-c\",\"echo hi\"] Never once"
    );

    ok(&c, &["create", "-f", &manifest("nginx-rc.yaml")]);
    assert_eq!(
        ok(
            &c,
            &[
                "expose",
                "rc",
                "nginx",
                "--port=8080",
                "--target-port=80",
                "--name=nginx2"
            ]
        ),
        "service/nginx2 exposed\n"
    );
    assert_eq!(
        ok(&c, &["expose", "pod", "web", "--type=NodePort"]),
        "service/web exposed\n"
    );
    let real = c.kubectl(33, &["expose", "pod", "real-web", "--type=NodePort"]);
    assert!(real.status.success());
    let svc = |name: &str| {
        ok(&c, &["get", "svc", name, "-o", "jsonpath={.spec.type} {.spec.selector} {.spec.ports[0].port} {.spec.ports[0].targetPort} {.metadata.labels}"])
    };
    assert_eq!(
        svc("nginx2"),
        "ClusterIP {\"app\":\"nginx\"} 8080 80 {\"app\":\"nginx\"}"
    );
    assert_eq!(svc("web"), svc("real-web"));
    let err = fails(&c, &["expose", "pod", "once"]);
    assert_eq!(
        err,
        "error: couldn't find port via --port flag or introspection\n"
    );
}

/// kubeconfig: several files merged from $KUBECONFIG, contexts, namespaces, `config`.
#[tokio::test]
async fn config_and_contexts() {
    let c = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a");
    let second = dir.path().join("b");
    // The first file points nowhere (and names the current context); the second
    // holds the real cluster under another context, in namespace kube-system.
    std::fs::write(
        &first,
        "apiVersion: v1\nkind: Config\ncurrent-context: broken\nclusters:\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: broken\n  context:\n    cluster: nowhere\n    user: u\nusers:\n- name: u\n  user:\n    token: secret-token\n",
    )
    .unwrap();
    std::fs::write(
        &second,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: ignored\nclusters:\n- name: live\n  cluster:\n    server: {}\ncontexts:\n- name: live\n  context:\n    cluster: live\n    user: u\n    namespace: kube-system\nusers:\n- name: u\n  user: {{}}\n",
            c.apiserver.url
        ),
    )
    .unwrap();
    let kubeconfig = format!("{}:{}", first.display(), second.display());
    let run = |args: &[&str]| -> Output {
        Command::new(bin_dir().join("kubectl"))
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["config", "current-context"]);
    assert_eq!(text(&out.stdout), "broken\n");
    let out = run(&["config", "get-contexts"]);
    assert_eq!(
        text(&out.stdout),
        "CURRENT   NAME     CLUSTER   AUTHINFO   NAMESPACE\n*         broken   nowhere   u          \n          live     live      u          kube-system\n"
    );
    let out = run(&["config", "view"]);
    let view = text(&out.stdout);
    assert!(
        view.contains("token: REDACTED") && !view.contains("secret-token"),
        "{view}"
    );
    assert!(view.contains("current-context: broken"), "{view}");
    let out = run(&["get", "pods"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
    );
    // --context picks the live cluster and its namespace.
    let out = run(&["--context", "live", "get", "sa", "-o", "name"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "serviceaccount/default\n");
    let out = run(&[
        "--context",
        "live",
        "-n",
        "default",
        "get",
        "svc",
        "-o",
        "name",
    ]);
    assert_eq!(text(&out.stdout), "service/kubernetes\n");
    // use-context writes the file that set current-context.
    let out = run(&["config", "use-context", "live"]);
    assert_eq!(text(&out.stdout), "Switched to context \"live\".\n");
    assert!(std::fs::read_to_string(&first)
        .unwrap()
        .contains("current-context: live"));
    let out = run(&["get", "ns", "kube-system", "-o", "name"]);
    assert_eq!(text(&out.stdout), "namespace/kube-system\n");
    let out = run(&["config", "use-context", "nope"]);
    assert_eq!(
        text(&out.stderr),
        "error: no context exists with the name: \"nope\"\n"
    );
    // --server overrides the cluster, kubectl's default namespace is "default".
    let out = Command::new(bin_dir().join("kubectl"))
        .args(["-s", &c.apiserver.url, "get", "svc", "-o", "name"])
        .env_remove("KUBECONFIG")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "service/kubernetes\n",
        "{}",
        text(&out.stderr)
    );
    let out = ok(&c, &["version", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.33.1");
    assert_eq!(v["clientVersion"]["minor"], "33");
}

/// Bad input: clear messages, exit code 1, as the real kubectl.
#[tokio::test]
async fn bad_input() {
    let c = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (bad, nokind, foo, unknown_field, invalid, missing) = (
        path("bad.yaml"),
        path("nokind.yaml"),
        path("foo.yaml"),
        path("unknown-field.yaml"),
        path("invalid.yaml"),
        path("missing.yaml"),
    );
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok1\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   bad: x\n",
    )
    .unwrap();
    std::fs::write(&nokind, "kind: ConfigMap\nmetadata:\n  name: x\n").unwrap();
    std::fs::write(&foo, "apiVersion: v1\nkind: Foo\nmetadata:\n  name: x\n").unwrap();
    std::fs::write(
        &unknown_field,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n",
    )
    .unwrap();
    std::fs::write(
        &invalid,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers: []\n",
    )
    .unwrap();

    assert_eq!(
        fails(&c, &["get", "foo"]),
        "error: the server doesn't have a resource type \"foo\"\n"
    );
    assert_eq!(
        fails(&c, &["get", "pods", "x"]),
        "Error from server (NotFound): pods \"x\" not found\n"
    );
    assert_eq!(
        fails(&c, &["create", "-f", &bad, "--dry-run=client"]),
        format!("error: error parsing {bad}: error converting YAML to JSON: yaml: line 5: mapping values are not allowed in this context\n")
    );
    assert_eq!(
        fails(&c, &["apply", "-f", &missing]),
        format!("error: the path \"{missing}\" does not exist\n")
    );
    assert_eq!(
        fails(&c, &["get", "pods", "-s", "http://127.0.0.1:1"]),
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
    );
    for args in [
        vec!["get", "foo"],
        vec!["get", "pods,foo"],
        vec!["get", "pods", "x", "y"],
        vec!["describe", "pod", "x"],
        vec!["create", "-f", &bad, "--dry-run=client"],
        vec!["create", "-f", &missing],
        vec!["create", "-f", &nokind],
        vec!["create", "-f", &foo],
        vec!["create", "-f", &unknown_field],
        vec!["create", "-f", &invalid],
        vec!["delete", "-f", &missing],
        vec!["scale", "rc", "nope", "--replicas=1"],
        vec!["label", "pod", "nope", "a=b"],
        vec!["get", "pods", "-s", "http://127.0.0.1:1"],
    ] {
        same_as_real(&c, &args);
    }
    // A directory: the good object is created, the bad one reported, exit 1.
    let sub = dir.path().join("dir");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("a.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-dir\n",
    )
    .unwrap();
    std::fs::write(
        sub.join("b.yaml"),
        "apiVersion: v1\nkind: Foo\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let out = ours(&c, &["create", "-f", &sub.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "configmap/from-dir created\n");
    assert!(text(&out.stderr).contains("no matches for kind \"Foo\" in version \"v1\""));
    let err = fails(&c, &["frobnicate"]);
    assert!(
        err.starts_with("error: unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
}
