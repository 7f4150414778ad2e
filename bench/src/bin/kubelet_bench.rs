//! kubelet-bench: pod startup latency as upstream's SLO defines it (pod
//! created -> Running with all containers started, observed through a
//! watch) on one real node: a fresh etcd + kube-apiserver, the cluster
//! crate's containerd, the kubelet, local images (busybox `sleep`). Pods
//! are bound by spec.nodeName (no scheduler). Phases: N pods created at
//! once (burst), then N pods one after another (each waits for the one
//! before to run); then the kubelet's RSS with the N pods of the second
//! phase running.
//!
//! Run: `cargo build --release -p apiserver -p kubelet &&
//! cargo run --release -p apiserver-bench --bin kubelet_bench -- --pods 30`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use apiserver_bench::procfs::{
    machine_busy_seconds, machine_line, process_cpu_seconds, process_memory,
};
use clap::Parser;
use cluster::containerd::{ContainerdConfig, ContainerdProcess};
use e2e_tests::apiserver::TestCluster;
use e2e_tests::component::ComponentProcess;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(300);

#[derive(Parser, Debug)]
#[command(
    name = "kubelet-bench",
    about = "Pod startup latency and RSS of the kubelet"
)]
struct Args {
    /// Pods per phase.
    #[arg(long, default_value_t = 30)]
    pods: usize,
    /// Extra kubelet flags (e.g. --kubelet-arg=--cluster-dns=10.96.0.10).
    #[arg(long = "kubelet-arg", allow_hyphen_values = true)]
    kubelet_args: Vec<String>,
    /// Copy the kubelet's log here at the end.
    #[arg(long)]
    keep_log: Option<std::path::PathBuf>,
}

