//! `cluster up`: the control plane, then each node's containerd and
//! kubelet, started in the background from the binaries beside this one,
//! waiting (with progress) until every node is Ready. Anything failing on
//! the way stops what was started: never half a cluster.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;

use crate::containerd::{ContainerdConfig, ContainerdProcess, DEFAULT_CNI_BIN_DIR};
use crate::daemon::{self, Recorded};
use crate::lab::{self, LabNode};
use crate::layout::Layout;
use crate::{certs, dns_service, down, images, netsafety, preflight};

/// The apiserver's secure port on the lab bridge address.
pub const APISERVER_PORT: u16 = 6443;
pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The port-less bridge that swallows traffic to unassigned service and pod
/// addresses (DESIGN.md, network safety).
pub const BLACKHOLE_BRIDGE: &str = "mk8s-blackhole";

pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The `kubernetes` Service's ClusterIP (the first of the service CIDR).
pub const FIRST_SERVICE_IP: &str = "10.96.0.1";
/// The kube-dns Service's ClusterIP, the pods' nameserver.
pub const CLUSTER_DNS_IP: &str = "10.96.0.10";
pub const PROXY_HEALTHZ_PORT: u16 = 10256;
pub const PROXY_METRICS_PORT: u16 = 10249;
pub const DNS_HEALTHZ_PORT: u16 = 8081;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Embedded,
    Etcd,
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub nodes: u32,
    pub store: StoreKind,
    pub data_dir: PathBuf,
}

/// What `up` found or did.
#[derive(Debug, PartialEq, Eq)]
pub enum UpOutcome {
    Started,
    AlreadyRunning,
    /// Some components had stopped and were started again.
    Restarted,
}

/// One node of the cluster to bring up: on the host (a one-node cluster)
/// or in a network namespace of the lab.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub name: String,
    /// None: the host's network namespace.
    pub netns: Option<String>,
    pub ip: Ipv4Addr,
}

/// The nodes of a cluster of `count` nodes whose data lives in `data_dir`:
/// one on the host, or that many lab namespaces.
pub fn node_plans(data_dir: &Path, count: u32) -> Vec<NodePlan> {
    if count == 1 {
        return vec![NodePlan {
            name: node_name(),
            netns: None,
            ip: lab::HOST_IP,
        }];
    }
    (1..=count)
        .map(|i| {
            let n = LabNode::new(data_dir, i);
            NodePlan {
                name: n.name,
                netns: Some(n.netns),
                ip: n.ip,
            }
        })
        .collect()
}

