//! The watch cache: every object under the key prefix, kept in memory from one
//! store watch, plus a bounded history of events. It serves LIST with
//! resourceVersion="0" (or not older than N) and every WATCH, so that
//! thousands of watchers cost one store watch.
//!
//! A watch from a revision older than the history gets `410 Gone` ("too old
//! resource version"), as upstream. When the store watch breaks, the cache
//! re-lists and closes every open watch, whose clients then resume (or get 410).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, watch};

use crate::error::{ApiError, ApiResult};
use crate::storage::{EventKind, Store, StoreError};

mod object;
pub use object::{stamp_resource_version, CachedObject};

/// One change, with the object after it (for deletes: the last state, with
/// the delete's revision) and before it.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventKind,
    pub key: String,
    pub object: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
    pub revision: i64,
}

impl CacheEvent {
    pub fn new(
        kind: EventKind,
        key: String,
        object: Arc<CachedObject>,
        prev: Option<Arc<CachedObject>>,
        revision: i64,
    ) -> Self {
        Self {
            kind,
            key,
            object,
            prev,
            revision,
        }
    }
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Every event with a revision above this one is in `history`.
    oldest: i64,
    revision: i64,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

pub struct WatchCache {
    state: Mutex<State>,
    capacity: usize,
    revision: watch::Sender<i64>,
}

/// A started watch: the events to replay, then the live ones.
pub struct Subscription {
    pub replay: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    /// The revision the subscription starts after.
    pub revision: i64,
}

/// How long a read waits for the cache to reach a requested revision.
const WAIT_FOR_REVISION: Duration = Duration::from_secs(3);

fn decode(key: &str, bytes: &[u8], rv: i64) -> Option<CachedObject> {
    match CachedObject::from_stored(bytes, rv) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::error!(key, error = %e, "undecodable object in storage; skipped");
            None
        }
    }
}

/// A store event in the cache's form, for watches served from the store
/// (those older than the cache's history). `None` for an event that cannot be
/// decoded, or a delete whose previous value the store no longer has.
pub fn from_store_event(ev: &crate::storage::WatchEvent) -> Option<CacheEvent> {
    let prev = ev
        .prev_value
        .as_ref()
        .and_then(|p| decode(&ev.key, p, ev.revision))
        .map(Arc::new);
    let object = match ev.kind {
        EventKind::Deleted => Arc::new(prev.as_ref()?.with_revision(ev.revision)),
        _ => Arc::new(decode(&ev.key, &ev.value, ev.revision)?),
    };
    Some(CacheEvent::new(
        ev.kind,
        ev.key.clone(),
        object,
        prev,
        ev.revision,
    ))
}

