//! scheduler-bench: kube-scheduler throughput as upstream's scheduler_perf
//! SchedulingBasic measures it. For each node count: a fresh etcd and
//! kube-apiserver, N Node objects (no kubelets), the release kube-scheduler,
//! then P pending pods created by 64 concurrent clients while the scheduler
//! runs. Reported: pods bound per second from the first binding to the last,
//! as a watch on bound pods sees them, and what each process spent.
//!
//! Run: `cargo build --release -p apiserver -p scheduler &&
//! cargo run --release -p apiserver-bench --bin scheduler-bench -- --nodes 1000,5000 --pods 10000`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use apiserver_bench::procfs::{child_pid_named, machine_line, process_cpu_seconds};
use clap::Parser;
use e2e_tests::apiserver::{bin_dir, ApiServerProcess};
use e2e_tests::component::ComponentProcess;
use e2e_tests::etcd::EtcdProcess;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController};
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::Client;
use serde_json::json;

const NAMESPACE: &str = "bench";
/// How long all pods may take to be bound before the run counts as failed.
const BIND_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Parser, Debug)]
#[command(
    name = "scheduler-bench",
    about = "Benchmark kube-scheduler throughput"
)]
struct Args {
    /// Node counts to measure, each on a fresh cluster (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    nodes: Vec<usize>,
    /// Pending pods to schedule per run (0: skip these runs).
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 64)]
    creators: usize,
    /// Create all pods before starting the scheduler (the scheduler alone,
    /// not competing with the creates), instead of upstream's way.
    #[arg(long)]
    pods_first: bool,
    /// The apiserver's store.
    #[arg(long, default_value = "etcd", value_parser = ["etcd", "embedded"])]
    store: String,
    /// Also time a ReplicationController of this many replicas until all its
    /// pods are created and bound (needs a working kube-controller-manager;
    /// 0 skips it).
    #[arg(long, default_value_t = 0)]
    rc_replicas: usize,
}

/// The processes of one run; dropping it kills them.
struct Cluster {
    _etcd: EtcdProcess,
    apiserver: ApiServerProcess,
    logs: tempfile::TempDir,
}

impl Cluster {
    fn start(embedded: bool) -> Result<Cluster> {
        let etcd = EtcdProcess::start().context("start etcd")?;
        let apiserver = if embedded {
            ApiServerProcess::start_embedded(&[])
        } else {
            ApiServerProcess::start(&etcd.endpoints(), &[])
        }
        .context("start kube-apiserver")?;
        let logs = tempfile::Builder::new()
            .prefix("scheduler-bench-")
            .tempdir()?;
        Ok(Cluster {
            _etcd: etcd,
            apiserver,
            logs,
        })
    }

    fn component(&self, binary: &str, extra: &[&str]) -> Result<ComponentProcess> {
        let mut args = vec![
            format!("--kubeconfig={}", self.apiserver.kubeconfig().display()),
            "--leader-elect=false".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        ComponentProcess::start(binary, binary, self.logs.path(), &args)
    }
}

/// One measured run.
struct Run {
    nodes: usize,
    pods: usize,
    create_rate: f64,
    /// Pods bound per second, first to last binding.
    throughput: f64,
    /// Bindings seen in each whole second of the run.
    per_second: Vec<usize>,
    /// First create to last binding.
    wall: Duration,
    cpu: Cpu,
}

/// CPU seconds each process used during the run.
#[derive(Default)]
struct Cpu {
    scheduler: f64,
    apiserver: f64,
    etcd: f64,
    wall: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // On SIGINT/SIGTERM, dropping the benchmark's future kills its processes.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = bench(args) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = term.recv() => bail!("terminated"),
    }
}

async fn bench(args: Args) -> Result<()> {
    println!("{}", machine_line());
    println!(
        "store: {}, pods per run: {}, creators: {}, mode: {}",
        args.store,
        args.pods,
        args.creators,
        if args.pods_first {
            "pods created first, then the scheduler starts"
        } else {
            "scheduler running while pods are created (as scheduler_perf)"
        }
    );
    let mut rows = Vec::new();
    // --pods 0: only the RC measurement.
    let node_counts = if args.pods == 0 {
        &[][..]
    } else {
        &args.nodes[..]
    };
    for &nodes in node_counts {
        eprintln!("== {nodes} nodes, {} pods ==", args.pods);
        match run(&args, nodes).await {
            Ok(r) => rows.push(r),
            Err(e) => println!("| {nodes} | {} | failed: {e:#} |", args.pods),
        }
    }
    println!();
    println!("| Nodes | Pods | Pods bound/s (first to last binding) | Bound per second (min / median / max) | Pod creates/s | First create to last bound | CPU cores busy: scheduler / apiserver / etcd | CPU ms per pod: scheduler / apiserver / etcd |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let (min, med, max) = spread(&r.per_second);
        let busy = |s: f64| s / r.cpu.wall.max(1e-9);
        let per_pod = |s: f64| s * 1000.0 / (r.pods.max(1) as f64);
        println!(
            "| {} | {} | **{:.0}/s** | {min} / {med} / {max} | {:.0}/s | {:.2} s | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} |",
            r.nodes,
            r.pods,
            r.throughput,
            r.create_rate,
            r.wall.as_secs_f64(),
            busy(r.cpu.scheduler),
            busy(r.cpu.apiserver),
            busy(r.cpu.etcd),
            per_pod(r.cpu.scheduler),
            per_pod(r.cpu.apiserver),
            per_pod(r.cpu.etcd),
        );
    }
    if args.rc_replicas > 0 {
        println!();
        match rc_run(&args).await {
            Ok(line) => println!("{line}"),
            Err(e) => println!("RC of {} replicas: not measured: {e:#}", args.rc_replicas),
        }
    }
    Ok(())
}

