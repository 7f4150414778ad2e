//! kubelet: the node agent of mini-kubernetes. Registers its Node, keeps a
//! Lease, watches the pods bound to it and runs them as real containers
//! through CRI v1 (containerd + runc), reporting their status; serves
//! container logs on its own port. `--runtime=fake` is a hollow kubelet
//! for scale benchmarks.

pub mod backoff;
pub mod cgroups;
pub mod config;
pub mod cri;
pub mod env;
pub mod error;
pub mod exec;
pub mod fake;
pub mod images;
pub mod kubelet;
pub mod labels;
pub mod logs;
pub mod node;
pub mod pod_worker;
pub mod probes;
pub mod resources;
pub mod runtime_config;
pub mod server;
pub mod server_auth;
pub mod status;
pub mod volumes;

pub use config::{Config, KubeletFlags, RuntimeMode};
pub use error::{Error, Result};
pub use kubelet::run;
