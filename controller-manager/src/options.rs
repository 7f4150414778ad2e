//! The command line, with upstream's flag names and defaults.

use std::net::IpAddr;
use std::time::Duration;

use component_base::leader::LeaderElectionFlags;
use component_base::parse_duration;

use crate::Config;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "kube-controller-manager",
    about = "Runs the control loops that move the cluster towards its desired state."
)]
pub struct Options {
    #[command(flatten)]
    pub api: component_base::ClientFlags,
    /// Address to serve /healthz and /metrics on.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Port for /healthz and /metrics (plain HTTP here); 0 turns the server off.
    #[arg(long = "secure-port", default_value_t = 10257)]
    pub secure_port: u16,
    #[command(flatten)]
    pub leader_election: LeaderElectionFlags,
    /// Controllers to run: '*' runs those on by default, 'foo' enables foo,
    /// '-foo' disables foo. Names as upstream (e.g. replicationcontroller-controller,
    /// endpoints-controller, garbage-collector-controller, namespace-controller,
    /// node-lifecycle-controller, taint-eviction-controller, node-ipam-controller,
    /// pod-garbage-collector-controller) or their old aliases (replicationcontroller,
    /// endpoint, garbagecollector, namespace, nodelifecycle, nodeipam, podgc).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// ReplicationControllers synced at the same time.
    #[arg(long = "concurrent-rc-syncs", default_value_t = 5)]
    pub concurrent_rc_syncs: usize,
    /// Services whose Endpoints are synced at the same time.
    #[arg(long = "concurrent-endpoint-syncs", default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    /// Garbage collector workers.
    #[arg(long = "concurrent-gc-syncs", default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    /// Namespaces deleted at the same time.
    #[arg(long = "concurrent-namespace-syncs", default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    /// Give each node a pod CIDR from --cluster-cidr.
    #[arg(long = "allocate-node-cidrs", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,
    /// The pods' CIDR range (one IPv4 and/or one IPv6 range, comma separated).
    #[arg(long = "cluster-cidr")]
    pub cluster_cidr: Option<String>,
    /// The services' CIDR range, kept out of node pod CIDRs if they overlap.
    #[arg(long = "service-cluster-ip-range")]
    pub service_cluster_ip_range: Option<String>,
    /// Node pod CIDR prefix length (single-stack clusters).
    #[arg(long = "node-cidr-mask-size")]
    pub node_cidr_mask_size: Option<u8>,
    #[arg(long = "node-cidr-mask-size-ipv4", default_value_t = 24)]
    pub node_cidr_mask_size_ipv4: u8,
    #[arg(long = "node-cidr-mask-size-ipv6", default_value_t = 64)]
    pub node_cidr_mask_size_ipv6: u8,
    /// How long a node may go without a heartbeat (Lease or status) before it is marked Unknown.
    #[arg(long = "node-monitor-grace-period", default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long = "node-monitor-period", default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Grace for a new node that never posted status.
    #[arg(long = "node-startup-grace-period", default_value = "1m", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Nodes tainted for eviction per second in a healthy zone.
    #[arg(long = "node-eviction-rate", default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// Nodes tainted per second in a partially disrupted large zone.
    #[arg(long = "secondary-node-eviction-rate", default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    /// Zones with more nodes than this are "large" (see --secondary-node-eviction-rate).
    #[arg(long = "large-cluster-size-threshold", default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
    /// Fraction of not-ready nodes (at least 3) that makes a zone partially disrupted.
    #[arg(long = "unhealthy-zone-threshold", default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,
    /// Terminated pods kept before the pod GC deletes the oldest; 0 or less turns that off.
    #[arg(long = "terminated-pod-gc-threshold", default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,
}

impl Options {
    pub fn into_config(self) -> Config {
        Config {
            api: self.api,
            bind_address: self.bind_address,
            secure_port: self.secure_port,
            leader_election: self.leader_election,
            controllers: self.controllers,
            concurrent_rc_syncs: self.concurrent_rc_syncs,
            concurrent_endpoint_syncs: self.concurrent_endpoint_syncs,
            concurrent_gc_syncs: self.concurrent_gc_syncs,
            concurrent_namespace_syncs: self.concurrent_namespace_syncs,
            allocate_node_cidrs: self.allocate_node_cidrs,
            cluster_cidr: self.cluster_cidr,
            service_cluster_ip_range: self.service_cluster_ip_range,
            node_cidr_mask_size: self.node_cidr_mask_size,
            node_cidr_mask_size_ipv4: self.node_cidr_mask_size_ipv4,
            node_cidr_mask_size_ipv6: self.node_cidr_mask_size_ipv6,
            node_monitor_grace_period: self.node_monitor_grace_period,
            node_monitor_period: self.node_monitor_period,
            node_startup_grace_period: self.node_startup_grace_period,
            node_eviction_rate: self.node_eviction_rate,
            secondary_node_eviction_rate: self.secondary_node_eviction_rate,
            large_cluster_size_threshold: self.large_cluster_size_threshold,
            unhealthy_zone_threshold: self.unhealthy_zone_threshold,
            terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
        }
    }
}
