//! The kubelet: shared state and `run`, which starts everything.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use component_base::prometheus_client::metrics::counter::Counter;
use component_base::prometheus_client::metrics::gauge::Gauge;
use component_base::prometheus_client::registry::Registry;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;
use crate::config::{Config, RuntimeMode};
use crate::cri::Cri;
use crate::error::{Error, Result};
use crate::labels;
use crate::node::{self, Machine, NodeFacts, RuntimeInfo, StatusReporter};
use crate::pod_worker::{self, PodUpdate};
use crate::runtime_config::NodeSettings;

#[derive(Default)]
pub struct Metrics {
    pub running_pods: Gauge,
    pub container_starts: Counter,
}

/// What every part of the kubelet shares.
pub struct Kubelet {
    pub config: Config,
    pub client: kube::Client,
    pub cri: Cri,
    pub node: NodeSettings,
    pub machine: Machine,
    pub host_ip: String,
    /// Image IDs that --image-dir provided.
    pub preloaded: HashSet<String>,
    pub pods: Store<Pod>,
    pub backoff: Mutex<Backoff>,
    pub metrics: Metrics,
    /// The server's Webhook authorization answers.
    pub authz_cache: crate::server_auth::DecisionCache,
}

/// Run the kubelet until an unrecoverable error.
pub async fn run(config: Config) -> Result<()> {
    let client = component_base::client(config.kubeconfig.as_deref(), None)
        .await
        .map_err(|e| Error::Config(format!("API client: {e:#}")))?;
    run_with_client(config, client).await
}

pub async fn run_with_client(config: Config, client: kube::Client) -> Result<()> {
    let machine = Machine::detect(&config.root_dir);
    std::fs::create_dir_all(&config.root_dir).map_err(|e| Error::Io {
        context: format!("create --root-dir {}", config.root_dir.display()),
        source: e,
    })?;

    let metrics = Metrics::default();
    let mut registry = Registry::with_prefix("kubelet");
    registry.register(
        "running_pods",
        "Pods with a running sandbox",
        metrics.running_pods.clone(),
    );
    registry.register(
        "container_starts",
        "Containers started",
        metrics.container_starts.clone(),
    );
    let health = component_base::serve_health(
        SocketAddr::new(config.healthz_bind_address, config.healthz_port),
        registry,
    )
    .await
    .map_err(|e| Error::Other(format!("healthz server: {e:#}")))?;
    tracing::info!(%health, "healthz and metrics serving");

    let (runtime, preloaded) = match config.runtime {
        RuntimeMode::Fake => (RuntimeInfo::Fake, HashSet::new()),
        RuntimeMode::Remote => {
            let cri = Cri::new(&config.runtime_endpoint)?;
            let v = cri.wait_ready(Duration::from_secs(60)).await?;
            tracing::info!(
                runtime = v.runtime_name,
                version = v.runtime_version,
                api = v.runtime_api_version,
                "container runtime ready"
            );
            let preloaded = match &config.image_dir {
                Some(dir) => crate::images::import_dir(&cri, &config.ctr_path, dir).await?,
                None => HashSet::new(),
            };
            (RuntimeInfo::Remote(Box::new(cri)), preloaded)
        }
    };
    let cri = match &runtime {
        RuntimeInfo::Remote(c) => (**c).clone(),
        // Never called in fake mode; a lazy channel connects on first use only.
        RuntimeInfo::Fake => Cri::new(&config.runtime_endpoint)?,
    };

    // Pods and services, watched through reflectors.
    let (pods_reader, pods_writer) = reflector::store::<Pod>();

    let node = NodeSettings {
        root_dir: config.root_dir.clone(),
        cgroup_root: config.cgroup_root.clone(),
        cluster_dns: config.cluster_dns.iter().map(|ip| ip.to_string()).collect(),
        cluster_domain: config.cluster_domain.clone(),
        node_name: config.node_name.clone(),
        memory_capacity: machine.memory_bytes,
    };
    let kl = Arc::new(Kubelet {
        host_ip: config.node_ip.to_string(),
        config,
        client,
        cri,
        node,
        machine,
        preloaded,
        pods: pods_reader,
        backoff: Mutex::new(Backoff::default()),
        metrics,
        authz_cache: Default::default(),
    });

    let server_addr = crate::server::serve(kl.clone()).await?;
    tracing::info!(%server_addr, "kubelet server listening");

    let node_obj = node::register(&kl.client, &kl.config.node_name).await?;
    tokio::spawn(node::lease_loop(
        kl.client.clone(),
        kl.config.node_name.clone(),
        node_obj.metadata.uid.clone(),
    ));
    tokio::spawn(status_loop(kl.clone(), runtime.clone(), server_addr.port()));

    let pods_api: Api<Pod> = Api::all(kl.client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", kl.config.node_name));
    let events = watcher::watcher(pods_api, wc)
        .default_backoff()
        .reflect(pods_writer);
    match runtime {
        RuntimeInfo::Fake => crate::fake::run(kl, events).await,
        RuntimeInfo::Remote(_) => manage_pods(kl, events).await,
    }
}

async fn status_loop(kl: Arc<Kubelet>, runtime: RuntimeInfo, port: u16) {
    let mut reporter = StatusReporter::new();
    let mut pod_cidr_sent: Option<String> = None;
    // Until the node is Ready (runtime up, podCIDR known, CNI configured),
    // look again every second, so a new node is usable at once rather than
    // one status period later.
    let mut wait = Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        if let RuntimeInfo::Remote(cri) = &runtime {
            sync_pod_cidr(&kl, cri, &mut pod_cidr_sent).await;
        }
        let version = runtime.version().await;
        let (ready, why) = runtime.ready().await;
        let facts = NodeFacts {
            node_name: &kl.config.node_name,
            node_ip: &kl.host_ip,
            port,
            max_pods: kl.config.max_pods,
            machine: &kl.machine,
            runtime_version: &version,
            ready,
            not_ready_message: &why,
        };
        let desired = node::desired_status(&facts);
        match reporter
            .report(&kl.client, &kl.config.node_name, desired)
            .await
        {
            Ok(true) => tracing::info!(ready, "node status posted"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "post node status"),
        }
        wait = if ready {
            kl.config.node_status_update_frequency
        } else {
            NOT_READY_RECHECK
        };
    }
}

