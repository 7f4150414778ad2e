//! Command-line configuration, with upstream's flag names.

use std::net::IpAddr;

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "kube-apiserver", about = "The Kubernetes API server")]
pub struct Config {
    /// etcd servers to connect to (scheme://ip:port), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub etcd_servers: Vec<String>,

    /// The prefix of every key in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,

    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// The port for plain HTTP (no authentication yet; TLS comes later).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// The CIDR from which Service cluster IPs are allocated.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,

    /// The port range for NodePort Services, inclusive ("30000-32767").
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// How many events the watch cache keeps for watches that resume from an
    /// older resourceVersion.
    #[arg(long, default_value_t = 10_000)]
    pub watch_cache_size: usize,
}
