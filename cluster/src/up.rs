//! `cluster up`: the control plane, then each node's containerd and
//! kubelet, started in the background from the binaries beside this one,
//! waiting (with progress) until every node is Ready. Anything failing on
//! the way stops what was started: never half a cluster.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;

use crate::containerd::{ContainerdConfig, ContainerdProcess, DEFAULT_CNI_BIN_DIR};
use crate::daemon::{self, Recorded};
use crate::layout::Layout;
use crate::{down, images, netsafety, preflight};

/// The loopback port of the apiserver (plain HTTP until TLS lands; the
/// upstream secure port's number).
pub const APISERVER_PORT: u16 = 6443;
pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The port-less bridge that swallows traffic to unassigned service and pod
/// addresses (DESIGN.md, network safety).
pub const BLACKHOLE_BRIDGE: &str = "mk8s-blackhole";

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
        let names: Vec<&str> = dead.iter().map(|r| r.name.as_str()).collect();
        bail!(
            "a cluster from {} is partly down ({} not running): run `cluster down --data-dir {}` first",
            layout.dir.display(),
            names.join(", "),
            layout.dir.display()
        );
    }
    if opts.nodes != 1 {
        bail!("--nodes {} needs the multi-node network-namespace lab, which is not built yet; use --nodes 1", opts.nodes);
    }
    let node = node_name();
    let mut ports = vec![
        (APISERVER_PORT, "kube-apiserver"),
        (10257, "kube-controller-manager"),
        (10259, "kube-scheduler"),
        (10250, "kubelet"),
        (10248, "kubelet healthz"),
    ];
    if opts.store == StoreKind::Etcd {
        ports.push((ETCD_CLIENT_PORT, "etcd"));
        ports.push((ETCD_PEER_PORT, "etcd peers"));
    }
    let problems = preflight::check(
        &ports,
        Path::new(DEFAULT_CNI_BIN_DIR),
        opts.store == StoreKind::Etcd,
    );
    if !problems.is_empty() {
        bail!(
            "cannot bring a cluster up here:\n  - {}",
            problems.join("\n  - ")
        );
    }
    for dir in [layout.dir.clone(), layout.logs(), layout.pids()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    match bring_up(opts, &layout, &node, started).await {
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

async fn bring_up(
    opts: &UpOptions,
    layout: &Layout,
    node: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let bin = bin_dir()?;
    let step = |what: &str| {
        print!("  {what:<44}");
        let _ = std::io::stdout().flush();
        Instant::now()
    };
    let done = |t: Instant| println!("ok ({:.1} s)", t.elapsed().as_secs_f64());

    let t = step("network safety routes");
    netsafety::ensure_blackhole_routes_on(BLACKHOLE_BRIDGE, SERVICE_CIDR, CLUSTER_CIDR)?;
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
    daemon::spawn(
        layout,
        "kube-apiserver",
        &bin.join("kube-apiserver"),
        &[
            store_flag,
            "--bind-address=127.0.0.1".into(),
            format!("--port={APISERVER_PORT}"),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        ],
        &layout.log("kube-apiserver"),
    )?;
    wait_healthz(
        APISERVER_PORT,
        "kube-apiserver",
        &layout.log("kube-apiserver"),
    )?;
    write_kubeconfig(&layout.kubeconfig())?;
    done(t);

    let kubeconfig = format!("--kubeconfig={}", layout.kubeconfig().display());
    let t = step("kube-controller-manager, kube-scheduler");
    daemon::spawn(
        layout,
        "kube-controller-manager",
        &bin.join("kube-controller-manager"),
        &[
            kubeconfig.clone(),
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
            kubeconfig.clone(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
        ],
        &layout.log("kube-scheduler"),
    )?;
    wait_healthz(
        10257,
        "kube-controller-manager",
        &layout.log("kube-controller-manager"),
    )?;
    wait_healthz(10259, "kube-scheduler", &layout.log("kube-scheduler"))?;
    done(t);

    let t = step(&format!("node {node}: containerd"));
    let mut cfg = ContainerdConfig::new(layout.containerd(node));
    cfg.cni_conf_dir = layout.cni_conf(node);
    cfg.stream_server_address = "127.0.0.1".into();
    let containerd = ContainerdProcess::start(&cfg)?;
    let socket = containerd.socket();
    let pid = containerd.detach();
    daemon::record(
        layout,
        &Recorded {
            name: format!("containerd-{node}"),
            pid: pid as i32,
            program: PathBuf::from("/usr/bin/containerd"),
        },
    )?;
    done(t);

    let t = step(&format!("node {node}: kubelet"));
    daemon::spawn(
        layout,
        &format!("kubelet-{node}"),
        &bin.join("kubelet"),
        &[
            kubeconfig.clone(),
            format!("--hostname-override={node}"),
            "--node-ip=127.0.0.1".into(),
            format!("--container-runtime-endpoint=unix://{}", socket.display()),
            format!("--image-dir={}", layout.images().display()),
            format!("--root-dir={}", layout.kubelet(node).display()),
            "--address=127.0.0.1".into(),
            format!("--cgroup-root={}", cgroup_root(node)),
        ],
        &layout.log(&format!("kubelet-{node}")),
    )?;
    wait_healthz(10248, "kubelet", &layout.log(&format!("kubelet-{node}")))?;
    done(t);

    let t = step("every node Ready, system Services");
    let client = component_base::client(Some(&layout.kubeconfig()), None).await?;
    wait_ready(&client, &[node.to_string()], layout).await?;
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

/// `/healthz` answering 200 on a loopback port.
fn wait_healthz(port: u16, who: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_ok(port, "/healthz") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{who} did not become healthy on port {port}; its log:\n{}",
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

fn http_ok(port: u16, path: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
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

/// A kubeconfig for this cluster, usable by our kubectl and the real one.
fn write_kubeconfig(path: &Path) -> anyhow::Result<()> {
    let cfg = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mini-kubernetes\n  cluster:\n    server: http://127.0.0.1:{APISERVER_PORT}\ncontexts:\n- name: mini-kubernetes\n  context:\n    cluster: mini-kubernetes\n    user: admin\n    namespace: default\ncurrent-context: mini-kubernetes\nusers:\n- name: admin\n  user: {{}}\n"
    );
    std::fs::write(path, cfg).with_context(|| format!("write {}", path.display()))
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
