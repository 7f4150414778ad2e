//! Service networking across nodes (issue 6), on a three-node lab made by
//! `cluster up --nodes 3` inside a network namespace of the test's own:
//! ClusterIP spread from the host, every node and a pod; NodePort on every
//! node; pod to pod across nodes; cluster DNS and service variables in pods;
//! a deleted pod leaving the rotation; kube-proxy restarted; a node killed;
//! `cluster down` leaving nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use e2e_tests::lab::{text, LabCluster};

const NODES: u32 = 3;
const REQUESTS: usize = 300;
/// The real kubectl used for exec (SPDY to the kubelet).
const EXEC_KUBECTL: u32 = 27;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: nginx
spec:
  replicas: 3
  selector:
    app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      # Leave a dead node quickly (the default is 300 s).
      tolerations:
      - key: node.kubernetes.io/unreachable
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 2
      - key: node.kubernetes.io/not-ready
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 2
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  type: NodePort
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: client
    image: busybox
    command: ["sleep", "3600"]
"#;

/// The marker of one nginx welcome page (the page has the phrase twice).
const WELCOME: &str = "<h1>Welcome to nginx!</h1>";

struct Replica {
    name: String,
    ip: String,
    node: String,
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn replicas(lab: &LabCluster) -> Vec<Replica> {
    let out = ok(
        lab.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ]),
        "get pods",
    );
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Terminating pods (with a deletionTimestamp) are not replicas.
            (f.len() == 3).then(|| Replica {
                name: f[0].into(),
                ip: f[1].into(),
                node: f[2].into(),
            })
        })
        .collect()
}

