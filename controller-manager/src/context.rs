//! What every controller gets: the API client, the configuration, the
//! metrics and the shared informers (one watch per resource, however many
//! controllers use it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, ReplicationController, Service};
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::informer::Informer;
use crate::metrics::QueueMetrics;
use crate::Config;

/// The namespace of the nodes' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

pub struct ControllerContext {
    pub client: Client,
    pub config: Config,
    pub queue_metrics: QueueMetrics,
    pub informers: Informers,
}

impl ControllerContext {
    pub fn new(client: Client, config: Config, queue_metrics: QueueMetrics) -> Self {
        Self {
            informers: Informers::new(client.clone()),
            client,
            config,
            queue_metrics,
        }
    }
}

/// Informers created on first use and started together by `start_all`
/// (or at once when asked for after that).
pub struct Informers {
    client: Client,
    started: AtomicBool,
    pods: OnceLock<Arc<Informer<Pod>>>,
    replication_controllers: OnceLock<Arc<Informer<ReplicationController>>>,
    services: OnceLock<Arc<Informer<Service>>>,
    endpoints: OnceLock<Arc<Informer<Endpoints>>>,
    nodes: OnceLock<Arc<Informer<Node>>>,
    node_leases: OnceLock<Arc<Informer<Lease>>>,
    namespaces: OnceLock<Arc<Informer<Namespace>>>,
}

macro_rules! informer_accessor {
    ($field:ident, $ty:ty, $api:expr) => {
        pub fn $field(&self) -> Arc<Informer<$ty>> {
            let i = self
                .$field
                .get_or_init(|| {
                    let api: Api<$ty> = $api(self.client.clone());
                    Informer::new(stringify!($field), api, watcher::Config::default())
                })
                .clone();
            if self.started.load(Ordering::SeqCst) {
                i.start();
            }
            i
        }
    };
}

impl Informers {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            started: AtomicBool::new(false),
            pods: OnceLock::new(),
            replication_controllers: OnceLock::new(),
            services: OnceLock::new(),
            endpoints: OnceLock::new(),
            nodes: OnceLock::new(),
            node_leases: OnceLock::new(),
            namespaces: OnceLock::new(),
        }
    }

    informer_accessor!(pods, Pod, Api::all);
    informer_accessor!(replication_controllers, ReplicationController, Api::all);
    informer_accessor!(services, Service, Api::all);
    informer_accessor!(endpoints, Endpoints, Api::all);
    informer_accessor!(nodes, Node, Api::all);
    informer_accessor!(namespaces, Namespace, Api::all);
    informer_accessor!(node_leases, Lease, |c| Api::namespaced(
        c,
        NODE_LEASE_NAMESPACE
    ));

    /// Start every informer created so far (and any created later).
    pub fn start_all(&self) {
        self.started.store(true, Ordering::SeqCst);
        if let Some(i) = self.pods.get() {
            i.start();
        }
        if let Some(i) = self.replication_controllers.get() {
            i.start();
        }
        if let Some(i) = self.services.get() {
            i.start();
        }
        if let Some(i) = self.endpoints.get() {
            i.start();
        }
        if let Some(i) = self.nodes.get() {
            i.start();
        }
        if let Some(i) = self.node_leases.get() {
            i.start();
        }
        if let Some(i) = self.namespaces.get() {
            i.start();
        }
    }
}
