//! The executable contract of [`Store`]: every backend's tests call [`run_all`].
//!
//! Test code: every check panics on a broken promise. Each check works under
//! its own sub-prefix of the caller's prefix, so runs against one store do not
//! see each other's keys. Revisions are global, though, so checks only assert
//! orderings that hold while other writers run, except [`compaction`], which
//! drops history store-wide and therefore runs last.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;

use super::{EventKind, KeyValue, Revision, Store, StoreError, WatchEvent};

/// How long a watch may take to deliver an event that is due.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to listen for events that must not come.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

type Events = BoxStream<'static, super::Result<WatchEvent>>;

/// Runs every check against `store`, under `prefix` (e.g. `/contract-<unique>/`).
pub async fn run_all(store: Arc<dyn Store>, prefix: &str) {
    let prefix = with_slash(prefix);
    let store = store.as_ref();
    eprintln!("store contract: create_and_get");
    create_and_get(store, &format!("{prefix}create/")).await;
    eprintln!("store contract: update_cas");
    update_cas(store, &format!("{prefix}update/")).await;
    eprintln!("store contract: revisions_increase");
    revisions_increase(store, &format!("{prefix}revisions/")).await;
    eprintln!("store contract: delete_with_preconditions");
    delete_with_preconditions(store, &format!("{prefix}delete/")).await;
    eprintln!("store contract: list_order_and_paging");
    list_order_and_paging(store, &format!("{prefix}list/")).await;
    eprintln!("store contract: list_at_old_revision");
    list_at_old_revision(store, &format!("{prefix}history/")).await;
    eprintln!("store contract: watch_replays_then_follows");
    watch_replays_then_follows(store, &format!("{prefix}watch/")).await;
    eprintln!("store contract: watch_sees_only_its_prefix");
    watch_sees_only_its_prefix(store, &format!("{prefix}isolation/")).await;
    eprintln!("store contract: current_revision_follows_writes");
    current_revision_follows_writes(store, &format!("{prefix}current/")).await;
    eprintln!("store contract: compaction");
    compaction(store, &format!("{prefix}compaction/")).await;
}

/// Create only if absent; get returns what was stored, with its revisions.
pub async fn create_and_get(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}a");
    let rev = store.create(&key, b"v1".to_vec()).await.expect("create");
    assert!(rev > 0, "create returned revision {rev}");

    let kv = get_existing(store, &key).await;
    assert_eq!(kv, kv_at(&key, b"v1", rev, rev));

    let again = store.create(&key, b"v2".to_vec()).await;
    assert_eq!(again, Err(StoreError::AlreadyExists(key.clone())));
    assert_eq!(
        get_existing(store, &key).await.value,
        b"v1",
        "failed create wrote"
    );

    let missing = store.get(&format!("{prefix}missing")).await.expect("get");
    assert_eq!(missing, None);
}

/// Update is a compare-and-swap on the key's mod_revision.
pub async fn update_cas(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}a");
    let r1 = store.create(&key, b"v1".to_vec()).await.expect("create");
    let r2 = store
        .update(&key, b"v2".to_vec(), r1)
        .await
        .expect("update at the current revision");
    assert!(r2 > r1, "update revision {r2} not after create {r1}");
    assert_eq!(get_existing(store, &key).await, kv_at(&key, b"v2", r1, r2));

    // A stale revision fails and reports what is there now.
    match store.update(&key, b"v3".to_vec(), r1).await {
        Err(StoreError::Conflict { key: k, current }) => {
            assert_eq!(k, key);
            assert_eq!(current.map(|kv| *kv), Some(kv_at(&key, b"v2", r1, r2)));
        }
        other => panic!("stale update: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        get_existing(store, &key).await.value,
        b"v2",
        "stale update wrote"
    );

    let missing = format!("{prefix}missing");
    for expected in [r1, 0] {
        let result = store.update(&missing, b"x".to_vec(), expected).await;
        assert_eq!(
            result,
            Err(StoreError::NotFound(missing.clone())),
            "update of a missing key at {expected}"
        );
    }
    assert_eq!(
        store.get(&missing).await.expect("get"),
        None,
        "update created"
    );
}