async fn run(args: &Args, nodes: usize) -> Result<Run> {
    let embedded = args.store == "embedded";
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(embedded)).await??;
    let client = cluster.apiserver.client().await?;
    namespace(&client, NAMESPACE).await?;
    let t = Instant::now();
    create_nodes(&client, nodes).await?;
    eprintln!(
        "{nodes} nodes created in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let bound = Arc::new(std::sync::Mutex::new(Vec::<Instant>::with_capacity(
        args.pods,
    )));
    let watch = tokio::spawn(watch_bindings(client.clone(), bound.clone(), args.pods));
    let mut scheduler = None;
    if !args.pods_first {
        scheduler = Some(start_scheduler(&cluster, &client, true).await?);
    }
    let cpu_before = cpu_now(&cluster, scheduler.as_ref());
    let created_start = Instant::now();
    create_pods(&client, args.pods, args.creators).await?;
    let create_time = created_start.elapsed();
    eprintln!(
        "{} pods created in {:.1} s",
        args.pods,
        create_time.as_secs_f64()
    );
    let (cpu_before, measured_from) = match scheduler {
        Some(_) => (cpu_before, created_start),
        None => {
            // No probe: it would queue behind every pending pod.
            let started = Instant::now();
            scheduler = Some(start_scheduler(&cluster, &client, false).await?);
            (cpu_now(&cluster, scheduler.as_ref()), started)
        }
    };
    let scheduler = scheduler.expect("started");
    match tokio::time::timeout(BIND_DEADLINE, watch).await {
        Ok(r) => r??,
        Err(_) => bail!(
            "only {} of {} pods bound within {BIND_DEADLINE:?}",
            bound.lock().expect("lock").len(),
            args.pods
        ),
    }
    let mut cpu = cpu_now(&cluster, Some(&scheduler)).since(&cpu_before);
    cpu.wall = measured_from.elapsed().as_secs_f64();
    let times = bound.lock().expect("lock").clone();
    let first = *times.iter().min().context("no bindings")?;
    let last = *times.iter().max().context("no bindings")?;
    let span = last.duration_since(first).as_secs_f64();
    let mut per_second = vec![0usize; span.floor() as usize + 1];
    for t in &times {
        per_second[t.duration_since(first).as_secs() as usize] += 1;
    }
    // The last second is partial.
    if per_second.len() > 1 {
        per_second.pop();
    }
    Ok(Run {
        nodes,
        pods: args.pods,
        create_rate: args.pods as f64 / create_time.as_secs_f64(),
        throughput: (times.len().saturating_sub(1)) as f64 / span.max(1e-9),
        per_second,
        wall: last.duration_since(measured_from),
        cpu,
    })
}

/// Start kube-scheduler and (with `probe`) wait until it binds a first pod
/// (caches synced).
async fn start_scheduler(
    cluster: &Cluster,
    client: &Client,
    probe: bool,
) -> Result<ComponentProcess> {
    let mut sched = cluster.component("kube-scheduler", &["--secure-port=0"])?;
    if !probe {
        return Ok(sched);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let probe = pod("default", "scheduler-probe")?;
    pods.create(&PostParams::default(), &probe).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let p = pods.get("scheduler-probe").await?;
        if p.spec.and_then(|s| s.node_name).is_some() {
            return Ok(sched);
        }
        if !sched.alive() || Instant::now() > deadline {
            bail!("kube-scheduler did not bind a probe pod:\n{}", sched.log());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Record when each pod of the namespace is first seen bound.
async fn watch_bindings(
    client: Client,
    bound: Arc<std::sync::Mutex<Vec<Instant>>>,
    want: usize,
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client, NAMESPACE);
    let config = watcher::Config::default().fields("spec.nodeName!=");
    let mut stream = watcher(api, config).boxed();
    let mut seen = HashSet::with_capacity(want);
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(Event::Apply(p) | Event::InitApply(p)) => p,
            Ok(_) => continue,
            // A line of another kind (or a transient failure): keep going.
            Err(_) => continue,
        };
        let now = Instant::now();
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none()
        {
            continue;
        }
        if seen.insert(pod.metadata.name.unwrap_or_default()) {
            let mut b = bound.lock().expect("lock");
            b.push(now);
            if b.len() >= want {
                return Ok(());
            }
        }
    }
    bail!("the watch ended")
}

