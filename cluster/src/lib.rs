//! Node runtime pieces of the mini Kubernetes, shared by the `cluster` command, the
//! multi-node lab and the end-to-end tests:
//!
//! - [`images`]: offline OCI image tarballs (busybox, pause, nginx) built from this
//!   machine's Debian packages.
//! - [`containerd`]: one containerd per node (its config, its CNI config, start, and a
//!   teardown that leaves nothing behind).
//! - [`netsafety`]: the service and cluster CIDRs routed to a local port-less bridge.
//!
//! - [`up`], [`down`], [`status`]: the `cluster` command's bring-up of a whole cluster
//!   in the background (processes in [`daemon`], paths in [`layout`], checks in
//!   [`preflight`]).
//!
//! See docs/node-runtime.md and docs/cluster.md.

pub mod certs;
pub mod containerd;
pub mod daemon;
pub mod dns_service;
pub mod down;
pub mod images;
pub mod lab;
pub mod layout;
pub mod netsafety;
pub mod preflight;
pub mod rotate;
pub mod status;
pub mod up;

mod command;
mod error;
mod mounts;
mod oci;
mod procfs;
mod teardown;

pub use error::{Error, Result};
pub use images::PAUSE_IMAGE;
