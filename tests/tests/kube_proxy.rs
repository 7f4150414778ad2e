//! kube-proxy end to end: a real etcd, kube-apiserver and kube-proxy run
//! inside a network namespace of the test's own (the "node"); "pods" are
//! further namespaces on a bridge in it serving HTTP with busybox. Traffic
//! only ever goes to addresses inside these namespaces, and the node routes
//! the Service and pod CIDRs to a port-less bridge before anything is sent.
//!
//! Build first: cargo build -p apiserver -p proxy --bins

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use e2e_tests::apiserver::TestCluster;
use e2e_tests::component::ComponentProcess;
use e2e_tests::netns::{http_get, run, unique_name, Entered, NetNs, Pod};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;

const CLUSTER_IP: &str = "10.96.10.10";
const NODE_IP: &str = "10.250.77.1";
const GATEWAY: &str = "10.244.1.1";
const NODE_PORT: u16 = 30080;
const SHORT: Duration = Duration::from_secs(2);

/// The node namespace with an apiserver, three pods and (once started) a
/// kube-proxy. Fields drop in order: processes first, then the thread
/// leaves the namespace, then the namespace goes.
struct Env {
    proxy: Option<ComponentProcess>,
    pods: Vec<Pod>,
    cluster: TestCluster,
    logs: tempfile::TempDir,
    _entered: Entered,
    node: NetNs,
}

impl Env {
    fn start() -> Result<Self> {
        let node = NetNs::create("kpn")?;
        let entered = node.enter()?;
        cluster::netsafety::ensure_blackhole_routes_in(
            Some(node.name()),
            &unique_name("kpbh"),
            "10.96.0.0/12",
            "10.244.0.0/16",
        )?;
        let bridge = unique_name("kpbr");
        let ip = |args: &[&str]| node.exec_ok("ip", args);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        // The node's own address (NodePorts, pod routes' next hops); on
        // the bridge, which has a carrier once the pods are on it.
        ip(&["addr", "add", &format!("{NODE_IP}/24"), "dev", &bridge])?;
        node.exec_ok("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        // Pod -> ClusterIP -> pod on the same bridge: the reply must pass
        // conntrack to be un-DNATed (br_netfilter), as on a real node.
        node.exec_ok("sysctl", &["-qw", "net.bridge.bridge-nf-call-iptables=1"])?;
        let mut pods = Vec::new();
        for i in 11..14 {
            pods.push(Pod::start(
                &node,
                &bridge,
                &format!("10.244.1.{i}"),
                24,
                GATEWAY,
            )?);
        }
        let cluster = TestCluster::start()?;
        Ok(Self {
            proxy: None,
            pods,
            cluster,
            logs: tempfile::tempdir()?,
            _entered: entered,
            node,
        })
    }

    fn start_proxy(&mut self, extra: &[&str]) -> Result<()> {
        let mut args: Vec<String> = [
            "--kubeconfig",
            self.cluster
                .apiserver
                .kubeconfig()
                .to_str()
                .unwrap_or_default(),
            "--hostname-override",
            "node-a",
            "--cluster-cidr",
            "10.244.0.0/16",
            "--nodeport-addresses",
            "10.250.77.0/24",
            "--min-sync-period",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.proxy = Some(ComponentProcess::start(
            "kube-proxy",
            "kube-proxy",
            self.logs.path(),
            &args,
        )?);
        Ok(())
    }

    fn log(&self) -> String {
        self.proxy.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    fn table(&self) -> Result<String> {
        self.node
            .exec_ok("nft", &["list", "table", "ip", "kube-proxy"])
    }

    /// Wait until `check` holds (polled), or fail with the proxy's log.
    async fn until<F: FnMut() -> bool>(&self, what: &str, mut check: F) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if check() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "timed out waiting for {what}; kube-proxy log:\n{}",
            self.log()
        )
    }
}

fn service(name: &str, ip: &str, node_port: Option<u16>, affinity: bool) -> Service {
    let mut port =
        serde_json::json!({"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"});
    if let Some(np) = node_port {
        port["nodePort"] = np.into();
    }
    let mut spec = serde_json::json!({
        "type": if node_port.is_some() { "NodePort" } else { "ClusterIP" },
        "clusterIP": ip,
        "ports": [port],
        "selector": {"app": name},
    });
    if affinity {
        spec["sessionAffinity"] = "ClientIP".into();
        spec["sessionAffinityConfig"] = serde_json::json!({"clientIP": {"timeoutSeconds": 300}});
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("service")
}

fn endpoints(name: &str, ips: &[&str]) -> Endpoints {
    let subsets = if ips.is_empty() {
        serde_json::json!([])
    } else {
        let addrs: Vec<_> = ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect();
        serde_json::json!([{"addresses": addrs, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}])
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "default"},
        "subsets": subsets,
    }))
    .expect("endpoints")
}

