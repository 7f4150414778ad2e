//! `kube-proxy`: flags (upstream's names) -> [`proxy::Config`] -> run.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use component_base::parse_duration;
use proxy::netif::Cidr;

#[derive(Parser, Debug)]
#[command(
    name = "kube-proxy",
    about = "Sends Service traffic to the Services' endpoints (nftables)."
)]
struct Options {
    #[command(flatten)]
    api: component_base::ClientFlags,
    /// This node's name (default: the host name).
    #[arg(long)]
    hostname_override: Option<String>,
    /// The pods' CIDR: traffic to a ClusterIP from outside it is masqueraded.
    #[arg(long)]
    cluster_cidr: Option<Cidr>,
    /// CIDRs (comma-separated) of the node addresses that answer NodePorts
    /// (default: every local address but loopback).
    #[arg(long, value_delimiter = ',')]
    nodeport_addresses: Vec<Cidr>,
    /// Where /healthz is served.
    #[arg(long, default_value = "0.0.0.0:10256")]
    healthz_bind_address: SocketAddr,
    /// Where /metrics is served.
    #[arg(long, default_value = "127.0.0.1:10249")]
    metrics_bind_address: SocketAddr,
    /// The whole table is rebuilt at least this often.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    sync_period: Duration,
    /// No two syncs closer than this.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    min_sync_period: Duration,
    /// The proxy mode: only nftables.
    #[arg(long, default_value = "nftables")]
    proxy_mode: String,
    /// Keep routes to the other nodes' pod CIDRs via their InternalIPs
    /// (host-gw; not an upstream flag).
    #[arg(long)]
    configure_pod_routes: bool,
    /// Remove the nftables table and routes kube-proxy made, then exit.
    #[arg(long)]
    cleanup: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let o = Options::parse();
    if o.cleanup {
        proxy::cleanup()?;
        tracing::info!("removed the kube-proxy table and pod routes");
        return Ok(());
    }
    if o.proxy_mode != "nftables" {
        anyhow::bail!(
            "--proxy-mode {:?}: only nftables is supported",
            o.proxy_mode
        );
    }
    if o.sync_period.is_zero() {
        anyhow::bail!("--sync-period must be positive");
    }
    let hostname = o
        .hostname_override
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_lowercase())
                .unwrap_or_default()
        });
    proxy::run(proxy::Config {
        api: o.api,
        hostname,
        cluster_cidr: o.cluster_cidr,
        nodeport_addresses: o.nodeport_addresses,
        healthz_bind_address: o.healthz_bind_address,
        metrics_bind_address: o.metrics_bind_address,
        sync_period: o.sync_period,
        min_sync_period: o.min_sync_period,
        configure_pod_routes: o.configure_pod_routes,
    })
    .await
}
