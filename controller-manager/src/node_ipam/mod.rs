//! Node IPAM, as upstream's range allocator: with --allocate-node-cidrs,
//! every node without spec.podCIDR gets the next free subnet of
//! --cluster-cidr (one per IP family for dual-stack) in spec.podCIDR and
//! spec.podCIDRs. The used set is rebuilt from the nodes at start, a
//! subnet is never given to two nodes, and a deleted node's subnets are
//! released.

pub mod cidr_set;

use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde_json::json;

use crate::events::Recorder;
use crate::informer::{Change, Informer};
use crate::queue::{spawn_workers, WorkQueue};
use crate::{is_not_found, Config, ControllerContext, Error, Result};
pub use cidr_set::{Cidr, CidrError, CidrSet};

/// Nodes whose CIDRs are written at the same time.
const WORKERS: usize = 4;

pub struct RangeAllocator {
    client: Client,
    nodes: Arc<Informer<Node>>,
    /// One set per cluster CIDR (IPv4 and/or IPv6).
    sets: Mutex<Vec<CidrSet>>,
    queue: Arc<WorkQueue<String>>,
    recorder: Recorder,
}

/// The CIDR sets the flags describe (upstream's validation of
/// --cluster-cidr, --node-cidr-mask-size*, --service-cluster-ip-range).
pub fn cidr_sets(config: &Config) -> anyhow::Result<Vec<CidrSet>> {
    let Some(cluster) = config
        .cluster_cidr
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    else {
        bail!("--allocate-node-cidrs needs --cluster-cidr");
    };
    let cidrs: Vec<Cidr> = cluster
        .split(',')
        .map(Cidr::parse)
        .collect::<Result<_, _>>()
        .context("--cluster-cidr")?;
    let dual = match cidrs.as_slice() {
        [_] => false,
        [a, b] if a.is_ipv6() != b.is_ipv6() => true,
        _ => bail!("--cluster-cidr: one CIDR, or one IPv4 and one IPv6 CIDR"),
    };
    if dual && config.node_cidr_mask_size.is_some() {
        bail!("--node-cidr-mask-size cannot be used with a dual-stack --cluster-cidr; use --node-cidr-mask-size-ipv4/-ipv6");
    }
    let services: Vec<Cidr> = config
        .service_cluster_ip_range
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(Cidr::parse)
        .collect::<Result<_, _>>()
        .context("--service-cluster-ip-range")?;
    let mut sets = Vec::new();
    for c in cidrs {
        let mask = match (config.node_cidr_mask_size, c.is_ipv6()) {
            (Some(m), _) => m,
            (None, false) => config.node_cidr_mask_size_ipv4,
            (None, true) => config.node_cidr_mask_size_ipv6,
        };
        let mut set = CidrSet::new(c, mask).with_context(|| format!("--cluster-cidr {c}"))?;
        // Pod subnets must not overlap the Service range.
        for s in services.iter().filter(|s| s.overlaps(&c)) {
            set.occupy(s)?;
        }
        sets.push(set);
    }
    Ok(sets)
}

pub fn start(ctx: &Arc<ControllerContext>) -> anyhow::Result<()> {
    if !ctx.config.allocate_node_cidrs {
        tracing::info!("node IPAM: --allocate-node-cidrs is off; not allocating");
        return Ok(());
    }
    let sets = cidr_sets(&ctx.config)?;
    let a = Arc::new(RangeAllocator {
        client: ctx.client.clone(),
        nodes: ctx.informers.nodes(),
        sets: Mutex::new(sets),
        queue: WorkQueue::new("node_ipam", ctx.queue_metrics.clone()),
        recorder: Recorder::new(ctx.client.clone(), "cidrAllocator"),
    });
    let h = a.clone();
    a.nodes.add_handler(move |change| match change {
        Change::Added(n) | Change::Updated { new: n, .. } => {
            if pod_cidrs(n).is_empty() {
                h.queue.add(n.metadata.name.clone().unwrap_or_default());
            }
        }
        Change::Deleted(n) => h.release(n),
    });
    tokio::spawn(async move {
        a.nodes.wait_synced().await;
        // Rebuild the used set from the nodes as they are.
        for node in a.nodes.store().state() {
            a.occupy(&node);
        }
        tracing::info!("node IPAM (range allocator) started");
        let queue = a.queue.clone();
        spawn_workers(queue, WORKERS, move |name: String| {
            let a = a.clone();
            async move { a.sync(&name).await }
        });
    });
    Ok(())
}

