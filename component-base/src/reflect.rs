//! A reflector of every object of one kind, kept current by a watch in the
//! background (with kube-rs's default backoff), calling `on_change` with the
//! store after each change: what kube-proxy and kube-dns both need.

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;

pub fn reflect<K>(api: Api<K>, on_change: impl Fn(&Store<K>) + Send + 'static) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => on_change(&store),
                Err(e) => tracing::warn!("watch {}: {e}", K::plural(&())),
            }
        }
    });
    reader
}