async fn apply_endpoints(api: &Api<Endpoints>, name: &str, ips: &[&str]) -> Result<()> {
    let mut want = endpoints(name, ips);
    match api.get_opt(name).await? {
        Some(have) => {
            want.metadata.resource_version = have.metadata.resource_version;
            api.replace(name, &PostParams::default(), &want)
                .await
                .context("replace endpoints")?;
        }
        None => {
            api.create(&PostParams::default(), &want)
                .await
                .context("create endpoints")?;
        }
    }
    Ok(())
}

/// `n` requests from the test thread (inside the node); answers by pod name.
fn spread(addr: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let who = http_get(addr, SHORT).unwrap_or_else(|e| format!("error: {e}"));
        *seen.entry(who).or_insert(0) += 1;
    }
    seen
}

/// `n` requests from inside a pod (busybox wget in one shell loop).
fn spread_from(pod: &Pod, url: &str, n: usize) -> Result<BTreeMap<String, usize>> {
    let script = format!(
        "for i in $(seq {n}); do timeout 2 wget -q -O - {url} || echo -n error; echo; done"
    );
    let out = pod.ns.exec_ok("busybox", &["sh", "-c", &script])?;
    let mut seen = BTreeMap::new();
    for line in out.lines() {
        *seen.entry(line.trim().to_string()).or_insert(0) += 1;
    }
    Ok(seen)
}

fn assert_even(seen: &BTreeMap<String, usize>, pods: &[&Pod], n: usize) {
    for p in pods {
        let got = seen.get(&p.name).copied().unwrap_or(0);
        assert!(
            got * 5 >= n,
            "pod {} got {got} of {n} requests: {seen:?}",
            p.name
        );
    }
    let total: usize = pods
        .iter()
        .map(|p| seen.get(&p.name).copied().unwrap_or(0))
        .sum();
    assert_eq!(total, n, "answers from elsewhere: {seen:?}");
}

/// Count, in a pod, new connections to port 80 by source: the off-cluster
/// client, pod 10.244.1.12, anyone.
fn count_sources(pod: &Pod) -> Result<()> {
    let rules = "table ip src-count {\n chain input {\n type filter hook input priority 0; policy accept;\n \
                 tcp dport 80 ct state new ip saddr 192.168.77.2 counter comment \"outsider\"\n \
                 tcp dport 80 ct state new ip saddr 10.244.1.12 counter comment \"pod1\"\n \
                 tcp dport 80 ct state new counter comment \"total\"\n }\n}\n";
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), rules)?;
    pod.ns
        .exec_ok("nft", &["-f", file.path().to_str().unwrap_or_default()])?;
    Ok(())
}