/// Every write gets a revision above all earlier ones.
pub async fn revisions_increase(store: &dyn Store, prefix: &str) {
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    let r1 = store.create(&a, b"1".to_vec()).await.expect("create a");
    let r2 = store.create(&b, b"1".to_vec()).await.expect("create b");
    let r3 = store.update(&a, b"2".to_vec(), r1).await.expect("update a");
    let (r4, _) = store.delete(&b, None).await.expect("delete b");
    let r5 = store.create(&b, b"2".to_vec()).await.expect("re-create b");
    let revisions = [r1, r2, r3, r4, r5];
    assert!(
        revisions.windows(2).all(|pair| pair[0] < pair[1]),
        "revisions not strictly increasing: {revisions:?}"
    );
    let current = store.current_revision().await.expect("current revision");
    assert!(
        current >= r5,
        "current revision {current} below last write {r5}"
    );
    // A re-created key starts a new life.
    assert_eq!(get_existing(store, &b).await.create_revision, r5);
}

/// Delete with and without a revision precondition.
pub async fn delete_with_preconditions(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}a");
    let r1 = store.create(&key, b"v1".to_vec()).await.expect("create");
    let r2 = store
        .update(&key, b"v2".to_vec(), r1)
        .await
        .expect("update");

    match store.delete(&key, Some(r1)).await {
        Err(StoreError::Conflict { key: k, current }) => {
            assert_eq!(k, key);
            assert_eq!(current.map(|kv| *kv), Some(kv_at(&key, b"v2", r1, r2)));
        }
        other => panic!("delete with a stale precondition: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        get_existing(store, &key).await.value,
        b"v2",
        "failed delete deleted"
    );

    let (rd, deleted) = store.delete(&key, Some(r2)).await.expect("delete at r2");
    assert!(rd > r2, "delete revision {rd} not after {r2}");
    assert_eq!(
        deleted,
        kv_at(&key, b"v2", r1, r2),
        "delete returns the old value"
    );
    assert_eq!(store.get(&key).await.expect("get"), None);

    assert_eq!(
        store.delete(&key, None).await,
        Err(StoreError::NotFound(key.clone()))
    );
    assert_eq!(
        store.delete(&key, Some(r2)).await,
        Err(StoreError::NotFound(key.clone()))
    );

    let other = format!("{prefix}b");
    let rb = store.create(&other, b"b".to_vec()).await.expect("create b");
    let (_, deleted) = store
        .delete(&other, None)
        .await
        .expect("unconditional delete");
    assert_eq!(deleted, kv_at(&other, b"b", rb, rb));
}

/// Lists are in key order, stay inside the prefix, and page with start_key.
pub async fn list_order_and_paging(store: &dyn Store, prefix: &str) {
    let names = ["c", "a", "e", "b", "d"];
    let mut last = 0;
    for name in names {
        last = store
            .create(&format!("{prefix}{name}"), name.as_bytes().to_vec())
            .await
            .expect("create");
    }
    // Neighbours that share all but the last byte of the prefix stay out.
    let trimmed = prefix.trim_end_matches('/');
    for outside in [
        trimmed.to_string(),
        format!("{trimmed}0"),
        format!("{trimmed}.x"),
    ] {
        store
            .create(&outside, b"out".to_vec())
            .await
            .expect("create outside");
    }

    let all = store.list(prefix, None, None, None).await.expect("list");
    assert_eq!(keys(&all.items), full(prefix, &["a", "b", "c", "d", "e"]));
    assert!(all
        .items
        .iter()
        .all(|kv| kv.key.strip_prefix(prefix).map(str::as_bytes) == Some(&kv.value[..])));
    assert!(
        all.revision >= last,
        "list revision {} < {last}",
        all.revision
    );
    assert!(!all.more, "an unlimited list has no more");
    assert_remaining(all.remaining, 0);

    let unlimited = store
        .list(prefix, None, None, Some(0))
        .await
        .expect("list 0");
    assert_eq!(unlimited.items.len(), 5, "limit 0 means all");

    // Page through with limit 2 at the first page's revision; a key created
    // meanwhile is not in the later pages.
    let page1 = store
        .list(prefix, None, None, Some(2))
        .await
        .expect("page 1");
    assert_eq!(keys(&page1.items), full(prefix, &["a", "b"]));
    assert!(page1.more);
    assert_remaining(page1.remaining, 3);
    store
        .create(&format!("{prefix}bb"), b"bb".to_vec())
        .await
        .expect("create during paging");

    let page2 = next_page(store, prefix, &page1.items, page1.revision).await;
    assert_eq!(keys(&page2.items), full(prefix, &["c", "d"]));
    assert_eq!(page2.revision, page1.revision);
    assert!(page2.more);
    assert_remaining(page2.remaining, 1);

    let page3 = next_page(store, prefix, &page2.items, page1.revision).await;
    assert_eq!(keys(&page3.items), full(prefix, &["e"]));
    assert!(!page3.more, "last page has no more");
    assert_remaining(page3.remaining, 0);

    let now = store
        .list(prefix, None, None, None)
        .await
        .expect("list now");
    assert_eq!(
        now.items.len(),
        6,
        "the key created during paging is there now"
    );

    let past_end = format!("{prefix}z");
    let empty = store
        .list(prefix, Some(&past_end), None, Some(2))
        .await
        .expect("list past the end");
    assert!(empty.items.is_empty() && !empty.more);

    // A start key before the prefix does not widen the range.
    let before = store
        .list(prefix, Some("\u{1}"), None, None)
        .await
        .expect("list");
    assert_eq!(before.items.len(), 6);
}

