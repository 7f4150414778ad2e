//! A shared informer, as client-go's: one kube-runtime `watcher` (list, then
//! watch, re-listing with backoff after errors) feeding a kube-runtime
//! reflector store, plus add/update/delete notifications to the handlers
//! that controllers register before it starts. Handlers only enqueue keys;
//! the work happens in the controllers' workers, which read the store.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// What changed in the store.
pub enum Change<'a, K> {
    Added(&'a K),
    Updated { old: &'a K, new: &'a K },
    Deleted(&'a K),
}

type Handler<K> = Box<dyn Fn(&Change<'_, K>) + Send + Sync>;

/// A watched resource's cache and its change handlers.
pub struct Informer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    name: String,
    api: Api<K>,
    config: watcher::Config,
    dyntype: K::DynamicType,
    store: Store<K>,
    writer: Mutex<Option<reflector::store::Writer<K>>>,
    handlers: Mutex<Vec<Arc<Handler<K>>>>,
    /// True once the first list is in the store. (kube-runtime's
    /// `Store::wait_until_ready` wakes only one of several waiters.)
    synced: tokio::sync::watch::Sender<bool>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync + Default,
{
    pub fn new(name: &str, api: Api<K>, config: watcher::Config) -> Arc<Self> {
        Self::new_with(name, api, config, K::DynamicType::default())
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// An informer for a resource known only at run time (e.g. from discovery).
    pub fn new_with(
        name: &str,
        api: Api<K>,
        config: watcher::Config,
        dyntype: K::DynamicType,
    ) -> Arc<Self> {
        let writer = reflector::store::Writer::new(dyntype.clone());
        Arc::new(Self {
            name: name.to_string(),
            api,
            config,
            store: writer.as_reader(),
            dyntype,
            writer: Mutex::new(Some(writer)),
            handlers: Mutex::new(Vec::new()),
            synced: tokio::sync::watch::channel(false).0,
        })
    }

    /// Register a change handler; handlers added after `start` still see
    /// every later change (but not the objects already in the store).
    pub fn add_handler(&self, handler: impl Fn(&Change<'_, K>) + Send + Sync + 'static) {
        self.lock_handlers().push(Arc::new(Box::new(handler)));
    }

    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Wait until the first list has been loaded into the store.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        // The sender lives as long as the informer.
        let _ = rx.wait_for(|synced| *synced).await;
    }

    /// Start watching (once; later calls do nothing).
    pub fn start(self: &Arc<Self>) {
        let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move { this.run(writer).await });
    }

    fn lock_handlers(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Handler<K>>>> {
        self.handlers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, change: Change<'_, K>) {
        let handlers: Vec<Arc<Handler<K>>> = self.lock_handlers().clone();
        for h in handlers {
            h(&change);
        }
    }

    fn key(&self, obj: &K) -> ObjectRef<K> {
        ObjectRef::from_obj_with(obj, self.dyntype.clone())
    }

    async fn run(self: Arc<Self>, mut writer: reflector::store::Writer<K>) {
        let mut stream = watcher(self.api.clone(), self.config.clone())
            .default_backoff()
            .boxed();
        // During a (re)list: the objects listed so far, and the changes to
        // announce once the new list replaces the store.
        let mut listed: HashSet<ObjectRef<K>> = HashSet::new();
        let mut pending: Vec<(Option<Arc<K>>, K)> = Vec::new();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(informer = %self.name, error = %e, "watch failed; retrying with backoff");
                    continue;
                }
            };
            match &event {
                watcher::Event::Apply(obj) => {
                    let old = self.store.get(&self.key(obj));
                    writer.apply_watcher_event(&event);
                    match old {
                        Some(old) => self.notify(Change::Updated {
                            old: &old,
                            new: obj,
                        }),
                        None => self.notify(Change::Added(obj)),
                    }
                }
                watcher::Event::Delete(obj) => {
                    writer.apply_watcher_event(&event);
                    self.notify(Change::Deleted(obj));
                }
                watcher::Event::Init => {
                    listed.clear();
                    pending.clear();
                    writer.apply_watcher_event(&event);
                }
                watcher::Event::InitApply(obj) => {
                    let key = self.key(obj);
                    let old = self.store.get(&key);
                    listed.insert(key);
                    let unchanged = old.as_ref().is_some_and(|o| {
                        o.meta().resource_version.is_some()
                            && o.meta().resource_version == obj.meta().resource_version
                    });
                    if !unchanged {
                        pending.push((old, obj.clone()));
                    }
                    writer.apply_watcher_event(&event);
                }
                watcher::Event::InitDone => {
                    let before = self.store.state();
                    writer.apply_watcher_event(&event);
                    for (old, new) in pending.drain(..) {
                        match old {
                            Some(old) => self.notify(Change::Updated {
                                old: &old,
                                new: &new,
                            }),
                            None => self.notify(Change::Added(&new)),
                        }
                    }
                    for gone in before {
                        if !listed.contains(&self.key(&gone)) {
                            self.notify(Change::Deleted(&gone));
                        }
                    }
                    listed.clear();
                    self.synced.send_replace(true);
                    tracing::debug!(informer = %self.name, objects = self.store.len(), "listed");
                }
            }
        }
    }
}

/// `namespace/name` (or `name` for cluster-scoped objects), as client-go's
/// MetaNamespaceKeyFunc.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Split a key made by `key_of`.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// The cached object with this key.
pub fn get_by_key<K>(store: &Store<K>, key: &str) -> Option<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    let (ns, name) = split_key(key);
    let mut r = ObjectRef::<K>::new(name);
    if let Some(ns) = ns {
        r = r.within(ns);
    }
    store.get(&r)
}