impl WatchCache {
    /// Load everything under `prefix` and follow the store from there.
    pub async fn start(
        store: Arc<dyn Store>,
        prefix: String,
        capacity: usize,
    ) -> ApiResult<Arc<Self>> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        let (revision, _) = watch::channel(0);
        let cache = Arc::new(Self {
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest: 0,
                revision: 0,
                tx,
            }),
            capacity: capacity.max(1),
            revision,
        });
        let rev = cache.reload(&*store, &prefix).await?;
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            let mut from = rev + 1;
            loop {
                let Some(cache) = weak.upgrade() else { return };
                match cache.follow(&*store, &prefix, from).await {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "watch cache lost its store watch"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                match cache.reload(&*store, &prefix).await {
                    Ok(r) => from = r + 1,
                    Err(e) => tracing::warn!(error = %e, "watch cache reload failed"),
                }
            }
        });
        Ok(cache)
    }

    /// Replace the whole state with a fresh list; closes every open watch.
    async fn reload(&self, store: &dyn Store, prefix: &str) -> ApiResult<i64> {
        let list = store.list(prefix, None, None, None).await?;
        let objects = list
            .items
            .iter()
            .filter_map(|kv| {
                Some((
                    kv.key.clone(),
                    Arc::new(decode(&kv.key, &kv.value, kv.mod_revision)?),
                ))
            })
            .collect();
        let (tx, _) = broadcast::channel(self.capacity.max(16));
        let mut st = self.state.lock().expect("watch cache lock");
        st.objects = objects;
        st.history.clear();
        st.oldest = list.revision;
        st.revision = list.revision;
        // Dropping the old sender ends every live subscription.
        st.tx = tx;
        drop(st);
        self.revision.send_replace(list.revision);
        Ok(list.revision)
    }

    async fn follow(&self, store: &dyn Store, prefix: &str, from: i64) -> Result<(), StoreError> {
        let mut events = store.watch(prefix, from).await?;
        while let Some(ev) = events.next().await {
            let ev = ev?;
            self.apply(ev);
        }
        Err(StoreError::Unavailable("store watch ended".into()))
    }

    fn apply(&self, ev: crate::storage::WatchEvent) {
        let mut st = self.state.lock().expect("watch cache lock");
        if ev.revision < st.revision {
            return; // already part of the state (a replay overlapping the list)
        }
        let prev = st.objects.get(&ev.key).cloned();
        let object = match ev.kind {
            EventKind::Deleted => {
                let Some(p) = prev.as_ref() else { return };
                let last = p.with_revision(ev.revision);
                st.objects.remove(&ev.key);
                Arc::new(last)
            }
            _ => {
                let Some(obj) = decode(&ev.key, &ev.value, ev.revision) else {
                    return;
                };
                let obj = Arc::new(obj);
                st.objects.insert(ev.key.clone(), obj.clone());
                obj
            }
        };
        let kind = match (ev.kind, &prev) {
            (EventKind::Deleted, _) => EventKind::Deleted,
            (_, None) => EventKind::Created,
            (_, Some(_)) => EventKind::Modified,
        };
        let event = Arc::new(CacheEvent::new(kind, ev.key, object, prev, ev.revision));
        st.revision = st.revision.max(ev.revision);
        st.history.push_back(event.clone());
        while st.history.len() > self.capacity {
            if let Some(old) = st.history.pop_front() {
                st.oldest = old.revision;
            }
        }
        let _ = st.tx.send(event);
        let rev = st.revision;
        drop(st);
        self.revision.send_replace(rev);
    }

    /// The cache's current revision.
    pub fn revision(&self) -> i64 {
        *self.revision.borrow()
    }

    /// Wait until the cache has seen revision `rv` (504 after a few seconds,
    /// as upstream's "Too large resource version").
    pub async fn wait_for(&self, rv: i64) -> ApiResult<()> {
        let mut rx = self.revision.subscribe();
        let wait = async move { rx.wait_for(|r| *r >= rv).await.map(|_| ()) };
        match tokio::time::timeout(WAIT_FOR_REVISION, wait).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ApiError::timeout(format!(
                "Too large resource version: {rv}, current: {}",
                self.revision()
            ))),
        }
    }

    /// Every object under `prefix`, at the cache's current revision.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<CachedObject>>, i64) {
        let st = self.state.lock().expect("watch cache lock");
        let items = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.revision)
    }

    /// One object by key, from the cache.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state
            .lock()
            .expect("watch cache lock")
            .objects
            .get(key)
            .cloned()
    }

    /// Start a watch of `prefix` after revision `from`. With `None`, the
    /// watch starts at the current revision and the replay holds a synthetic
    /// `Created` event per current object (upstream's initial ADDED events).
    pub fn subscribe(&self, prefix: &str, from: Option<i64>) -> ApiResult<Subscription> {
        let st = self.state.lock().expect("watch cache lock");
        match from {
            None => {
                let replay = st
                    .objects
                    .range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| {
                        Arc::new(CacheEvent::new(
                            EventKind::Created,
                            k.clone(),
                            v.clone(),
                            None,
                            v.revision(),
                        ))
                    })
                    .collect();
                Ok(Subscription {
                    replay,
                    live: st.tx.subscribe(),
                    revision: st.revision,
                })
            }
            Some(rv) => {
                if rv < st.oldest {
                    return Err(ApiError::too_old(rv, st.oldest + 1));
                }
                let replay = st
                    .history
                    .iter()
                    .filter(|e| e.revision > rv && e.key.starts_with(prefix))
                    .cloned()
                    .collect();
                Ok(Subscription {
                    replay,
                    live: st.tx.subscribe(),
                    revision: rv.max(st.revision),
                })
            }
        }
    }
}