/// A list at an older revision sees the data as it was then.
pub async fn list_at_old_revision(store: &dyn Store, prefix: &str) {
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    let r1 = store.create(&a, b"v1".to_vec()).await.expect("create a");
    let r2 = store
        .update(&a, b"v2".to_vec(), r1)
        .await
        .expect("update a");
    let r3 = store.create(&b, b"b".to_vec()).await.expect("create b");
    let (r4, _) = store.delete(&a, None).await.expect("delete a");

    let at = |rev: Revision| async move {
        let result = store.list(prefix, None, Some(rev), None).await;
        let result = result.unwrap_or_else(|err| panic!("list at {rev}: {err}"));
        assert_eq!(result.revision, rev, "list served at another revision");
        result.items
    };
    assert_eq!(at(r1).await, vec![kv_at(&a, b"v1", r1, r1)]);
    assert_eq!(at(r2).await, vec![kv_at(&a, b"v2", r1, r2)]);
    assert_eq!(
        at(r3).await,
        vec![kv_at(&a, b"v2", r1, r2), kv_at(&b, b"b", r3, r3)]
    );
    assert_eq!(at(r4).await, vec![kv_at(&b, b"b", r3, r3)]);

    let future = store.current_revision().await.expect("current") + 1000;
    assert_eq!(
        store.list(prefix, None, Some(future), None).await,
        Err(StoreError::FutureRevision(future))
    );
}

/// A watch replays history from its revision, then follows live writes.
pub async fn watch_replays_then_follows(store: &dyn Store, prefix: &str) {
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    let r1 = store.create(&a, b"a1".to_vec()).await.expect("create a");
    let r2 = store
        .update(&a, b"a2".to_vec(), r1)
        .await
        .expect("update a");
    let r3 = store.create(&b, b"b1".to_vec()).await.expect("create b");
    let (r4, _) = store.delete(&a, None).await.expect("delete a");

    let mut events = store.watch(prefix, r1).await.expect("watch from r1");
    let history = [
        event(EventKind::Created, &a, b"a1", None, r1),
        event(EventKind::Modified, &a, b"a2", Some(b"a1"), r2),
        event(EventKind::Created, &b, b"b1", None, r3),
        event(EventKind::Deleted, &a, b"", Some(b"a2"), r4),
    ];
    for expected in &history {
        assert_eq!(&next_event(&mut events).await, expected, "replayed event");
    }

    let r5 = store
        .update(&b, b"b2".to_vec(), r3)
        .await
        .expect("update b");
    let r6 = store.create(&a, b"a3".to_vec()).await.expect("re-create a");
    let (r7, _) = store.delete(&b, Some(r5)).await.expect("delete b");
    let live = [
        event(EventKind::Modified, &b, b"b2", Some(b"b1"), r5),
        event(EventKind::Created, &a, b"a3", None, r6),
        event(EventKind::Deleted, &b, b"", Some(b"b2"), r7),
    ];
    for expected in &live {
        assert_eq!(&next_event(&mut events).await, expected, "live event");
    }
    assert_quiet(&mut events).await;

    // A later start revision skips what came before it.
    let mut from_r3 = store.watch(prefix, r3).await.expect("watch from r3");
    assert_eq!(next_event(&mut from_r3).await, history[2]);
    assert_eq!(next_event(&mut from_r3).await, history[3]);
}

/// A watch sees only keys under its prefix.
pub async fn watch_sees_only_its_prefix(store: &dyn Store, prefix: &str) {
    let watched = format!("{prefix}a/");
    let from = store.current_revision().await.expect("current") + 1;
    let mut events = store.watch(&watched, from).await.expect("watch");
    for outside in ["a", "a0", "ab/x", "b/x"] {
        store
            .create(&format!("{prefix}{outside}"), b"out".to_vec())
            .await
            .expect("create outside");
    }
    let inside = format!("{watched}x");
    let rev = store
        .create(&inside, b"in".to_vec())
        .await
        .expect("create inside");
    assert_eq!(
        next_event(&mut events).await,
        event(EventKind::Created, &inside, b"in", None, rev)
    );
    assert_quiet(&mut events).await;
}

