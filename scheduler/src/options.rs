//! kube-scheduler's command line, with upstream's flag names.

use std::net::IpAddr;
use std::time::Duration;

use component_base::leader::LeaderElectionFlags;
use component_base::parse_duration;

use crate::queue::Backoff;
use crate::Config;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "kube-scheduler",
    about = "Assigns pending pods to nodes: filters the nodes a pod fits, scores them, binds it to the best."
)]
pub struct Options {
    #[command(flatten)]
    pub api: component_base::ClientFlags,
    /// Address to serve /healthz and /metrics on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Port for /healthz and /metrics (plain HTTP for now); 0 turns it off.
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,
    #[command(flatten)]
    pub leader_election: LeaderElectionFlags,
    /// How long a pod may stay unschedulable without any cluster change
    /// before it is tried again anyway.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub pod_max_in_unschedulable_pods_duration: Duration,
    /// Stop filtering once this percentage of the nodes fit (0: upstream's
    /// adaptive default, 50% minus 1% per 125 nodes, at least 5% or 100
    /// nodes). Upstream sets this in its configuration file.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub percentage_of_nodes_to_score: u32,
}

impl Options {
    pub fn into_config(self) -> Config {
        Config {
            api: self.api,
            bind_address: self.bind_address,
            secure_port: self.secure_port,
            leader_election: self.leader_election,
            percentage_of_nodes_to_score: self.percentage_of_nodes_to_score,
            backoff: Backoff {
                max_in_unschedulable: self.pod_max_in_unschedulable_pods_duration,
                ..Backoff::default()
            },
            max_concurrent_bindings: crate::DEFAULT_MAX_CONCURRENT_BINDINGS,
        }
    }
}
