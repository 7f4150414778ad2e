//! kube-scheduler: watches pods and nodes, places every pending pod of the
//! default scheduler on a node that fits it (filters and scores of upstream's
//! default profile) and binds it with POST pods/NAME/binding.
//!
//! The pieces: [`informers`] (kube-rs watchers feeding messages), [`cache`]
//! (nodes with the pods bound or assumed to them), [`queue`] (active, backoff
//! and unschedulable pods), [`algorithm`] with its [`plugins`], and the loop
//! in [`scheduler`] tying them together.

pub mod algorithm;
pub mod binder;
pub mod cache;
pub mod events;
pub mod fit_error;
pub mod informers;
pub mod metrics;
pub mod node_info;
pub mod options;
pub mod plugins;
pub mod pod_info;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod selectors;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use component_base::leader::{self, LeaderElectionFlags};
use component_base::prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use crate::informers::Msg;
use crate::metrics::Metrics;
use crate::queue::Backoff;
use crate::scheduler::{LoopConfig, Scheduler};

pub use options::Options;

/// Bindings in flight at once.
pub const DEFAULT_MAX_CONCURRENT_BINDINGS: usize = 256;
/// Messages from the watchers waiting for the loop (back-pressure beyond).
const MESSAGE_QUEUE: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub api: component_base::ClientFlags,
    pub bind_address: IpAddr,
    /// 0: no /healthz and /metrics server.
    pub secure_port: u16,
    pub leader_election: LeaderElectionFlags,
    pub percentage_of_nodes_to_score: u32,
    pub backoff: Backoff,
    pub max_concurrent_bindings: usize,
}

/// Run until the leader lease is lost (an error, so the process exits and
/// restarts as upstream's does) or SIGTERM/SIGINT (the lease is released).
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = config.api.client().await?;
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    if config.secure_port != 0 {
        let addr = SocketAddr::new(config.bind_address, config.secure_port);
        let bound = component_base::serve_health(addr, registry).await?;
        tracing::info!(address = %bound, "serving /healthz and /metrics");
    }
    let (tx, rx) = mpsc::channel(MESSAGE_QUEUE);
    informers::spawn(client.clone(), tx.clone());
    let (release_tx, release_rx) = oneshot::channel();
    let leader_task = tokio::spawn(lead(
        client.clone(),
        config.leader_election.clone(),
        tx.clone(),
        release_rx,
    ));
    let recorder = events::Recorder::spawn(client.clone(), metrics.clone());
    let scheduler = Scheduler::new(
        client,
        LoopConfig {
            percentage_of_nodes_to_score: config.percentage_of_nodes_to_score,
            backoff: config.backoff,
            max_concurrent_bindings: config.max_concurrent_bindings.max(1),
        },
        tx,
        recorder,
        metrics,
    );
    tokio::select! {
        result = scheduler.run(rx) => result.context("scheduling loop stopped"),
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            let _ = release_tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), leader_task).await;
            Ok(())
        }
    }
}

/// Acquire the leader lease, report it, and report its loss; on shutdown,
/// release it so that another replica takes over at once.
async fn lead(
    client: kube::Client,
    flags: LeaderElectionFlags,
    tx: mpsc::Sender<Msg>,
    release: oneshot::Receiver<()>,
) {
    let mut leadership = match leader::acquire(client, &flags, "kube-scheduler").await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "leader election failed");
            let _ = tx.send(Msg::LostLeadership).await;
            return;
        }
    };
    let _ = tx.send(Msg::Leading).await;
    tokio::select! {
        _ = leadership.lost() => {
            let _ = tx.send(Msg::LostLeadership).await;
        }
        _ = release => leadership.release().await,
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