pub async fn up(opts: &UpOptions) -> anyhow::Result<UpOutcome> {
    let layout = Layout::new(&opts.data_dir);
    let started = Instant::now();
    let running = daemon::recorded(&layout);
    if !running.is_empty() {
        let dead: Vec<&Recorded> = running.iter().filter(|r| !r.alive()).collect();
        if dead.is_empty() {
            println!(
                "A cluster is already running from {} (`cluster status` tells more).",
                layout.dir.display()
            );
            return Ok(UpOutcome::AlreadyRunning);
        }
        // A component that died (or was stopped) is started again the way it
        // was, as long as the node runtimes still run.
        if dead.iter().all(|r| r.launch.is_some()) {
            for r in &dead {
                daemon::respawn(&layout, r)?;
                println!("  restarted {}", r.name);
            }
            println!("The cluster from {} runs again.", layout.dir.display());
            return Ok(UpOutcome::Restarted);
        }
        let names: Vec<&str> = dead.iter().map(|r| r.name.as_str()).collect();
        bail!(
            "a cluster from {} is partly down ({} not running): run `cluster down --data-dir {}` first",
            layout.dir.display(),
            names.join(", "),
            layout.dir.display()
        );
    }
    if opts.nodes == 0 || opts.nodes > lab::MAX_NODES {
        bail!("--nodes must be between 1 and {}", lab::MAX_NODES);
    }
    let nodes = node_plans(&layout.dir, opts.nodes);
    let mut ports = vec![
        (APISERVER_PORT, "kube-apiserver"),
        (10257, "kube-controller-manager"),
        (10259, "kube-scheduler"),
        (PROXY_HEALTHZ_PORT, "kube-proxy"),
        (PROXY_METRICS_PORT, "kube-proxy metrics"),
        (DNS_HEALTHZ_PORT, "kube-dns health"),
    ];
    if nodes.iter().any(|n| n.netns.is_none()) {
        ports.push((10250, "kubelet"));
        ports.push((10248, "kubelet healthz"));
    }
    if opts.store == StoreKind::Etcd {
        ports.push((ETCD_CLIENT_PORT, "etcd"));
        ports.push((ETCD_PEER_PORT, "etcd peers"));
    }
    let mut problems = preflight::check(
        &ports,
        Path::new(DEFAULT_CNI_BIN_DIR),
        opts.store == StoreKind::Etcd,
    );
    for route in lab::conflicting_routes() {
        problems.push(format!(
            "the route `{route}` overlaps the lab network {}: the cluster's addresses would clash with it",
            lab::lab_cidr()
        ));
    }
    if !problems.is_empty() {
        bail!(
            "cannot bring a cluster up here:\n  - {}",
            problems.join("\n  - ")
        );
    }
    for dir in [layout.dir.clone(), layout.logs(), layout.pids()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    match bring_up(opts, &layout, &nodes, started).await {
        Ok(()) => Ok(UpOutcome::Started),
        Err(e) => {
            eprintln!("cluster up failed: {e:#}\nstopping what was started ...");
            if let Err(d) = down::down(&layout.dir, false) {
                eprintln!("cleanup: {d:#}");
            }
            Err(e)
        }
    }
}

fn step(what: &str) -> Instant {
    print!("  {what:<44}");
    let _ = std::io::stdout().flush();
    Instant::now()
}

fn done(t: Instant) {
    println!("ok ({:.1} s)", t.elapsed().as_secs_f64());
}

async fn bring_up(
    opts: &UpOptions,
    layout: &Layout,
    nodes: &[NodePlan],
    started: Instant,
) -> anyhow::Result<()> {
    let bin = bin_dir()?;

    let t = step("network: safety routes, lab bridge");
    netsafety::ensure_blackhole_routes_on(BLACKHOLE_BRIDGE, SERVICE_CIDR, CLUSTER_CIDR)?;
    lab::ensure_host()?;
    for (i, node) in nodes.iter().enumerate() {
        if node.netns.is_some() {
            lab::add_node(
                &LabNode::new(&layout.dir, i as u32 + 1),
                SERVICE_CIDR,
                CLUSTER_CIDR,
            )?;
        }
    }
    done(t);

    let t = step("offline images");
    images::build_images(&layout.images()).context("building the offline images")?;
    done(t);

    let store_flag = match opts.store {
        StoreKind::Embedded => format!("--data-dir={}", layout.store().display()),
        StoreKind::Etcd => {
            let t = step("etcd");
            start_etcd(layout)?;
            wait_tcp(ETCD_CLIENT_PORT, "etcd", &layout.log("etcd"))?;
            done(t);
            format!("--etcd-servers=http://127.0.0.1:{ETCD_CLIENT_PORT}")
        }
    };

    let t = step("kube-apiserver");
    let ca = certs::ca(layout)?;
    certs::issue_all(
        layout,
        &ca,
        &apiserver_url(),
        &apiserver_ips(),
        &node_certs(nodes),
    )?;
    let (cert, key) = certs::apiserver(layout);
    let (kubelet_client_cert, kubelet_client_key) = certs::apiserver_kubelet_client(layout);
    let ca_file = layout.pki().join("ca.crt");
    daemon::spawn(
        layout,
        "kube-apiserver",
        &bin.join("kube-apiserver"),
        &[
            store_flag,
            format!("--bind-address={}", lab::HOST_IP),
            format!("--advertise-address={}", lab::HOST_IP),
            format!("--secure-port={APISERVER_PORT}"),
            format!("--tls-cert-file={}", cert.display()),
            format!("--tls-private-key-file={}", key.display()),
            format!("--client-ca-file={}", ca_file.display()),
            format!(
                "--kubelet-client-certificate={}",
                kubelet_client_cert.display()
            ),
            format!("--kubelet-client-key={}", kubelet_client_key.display()),
            format!("--kubelet-certificate-authority={}", ca_file.display()),
            // The service-account signing key is kept here across restarts.
            format!("--cert-dir={}", layout.pki().display()),
            "--authorization-mode=Node,RBAC".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        ],
        &layout.log("kube-apiserver"),
    )?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let client = component_base::client(Some(&layout.kubeconfig()), None).await?;
    wait_api(&client, &layout.log("kube-apiserver")).await?;
    done(t);

    let t = step("kube-controller-manager, kube-scheduler");
    daemon::spawn(
        layout,
        "kube-controller-manager",
        &bin.join("kube-controller-manager"),
        &[
            kubeconfig_flag(layout, "kube-controller-manager"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--allocate-node-cidrs".into(),
            format!("--cluster-cidr={CLUSTER_CIDR}"),
        ],
        &layout.log("kube-controller-manager"),
    )?;
    daemon::spawn(
        layout,
        "kube-scheduler",
        &bin.join("kube-scheduler"),
        &[
            kubeconfig_flag(layout, "kube-scheduler"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
        ],
        &layout.log("kube-scheduler"),
    )?;
    wait_healthz(
        ([127, 0, 0, 1], 10257).into(),
        "kube-controller-manager",
        &layout.log("kube-controller-manager"),
    )?;
    wait_healthz(
        ([127, 0, 0, 1], 10259).into(),
        "kube-scheduler",
        &layout.log("kube-scheduler"),
    )?;
    done(t);

    let t = step("cluster DNS, host kube-proxy");
    daemon::spawn(
        layout,
        "kube-dns",
        &bin.join("kube-dns"),
        &[
            kubeconfig_flag(layout, "kube-dns"),
            format!("--dns-bind-address={}:53", lab::HOST_IP),
            format!("--healthz-bind-address=127.0.0.1:{DNS_HEALTHZ_PORT}"),
            format!("--cluster-domain={CLUSTER_DOMAIN}"),
        ],
        &layout.log("kube-dns"),
    )?;
    dns_service::publish(&client, lab::HOST_IP).await?;
    // On a one-node cluster this is the node's own kube-proxy; with a lab,
    // the host's, so that the host reaches Services and pods too.
    let host_proxy_name = match nodes {
        [only] if only.netns.is_none() => only.name.clone(),
        _ => "control-plane".to_string(),
    };
    spawn_proxy(layout, &bin, &host_proxy_name, None, lab::HOST_IP)?;
    wait_healthz(
        ([127, 0, 0, 1], DNS_HEALTHZ_PORT).into(),
        "kube-dns",
        &layout.log("kube-dns"),
    )?;
    wait_healthz(
        (lab::HOST_IP, PROXY_HEALTHZ_PORT).into(),
        "kube-proxy",
        &layout.log(&format!("kube-proxy-{host_proxy_name}")),
    )?;
    done(t);

    for node in nodes {
        start_node(layout, &bin, node, &host_proxy_name)?;
    }

    let t = step("every node Ready, system Services");
    wait_ready(&client, &names, layout).await?;
    done(t);

    println!(
        "\nCluster up in {:.1} s (data in {}).\n\n  export KUBECONFIG={}\n  kubectl get nodes\n  kubectl create -f manifests/nginx-rc.yaml\n\nStop it with: cluster down --data-dir {}",
        started.elapsed().as_secs_f64(),
        layout.dir.display(),
        layout.kubeconfig().display(),
        layout.dir.display()
    );
    Ok(())
}

/// A node's containerd, kubelet and (in a lab namespace) kube-proxy.
fn start_node(
    layout: &Layout,
    bin: &Path,
    node: &NodePlan,
    host_proxy_name: &str,
) -> anyhow::Result<()> {
    let name = node.name.as_str();
    let netns = node.netns.as_deref();
    let t = step(&format!("node {name}: containerd"));
    let mut cfg = ContainerdConfig::new(layout.containerd(name));
    cfg.cni_conf_dir = layout.cni_conf(name);
    cfg.stream_server_address = node.ip.to_string();
    cfg.netns = node.netns.clone();
    let containerd = ContainerdProcess::start(&cfg)?;
    let socket = containerd.socket();
    let pid = containerd.detach();
    daemon::record(
        layout,
        &Recorded {
            name: format!("containerd-{name}"),
            pid: pid as i32,
            program: PathBuf::from("/usr/bin/containerd"),
            launch: None,
        },
    )?;
    done(t);

    let t = step(&format!("node {name}: kubelet"));
    let (serving_cert, serving_key) = certs::kubelet_serving(layout, name);
    daemon::spawn_in(
        layout,
        &format!("kubelet-{name}"),
        netns,
        &bin.join("kubelet"),
        &[
            kubeconfig_flag(layout, &format!("kubelet-{name}")),
            format!("--hostname-override={name}"),
            format!("--node-ip={}", node.ip),
            format!("--address={}", node.ip),
            format!("--healthz-bind-address={}", node.ip),
            format!("--container-runtime-endpoint=unix://{}", socket.display()),
            format!("--image-dir={}", layout.images().display()),
            format!("--root-dir={}", layout.kubelet(name).display()),
            format!("--cgroup-root={}", cgroup_root(name)),
            format!("--cluster-dns={CLUSTER_DNS_IP}"),
            format!("--cluster-domain={CLUSTER_DOMAIN}"),
            // Only the apiserver (its kubelet client certificate) and who
            // the apiserver allows may use the kubelet's API.
            format!("--tls-cert-file={}", serving_cert.display()),
            format!("--tls-private-key-file={}", serving_key.display()),
            format!("--client-ca-file={}", layout.pki().join("ca.crt").display()),
            "--anonymous-auth=false".into(),
            "--authorization-mode=Webhook".into(),
        ],
        &layout.log(&format!("kubelet-{name}")),
    )?;
    if netns.is_some() && name != host_proxy_name {
        spawn_proxy(layout, bin, name, netns, node.ip)?;
    }
    wait_healthz(
        (node.ip, 10248).into(),
        "kubelet",
        &layout.log(&format!("kubelet-{name}")),
    )?;
    done(t);
    Ok(())
}

fn spawn_proxy(
    layout: &Layout,
    bin: &Path,
    name: &str,
    netns: Option<&str>,
    ip: Ipv4Addr,
) -> anyhow::Result<()> {
    daemon::spawn_in(
        layout,
        &format!("kube-proxy-{name}"),
        netns,
        &bin.join("kube-proxy"),
        &[
            kubeconfig_flag(layout, "kube-proxy"),
            format!("--hostname-override={name}"),
            format!("--cluster-cidr={CLUSTER_CIDR}"),
            "--configure-pod-routes".into(),
            format!("--nodeport-addresses={ip}/32"),
            format!("--healthz-bind-address={ip}:{PROXY_HEALTHZ_PORT}"),
            format!("--metrics-bind-address=127.0.0.1:{PROXY_METRICS_PORT}"),
        ],
        &layout.log(&format!("kube-proxy-{name}")),
    )?;
    Ok(())
}

/// `--kubeconfig=` with `component`'s own identity.
fn kubeconfig_flag(layout: &Layout, component: &str) -> String {
    format!(
        "--kubeconfig={}",
        layout.component_kubeconfig(component).display()
    )
}

/// The nodes as their certificates name them.
pub fn node_certs(nodes: &[NodePlan]) -> Vec<certs::NodeCert> {
    nodes
        .iter()
        .map(|n| certs::NodeCert {
            name: n.name.clone(),
            ip: IpAddr::V4(n.ip),
        })
        .collect()
}

/// The apiserver's URL as every component and the admin reach it.
pub fn apiserver_url() -> String {
    format!("https://{}:{APISERVER_PORT}", lab::HOST_IP)
}

/// The addresses the apiserver's serving certificate names: the lab
/// address, the `kubernetes` Service's ClusterIP and loopback.
pub fn apiserver_ips() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(lab::HOST_IP),
        FIRST_SERVICE_IP.parse().expect("a constant address"),
        IpAddr::from([127, 0, 0, 1]),
    ]
}

fn start_etcd(layout: &Layout) -> anyhow::Result<()> {
    let etcd = which("etcd").context("etcd is not installed (apt-get install -y etcd-server)")?;
    daemon::spawn(
        layout,
        "etcd",
        &etcd,
        &[
            "--name=mini-kubernetes".into(),
            format!("--data-dir={}", layout.etcd().display()),
            format!("--listen-client-urls=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
            format!("--advertise-client-urls=http://127.0.0.1:{ETCD_CLIENT_PORT}"),
            format!("--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}"),
            format!("--initial-cluster=mini-kubernetes=http://127.0.0.1:{ETCD_PEER_PORT}"),
        ],
        &layout.log("etcd"),
    )?;
    Ok(())
}

async fn wait_ready(
    client: &kube::Client,
    nodes: &[String],
    layout: &Layout,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let node_api: Api<Node> = Api::all(client.clone());
    let svc_api: Api<Service> = Api::namespaced(client.clone(), "default");
    loop {
        let mut missing = Vec::new();
        for n in nodes {
            let ready = node_api
                .get_opt(n)
                .await
                .ok()
                .flatten()
                .is_some_and(|node| {
                    node.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
            if !ready {
                missing.push(format!("node {n} Ready"));
            }
        }
        if svc_api.get_opt("kubernetes").await.ok().flatten().is_none() {
            missing.push("Service default/kubernetes".into());
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| tail(&layout.log(&format!("kubelet-{n}")), 15))
                .collect();
            bail!(
                "still waiting for {} after {READY_TIMEOUT:?}; kubelet log:\n{}",
                missing.join(", "),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The apiserver's `/healthz` answering 200 over TLS (verified with the
/// cluster CA).
pub(crate) async fn wait_api(client: &kube::Client, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = http::Request::get("/healthz").body(Vec::new())?;
        if client.request_text(req).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "kube-apiserver did not become healthy; its log:\n{}",
                tail(log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/healthz` answering 200 on `addr`.
fn wait_healthz(addr: SocketAddr, who: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_ok(addr, "/healthz") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{who} did not become healthy on {addr}; its log:\n{}",
                tail(log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_tcp(port: u16, who: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "{who} is not listening on port {port}; its log:\n{}",
                tail(log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn http_ok(addr: SocketAddr, path: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200")
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The cgroup under which a node's kubelet puts its pods (in every
/// hierarchy); `cluster down` removes it.
pub fn cgroup_root(node: &str) -> String {
    format!("/{CGROUP_PARENT}/{node}")
}

/// The top cgroup of everything `cluster up` runs.
pub const CGROUP_PARENT: &str = "mini-kubernetes";

/// This machine's name, as a node name (lower case, as Kubernetes wants).
pub fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node-1".into())
}

/// The directory of the `cluster` binary, where the component binaries are
/// built too.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("find the cluster binary")?;
    let dir = exe.parent().context("the cluster binary's directory")?;
    let dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().context("profile dir")?
    } else {
        dir
    };
    for b in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "kube-dns",
    ] {
        if !dir.join(b).is_file() {
            bail!("{} is missing beside the cluster binary: build the workspace (cargo build --release)", dir.join(b).display());
        }
    }
    Ok(dir.to_path_buf())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