async fn namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// scheduler_perf's node-default: 4 cpu, 32Gi, 110 pods, Ready.
fn node(i: usize) -> Result<Node> {
    let name = format!("node-{i}");
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }))?)
}

/// scheduler_perf's pod-default: one pause container asking 100m and 500Mi.
fn pod(namespace: &str, name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
        }]},
    }))?)
}

async fn create_nodes(client: &Client, n: usize) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    concurrently(n, 64, move |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &node(i)?).await?;
            Ok(())
        }
    })
    .await
}

async fn create_pods(client: &Client, n: usize, creators: usize) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    concurrently(n, creators, move |i| {
        let api = api.clone();
        async move {
            api.create(
                &PostParams::default(),
                &pod(NAMESPACE, &format!("pod-{i}"))?,
            )
            .await?;
            Ok(())
        }
    })
    .await
}

/// Run `op(0..n)` with `width` in flight.
async fn concurrently<F, Fut>(n: usize, width: usize, op: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..width.max(1) {
        let next = next.clone();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                op(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Time for an RC to have all its pods created (by kube-controller-manager)
/// and bound (by kube-scheduler), on 1,000 nodes.
async fn rc_run(args: &Args) -> Result<String> {
    let embedded = args.store == "embedded";
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(embedded)).await??;
    let client = cluster.apiserver.client().await?;
    namespace(&client, NAMESPACE).await?;
    create_nodes(&client, 1000).await?;
    let _scheduler = start_scheduler(&cluster, &client, true).await?;
    if !bin_dir().join("kube-controller-manager").is_file() {
        bail!("kube-controller-manager is not built");
    }
    // The benchmark's nodes have no kubelets and never renew a Lease: keep
    // the node lifecycle controller from tainting them during the run.
    let mut cm = cluster.component(
        "kube-controller-manager",
        &["--node-monitor-grace-period=1h"],
    )?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    if !cm.alive() {
        bail!(
            "kube-controller-manager exited at start: {}",
            cm.log().lines().last().unwrap_or("")
        );
    }
    let replicas = args.rc_replicas;
    let bound = Arc::new(std::sync::Mutex::new(Vec::new()));
    let watch = tokio::spawn(watch_bindings(client.clone(), bound.clone(), replicas));
    let rc: ReplicationController = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "bench", "namespace": NAMESPACE},
        "spec": {"replicas": replicas, "selector": {"app": "bench"},
                 "template": {"metadata": {"labels": {"app": "bench"}},
                              "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                  "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}},
    }))?;
    let start = Instant::now();
    Api::<ReplicationController>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &rc)
        .await?;
    // Give up early when nothing happens at all (no controller-manager at work).
    let mut watch = watch;
    loop {
        match tokio::time::timeout(Duration::from_secs(1), &mut watch).await {
            Ok(r) => {
                r??;
                break;
            }
            Err(_) => {
                let n = bound.lock().expect("lock").len();
                let waited = start.elapsed();
                if (n == 0 && waited > Duration::from_secs(120)) || waited > BIND_DEADLINE {
                    bail!("only {n} of {replicas} pods bound after {waited:?}");
                }
            }
        }
    }
    Ok(format!(
        "RC of {replicas} replicas on 1000 nodes: all pods created and bound {:.2} s after the RC was created",
        start.elapsed().as_secs_f64()
    ))
}

impl Cpu {
    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            scheduler: self.scheduler - before.scheduler,
            apiserver: self.apiserver - before.apiserver,
            etcd: self.etcd - before.etcd,
            wall: 0.0,
        }
    }
}

fn cpu_now(cluster: &Cluster, scheduler: Option<&ComponentProcess>) -> Cpu {
    Cpu {
        scheduler: scheduler
            .and_then(|s| process_cpu_seconds(s.pid()))
            .unwrap_or(0.0),
        apiserver: process_cpu_seconds(cluster.apiserver.pid()).unwrap_or(0.0),
        etcd: child_pid_named("etcd")
            .and_then(process_cpu_seconds)
            .unwrap_or(0.0),
        wall: 0.0,
    }
}

fn spread(v: &[usize]) -> (usize, usize, usize) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    (s[0], s[s.len() / 2], s[s.len() - 1])
}