fn pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let list = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    spec.and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect()
}

impl RangeAllocator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CidrSet>> {
        self.sets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn occupy(&self, node: &Node) {
        let mut sets = self.lock();
        for c in pod_cidrs(node) {
            let Ok(cidr) = Cidr::parse(&c) else { continue };
            match sets.iter_mut().find(|s| s.cluster().contains(&cidr)) {
                Some(set) => {
                    let _ = set.occupy(&cidr);
                }
                None => {
                    tracing::warn!(node = ?node.metadata.name, cidr = %cidr, "node's podCIDR is outside --cluster-cidr")
                }
            }
        }
    }

    fn release(&self, node: &Node) {
        let mut sets = self.lock();
        for c in pod_cidrs(node) {
            let Ok(cidr) = Cidr::parse(&c) else { continue };
            if let Some(set) = sets.iter_mut().find(|s| s.cluster().contains(&cidr)) {
                tracing::info!(node = ?node.metadata.name, cidr = %cidr, "releasing pod CIDR");
                let _ = set.release(&cidr);
            }
        }
    }

    async fn sync(&self, name: &str) -> Result<()> {
        let Some(node) = self
            .nodes
            .store()
            .get(&kube::runtime::reflector::ObjectRef::new(name))
        else {
            return Ok(());
        };
        if !pod_cidrs(&node).is_empty() {
            self.occupy(&node);
            return Ok(());
        }
        let allocated: Vec<Cidr> = {
            let mut sets = self.lock();
            let mut got = Vec::new();
            let mut failed = None;
            for set in sets.iter_mut() {
                match set.allocate_next() {
                    Ok(c) => got.push(c),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                for c in &got {
                    if let Some(set) = sets.iter_mut().find(|s| s.cluster().contains(c)) {
                        let _ = set.release(c);
                    }
                }
                drop(sets);
                self.recorder.normal(
                    node.object_ref(&()),
                    "CIDRNotAvailable",
                    format!("Node {name} status is now: CIDRNotAvailable"),
                );
                return Err(Error::Other(format!("node {name}: {e}")));
            }
            got
        };
        let cidrs: Vec<String> = allocated.iter().map(ToString::to_string).collect();
        let patch = json!({"spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}});
        let api: Api<Node> = Api::all(self.client.clone());
        match api
            .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = name, cidrs = ?cidrs, "allocated pod CIDRs");
                Ok(())
            }
            Err(e) => {
                // Not written: give the subnets back.
                let mut sets = self.lock();
                for c in &allocated {
                    if let Some(set) = sets.iter_mut().find(|s| s.cluster().contains(c)) {
                        let _ = set.release(c);
                    }
                }
                drop(sets);
                if is_not_found(&e) {
                    return Ok(());
                }
                self.recorder.warning(
                    node.object_ref(&()),
                    "CIDRAssignmentFailed",
                    format!("Node {name} status is now: CIDRAssignmentFailed"),
                );
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["kube-controller-manager"];
        argv.extend_from_slice(args);
        crate::Options::parse_from(argv).into_config()
    }

    #[test]
    fn flags_make_cidr_sets() {
        let sets = cidr_sets(&config(&[
            "--allocate-node-cidrs",
            "--cluster-cidr=10.244.0.0/16",
        ]))
        .unwrap();
        assert_eq!(sets.len(), 1);
        let mut s = cidr_sets(&config(&[
            "--cluster-cidr=10.0.0.0/8",
            "--service-cluster-ip-range=10.0.0.0/16",
            "--node-cidr-mask-size=16",
        ]))
        .unwrap();
        assert_eq!(s[0].allocate_next().unwrap().to_string(), "10.1.0.0/16");
        let dual = cidr_sets(&config(&["--cluster-cidr=10.244.0.0/16,fd00:10:244::/56"])).unwrap();
        assert_eq!(dual.len(), 2);
        assert!(cidr_sets(&config(&[
            "--cluster-cidr=10.244.0.0/16,fd00::/56",
            "--node-cidr-mask-size=24"
        ]))
        .is_err());
        assert!(cidr_sets(&config(&[])).is_err());
    }
}
