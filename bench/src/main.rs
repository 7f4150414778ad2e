//! apiserver-bench: starts a fresh etcd and the release kube-apiserver on
//! loopback, measures create throughput (against raw etcd), latency at a fixed
//! rate, LIST, watch fan-out and memory, and prints a markdown table.
//!
//! Run: `cargo build --release -p apiserver -p apiserver-bench &&
//! target/release/apiserver-bench [--quick]`.

mod cluster;
mod latency;
mod list;
mod load;
mod machine;
mod pods;
mod report;
mod server_metrics;
mod stats;
mod throughput;
mod watch;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cluster::Cluster;
use crate::machine::{Machine, Pids};
use crate::report::Row;

#[derive(Parser, Debug)]
#[command(
    name = "apiserver-bench",
    about = "Benchmark kube-apiserver on a fresh etcd"
)]
struct Args {
    /// Smaller counts and shorter runs (a smoke test, ~1 minute).
    #[arg(long)]
    quick: bool,
    /// Pods created in the throughput phase (default 5000, quick 1000).
    #[arg(long)]
    creates: Option<usize>,
    /// Pods in the LIST phase (default 10000, quick 2000).
    #[arg(long)]
    list_pods: Option<usize>,
    /// Concurrent watches in the fan-out phase (default 1000, quick 200).
    #[arg(long)]
    watchers: Option<usize>,
    /// The apiserver's store: "etcd" or "embedded" (etcd runs either way,
    /// for the raw-etcd comparison).
    #[arg(long, default_value = "etcd", value_parser = ["etcd", "embedded"])]
    store: String,
}

/// Every knob of one run.
struct Plan {
    mode: &'static str,
    workers: usize,
    creates: usize,
    rate: u32,
    latency_duration: Duration,
    list_pods: usize,
    watchers: usize,
    watch_rounds: usize,
}

impl Plan {
    fn from(args: &Args) -> Plan {
        let quick = args.quick;
        Plan {
            mode: if quick { "quick" } else { "full" },
            workers: 64,
            creates: args.creates.unwrap_or(if quick { 1_000 } else { 5_000 }),
            rate: 200,
            latency_duration: Duration::from_secs(if quick { 3 } else { 10 }),
            list_pods: args.list_pods.unwrap_or(if quick { 2_000 } else { 10_000 }),
            watchers: args.watchers.unwrap_or(if quick { 200 } else { 1_000 }),
            watch_rounds: if quick { 1 } else { 3 },
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} mode: {} concurrent clients, {} creates, {}/s for {} s, LIST of {} pods, {} watches × {} write(s)",
            self.mode,
            self.workers,
            self.creates,
            self.rate,
            self.latency_duration.as_secs(),
            self.list_pods,
            self.watchers,
            self.watch_rounds
        )
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plan = Plan::from(&args);
    let machine = Machine::probe(&cluster::etcd_binary());
    eprintln!("starting etcd and kube-apiserver ...");
    let embedded = args.store == "embedded";
    eprintln!("kube-apiserver store: {}", args.store);
    let mut cluster = tokio::task::spawn_blocking(move || Cluster::start(embedded))
        .await
        .context("start-up task")??;
    let result = bench(&cluster, &plan).await;
    let mut rows = match result {
        Ok(rows) => rows,
        Err(e) => vec![Row::failed("benchmark", &e)],
    };
    if !cluster.apiserver.alive() {
        let log = cluster.apiserver.log();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        rows.push(Row::failed(
            "kube-apiserver",
            &anyhow::anyhow!("exited during the run: {}", tail.join(" / ")),
        ));
    }
    let server_version = version(&cluster).await;
    println!("{}", header(&machine, &plan, &server_version));
    println!("kube-apiserver store: **{}**\n", args.store);
    println!("{}", report::markdown(&rows));
    eprintln!("done");
    drop(cluster);
    Ok(())
}

/// Every phase in order; a failing phase becomes a row and the run goes on.
async fn bench(cluster: &Cluster, plan: &Plan) -> Result<Vec<Row>> {
    let client = cluster.apiserver.client().await?;
    let etcd = etcd_client::Client::connect([cluster.etcd.endpoint.as_str()], None)
        .await
        .context("connect to etcd")?;
    let pids = Pids {
        apiserver: cluster.apiserver.pid(),
        etcd: machine::child_pid_named("etcd"),
    };
    eprintln!(
        "kube-apiserver pid {} at {}, etcd pid {} at {}",
        pids.apiserver,
        cluster.apiserver.url,
        pids.etcd.map_or("?".into(), |p| p.to_string()),
        cluster.etcd.endpoint
    );
    let mut rows = Vec::new();

    let lists = list::Settings {
        count: plan.list_pods,
        workers: plan.workers,
    };
    phase(
        &mut rows,
        "1. LIST (its pods are created first)",
        list::run(&client, pids, &lists),
    )
    .await;
    let tput = throughput::Settings {
        count: plan.creates,
        workers: plan.workers,
    };
    phase(
        &mut rows,
        "2. Throughput",
        throughput::run(&client, &etcd, pids, &tput),
    )
    .await;
    let lat = latency::Settings {
        rate: plan.rate,
        duration: plan.latency_duration,
    };
    phase(&mut rows, "3. Latency", latency::run(&client, pids, &lat)).await;
    let watches = watch::Settings {
        watchers: plan.watchers,
        rounds: plan.watch_rounds,
    };
    phase(
        &mut rows,
        "4. Watch fan-out",
        watch::run(&client, pids, &watches),
    )
    .await;

    rows.push(machine::memory_row(
        "5. kube-apiserver memory after the runs (VmRSS, peak VmHWM)",
        Some(pids.apiserver),
    ));
    rows.push(machine::memory_row(
        "etcd memory after the runs (VmRSS, peak VmHWM)",
        pids.etcd,
    ));
    Ok(rows)
}

async fn phase(rows: &mut Vec<Row>, name: &str, work: impl Future<Output = Result<Vec<Row>>>) {
    eprintln!("{name} ...");
    match work.await {
        Ok(mut phase_rows) => rows.append(&mut phase_rows),
        Err(e) => {
            eprintln!("  failed: {e:#}");
            rows.push(Row::failed(name, &e));
        }
    }
}

/// The server's gitVersion from /version.
async fn version(cluster: &Cluster) -> String {
    let fetch = async {
        let client = cluster.apiserver.client().await?;
        let info = client.apiserver_version().await?;
        anyhow::Ok(info.git_version)
    };
    fetch.await.unwrap_or_else(|e| format!("unknown ({e:#})"))
}

fn header(machine: &Machine, plan: &Plan, server_version: &str) -> String {
    let date = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M %Z").to_string();
    format!(
        "## apiserver-bench results ({date})\n\n\
         - Machine: {} CPUs, {}, {} RAM, Linux {}\n\
         - etcd: {}\n\
         - kube-apiserver: {server_version} (release build), etcd and the benchmark client on the same machine\n\
         - Run: {}\n",
        machine.cpus,
        machine.cpu_model,
        machine.memory,
        machine.kernel,
        machine.etcd_version,
        plan.describe()
    )
}
