//! How fast `cluster up` gets the seed's example running, and how much memory
//! the control plane holds at idle with it (issue 7's figures).
//!
//! Each run: a fresh data directory and network namespace (as the e2e lab
//! tests do), `cluster up` (one node, embedded store, local images), then
//! `kubectl create -f` the nginx RC and Service and wait until both pods are
//! Running; then idle for `--idle-seconds` and read VmRSS of kube-apiserver,
//! kube-scheduler and kube-controller-manager from /proc; `cluster down`.
//!
//!     cargo build --release --workspace --bins
//!     cargo run --release -p apiserver-bench --bin cluster-up-bench -- --runs 3

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use e2e_tests::lab::{text, LabCluster};

#[derive(Parser)]
struct Args {
    /// How many fresh clusters to bring up, one after the other.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// How long the cluster idles before memory is read.
    #[arg(long, default_value_t = 20)]
    idle_seconds: u64,
}

const CONTROL_PLANE: [&str; 3] = [
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
];

struct Run {
    up: Duration,
    to_running: Duration,
    rss_kib: Vec<(String, u64)>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let run = one(&manifests, args.idle_seconds).with_context(|| format!("run {}", i + 1))?;
        println!(
            "run {}: cluster up {:.2} s, up to example Running {:.2} s, RSS {}",
            i + 1,
            run.up.as_secs_f64(),
            run.to_running.as_secs_f64(),
            run.rss_kib
                .iter()
                .map(|(n, k)| format!("{n} {:.1} MiB", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
        runs.push(run);
    }
    let total = |r: &Run| r.rss_kib.iter().map(|(_, k)| k).sum::<u64>() as f64 / 1024.0;
    println!("\n| run | cluster up | up → example Running | control-plane RSS at idle |");
    println!("|---|---|---|---|");
    for (i, r) in runs.iter().enumerate() {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.1} MiB |",
            i + 1,
            r.up.as_secs_f64(),
            r.to_running.as_secs_f64(),
            total(r)
        );
    }
    Ok(())
}

fn one(manifests: &Path, idle_seconds: u64) -> Result<Run> {
    let mut lab = LabCluster::new(1);
    let started = Instant::now();
    let out = lab.up(&[]);
    let up = started.elapsed();
    if !out.status.success() {
        bail!("cluster up: {}", text(&out));
    }
    let rc = manifests.join("nginx-rc.yaml");
    let svc = manifests.join("nginx-svc.yaml");
    let out = lab.kubectl(&[
        "create",
        "-f",
        rc.to_str().unwrap_or_default(),
        "-f",
        svc.to_str().unwrap_or_default(),
    ]);
    if !out.status.success() {
        bail!("kubectl create: {}", text(&out));
    }
    loop {
        let phases = text(&lab.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ]));
        let running = phases
            .split_whitespace()
            .filter(|p| *p == "Running")
            .count();
        if running >= 2 {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            bail!("the example's pods are not Running after 180 s: {phases}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let to_running = started.elapsed();
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let mut rss_kib = Vec::new();
    for name in CONTROL_PLANE {
        let pid_file = lab.data.join("pids").join(format!("{name}.pid"));
        let pid = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        let pid = pid
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        rss_kib.push((name.to_string(), vm_rss_kib(&pid)?));
    }
    let out = lab.down();
    if !out.status.success() {
        bail!("cluster down: {}", text(&out));
    }
    Ok(Run {
        up,
        to_running,
        rss_kib,
    })
}

fn vm_rss_kib(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}
