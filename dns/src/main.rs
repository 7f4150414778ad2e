//! `kube-dns`: flags -> [`dns::Config`] -> run.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "kube-dns",
    about = "DNS for the cluster domain: Services, their endpoints and pods, from the API."
)]
struct Options {
    #[command(flatten)]
    api: component_base::ClientFlags,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Where to answer DNS, over UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:53")]
    dns_bind_address: SocketAddr,
    /// Nameservers for names outside the cluster domain, comma-separated
    /// (`IP` or `IP:port`). None: such names are REFUSED.
    #[arg(long, value_delimiter = ',')]
    upstream_nameservers: Vec<String>,
    /// /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8081")]
    healthz_bind_address: SocketAddr,
    /// Seconds an answer may be cached (also the SOA's negative-caching TTL).
    #[arg(long, default_value_t = 30)]
    ttl: u32,
}

/// `IP` (port 53) or `IP:port`.
fn nameserver(text: &str) -> anyhow::Result<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .with_context(|| format!("--upstream-nameservers: {text:?} is not IP or IP:port"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // hickory-server logs every query at info; keep that at debug level
    // unless RUST_LOG asks for hickory by name.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    if !filter.contains("hickory") {
        std::env::set_var("RUST_LOG", format!("{filter},hickory_server=warn"));
    }
    component_base::init_logging();
    let o = Options::parse();
    let upstream_nameservers = o
        .upstream_nameservers
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| nameserver(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    dns::run(dns::Config {
        api: o.api,
        domain: o.cluster_domain,
        dns_bind_address: o.dns_bind_address,
        healthz_bind_address: o.healthz_bind_address,
        upstream_nameservers,
        ttl: o.ttl,
    })
    .await
}