fn counted_sources(pod: &Pod) -> Result<(u64, u64, u64)> {
    let table = pod
        .ns
        .exec_ok("nft", &["list", "table", "ip", "src-count"])?;
    let count = |label: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!("\"{label}\"")))
            .and_then(|l| l.split("packets ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((count("outsider"), count("pod1"), count("total")))
}

fn http_ok(url_host: &str, path: &str) -> bool {
    e2e_tests::apiserver::http_get_ok(url_host, path)
}

#[tokio::test]
async fn services_spread_follow_endpoints_and_reject() -> Result<()> {
    let mut env = Env::start()?;
    let client = env.cluster.apiserver.client().await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ips: Vec<String> = env.pods.iter().map(|p| p.ip.clone()).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    svcs.create(
        &PostParams::default(),
        &service("web", CLUSTER_IP, Some(NODE_PORT), false),
    )
    .await?;
    apply_endpoints(&eps, "web", &ips).await?;
    svcs.create(
        &PostParams::default(),
        &service("sticky", "10.96.10.11", None, true),
    )
    .await?;
    apply_endpoints(&eps, "sticky", &ips).await?;
    svcs.create(
        &PostParams::default(),
        &service("empty", "10.96.10.12", None, false),
    )
    .await?;
    apply_endpoints(&eps, "empty", &[]).await?;
    // Data that cannot be proxied is skipped, not fatal.
    for bad in [
        serde_json::json!({"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        serde_json::json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.invalid"}}),
        serde_json::json!({"metadata": {"name": "noports"}, "spec": {"clusterIP": "10.96.10.13", "ports": []}}),
    ] {
        let mut obj = bad;
        obj["apiVersion"] = "v1".into();
        obj["kind"] = "Service".into();
        let svc: Service = serde_json::from_value(obj)?;
        if let Err(e) = svcs.create(&PostParams::default(), &svc).await {
            eprintln!("apiserver refused a bad Service (fine): {e}");
        }
    }
    env.start_proxy(&[])?;

    let web = format!("{CLUSTER_IP}:80");
    env.until("the ClusterIP to answer", || {
        http_get(&web, SHORT).is_ok_and(|b| b.starts_with("kpp"))
    })
    .await?;
    assert!(env.log().contains("sync"), "{}", env.log());

    // From the node: spread over the three endpoints.
    let seen = spread(&web, 300);
    let pods: Vec<&Pod> = env.pods.iter().collect();
    assert_even(&seen, &pods, 300);

    // From a pod, which is one of the endpoints itself (hairpin).
    let seen = spread_from(&env.pods[0], &format!("http://{CLUSTER_IP}/"), 150)?;
    assert_even(&seen, &pods, 150);

    // NodePort on the node's address, from the node and from a pod.
    let np = format!("{NODE_IP}:{NODE_PORT}");
    assert_even(&spread(&np, 150), &pods, 150);
    let seen = spread_from(&env.pods[1], &format!("http://{np}/"), 60)?;
    assert_eq!(
        pods.iter()
            .map(|p| seen.get(&p.name).copied().unwrap_or(0))
            .sum::<usize>(),
        60,
        "{seen:?}"
    );

    // A client outside the cluster CIDR (behind the node) reaching the
    // ClusterIP is masqueraded: the pod sees the node, not 192.168.77.2;
    // a pod's own address is kept.
    let outside = NetNs::create("kpc")?;
    let (a, b) = (unique_name("kpo"), unique_name("kpi"));
    env.node.exec_ok(
        "ip",
        &["link", "add", &a, "type", "veth", "peer", "name", &b],
    )?;
    env.node
        .exec_ok("ip", &["link", "set", &b, "netns", outside.name()])?;
    env.node
        .exec_ok("ip", &["addr", "add", "192.168.77.1/24", "dev", &a])?;
    env.node.exec_ok("ip", &["link", "set", &a, "up"])?;
    outside.exec_ok("ip", &["addr", "add", "192.168.77.2/24", "dev", &b])?;
    outside.exec_ok("ip", &["link", "set", &b, "up"])?;
    outside.exec_ok("ip", &["route", "add", "default", "via", "192.168.77.1"])?;
    for p in &env.pods {
        count_sources(p)?;
    }
    for _ in 0..30 {
        let out = outside.exec_ok(
            "sh",
            &[
                "-c",
                &format!("timeout 2 busybox wget -q -O - http://{CLUSTER_IP}/ || true"),
            ],
        )?;
        assert!(out.starts_with("kpp"), "from outside: {out:?}");
    }
    let from_pod = spread_from(&env.pods[1], &format!("http://{CLUSTER_IP}/"), 30)?;
    assert!(
        from_pod.keys().all(|k| k.starts_with("kpp")),
        "{from_pod:?}"
    );
    let (mut outsider, mut pod1, mut total) = (0, 0, 0);
    for p in &env.pods {
        let c = counted_sources(p)?;
        outsider += c.0;
        pod1 += c.1;
        total += c.2;
    }
    assert!(total > 0);
    assert_eq!(outsider, 0, "off-cluster client not masqueraded");
    assert!(
        pod1 > 0,
        "pod client masqueraded (its address should be kept)"
    );

    // ClientIP affinity: one client, one endpoint.
    let seen = spread("10.96.10.11:80", 40);
    assert_eq!(seen.len(), 1, "affinity did not stick: {seen:?}");
    assert!(seen.keys().all(|k| k.starts_with("kpp")), "{seen:?}");

    // No ready endpoints: refused at once, not a timeout.
    let started = Instant::now();
    let err = http_get("10.96.10.12:80", Duration::from_secs(5)).expect_err("no endpoints");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // An endpoint leaves: it leaves the rotation.
    apply_endpoints(&eps, "web", &ips[..2]).await?;
    let gone = env.pods[2].name.clone();
    env.until("the removed endpoint to leave the rotation", || {
        !spread(&web, 30).contains_key(&gone)
    })
    .await?;
    assert_even(&spread(&web, 200), &pods[..2], 200);

    // All endpoints leave: rejected; they come back: served.
    apply_endpoints(&eps, "web", &[]).await?;
    env.until("the Service without endpoints to be rejected", || {
        http_get(&web, SHORT).is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await?;
    apply_endpoints(&eps, "web", &ips).await?;
    env.until("endpoints to come back", || http_get(&web, SHORT).is_ok())
        .await?;

    // A deleted Service: its address is routed to the blackhole again.
    svcs.delete("web", &DeleteParams::default()).await?;
    env.until("the deleted Service's rules to go", || {
        !env.table().unwrap_or_default().contains("default/web/")
    })
    .await?;

    // Partial syncs happened after the first full one; health and metrics.
    assert!(env.log().contains("Partial"), "{}", env.log());
    assert!(http_ok("http://127.0.0.1:10256", "/healthz"));
    let metrics = run(
        "busybox",
        &["wget", "-q", "-O", "-", "http://127.0.0.1:10249/metrics"],
    )?;
    assert!(
        metrics.contains("kubeproxy_sync_proxy_rules_total"),
        "{metrics}"
    );
    assert!(metrics.contains("kind=\"partial\""), "{metrics}");
    assert!(
        metrics.contains("kubeproxy_sync_proxy_rules_nftables_rules"),
        "{metrics}"
    );
    let proxy = env.proxy.as_mut().expect("proxy");
    assert!(proxy.alive(), "kube-proxy died:\n{}", proxy.log());
    Ok(())
}

/// Rule lines of the table, without the live state of affinity sets.
fn rules_of(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| !l.contains("expires"))
        .map(|l| l.trim().to_string())
        .collect()
}

#[tokio::test]
async fn restart_converges_and_cleanup_removes_everything() -> Result<()> {
    let mut env = Env::start()?;
    let client = env.cluster.apiserver.client().await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ips: Vec<String> = env.pods.iter().map(|p| p.ip.clone()).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    svcs.create(
        &PostParams::default(),
        &service("web", CLUSTER_IP, Some(NODE_PORT), false),
    )
    .await?;
    apply_endpoints(&eps, "web", &ips).await?;
    env.start_proxy(&["--configure-pod-routes"])?;
    let web = format!("{CLUSTER_IP}:80");
    env.until("the ClusterIP to answer", || http_get(&web, SHORT).is_ok())
        .await?;
    let before = rules_of(&env.table()?);

    assert!(http_ok("http://127.0.0.1:10256", "/readyz"));

    // A proxy that cannot list (no apiserver there) is live, not ready, and
    // leaves the table as it is.
    env.proxy.as_mut().expect("proxy").kill9();
    env.start_proxy(&["--master", "http://127.0.0.1:9"])?;
    env.until("/healthz of the proxy without an apiserver", || {
        http_ok("http://127.0.0.1:10256", "/healthz")
    })
    .await?;
    assert!(!http_ok("http://127.0.0.1:10256", "/readyz"));
    assert_eq!(rules_of(&env.table()?), before);

    // Killed and restarted: the same table, once.
    env.proxy.as_mut().expect("proxy").kill9();
    env.start_proxy(&["--configure-pod-routes", "--sync-period", "3s"])?;
    env.until("a sync after the restart", || {
        env.proxy
            .as_ref()
            .is_some_and(|p| p.log().contains("synced"))
    })
    .await?;
    let after = rules_of(&env.table()?);
    assert_eq!(before, after);
    let tables = env.node.exec_ok("nft", &["list", "tables"])?;
    assert_eq!(tables.matches("kube-proxy").count(), 1, "{tables}");
    assert_eq!(spread(&web, 30).len(), 3);

    // The periodic full sync puts back what was changed behind its back.
    env.node
        .exec_ok("nft", &["delete", "table", "ip", "kube-proxy"])?;
    env.until("the periodic full sync to restore the table", || {
        http_get(&web, SHORT).is_ok()
    })
    .await?;
    assert_eq!(rules_of(&env.table()?), before);

    // --cleanup: the table and the proto-75 routes go; twice is fine, and
    // it needs no apiserver.
    env.node.exec_ok(
        "ip",
        &[
            "route",
            "replace",
            "10.244.99.0/24",
            "via",
            "10.250.77.99",
            "proto",
            "75",
        ],
    )?;
    env.proxy.as_mut().expect("proxy").kill9();
    for _ in 0..2 {
        let bin = e2e_tests::apiserver::bin_dir().join("kube-proxy");
        let out = std::process::Command::new(&bin).arg("--cleanup").output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tables = env.node.exec_ok("nft", &["list", "tables"])?;
    assert!(!tables.contains("kube-proxy"), "{tables}");
    let routes = env.node.exec_ok("ip", &["route", "show", "proto", "75"])?;
    assert!(routes.trim().is_empty(), "{routes}");
    Ok(())
}

fn node(name: &str, pod_cidr: &str, ip: &str) -> Node {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name},
        "spec": {"podCIDR": pod_cidr},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }))
    .expect("node")
}

