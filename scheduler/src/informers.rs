//! kube-rs watchers on pods, nodes, services and replication controllers.
//! Each runs in its own task, turns objects into the scheduler's compact
//! views there (off the scheduling loop) and hands them over as messages.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, ReplicationController, Service};
use kube::runtime::watcher::{self, watcher, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::node_info::NodeView;
use crate::pod_info::{PodInfo, PodKey};
use crate::selectors::{Kind, Selector};

/// A Service's or ReplicationController's selector.
#[derive(Debug, Clone)]
pub struct SelectorObject {
    pub namespace: String,
    pub name: String,
    pub selector: Option<Selector>,
}

/// Everything the scheduling loop reacts to.
#[derive(Debug)]
pub enum Msg {
    Pod(Event<Arc<PodInfo>>),
    Node(Event<NodeView>),
    Selector(Kind, Event<SelectorObject>),
    /// A binding request finished.
    Bound {
        key: PodKey,
        uid: String,
        node: String,
        result: Result<(), BindError>,
        took: Duration,
    },
    /// This process now leads.
    Leading,
    /// The leader lease was lost: stop.
    LostLeadership,
}

/// Why a binding failed.
#[derive(Debug, Clone)]
pub struct BindError {
    /// The API's status code, when it answered.
    pub code: Option<u16>,
    pub message: String,
}

impl From<kube::Error> for BindError {
    fn from(e: kube::Error) -> Self {
        let code = match &e {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        };
        BindError {
            code,
            message: e.to_string(),
        }
    }
}

/// Pods in a terminal phase free their node's resources, so they are left
/// out (they arrive as deletions), as upstream's scheduler informer does.
const POD_FIELD_SELECTOR: &str = "status.phase!=Succeeded,status.phase!=Failed";

pub fn spawn(client: Client, tx: mpsc::Sender<Msg>) {
    watch(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(POD_FIELD_SELECTOR),
        |p: &Pod| Arc::new(PodInfo::from_pod(p)),
        Msg::Pod,
        tx.clone(),
    );
    watch(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        NodeView::from_node,
        Msg::Node,
        tx.clone(),
    );
    watch(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        |s: &Service| SelectorObject {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: s.metadata.name.clone().unwrap_or_default(),
            selector: s.spec.as_ref().and_then(|s| s.selector.clone()),
        },
        |e| Msg::Selector(Kind::Service, e),
        tx.clone(),
    );
    watch(
        Api::<ReplicationController>::all(client),
        watcher::Config::default(),
        |rc: &ReplicationController| SelectorObject {
            namespace: rc.metadata.namespace.clone().unwrap_or_default(),
            name: rc.metadata.name.clone().unwrap_or_default(),
            selector: rc.spec.as_ref().and_then(|s| s.selector.clone()),
        },
        |e| Msg::Selector(Kind::ReplicationController, e),
        tx,
    );
}

fn watch<K, T>(
    api: Api<K>,
    config: watcher::Config,
    convert: fn(&K) -> T,
    wrap: fn(Event<T>) -> Msg,
    tx: mpsc::Sender<Msg>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
    T: Send + 'static,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    tokio::spawn(async move {
        let mut stream = watcher(api, config).boxed();
        let mut backoff = RetryBackoff::default();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => {
                    backoff.reset();
                    e
                }
                // One bad line in a running watch: the stream goes on, so
                // there is nothing to wait for.
                Err(e @ watcher::Error::WatchFailed(_)) => {
                    tracing::debug!(kind = %kind, error = %e, "watch event skipped");
                    continue;
                }
                // The list or the watch request failed: retry, backing off.
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(kind = %kind, error = %e, retry_in = ?wait, "watch failed");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let event = match event {
                Event::Apply(o) => Event::Apply(convert(&o)),
                Event::Delete(o) => Event::Delete(convert(&o)),
                Event::Init => Event::Init,
                Event::InitApply(o) => Event::InitApply(convert(&o)),
                Event::InitDone => Event::InitDone,
            };
            if tx.send(wrap(event)).await.is_err() {
                return;
            }
        }
    });
}

/// Exponential backoff for failed list/watch requests: 800ms doubling to 30s
/// (kube-rs's default), back to the start after a success.
#[derive(Debug, Default)]
struct RetryBackoff {
    failures: u32,
}

impl RetryBackoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(800).saturating_mul(1 << self.failures.min(6));
        self.failures += 1;
        wait.min(Duration::from_secs(30))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}
