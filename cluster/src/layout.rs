//! Where a cluster made by `cluster up` keeps its things, all under one data
//! directory: the store, logs, PID files, images, each node's runtime, and
//! the kubeconfig.

use std::path::PathBuf;

/// The default data directory of `cluster up`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/mini-kubernetes";

#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The components' kubeconfigs (one identity each).
    pub fn kubeconfigs(&self) -> PathBuf {
        self.dir.join("kubeconfigs")
    }

    pub fn component_kubeconfig(&self, component: &str) -> PathBuf {
        self.kubeconfigs().join(format!("{component}.conf"))
    }

    /// The cluster's CA and certificates.
    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn log(&self, component: &str) -> PathBuf {
        self.logs().join(format!("{component}.log"))
    }

    pub fn pids(&self) -> PathBuf {
        self.dir.join("pids")
    }

    /// The embedded store's directory (`kube-apiserver --data-dir`).
    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }

    pub fn images(&self) -> PathBuf {
        self.dir.join("images")
    }

    pub fn node(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }

    pub fn nodes(&self) -> PathBuf {
        self.dir.join("nodes")
    }

    /// A node's containerd directory (root, state, socket). Kept short: the
    /// socket path must fit a unix socket address.
    pub fn containerd(&self, node: &str) -> PathBuf {
        self.node(node).join("ctd")
    }

    pub fn kubelet(&self, node: &str) -> PathBuf {
        self.node(node).join("kubelet")
    }

    pub fn cni_conf(&self, node: &str) -> PathBuf {
        self.node(node).join("cni")
    }
}