async fn add_node(api: &Api<Node>, n: &Node) -> Result<()> {
    let name = n.metadata.name.clone().unwrap_or_default();
    api.create(&PostParams::default(), n).await?;
    // The status may be dropped on create: set it on the subresource too.
    let status = serde_json::json!({"status": n.status});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

#[tokio::test]
async fn pod_routes_follow_nodes() -> Result<()> {
    let mut env = Env::start()?;
    let client = env.cluster.apiserver.client().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    // A stale route from an earlier run: removed at start.
    env.node.exec_ok(
        "ip",
        &[
            "route",
            "replace",
            "10.244.98.0/24",
            "via",
            "10.250.77.98",
            "proto",
            "75",
        ],
    )?;
    add_node(&nodes, &node("node-a", "10.244.1.0/24", NODE_IP)).await?;
    add_node(&nodes, &node("node-b", "10.244.2.0/24", "10.250.77.2")).await?;
    // Not on a connected subnet: no route.
    add_node(&nodes, &node("node-c", "10.244.3.0/24", "10.9.9.9")).await?;
    env.start_proxy(&["--configure-pod-routes"])?;
    let routes = || {
        env.node
            .exec_ok("ip", &["route", "show", "proto", "75"])
            .unwrap_or_default()
    };
    env.until("the route to node-b's pods", || {
        let r = routes();
        r.contains("10.244.2.0/24 via 10.250.77.2") && !r.contains("10.244.98.0")
    })
    .await?;
    let r = routes();
    assert!(!r.contains("10.244.1.0/24"), "own pod CIDR routed: {r}");
    assert!(!r.contains("10.244.3.0/24"), "unreachable node routed: {r}");

    // node-b moves, then goes.
    let patch = serde_json::json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.250.77.3"}]}});
    nodes
        .patch_status("node-b", &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    env.until("the route to follow node-b", || {
        routes().contains("10.244.2.0/24 via 10.250.77.3")
    })
    .await?;
    nodes.delete("node-b", &DeleteParams::default()).await?;
    env.until("the route to go with node-b", || {
        !routes().contains("10.244.2.0/24")
    })
    .await?;
    let proxy = env.proxy.as_mut().expect("proxy");
    assert!(proxy.alive(), "{}", proxy.log());
    Ok(())
}

/// ClientIP affinity sets of the table: set name -> client addresses.
fn affinity_clients(table: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in table.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("set affinity-") {
            let name = rest.trim_end_matches('{').trim().to_string();
            out.insert(name.clone(), Vec::new());
            current = Some(name);
        } else if line == "}" {
            current = None;
        } else if let (Some(set), Some(elems)) = (&current, line.strip_prefix("elements = {")) {
            let ips = elems
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| w.parse::<std::net::Ipv4Addr>().is_ok())
                .map(str::to_string);
            out.entry(set.clone()).or_default().extend(ips);
        }
    }
    out
}

