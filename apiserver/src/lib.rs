//! kube-apiserver: the Kubernetes API over a [`storage::Store`].
//!
//! Request flow: [`server`] accepts connections and hands every request to
//! [`handler::dispatch`], which parses the path ([`path`]), then runs the one
//! generic resource handler for the kind found in the [`registry`]. Reads of
//! lists and watches come from the [`watch_cache`]; writes go to the store
//! with compare-and-swap on the revision.

pub mod admission;
pub mod allocator;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod codec;
pub mod config;
pub mod discovery;
pub mod error;
pub mod fuzzing;
pub mod handler;
pub mod kubelet_client;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod path;
pub mod protobuf;
pub mod registry;
pub mod selectors;
pub mod server;
pub mod serviceaccount;
pub mod storage;
pub mod strategy;
pub mod table;
pub mod tls;
pub mod version;
pub mod watch_cache;

pub use config::Config;
pub use server::run;
