//! The real kubectl (1.27 and 1.33, the oldest and newest installed) against
//! a live apiserver on etcd: what users type, asserted on what kubectl prints.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use e2e_tests::apiserver::{kubectl_path, TestCluster};
use e2e_tests::secure::SecureApiServer;

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

fn manifest(name: &str) -> String {
    manifests().join(name).display().to_string()
}

/// Run kubectl and return stdout, failing the test with stderr on error.
fn ok(c: &TestCluster, minor: u32, args: &[&str]) -> String {
    let out = c.kubectl(minor, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "kubectl 1.{minor} {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}\napiserver log tail:\n{}",
        tail(&c.apiserver.log())
    );
    stdout
}

/// Run kubectl expecting failure; returns stderr.
fn fails(c: &TestCluster, minor: u32, args: &[&str]) -> String {
    let out = c.kubectl(minor, args);
    assert!(
        !out.status.success(),
        "kubectl 1.{minor} {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The whole workflow of the apiserver issue, for one kubectl version.
fn workflow(minor: u32) {
    workflow_on(TestCluster::start().unwrap(), minor);
}

fn workflow_on(c: TestCluster, minor: u32) {
    let v = ok(&c, minor, &["version", "-o", "json"]);
    assert!(
        v.contains("\"serverVersion\"") && v.contains("\"gitVersion\": \"v1.33"),
        "{v}"
    );

    // create -f a directory: rc, svc, pod.
    let out = ok(
        &c,
        minor,
        &["create", "-f", &manifests().display().to_string()],
    );
    assert!(out.contains("replicationcontroller/nginx created"), "{out}");
    assert!(out.contains("service/nginx created"), "{out}");
    assert!(out.contains("pod/hello-world created"), "{out}");

    // get with tables.
    let out = ok(&c, minor, &["get", "rc"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["nginx", "2", "0", "0"], "{out}");

    let out = ok(&c, minor, &["get", "svc"]);
    assert!(out.starts_with("NAME"), "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let nginx = out
        .lines()
        .find(|l| l.starts_with("nginx"))
        .expect("nginx row");
    let cells: Vec<&str> = nginx.split_whitespace().collect();
    assert_eq!(cells[1], "ClusterIP");
    assert!(cells[2].starts_with("10."), "{nginx}");
    assert_eq!(cells[3], "<none>");
    assert_eq!(cells[4], "80/TCP");
    let k8s = out
        .lines()
        .find(|l| l.starts_with("kubernetes"))
        .expect("kubernetes row");
    assert!(
        k8s.contains("10.96.0.1") && k8s.contains("443/TCP"),
        "{k8s}"
    );

    let out = ok(&c, minor, &["get", "pods"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let hw: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("hello-world"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&hw[1..4], ["0/1", "Pending", "0"]);

    let out = ok(&c, minor, &["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..7],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    );

    let out = ok(&c, minor, &["get", "ns"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{ns}: {out}"
        );
    }
    let ep = "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: nginx\nsubsets:\n- addresses:\n  - ip: 10.244.1.5\n  ports:\n  - port: 80\n";
    let out = c.kubectl_stdin(minor, &["create", "-f", "-"], Some(ep));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ok(&c, minor, &["get", "endpoints"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ENDPOINTS", "AGE"], "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("nginx") && l.contains("10.244.1.5:80")),
        "{out}"
    );
    ok(&c, minor, &["get", "events"]);

    let out = ok(&c, minor, &["get", "rc", "nginx", "-o", "yaml"]);
    assert!(
        out.contains("kind: ReplicationController") && out.contains("replicas: 2"),
        "{out}"
    );
    assert!(
        out.contains("resourceVersion:") && out.contains("uid:"),
        "{out}"
    );
    let out = ok(&c, minor, &["get", "svc", "nginx", "-o", "json"]);
    let svc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    let out = ok(&c, minor, &["get", "rc,svc,pods", "-o", "name"]);
    for n in [
        "replicationcontroller/nginx",
        "service/nginx",
        "pod/hello-world",
    ] {
        assert!(out.lines().any(|l| l == n), "{n}: {out}");
    }
    let out = ok(
        &c,
        minor,
        &["get", "pods", "-l", "app=hello-world", "-o", "name"],
    );
    assert_eq!(out.trim(), "pod/hello-world");
    let out = ok(&c, minor, &["get", "pods", "-l", "app=nothing"]);
    assert!(out.trim().is_empty(), "{out}");

    // apply twice: the second is unchanged.
    let rc = manifest("nginx-rc.yaml");
    let first = c.kubectl(minor, &["apply", "-f", &rc]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = ok(&c, minor, &["apply", "-f", &rc]);
    assert!(
        out.contains("replicationcontroller/nginx unchanged"),
        "{out}"
    );

    // scale.
    let out = ok(&c, minor, &["scale", "rc", "nginx", "--replicas=3"]);
    assert!(out.contains("replicationcontroller/nginx scaled"), "{out}");
    let out = ok(
        &c,
        minor,
        &["get", "rc", "nginx", "-o", "jsonpath={.spec.replicas}"],
    );
    assert_eq!(out, "3");

    // label and annotate.
    let out = ok(&c, minor, &["label", "pod", "hello-world", "tier=demo"]);
    assert!(out.contains("pod/hello-world labeled"), "{out}");
    let out = ok(
        &c,
        minor,
        &["get", "pods", "-l", "tier=demo", "--show-labels"],
    );
    assert!(out.contains("tier=demo"), "{out}");
    let out = ok(&c, minor, &["annotate", "pod", "hello-world", "owner=me"]);
    // kubectl 1.27 prints "annotate" (its own quirk), later versions "annotated".
    assert!(out.contains("pod/hello-world annotate"), "{out}");
    let out = ok(
        &c,
        minor,
        &[
            "get",
            "pod",
            "hello-world",
            "-o",
            "jsonpath={.metadata.annotations.owner}",
        ],
    );
    assert_eq!(out, "me");
    let err = fails(&c, minor, &["label", "pod", "hello-world", "tier=other"]);
    assert!(err.contains("already has a value"), "{err}");

    // describe.
    let out = ok(&c, minor, &["describe", "rc", "nginx"]);
    assert!(
        out.contains("Name:")
            && out.contains("nginx")
            && out.contains("Selector:")
            && out.contains("app=nginx"),
        "{out}"
    );
    let out = ok(&c, minor, &["describe", "pod", "hello-world"]);
    assert!(
        out.contains("Status:") && out.contains("Pending") && out.contains("busybox"),
        "{out}"
    );
    let out = ok(&c, minor, &["describe", "svc", "nginx"]);
    assert!(
        out.contains("Port:") && out.contains("80/TCP") && out.contains("TargetPort:"),
        "{out}"
    );

    // get -w sees a change.
    watch_sees_change(&c, minor);

    // explain, api-resources.
    let out = ok(&c, minor, &["explain", "pod.spec.containers"]);
    assert!(
        out.contains("KIND:") && out.contains("Pod") && out.to_lowercase().contains("image"),
        "{out}"
    );
    let out = ok(&c, minor, &["api-resources"]);
    for (name, short) in [
        ("pods", "po"),
        ("replicationcontrollers", "rc"),
        ("services", "svc"),
        ("namespaces", "ns"),
        ("leases", ""),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.contains(short)),
            "{name}: {out}"
        );
    }

    // Errors as kubectl prints them.
    let err = fails(&c, minor, &["get", "pod", "nope"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );

    // delete -f.
    let out = ok(
        &c,
        minor,
        &["delete", "-f", &manifests().display().to_string()],
    );
    assert!(
        out.contains("replicationcontroller \"nginx\" deleted"),
        "{out}"
    );
    assert!(out.contains("service \"nginx\" deleted"), "{out}");
    assert!(out.contains("pod \"hello-world\" deleted"), "{out}");
    let out = ok(&c, minor, &["get", "rc,svc", "-o", "name"]);
    assert_eq!(out.trim(), "service/kubernetes");
}

/// `kubectl get pods -w` prints a new line when a pod changes.
fn watch_sees_change(c: &TestCluster, minor: u32) {
    let mut child = Command::new(kubectl_path(minor))
        .arg(format!(
            "--kubeconfig={}",
            c.apiserver.kubeconfig().display()
        ))
        .args(["get", "pods", "-w"])
        .env("HOME", c.apiserver.dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The initial listing.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("header line");
    assert!(first.starts_with("NAME"), "{first}");
    let _row = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("hello-world line");
    std::thread::sleep(Duration::from_millis(500));
    ok(
        c,
        minor,
        &[
            "create",
            "-f",
            &manifest("hello-world.yaml"),
            "--dry-run=server",
        ],
    );
    let out = c.kubectl_stdin(
        minor,
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata:\n  name: watched\nspec:\n  containers:\n  - name: c\n    image: busybox\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut saw = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        if line.starts_with("watched") {
            saw = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(saw, "kubectl get -w did not show the new pod");
    ok(c, minor, &["delete", "pod", "watched"]);
}

#[test]
fn kubectl_1_33_workflow() {
    workflow(33);
}

#[test]
fn kubectl_1_33_workflow_on_the_embedded_store() {
    workflow_on(TestCluster::start_embedded().unwrap(), 33);
}

/// The same over TLS (the server verified against the cluster CA, no
/// insecure-skip-tls-verify), as a cluster admin's client certificate, with
/// Node,RBAC authorization on.
#[test]
fn kubectl_1_33_workflow_over_tls_with_rbac() {
    let server = SecureApiServer::start(&["--authorization-mode=Node,RBAC"]).unwrap();
    let admin = server
        .identity("kubernetes-admin", &["system:masters"])
        .unwrap();
    let c = server.into_test_cluster(&admin).unwrap();
    let config = std::fs::read_to_string(c.apiserver.kubeconfig()).unwrap();
    assert!(config.contains("server: https://") && !config.contains("insecure"));
    workflow_on(c, 33);
}

#[test]
fn kubectl_1_27_workflow() {
    workflow(27);
}

/// kubectl 1.33 sends protobuf for generator commands; until protobuf bodies
/// are decoded, the JSON path of the same objects must work.
#[test]
fn create_from_stdin_and_bad_input() {
    let c = TestCluster::start().unwrap();
    let err = fails(&c, 33, &["create", "-f", "-"]);
    assert!(!err.is_empty());
    let out = c.kubectl_stdin(
        33,
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    let out = c.kubectl_stdin(
        33,
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\nbogus: 1\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("unknown field") && err.contains("bogus"),
        "{err}"
    );
}

/// kubectl 1.33's generator commands send Kubernetes protobuf bodies.
#[test]
fn generator_commands_send_protobuf() {
    let c = TestCluster::start().unwrap();
    for minor in [33, 27] {
        let ns = format!("gen-{minor}");
        // Arguments without spaces, as one string.
        let run = |line: &str| ok(&c, minor, &line.split_whitespace().collect::<Vec<_>>());
        let out = run(&format!("create namespace {ns}"));
        assert!(out.contains(&format!("namespace/{ns} created")), "{out}");
        let out = run(&format!(
            "-n {ns} create configmap settings --from-literal=color=blue --from-literal=size=10"
        ));
        assert!(out.contains("configmap/settings created"), "{out}");
        let out = run(&format!(
            "-n {ns} get configmap settings -o jsonpath={{.data.color}},{{.data.size}}"
        ));
        assert_eq!(out, "blue,10");
        let out = run(&format!("-n {ns} create serviceaccount robot"));
        assert!(out.contains("serviceaccount/robot created"), "{out}");
        let out = run(&format!(
            "-n {ns} create service nodeport web --tcp=8080:80"
        ));
        assert!(out.contains("service/web created"), "{out}");
        let out = run(&format!("-n {ns} get svc web -o jsonpath={{.spec.type}},{{.spec.ports[0].port}},{{.spec.ports[0].targetPort}},{{.spec.ports[0].nodePort}}"));
        let parts: Vec<&str> = out.split(',').collect();
        assert_eq!(&parts[..3], ["NodePort", "8080", "80"], "{out}");
        let node_port: u32 = parts[3].parse().unwrap();
        assert!((30000..=32767).contains(&node_port), "{out}");
        let out = run(&format!(
            "-n {ns} run shell --image=busybox --restart=Never --labels=app=shell"
        ));
        assert!(out.contains("pod/shell created"), "{out}");
        let out = run(&format!("-n {ns} get pod shell -o jsonpath={{.spec.containers[0].image}},{{.spec.restartPolicy}},{{.metadata.labels.app}}"));
        assert_eq!(out, "busybox,Never,shell");
        // The default ServiceAccount came with the namespace.
        let out = run(&format!("-n {ns} get sa -o name"));
        assert!(
            out.contains("serviceaccount/default") && out.contains("serviceaccount/robot"),
            "{out}"
        );
    }
}
