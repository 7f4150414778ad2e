//! proxy-bench: kube-proxy's nftables syncs and the cost of a Service hop.
//! Inside a network namespace of its own (its Service and pod CIDRs routed to
//! a port-less bridge there first), the proxier's sync code — the same code
//! `kube-proxy` runs — is fed N synthetic Services with E endpoints each:
//! full sync time (the whole table replaced in one transaction), time to
//! apply one endpoint change (a partial sync), rule count. Then one Service
//! points at a real pod (busybox httpd in a pod namespace on that bridge),
//! and sequential HTTP requests go to its ClusterIP and straight to the pod
//! IP, interleaved, from the node namespace: the latency ratio.
//!
//! Run: `cargo run --release -p apiserver-bench --bin proxy-bench`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use e2e_tests::netns::{http_get, unique_name, NetNs, Pod};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use proxy::model::{self, ServiceName};
use proxy::nft::Nft;
use proxy::proxier::{Proxier, SyncKind};
use proxy::rules::{self, NodePortAddresses, Settings};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "proxy-bench", about = "Benchmark kube-proxy's nftables syncs")]
struct Args {
    /// Services to program.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Endpoints per Service.
    #[arg(long, default_value_t = 3)]
    endpoints: usize,
    /// Full syncs to time.
    #[arg(long, default_value_t = 5)]
    full_syncs: usize,
    /// One-endpoint changes to time.
    #[arg(long, default_value_t = 30)]
    changes: usize,
    /// HTTP requests per target (ClusterIP, pod IP) for the latency ratio.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Also write the full sync's nft text to this file.
    #[arg(long)]
    dump_full: Option<std::path::PathBuf>,
}

const POD_IP: &str = "10.244.0.2";
const GATEWAY: &str = "10.244.0.1";

fn main() -> Result<()> {
    let args = Args::parse();
    let load_before = loadavg();
    if args.services == 0 || args.services > 60_000 || args.endpoints == 0 {
        bail!("--services must be 1..60000 and --endpoints at least 1");
    }
    let node = NetNs::create("kpbench")?;
    // This thread (and the nft context it opens) lives in the node namespace.
    let _inside = node.enter()?;
    cluster::netsafety::ensure_blackhole_routes_in(
        Some(node.name()),
        &unique_name("kpbh"),
        "10.96.0.0/12",
        "10.244.0.0/16",
    )?;
    let bridge = unique_name("kpbr");
    node.exec_ok("ip", &["link", "add", &bridge, "type", "bridge"])?;
    node.exec_ok(
        "ip",
        &["addr", "add", &format!("{GATEWAY}/24"), "dev", &bridge],
    )?;
    node.exec_ok("ip", &["link", "set", &bridge, "up"])?;
    let pod = Pod::start(&node, &bridge, POD_IP, 24, GATEWAY)?;

    let services: Vec<(Service, Endpoints)> = (0..args.services)
        .map(|i| synthetic(i, args.endpoints, 0))
        .collect();
    let settings = Settings {
        cluster_cidr: Some("10.244.0.0/16".into()),
        nodeport_addresses: NodePortAddresses::All,
    };
    // Rendering alone (no nftables), to tell it apart from applying.
    let ports: Vec<_> = services
        .iter()
        .flat_map(|(svc, eps)| model::service_ports(svc, Some(eps)))
        .collect();
    let t = Instant::now();
    let text = rules::full(&ports, &settings, &Default::default()).text;
    let render_time = t.elapsed();
    if let Some(path) = &args.dump_full {
        std::fs::write(path, &text)?;
    }
    let mut proxier = Proxier::new(Nft::new()?, settings);
    for (svc, eps) in &services {
        proxier.update_service(
            ServiceName::of(&svc.metadata),
            model::service_ports(svc, Some(eps)),
        );
    }

    // Full syncs: the first creates the table, the others replace it.
    let mut full = Vec::new();
    let (mut full_user, mut full_sys) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..args.full_syncs.max(1) {
        proxier.request_full_sync();
        let before = thread_cpu();
        let report = proxier.sync()?;
        let after = thread_cpu();
        assert_eq!(report.kind, SyncKind::Full);
        full.push(report.took);
        full_user += after.0 - before.0;
        full_sys += after.1 - before.1;
    }
    let runs = full.len() as u32;
    let rules = proxier.rule_count();
    let listed = listed_rules(&node)?;

    // One endpoint of one Service changes (alternating between two states,
    // on different Services).
    let mut partial = Vec::new();
    for n in 0..args.changes {
        let i = (n * 7919 + 1) % args.services;
        let (svc, eps) = synthetic(i, args.endpoints, n + 1);
        proxier.update_service(
            ServiceName::of(&svc.metadata),
            model::service_ports(&svc, Some(&eps)),
        );
        let report = proxier.sync()?;
        assert_eq!(report.kind, SyncKind::Partial, "{report:?}");
        partial.push(report.took);
    }

    // Service 0 now points at the real pod.
    let (svc, eps) = real_service(POD_IP);
    proxier.update_service(
        ServiceName::of(&svc.metadata),
        model::service_ports(&svc, Some(&eps)),
    );
    proxier.sync()?;
    let vip = format!("{}:80", cluster_ip(0));
    let direct = format!("{POD_IP}:80");
    for target in [&vip, &direct] {
        let body =
            http_get(target, Duration::from_secs(2)).with_context(|| format!("GET {target}"))?;
        if body != pod.name {
            bail!("{target} answered {body:?}, not the pod");
        }
    }
    let (via_vip, via_pod) = latencies(&vip, &direct, args.requests)?;

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let us = |d: Duration| format!("{:.0} us", d.as_secs_f64() * 1e6);
    println!(
        "\nkube-proxy (nftables via libnftables), {} Services x {} endpoints, {} cores",
        args.services,
        args.endpoints,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:<44} {:>12} {:>12} {:>12}", "", "min", "median", "max");
    let row = |name: &str, v: &mut Vec<Duration>, f: &dyn Fn(Duration) -> String| {
        v.sort();
        println!(
            "{name:<44} {:>12} {:>12} {:>12}",
            f(v[0]),
            f(v[v.len() / 2]),
            f(v[v.len() - 1])
        );
    };
    row(&format!("full sync ({} runs)", full.len()), &mut full, &ms);
    row(
        &format!("one endpoint change, partial sync ({})", partial.len()),
        &mut partial,
        &ms,
    );
    let mut via_vip = via_vip;
    let mut via_pod = via_pod;
    row("HTTP GET via ClusterIP", &mut via_vip, &us);
    row("HTTP GET straight to the pod IP", &mut via_pod, &us);
    println!(
        "full sync CPU per run (the syncing thread): {} user (of which rendering the text: {}), {} kernel",
        ms(full_user / runs),
        ms(render_time),
        ms(full_sys / runs)
    );
    println!("rules in the table: {rules} (nft lists {listed})");
    println!(
        "latency ratio ClusterIP / pod IP (medians): {:.3}",
        via_vip[via_vip.len() / 2].as_secs_f64() / via_pod[via_pod.len() / 2].as_secs_f64()
    );
    println!(
        "machine load (1-minute average) before / after: {load_before} / {}",
        loadavg()
    );
    proxier.delete_table()?;
    Ok(())
}