/// When each pod was created (client side) and seen Running.
#[derive(Default)]
struct Timings {
    created: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

fn running(p: &Pod) -> bool {
    let Some(s) = &p.status else { return false };
    s.phase.as_deref() == Some("Running")
        && s.container_statuses.as_ref().is_some_and(|cs| {
            !cs.is_empty()
                && cs
                    .iter()
                    .all(|c| c.state.as_ref().is_some_and(|st| st.running.is_some()))
        })
}

fn pod(name: &str, node: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Never",
                "command": ["sleep", "3600"]}]}
    }))?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn wait_running(t: &Arc<Mutex<Timings>>, names: &[String]) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        {
            let t = t.lock().expect("timings");
            if names.iter().all(|n| t.running.contains_key(n)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("pods not Running in {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn latencies(t: &Arc<Mutex<Timings>>, names: &[String]) -> Vec<Duration> {
    let t = t.lock().expect("timings");
    let mut v: Vec<Duration> = names
        .iter()
        .filter_map(|n| Some(t.running.get(n)?.duration_since(*t.created.get(n)?)))
        .collect();
    v.sort();
    v
}

fn row(label: &str, v: &[Duration]) {
    println!(
        "| {label} | {} | {} | {} | {} | {} |",
        v.len(),
        ms(percentile(v, 50.0)),
        ms(percentile(v, 90.0)),
        ms(percentile(v, 99.0)),
        ms(v.last().copied().unwrap_or_default()),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // No traffic goes to pods here, but keep the rule: CIDRs blackholed first.
    let _routes = cluster::netsafety::ensure_blackhole_routes("10.96.0.0/12", "10.244.0.0/16")?;
    let images = std::env::temp_dir().join("mk-kubelet-bench-images");
    cluster::images::build_images(&images)?;
    let cluster = TestCluster::start()?;
    let client = cluster.apiserver.client().await?;
    let node_name = "bench-node";
    let pod_cidr = "10.244.250.0/24";
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": node_name}, "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let dir = tempfile::Builder::new()
        .prefix("mk-kb-")
        .tempdir_in("/tmp")?;
    let mut cfg = ContainerdConfig::new(dir.path().join("c"));
    cfg.pod_cidr = Some(pod_cidr.into());
    let containerd = ContainerdProcess::start(&cfg)?;
    let cgroup_root = format!("/mk-kb-{}", std::process::id());
    let kubelet_args = vec![
        format!("--kubeconfig={}", cluster.apiserver.kubeconfig().display()),
        format!("--hostname-override={node_name}"),
        "--node-ip=127.0.0.1".into(),
        format!(
            "--container-runtime-endpoint={}",
            containerd.socket().display()
        ),
        format!("--image-dir={}", images.display()),
        format!("--root-dir={}", dir.path().join("kubelet").display()),
        format!("--cgroup-root={cgroup_root}"),
        "--port=0".into(),
        "--address=127.0.0.1".into(),
        "--healthz-port=0".into(),
    ];
    let mut kubelet_args = kubelet_args;
    kubelet_args.extend(args.kubelet_args.iter().cloned());
    let kubelet = ComponentProcess::start("kubelet", "kubelet", dir.path(), &kubelet_args)?;

    // Node Ready first.
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = nodes.get(node_name).await?;
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("node not ready:\n{}", kubelet.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let timings = Arc::new(Mutex::new(Timings::default()));
    let t = timings.clone();
    let watch = watcher(pods.clone(), watcher::Config::default());
    tokio::spawn(async move {
        let mut watch = std::pin::pin!(watch);
        while let Some(ev) = watch.next().await {
            let (Ok(Event::Apply(p)) | Ok(Event::InitApply(p))) = ev else {
                continue;
            };
            if running(&p) {
                let now = Instant::now();
                let name = p.metadata.name.clone().unwrap_or_default();
                t.lock()
                    .expect("timings")
                    .running
                    .entry(name)
                    .or_insert(now);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Burst.
    let cpu = |pid: u32| process_cpu_seconds(pid).unwrap_or(0.0);
    let machine = || machine_busy_seconds().unwrap_or(0.0);
    let cpu_before = (cpu(kubelet.pid()), cpu(containerd.pid()), machine());
    let burst_start = Instant::now();
    let burst: Vec<String> = (0..args.pods).map(|i| format!("burst-{i}")).collect();
    let creates = burst.iter().map(|name| {
        let pods = pods.clone();
        let t = timings.clone();
        let name = name.clone();
        async move {
            let p = pod(&name, node_name)?;
            t.lock()
                .expect("timings")
                .created
                .insert(name.clone(), Instant::now());
            pods.create(&PostParams::default(), &p).await?;
            anyhow::Ok(())
        }
    });
    for r in futures::future::join_all(creates).await {
        r?;
    }
    wait_running(&timings, &burst)
        .await
        .context(kubelet.log())?;
    let burst_lat = latencies(&timings, &burst);
    let burst_wall = burst_start.elapsed().as_secs_f64();
    let burst_cpu = (
        cpu(kubelet.pid()) - cpu_before.0,
        cpu(containerd.pid()) - cpu_before.1,
        machine() - cpu_before.2,
    );

    // Clear the node before the next phase.
    for name in &burst {
        pods.delete(name, &DeleteParams::default()).await?;
    }
    let deadline = Instant::now() + DEADLINE;
    while !pods.list(&Default::default()).await?.items.is_empty() {
        if Instant::now() > deadline {
            bail!("burst pods not deleted");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Let the runtime finish its clean-up (snapshot GC) first: this phase
    // measures a quiet node.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // One by one.
    let serial: Vec<String> = (0..args.pods).map(|i| format!("serial-{i}")).collect();
    let serial_before = (machine(), Instant::now());
    for name in &serial {
        let p = pod(name, node_name)?;
        timings
            .lock()
            .expect("timings")
            .created
            .insert(name.clone(), Instant::now());
        pods.create(&PostParams::default(), &p).await?;
        wait_running(&timings, std::slice::from_ref(name)).await?;
    }
    let serial_lat = latencies(&timings, &serial);
    let serial_busy = machine() - serial_before.0;
    let serial_wall = serial_before.1.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = process_memory(kubelet.pid()).map_or(0, |(rss, _)| rss);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{}", machine_line());
    println!();
    println!("| phase | pods | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    row("burst (created at once)", &burst_lat);
    row("one by one", &serial_lat);
    println!();
    println!(
        "CPU during the burst: kubelet {:.2} s, containerd {:.2} s; the whole machine \
         (containerd, shims, runc, CNI plugins, apiserver, etcd, kubelet) {:.2} core-seconds \
         in {:.2} s ({:.0}% of {cores} cores), {:.0} ms per pod",
        burst_cpu.0,
        burst_cpu.1,
        burst_cpu.2,
        burst_wall,
        100.0 * burst_cpu.2 / (burst_wall * cores as f64).max(1e-9),
        1000.0 * burst_cpu.2 / args.pods.max(1) as f64,
    );
    println!(
        "CPU one by one: the whole machine {:.2} core-seconds in {:.2} s, {:.0} ms per pod",
        serial_busy,
        serial_wall,
        1000.0 * serial_busy / args.pods.max(1) as f64,
    );
    // With every core busy, the last pod of a burst cannot start before the
    // machine has done all the pods' work: the floor under the burst's max.
    let per_pod = serial_busy / args.pods.max(1) as f64;
    println!(
        "CPU-bound floor for the burst: {} pods x {:.0} ms / {cores} cores = {:.2} s \
         (a p99 of 1 s would need at most {:.0} ms of machine CPU per pod)",
        args.pods,
        1000.0 * per_pod,
        args.pods as f64 * per_pod / cores as f64,
        1000.0 * cores as f64 / args.pods.max(1) as f64,
    );
    println!(
        "kubelet RSS with {} pods running: {:.1} MiB",
        args.pods,
        rss as f64 / 1024.0
    );

    // Tear down: pods, then kubelet, containerd (removes what is left), cgroups.
    for name in &serial {
        let _ = pods
            .delete(
                name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await;
    }
    if let Some(path) = &args.keep_log {
        std::fs::write(path, kubelet.log())?;
    }
    drop(kubelet);
    drop(containerd);
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            remove_cgroup_tree(&e.path().join(cgroup_root.trim_start_matches('/')));
        }
    }
    drop(cluster);
    Ok(())
}

fn remove_cgroup_tree(dir: &std::path::Path) {
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