/// Wait until `n` nginx pods are Ready (and no others exist).
fn wait_replicas(lab: &LabCluster, n: usize) -> Vec<Replica> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let ready = text(&lab.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]));
        let all = ready.lines().count();
        let trues = ready.lines().filter(|l| l.trim() == "True").count();
        let reps = replicas(lab);
        if trues == n && all == n && reps.len() == n {
            return reps;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {n} Ready nginx pods: {ready:?}\n{}",
            text(&lab.kubectl(&["get", "pods", "-o", "wide"]))
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `count` requests from the lab's host (or a node), each on a new
/// connection, tagged `t` in the URL: how many answered the welcome page.
fn curl_many(lab: &LabCluster, node: Option<u32>, url: &str, tag: &str, count: usize) -> usize {
    let urls: Vec<String> = (0..count).map(|i| format!("{url}?t={tag}-{i}")).collect();
    let mut args = vec![
        "--noproxy",
        "*",
        "-s",
        "--max-time",
        "5",
        "-H",
        "Connection: close",
    ];
    args.extend(urls.iter().map(String::as_str));
    let curl = Path::new("/usr/bin/curl");
    let out = match node {
        None => lab.exec(curl, &args),
        Some(i) => lab.exec_node(i, curl, &args),
    };
    String::from_utf8_lossy(&out.stdout)
        .matches(WELCOME)
        .count()
}

/// How many requests tagged `tag` each replica logged.
fn hits(lab: &LabCluster, reps: &[Replica], tag: &str) -> BTreeMap<String, usize> {
    let needle = format!("t={tag}-");
    reps.iter()
        .map(|r| {
            let log = text(&lab.kubectl(&["logs", &r.name]));
            (r.name.clone(), log.matches(&needle).count())
        })
        .collect()
}

fn assert_spread(lab: &LabCluster, reps: &[Replica], tag: &str, total: usize) {
    wait_for_hits(lab, reps, tag, "each should get at least 20%", |h| {
        h.values().sum::<usize>() >= total && h.values().all(|c| *c * 5 >= total)
    });
}

/// Until the replicas' access logs satisfy `ok` (log lines are written as
/// requests finish: allow a moment).
fn wait_for_hits(
    lab: &LabCluster,
    reps: &[Replica],
    tag: &str,
    expect: &str,
    ok: impl Fn(&BTreeMap<String, usize>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = hits(lab, reps, tag);
        if ok(&h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: requests per replica {h:?}: {expect}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A shell command in the client pod (through the real kubectl's exec).
fn in_client(lab: &LabCluster, script: &str) -> Output {
    lab.real_kubectl(EXEC_KUBECTL, &["exec", "client", "--", "sh", "-c", script])
}

#[test]
fn three_nodes_serve_a_service_from_everywhere() {
    let mut lab = LabCluster::new(NODES);
    let up = lab.up(&[]);
    assert!(up.status.success(), "cluster up: {}", text(&up));

    let nodes = ok(
        lab.kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]),
        "get nodes",
    );
    assert_eq!(nodes.split_whitespace().count(), NODES as usize, "{nodes}");

    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("lab.yaml");
    std::fs::write(&manifests, MANIFESTS).unwrap();
    ok(
        lab.kubectl(&["create", "-f", manifests.to_str().unwrap()]),
        "create",
    );
    let reps = wait_replicas(&lab, 3);
    let mut on: Vec<&str> = reps.iter().map(|r| r.node.as_str()).collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), 3, "replicas spread over the nodes: {on:?}");
    ok(
        lab.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod/client",
            "--timeout=120s",
        ]),
        "client Ready",
    );
    let svc_ip = ok(
        lab.kubectl(&["get", "svc", "nginx", "-o", "jsonpath={.spec.clusterIP}"]),
        "svc ip",
    );
    let node_port = ok(
        lab.kubectl(&[
            "get",
            "svc",
            "nginx",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ]),
        "node port",
    );
    let svc_url = format!("http://{}/", svc_ip.trim());
    // Endpoints hold all three before traffic is counted.
    wait_endpoints(&lab, 3);

    // ClusterIP from the host, from every node, from a pod.
    assert_eq!(
        curl_many(&lab, None, &svc_url, "host", REQUESTS),
        REQUESTS,
        "from the host"
    );
    assert_spread(&lab, &reps, "host", REQUESTS);
    for i in 1..=NODES {
        let tag = format!("node{i}");
        assert_eq!(
            curl_many(&lab, Some(i), &svc_url, &tag, REQUESTS),
            REQUESTS,
            "from node {i}"
        );
        assert_spread(&lab, &reps, &tag, REQUESTS);
    }
    let out = in_client(
        &lab,
        &format!(
            "n=0; for i in $(seq {REQUESTS}); do timeout 5 wget -q -O - '{svc_url}?t=pod-'$i | grep -q 'Welcome to nginx' && n=$((n+1)); done; echo ok=$n"
        ),
    );
    assert!(
        text(&out).contains(&format!("ok={REQUESTS}")),
        "from a pod: {}",
        text(&out)
    );
    assert_spread(&lab, &reps, "pod", REQUESTS);

    // NodePort on every node's address.
    for i in 1..=NODES {
        let url = format!("http://{}:{}/", lab.node(i).ip, node_port.trim());
        assert_eq!(
            curl_many(&lab, None, &url, &format!("np{i}"), 10),
            10,
            "{url}"
        );
    }

    // Pod to pod across nodes, by pod IP.
    let client_node = ok(
        lab.kubectl(&["get", "pod", "client", "-o", "jsonpath={.spec.nodeName}"]),
        "client node",
    );
    for r in reps.iter().filter(|r| r.node != client_node.trim()) {
        let out = in_client(&lab, &format!("timeout 5 wget -q -O - http://{}/", r.ip));
        assert!(
            text(&out).contains("Welcome to nginx!"),
            "client on {} -> {} on {}: {}",
            client_node.trim(),
            r.ip,
            r.node,
            text(&out)
        );
    }

    // Cluster DNS, and the service variables of a pod made after the Service.
    let out = in_client(&lab, "nslookup nginx.default.svc.cluster.local");
    assert!(
        text(&out).contains(svc_ip.trim()),
        "nslookup: {}",
        text(&out)
    );
    let out = in_client(&lab, "nslookup nginx");
    assert!(
        text(&out).contains(svc_ip.trim()),
        "nslookup through the search path: {}",
        text(&out)
    );
    let env = text(&in_client(&lab, "env"));
    assert!(
        env.contains(&format!("NGINX_SERVICE_HOST={}", svc_ip.trim())),
        "{env}"
    );

    // A deleted pod leaves the rotation once its endpoints change; its
    // replacement joins.
    let victim = &reps[0];
    ok(
        lab.kubectl(&["delete", "pod", &victim.name, "--wait=false"]),
        "delete pod",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while endpoint_ips(&lab).contains(&victim.ip) {
        assert!(Instant::now() < deadline, "endpoints kept {}", victim.ip);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        curl_many(&lab, None, &svc_url, "after-delete", 100),
        100,
        "requests after the pod left"
    );
    let reps = wait_replicas(&lab, 3);
    // The pods other than the deleted one logged all 100: none reached it
    // once 2 s had passed after its endpoints changed.
    wait_for_hits(
        &lab,
        &reps,
        "after-delete",
        "all 100 served by the others",
        |h| h.values().sum::<usize>() == 100,
    );
    wait_endpoints(&lab, 3);
    assert_spread(
        &lab,
        &reps,
        "joined",
        curl_many(&lab, None, &svc_url, "joined", REQUESTS),
    );

    // kube-proxy restarted on node 1: traffic keeps flowing meanwhile, the
    // rules converge without duplicates.
    let rules_before = nft_rules(&lab, 1);
    let pid = proxy_pid(&lab, 1);
    // SAFETY: kill(2) on a PID this test's cluster recorded for its kube-proxy.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(
        curl_many(&lab, Some(1), &svc_url, "proxy-down", 50),
        50,
        "rules stay while kube-proxy is down"
    );
    let again = lab.up(&[]);
    assert!(
        text(&again).contains("restarted kube-proxy-node-1"),
        "{}",
        text(&again)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab.log("kube-proxy-node-1").contains("sync") {
        assert!(Instant::now() < deadline, "kube-proxy did not sync again");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(nft_rules(&lab, 1), rules_before, "rules after a restart");
    assert_eq!(
        curl_many(&lab, Some(1), &svc_url, "proxy-back", REQUESTS),
        REQUESTS
    );
    assert_spread(&lab, &reps, "proxy-back", REQUESTS);

    // A node dies (kubelet, kube-proxy, containerd): its pods are replaced on
    // the others and the Service keeps answering.
    let dead = reps
        .iter()
        .map(|r| r.node.clone())
        .find(|n| *n != client_node.trim())
        .unwrap();
    for name in [
        format!("kubelet-{dead}"),
        format!("kube-proxy-{dead}"),
        format!("containerd-{dead}"),
    ] {
        let pid = recorded_pid(&lab, &name);
        // SAFETY: as above, a PID recorded by this test's cluster.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert_eq!(
            curl_many(&lab, None, &svc_url, "node-dead", 20),
            20,
            "the Service answers while a node is dead"
        );
        let now = replicas(&lab);
        if now.len() == 3 && now.iter().all(|r| r.node != dead) && endpoint_ips(&lab).len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pods of dead node {dead} not replaced:\n{}",
            text(&lab.kubectl(&["get", "pods", "-o", "wide"]))
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Down leaves no namespace, bridge or process of the lab behind.
    let down = lab.down();
    assert!(down.status.success(), "cluster down: {}", text(&down));
    for i in 1..=NODES {
        assert!(
            !Path::new("/run/netns").join(lab.node(i).netns).exists(),
            "node {i}'s namespace left"
        );
    }
    let links = text(&lab.exec(Path::new("/sbin/ip"), &["-o", "link"]));
    assert_eq!(links.lines().count(), 1, "links left:\n{links}");
    let tables = text(&lab.exec(Path::new("/usr/sbin/nft"), &["list", "tables"]));
    assert!(tables.trim().is_empty(), "nft tables left: {tables}");
}

fn endpoint_ips(lab: &LabCluster) -> Vec<String> {
    text(&lab.kubectl(&[
        "get",
        "endpoints",
        "nginx",
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}",
    ]))
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn wait_endpoints(lab: &LabCluster, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while endpoint_ips(lab).len() != n {
        assert!(
            Instant::now() < deadline,
            "endpoints: {:?}",
            endpoint_ips(lab)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // kube-proxy's minimum sync period.
    std::thread::sleep(Duration::from_millis(1500));
}

fn nft_rules(lab: &LabCluster, node: u32) -> usize {
    let out = lab.exec_node(
        node,
        Path::new("/usr/sbin/nft"),
        &["list", "table", "ip", "kube-proxy"],
    );
    text(&out).lines().count()
}

fn recorded_pid(lab: &LabCluster, name: &str) -> i32 {
    let text = std::fs::read_to_string(lab.data.join("pids").join(format!("{name}.pid")))
        .unwrap_or_else(|e| panic!("{name}'s pid file: {e}"));
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn proxy_pid(lab: &LabCluster, node: u32) -> i32 {
    recorded_pid(lab, &format!("kube-proxy-node-{node}"))
}