/// The 1-minute load average (/proc/loadavg), as printed there.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn cluster_ip(i: usize) -> Ipv4Addr {
    // 10.96.0.0/12 from 10.96.1.0 on.
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 1, 0)) + i as u32)
}

/// Service `i` with `endpoints` endpoints; a `variant` other than 0 moves
/// its last endpoint to an address of its own.
fn synthetic(i: usize, endpoints: usize, variant: usize) -> (Service, Endpoints) {
    let name = format!("svc-{i}");
    let addrs: Vec<serde_json::Value> = (0..endpoints)
        .map(|e| {
            let moved = e + 1 == endpoints && variant > 0;
            let n = (i * endpoints + e) as u32
                + if moved {
                    30_000 + (variant as u32 % 10_000)
                } else {
                    0
                };
            // 10.244.16.0 upwards: never the bench pod's subnet.
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 16, 0)) + n);
            json!({"ip": ip.to_string()})
        })
        .collect();
    objects(&name, cluster_ip(i), addrs)
}

fn real_service(pod_ip: &str) -> (Service, Endpoints) {
    objects("svc-0", cluster_ip(0), vec![json!({"ip": pod_ip})])
}

fn objects(name: &str, ip: Ipv4Addr, addrs: Vec<serde_json::Value>) -> (Service, Endpoints) {
    let svc = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"clusterIP": ip.to_string(), "type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}]}
    }))
    .expect("service");
    let eps = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "bench"},
        "subsets": [{"addresses": addrs, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]
    }))
    .expect("endpoints");
    (svc, eps)
}

/// Rules `nft` lists in the table (a cross-check of the proxier's count).
fn listed_rules(node: &NetNs) -> Result<usize> {
    let out = node.exec_ok("nft", &["-j", "list", "table", "ip", "kube-proxy"])?;
    let json: serde_json::Value = serde_json::from_str(&out)?;
    Ok(json["nftables"]
        .as_array()
        .map(|items| items.iter().filter(|i| i.get("rule").is_some()).count())
        .unwrap_or(0))
}

/// Sequential GETs, alternating between the two targets in blocks of 50 so
/// that both see the same machine load.
fn latencies(a: &str, b: &str, n: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut la, mut lb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    // Warm-up: conntrack, neighbour entries, httpd.
    for _ in 0..50 {
        http_get(a, Duration::from_secs(2))?;
        http_get(b, Duration::from_secs(2))?;
    }
    while la.len() < n {
        for (target, out) in [(a, &mut la), (b, &mut lb)] {
            for _ in 0..50.min(n - out.len().min(n)) {
                let t = Instant::now();
                http_get(target, Duration::from_secs(2))
                    .with_context(|| format!("GET {target}"))?;
                out.push(t.elapsed());
            }
        }
    }
    Ok((la, lb))
}

/// This thread's CPU time: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage fills the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(ru.ru_utime), tv(ru.ru_stime))
}
