//! The processes under test: a fresh etcd and the kube-apiserver built beside
//! this benchmark (the e2e harness's), both on free loopback ports.

use std::path::PathBuf;

use anyhow::{Context, Result};
use e2e_tests::apiserver::ApiServerProcess;
use e2e_tests::etcd::{find_on_path, EtcdProcess};

/// etcd plus one kube-apiserver; dropping it kills both (by PID).
pub struct Cluster {
    pub apiserver: ApiServerProcess,
    pub etcd: EtcdProcess,
}

impl Cluster {
    /// etcd always runs (the raw-etcd comparison needs it); the apiserver
    /// stores in it, or with `embedded` in its own embedded store.
    pub fn start(embedded: bool) -> Result<Cluster> {
        let etcd = EtcdProcess::start().context("starting etcd")?;
        let apiserver = if embedded {
            ApiServerProcess::start_embedded(&[])
        } else {
            ApiServerProcess::start(&etcd.endpoints(), &[])
        }
        .context("starting kube-apiserver")?;
        Ok(Cluster { apiserver, etcd })
    }
}

/// The etcd binary the harness runs (the first `etcd` on PATH), for its version.
pub fn etcd_binary() -> PathBuf {
    find_on_path("etcd").unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
}
