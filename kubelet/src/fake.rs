//! The hollow kubelet (`--runtime=fake`, as kubemark's): every pod bound
//! to the node goes Running at once with a made-up IP and ready
//! containers; deleted pods are removed at once. No containers run. For
//! scale benchmarks of the control plane only.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStatus, Node, Pod, PodCondition, PodIP,
    PodStatus,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::error::{Error, Result};
use crate::kubelet::Kubelet;
use crate::status::now;

/// Made-up pod IPs: inside the node's podCIDR when it has one.
struct FakeIps {
    base: u32,
    size: u32,
    next: u32,
}

impl FakeIps {
    fn new(pod_cidr: Option<&str>) -> Self {
        let parsed = pod_cidr.and_then(|c| {
            let (ip, len) = c.split_once('/')?;
            let ip: Ipv4Addr = ip.parse().ok()?;
            let len: u32 = len.parse().ok()?;
            (len <= 30).then(|| (u32::from(ip), 1u32 << (32 - len)))
        });
        let (base, size) = parsed.unwrap_or((u32::from(Ipv4Addr::new(10, 254, 0, 0)), 1 << 16));
        Self {
            base,
            size,
            next: 2,
        }
    }

    fn take(&mut self) -> String {
        let ip = Ipv4Addr::from(self.base + self.next);
        self.next += 1;
        if self.next >= self.size - 1 {
            self.next = 2;
        }
        ip.to_string()
    }
}

fn running_status(pod: &Pod, ip: &str, host_ip: &str) -> PodStatus {
    let t = now();
    let cond = |type_: &str| PodCondition {
        type_: type_.into(),
        status: "True".into(),
        last_transition_time: Some(t.clone()),
        ..Default::default()
    };
    let statuses = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_id: c.image.clone().unwrap_or_default(),
            container_id: Some(format!("fake://{}", c.name)),
            ready: true,
            started: Some(true),
            restart_count: 0,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(t.clone()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![
            cond("PodScheduled"),
            cond("PodReadyToStartContainers"),
            cond("Initialized"),
            cond("ContainersReady"),
            cond("Ready"),
        ]),
        host_ip: Some(host_ip.into()),
        pod_ip: Some(ip.into()),
        pod_ips: Some(vec![PodIP { ip: ip.into() }]),
        start_time: Some(t),
        container_statuses: Some(statuses),
        qos_class: Some(crate::resources::qos_class(pod).into()),
        ..Default::default()
    }
}

pub async fn run<S>(kl: Arc<Kubelet>, events: S) -> Result<()>
where
    S: futures::Stream<Item = Result<Event<Pod>, watcher::Error>>,
{
    let node = Api::<Node>::all(kl.client.clone())
        .get_opt(&kl.config.node_name)
        .await?;
    let cidr = node.and_then(|n| n.spec).and_then(|s| s.pod_cidr);
    let mut ips = FakeIps::new(cidr.as_deref());
    let mut running: HashMap<String, String> = HashMap::new();
    let mut deleting: HashSet<String> = HashSet::new();
    let mut events = std::pin::pin!(events);
    while let Some(ev) = events.next().await {
        let pod = match ev {
            Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) => p,
            Ok(Event::Delete(p)) => {
                if let Some(uid) = &p.metadata.uid {
                    running.remove(uid);
                    deleting.remove(uid);
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        let (Some(uid), Some(name), Some(ns)) = (
            pod.metadata.uid.clone(),
            pod.metadata.name.clone(),
            pod.metadata.namespace.clone(),
        ) else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(kl.client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            if deleting.insert(uid.clone()) {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                tokio::spawn(async move {
                    if let Err(e) = api.delete(&name, &dp).await {
                        tracing::debug!(error = %e, "delete pod");
                    }
                });
            }
            continue;
        }
        let already = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if already || running.contains_key(&uid) {
            continue;
        }
        let ip = ips.take();
        running.insert(uid.clone(), ip.clone());
        let status = running_status(&pod, &ip, &kl.host_ip);
        let patch = json!({"metadata": {"uid": uid}, "status": status});
        tokio::spawn(async move {
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(pod = name, error = %e, "patch fake pod status");
            }
        });
    }
    Err(Error::Other("pod watch ended".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_ips_stay_in_the_cidr() {
        let mut ips = FakeIps::new(Some("10.244.7.0/30"));
        assert_eq!(ips.take(), "10.244.7.2");
        assert_eq!(ips.take(), "10.244.7.2");
        let mut ips = FakeIps::new(Some("10.244.7.0/24"));
        assert_eq!(ips.take(), "10.244.7.2");
        assert_eq!(ips.take(), "10.244.7.3");
        let mut ips = FakeIps::new(None);
        assert_eq!(ips.take(), "10.254.0.2");
    }
}