/// A connection opened now, its request sent later: an established flow.
struct HeldRequest(std::net::TcpStream);

impl HeldRequest {
    fn open(addr: &str) -> Result<Self> {
        let addr: std::net::SocketAddr = addr.parse()?;
        let s = std::net::TcpStream::connect_timeout(&addr, SHORT)?;
        s.set_read_timeout(Some(SHORT))?;
        Ok(Self(s))
    }

    /// The body of the answer (the pod's name).
    fn finish(mut self) -> Result<String> {
        use std::io::{Read, Write};
        self.0.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
        let mut answer = String::new();
        self.0.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        if !head.contains(" 200") {
            bail!("answer: {head}");
        }
        Ok(body.to_string())
    }
}

/// Syncs of `kind` ("Full", "Partial") in a kube-proxy log.
fn syncs(log: &str, kind: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("synced proxy rules") && l.contains(kind))
        .count()
}

#[tokio::test]
async fn partial_syncs_leave_other_services_alone() -> Result<()> {
    let mut env = Env::start()?;
    let client = env.cluster.apiserver.client().await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ips: Vec<String> = env.pods.iter().map(|p| p.ip.clone()).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    svcs.create(
        &PostParams::default(),
        &service("web", CLUSTER_IP, None, false),
    )
    .await?;
    apply_endpoints(&eps, "web", &ips).await?;
    let sticky = "10.96.10.11:80";
    svcs.create(
        &PostParams::default(),
        &service("sticky", "10.96.10.11", Some(NODE_PORT), true),
    )
    .await?;
    apply_endpoints(&eps, "sticky", &ips).await?;
    env.start_proxy(&["--sync-period", "6s"])?;
    env.until("the sticky Service to answer", || {
        http_get(sticky, SHORT).is_ok()
    })
    .await?;
    let chosen = http_get(sticky, SHORT)?;
    let sticky_rules = |table: &str| -> Vec<String> {
        rules_of(table)
            .into_iter()
            .filter(|l| l.contains("sticky"))
            .collect()
    };
    let table = env.table()?;
    let (rules_before, clients_before) = (sticky_rules(&table), affinity_clients(&table));
    assert_eq!(
        clients_before.values().filter(|c| !c.is_empty()).count(),
        1,
        "one endpoint's set holds the client: {clients_before:?}"
    );

    // Changes to web (partial syncs) touch nothing of sticky: its rules,
    // its clients' affinity, a connection opened before.
    let held = HeldRequest::open(sticky)?;
    let partial_before = syncs(&env.log(), "Partial");
    for round in 0..4 {
        let n = if round % 2 == 0 { 2 } else { 3 };
        apply_endpoints(&eps, "web", &ips[..n]).await?;
        let pods: Vec<&str> = env.pods[..n].iter().map(|p| p.name.as_str()).collect();
        let web = format!("{CLUSTER_IP}:80");
        env.until("web to follow its endpoints", || {
            let seen = spread(&web, 20);
            seen.keys().all(|k| pods.contains(&k.as_str())) && seen.len() == n
        })
        .await?;
    }
    assert!(
        syncs(&env.log(), "Partial") > partial_before,
        "{}",
        env.log()
    );
    let table = env.table()?;
    assert_eq!(sticky_rules(&table), rules_before);
    assert_eq!(affinity_clients(&table), clients_before);
    assert_eq!(held.finish()?, chosen);
    assert_eq!(http_get(sticky, SHORT)?, chosen);

    // A periodic full sync rebuilds the table; the affinity entries and an
    // established connection survive it.
    let held = HeldRequest::open(sticky)?;
    let full_before = syncs(&env.log(), "Full");
    env.until("a periodic full sync", || {
        syncs(&env.log(), "Full") > full_before
    })
    .await?;
    assert_eq!(affinity_clients(&env.table()?), clients_before);
    assert_eq!(held.finish()?, chosen);
    for _ in 0..10 {
        assert_eq!(http_get(sticky, SHORT)?, chosen);
    }

    // Right after a full sync (the next is 6 s away), the table vanishes
    // behind the proxy's back and web changes: the partial sync fails and
    // falls back to a full one at once.
    let full_before = syncs(&env.log(), "Full");
    env.until("a periodic full sync", || {
        syncs(&env.log(), "Full") > full_before
    })
    .await?;
    env.node
        .exec_ok("nft", &["delete", "table", "ip", "kube-proxy"])?;
    apply_endpoints(&eps, "web", &ips[..1]).await?;
    env.until("the table to be rebuilt", || {
        http_get(&format!("{CLUSTER_IP}:80"), SHORT).is_ok_and(|b| b == env.pods[0].name)
    })
    .await?;
    assert!(
        env.log()
            .contains("partial sync failed: falling back to a full sync"),
        "{}",
        env.log()
    );

    // Deleting a Service removes all of it (chains, maps, sets, elements).
    svcs.delete("sticky", &DeleteParams::default()).await?;
    env.until("sticky's rules to go", || {
        !env.table().unwrap_or_default().contains("sticky")
    })
    .await?;
    let table = env.table()?;
    assert!(!table.contains("10.96.10.11"), "{table}");
    // Sets and maps have hashed names: count them. web keeps its lb map.
    assert!(!table.contains("set affinity-"), "{table}");
    assert_eq!(table.matches("map lb-").count(), 1, "{table}");
    assert!(!table.contains(&format!("{NODE_PORT} :")), "{table}");
    let proxy = env.proxy.as_mut().expect("proxy");
    assert!(proxy.alive(), "{}", proxy.log());
    Ok(())
}