const NOT_READY_RECHECK: Duration = Duration::from_secs(1);

/// Hand spec.podCIDR (set by node IPAM) to the runtime once it appears, as
/// upstream's kubelet does with UpdateRuntimeConfig.
async fn sync_pod_cidr(kl: &Kubelet, cri: &Cri, sent: &mut Option<String>) {
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(kl.client.clone());
    let cidr = match api.get_opt(&kl.config.node_name).await {
        Ok(n) => n.and_then(|n| n.spec).and_then(|s| s.pod_cidr),
        Err(e) => {
            tracing::debug!(error = %e, "get node");
            return;
        }
    };
    let Some(cidr) = cidr.filter(|c| !c.is_empty()) else {
        return;
    };
    if sent.as_deref() == Some(cidr.as_str()) {
        return;
    }
    match cri.update_pod_cidr(&cidr).await {
        Ok(()) => {
            tracing::info!(pod_cidr = cidr, "pod CIDR handed to the runtime");
            *sent = Some(cidr);
        }
        Err(e) => tracing::warn!(error = %e, "update runtime config"),
    }
}

/// Dispatch watch events to one worker per pod; remove orphan sandboxes
/// after the first full list.
async fn manage_pods<S>(kl: Arc<Kubelet>, events: S) -> Result<()>
where
    S: futures::Stream<Item = Result<Event<Pod>, watcher::Error>>,
{
    let mut events = std::pin::pin!(events);
    let mut workers: HashMap<String, watch::Sender<PodUpdate>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let mut listing: Option<HashSet<String>> = None;
    let mut first_list_done = false;
    loop {
        tokio::select! {
            Some(uid) = done_rx.recv() => {
                if workers.get(&uid).is_some_and(|tx| tx.is_closed()) {
                    workers.remove(&uid);
                }
            }
            ev = events.next() => {
                let Some(ev) = ev else { return Err(Error::Other("pod watch ended".into())) };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::warn!(error = %e, "pod watch");
                        continue;
                    }
                };
                match ev {
                    Event::Init => listing = Some(HashSet::new()),
                    Event::InitApply(pod) | Event::Apply(pod) => {
                        let Some(uid) = pod.metadata.uid.clone() else { continue };
                        if let Some(seen) = listing.as_mut() {
                            seen.insert(uid.clone());
                        }
                        dispatch(&kl, &mut workers, &done_tx, uid, Some(Arc::new(pod)));
                    }
                    Event::Delete(pod) => {
                        if let Some(uid) = pod.metadata.uid.clone() {
                            if let Some(tx) = workers.remove(&uid) {
                                let _ = tx.send(None);
                            }
                        }
                    }
                    Event::InitDone => {
                        let seen = listing.take().unwrap_or_default();
                        let gone: Vec<String> = workers.keys().filter(|u| !seen.contains(*u)).cloned().collect();
                        for uid in gone {
                            if let Some(tx) = workers.remove(&uid) {
                                let _ = tx.send(None);
                            }
                        }
                        if !first_list_done {
                            first_list_done = true;
                            let kl = kl.clone();
                            tokio::spawn(async move {
                                if let Err(e) = remove_orphans(&kl, &seen).await {
                                    tracing::warn!(error = %e, "remove orphan sandboxes");
                                }
                            });
                        }
                    }
                }
                kl.metrics.running_pods.set(workers.len() as i64);
            }
        }
    }
}

fn dispatch(
    kl: &Arc<Kubelet>,
    workers: &mut HashMap<String, watch::Sender<PodUpdate>>,
    done_tx: &mpsc::UnboundedSender<String>,
    uid: String,
    pod: PodUpdate,
) {
    if let Some(tx) = workers.get(&uid) {
        if tx.send(pod.clone()).is_ok() {
            return;
        }
    }
    let (tx, rx) = watch::channel(pod);
    workers.insert(uid.clone(), tx);
    tokio::spawn(pod_worker::run(kl.clone(), uid, rx, done_tx.clone()));
}

/// Sandboxes of pods the API does not know: torn down (kubelet restart
/// after a pod was removed).
async fn remove_orphans(kl: &Kubelet, known: &HashSet<String>) -> Result<()> {
    let sandboxes = kl.cri.list_pod_sandboxes(HashMap::new()).await?;
    let mut done = HashSet::new();
    for s in sandboxes {
        let Some(uid) = s.labels.get(labels::POD_UID).cloned() else {
            continue;
        };
        if known.contains(&uid) || !done.insert(uid.clone()) {
            continue;
        }
        let ns = s
            .labels
            .get(labels::POD_NAMESPACE)
            .cloned()
            .unwrap_or_default();
        let name = s.labels.get(labels::POD_NAME).cloned().unwrap_or_default();
        tracing::info!(pod = format!("{ns}/{name}"), uid, "removing orphan pod");
        pod_worker::kill_pod(&kl.cri, labels::uid_selector(&uid), 2).await?;
        pod_worker::remove_pod_dirs(kl, &ns, &name, &uid);
    }
    Ok(())
}
