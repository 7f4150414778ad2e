//! Node runtime pieces of the mini Kubernetes, shared by the `cluster` command, the
//! multi-node lab and the end-to-end tests:
//!
//! - [`images`]: offline OCI image tarballs (busybox, pause, nginx) built from this
//!   machine's Debian packages.
//! - [`containerd`]: one containerd per node (its config, its CNI config, start, and a
//!   teardown that leaves nothing behind).
//! - [`netsafety`]: the service and cluster CIDRs routed to a local port-less bridge.
//!
//! See docs/node-runtime.md.

pub mod containerd;
pub mod images;
pub mod netsafety;

mod command;
mod error;
mod mounts;
mod oci;
mod procfs;
mod teardown;

pub use error::{Error, Result};
pub use images::PAUSE_IMAGE;