/// current_revision moves with writes.
pub async fn current_revision_follows_writes(store: &dyn Store, prefix: &str) {
    let before = store.current_revision().await.expect("current before");
    let rev = store
        .create(&format!("{prefix}a"), b"a".to_vec())
        .await
        .expect("create");
    assert!(
        rev > before,
        "write revision {rev} not after current {before}"
    );
    let after = store.current_revision().await.expect("current after");
    assert!(
        after >= rev,
        "current revision {after} below last write {rev}"
    );
}

/// After compaction, reads and watches before the compacted revision fail
/// with `Compacted`; the compacted revision itself stays readable.
pub async fn compaction(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}a");
    let r1 = store.create(&key, b"v1".to_vec()).await.expect("create");
    let r2 = store
        .update(&key, b"v2".to_vec(), r1)
        .await
        .expect("update");
    store.compact(r2).await.expect("compact");

    match store.list(prefix, None, Some(r1), None).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, r1);
            // The compacted revision is reported when the backend can tell.
            assert!(compacted == 0 || compacted >= r2, "compacted {compacted}");
        }
        other => panic!("list at a compacted revision: expected Compacted, got {other:?}"),
    }
    let kept = store
        .list(prefix, None, Some(r2), None)
        .await
        .expect("list at r2");
    assert_eq!(kept.items, vec![kv_at(&key, b"v2", r1, r2)]);

    let mut events = store.watch(prefix, r1).await.expect("watch from r1");
    match tokio::time::timeout(EVENT_TIMEOUT, events.next()).await {
        Ok(Some(Err(StoreError::Compacted {
            requested,
            compacted,
        }))) => {
            assert_eq!(requested, r1);
            assert!(
                compacted >= r2,
                "watch reports compacted revision {compacted}"
            );
        }
        other => panic!("watch from a compacted revision: expected Compacted, got {other:?}"),
    }
    let end = tokio::time::timeout(EVENT_TIMEOUT, events.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends after Compacted, got {end:?}"
    );

    // The compacted revision itself can still be watched; the value before
    // it may be gone with the history (etcd drops it).
    let mut from_r2 = store.watch(prefix, r2).await.expect("watch from r2");
    let first = next_event(&mut from_r2).await;
    assert!(
        matches!(first.prev_value.as_deref(), None | Some(b"v1")),
        "prev_value {:?}",
        first.prev_value
    );
    assert_eq!(
        first,
        event(
            EventKind::Modified,
            &key,
            b"v2",
            first.prev_value.as_deref(),
            r2
        )
    );

    store
        .compact(r2)
        .await
        .expect("compacting again is a no-op");
    let future = store.current_revision().await.expect("current") + 1000;
    assert_eq!(
        store.compact(future).await,
        Err(StoreError::FutureRevision(future))
    );
}

fn with_slash(prefix: &str) -> String {
    if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

fn kv_at(key: &str, value: &[u8], create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_vec(),
        create_revision,
        mod_revision,
    }
}

fn event(
    kind: EventKind,
    key: &str,
    value: &[u8],
    prev_value: Option<&[u8]>,
    revision: Revision,
) -> WatchEvent {
    WatchEvent {
        kind,
        key: key.to_string(),
        value: value.to_vec(),
        prev_value: prev_value.map(<[u8]>::to_vec),
        revision,
    }
}

async fn get_existing(store: &dyn Store, key: &str) -> KeyValue {
    match store.get(key).await {
        Ok(Some(kv)) => kv,
        other => panic!("get {key}: expected a value, got {other:?}"),
    }
}

fn keys(items: &[KeyValue]) -> Vec<String> {
    items.iter().map(|kv| kv.key.clone()).collect()
}

fn full(prefix: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|name| format!("{prefix}{name}")).collect()
}

/// `remaining` is optional ("when known"), but must be right when given.
fn assert_remaining(remaining: Option<i64>, expected: i64) {
    assert!(
        remaining.is_none() || remaining == Some(expected),
        "remaining {remaining:?}, expected {expected}"
    );
}

/// The page after `items`: from just past the last key ("\0" is the smallest suffix).
async fn next_page(
    store: &dyn Store,
    prefix: &str,
    items: &[KeyValue],
    revision: Revision,
) -> super::ListResult {
    let last = items.last().expect("a full page before the next");
    let start = format!("{}\0", last.key);
    store
        .list(prefix, Some(&start), Some(revision), Some(2))
        .await
        .expect("next page")
}

async fn next_event(events: &mut Events) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, events.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended early"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

async fn assert_quiet(events: &mut Events) {
    if let Ok(item) = tokio::time::timeout(QUIET_PERIOD, events.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}
