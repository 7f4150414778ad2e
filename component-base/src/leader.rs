//! Leader election on a coordination.k8s.io/v1 Lease, as upstream's
//! client-go does it: one holder at a time, renewed every retry period; a
//! holder that cannot renew within the renew deadline gives up (and the
//! component exits), and a lease not renewed for its duration — timed on the
//! local clock since the record last changed, so clock skew does not matter —
//! may be taken over.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::duration::parse_duration;

/// Upstream's leader-election flags.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderElectionFlags {
    /// Elect a leader among several replicas before doing any work.
    #[arg(long = "leader-elect", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long a non-leader waits after the last observed renewal before taking over.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before giving up.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// Pause between attempts to acquire or renew.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    pub resource_namespace: String,
    /// Lease name (default: the component's name).
    #[arg(long = "leader-elect-resource-name")]
    pub resource_name: Option<String>,
}

impl LeaderElectionFlags {
    /// Flags for tests and benchmarks: election on, with short periods.
    pub fn fast(name: &str) -> Self {
        Self {
            leader_elect: true,
            lease_duration: Duration::from_secs(2),
            renew_deadline: Duration::from_millis(1500),
            retry_period: Duration::from_millis(300),
            resource_namespace: "kube-system".into(),
            resource_name: Some(name.into()),
        }
    }
}

/// Held leadership. Dropping it stops renewing (the lease then expires).
pub struct Leadership {
    lost: Option<oneshot::Receiver<()>>,
    renewer: Option<JoinHandle<()>>,
    elector: Option<Elector>,
}

impl Leadership {
    /// Resolves when leadership is lost; never, when election is off.
    pub async fn lost(&mut self) {
        match self.lost.as_mut() {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    }

    /// Give the lease up at once (graceful shutdown), so that another
    /// replica takes over without waiting for the lease to expire.
    pub async fn release(mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
        if let Some(elector) = self.elector.take() {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "could not release the leader lease");
            }
        }
    }

    /// This process's identity in the lease (None when election is off).
    pub fn identity(&self) -> Option<&str> {
        self.elector.as_ref().map(|e| e.identity.as_str())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
    }
}

/// Block until this process leads (at once when `--leader-elect=false`),
/// then keep renewing in the background.
pub async fn acquire(
    client: Client,
    flags: &LeaderElectionFlags,
    default_name: &str,
) -> anyhow::Result<Leadership> {
    if !flags.leader_elect {
        return Ok(Leadership {
            lost: None,
            renewer: None,
            elector: None,
        });
    }
    let name = flags
        .resource_name
        .clone()
        .unwrap_or_else(|| default_name.to_string());
    let mut elector = Elector {
        api: Api::namespaced(client, &flags.resource_namespace),
        name,
        identity: identity(),
        flags: flags.clone(),
        observed: None,
    };
    tracing::info!(lease = %elector.name, identity = %elector.identity, "attempting to acquire leader lease");
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
        }
        tokio::time::sleep(jittered(flags.retry_period)).await;
    }
    tracing::info!(lease = %elector.name, identity = %elector.identity, "became leader");
    let (tx, rx) = oneshot::channel();
    let for_release = Elector {
        api: elector.api.clone(),
        name: elector.name.clone(),
        identity: elector.identity.clone(),
        flags: flags.clone(),
        observed: None,
    };
    let renewer = tokio::spawn(async move {
        elector.keep_renewing().await;
        let _ = tx.send(());
    });
    Ok(Leadership {
        lost: Some(rx),
        renewer: Some(renewer),
        elector: Some(for_release),
    })
}

/// What identifies one renewal of a lease: its holder and renew time.
type LeaseRecord = (Option<String>, Option<Timestamp>);

struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    flags: LeaderElectionFlags,
    /// The lease record last seen (holder, renew time) and when it was first
    /// seen locally.
    observed: Option<(LeaseRecord, Instant)>,
}

impl Elector {
    /// Renew every retry period; return when a renewal could not be made
    /// within the renew deadline.
    async fn keep_renewing(&mut self) {
        loop {
            tokio::time::sleep(self.flags.retry_period).await;
            let deadline = Instant::now() + self.flags.renew_deadline;
            loop {
                let attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
                match attempt {
                    Ok(Ok(true)) => break,
                    Ok(Ok(false)) => {
                        tracing::error!(lease = %self.name, "leader lease taken by another holder");
                        return;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "failed to renew leader lease"),
                    Err(_) => {}
                }
                if Instant::now() >= deadline {
                    tracing::error!(lease = %self.name, "leader lease not renewed within the renew deadline");
                    return;
                }
                tokio::time::sleep(self.flags.retry_period.min(deadline - Instant::now())).await;
            }
        }
    }

    /// One attempt: true when this process holds the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let duration_secs = self.flags.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (holder.clone(), spec.renew_time.as_ref().map(|t| t.0));
        let seen_at = match &self.observed {
            Some((r, at)) if *r == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record, at));
                at
            }
        };
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if let (Some(_), false) = (&holder, mine) {
            let held_for = spec
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or(self.flags.lease_duration);
            if seen_at.elapsed() < held_for {
                return Ok(false);
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: if mine {
                spec.acquire_time
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if mine { transitions } else { transitions + 1 }),
            ..spec
        });
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

/// `<hostname>_<random>`, as upstream's components name themselves.
fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// Up to 20% longer, so that replicas do not retry in lockstep.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}
