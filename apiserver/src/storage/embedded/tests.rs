//! Behaviour of the embedded store beyond the shared contract.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::*;
use crate::storage::EventKind;

fn open(dir: &Path, options: EmbeddedOptions) -> EmbeddedStore {
    EmbeddedStore::open(dir, options).expect("open the store")
}

async fn next_event(events: &mut BoxStream<'static, Result<WatchEvent>>) -> Result<WatchEvent> {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a watch item in time")
        .expect("the stream goes on")
}

#[tokio::test]
async fn empty_store_starts_at_revision_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), EmbeddedOptions::default());
    assert_eq!(store.current_revision().await, Ok(1));
    assert_eq!(store.create("/a", b"a".to_vec()).await, Ok(2));
    let list = store.list("/", None, None, None).await.expect("list");
    assert_eq!(list.revision, 2);
}

#[tokio::test]
async fn concurrent_writes_get_distinct_revisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(dir.path(), EmbeddedOptions::default()));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create(&format!("/k/{i:02}"), vec![i]).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.expect("join").expect("create"));
    }
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 64);
    assert_eq!(store.current_revision().await, Ok(1 + 64));
    let list = store.list("/k/", None, None, None).await.expect("list");
    assert_eq!(list.items.len(), 64);
}

#[tokio::test]
async fn watch_from_zero_starts_now() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), EmbeddedOptions::default());
    store
        .create("/w/old", b"old".to_vec())
        .await
        .expect("create");
    let mut events = store.watch("/w/", 0).await.expect("watch");
    let rev = store
        .create("/w/new", b"new".to_vec())
        .await
        .expect("create");
    let event = next_event(&mut events).await.expect("event");
    assert_eq!((event.key.as_str(), event.revision), ("/w/new", rev));
}

#[tokio::test]
async fn lagging_watcher_catches_up_from_history_without_blocking_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EmbeddedOptions {
        watch_buffer: 4,
        ..EmbeddedOptions::default()
    };
    let store = open(dir.path(), options);
    let mut events = store.watch("/lag/", 1).await.expect("watch");
    // Nobody reads the stream while 300 writes go through.
    let mut expected = Vec::new();
    for i in 0..300 {
        let rev = store
            .create(&format!("/lag/{i:03}"), vec![1])
            .await
            .expect("create while a watcher lags");
        expected.push(rev);
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let event = next_event(&mut events).await.expect("event");
        assert_eq!(event.kind, EventKind::Created);
        seen.push(event.revision);
    }
    assert_eq!(seen, expected, "every event once, in order");
    // And it follows live writes afterwards.
    let rev = store.create("/lag/live", vec![2]).await.expect("create");
    assert_eq!(next_event(&mut events).await.expect("live").revision, rev);
}

#[tokio::test]
async fn retention_by_count_compacts_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EmbeddedOptions {
        max_history_revisions: 10,
        compaction_interval: Duration::from_millis(20),
        ..EmbeddedOptions::default()
    };
    let store = open(dir.path(), options);
    let first = store.create("/r/a", b"0".to_vec()).await.expect("create");
    let mut rev = first;
    for i in 1..50 {
        rev = store.update("/r/a", vec![i], rev).await.expect("update");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    match store.list("/r/", None, Some(first), None).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, first);
            assert!(
                compacted >= rev - 10,
                "compacted {compacted}, current {rev}"
            );
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut events = store.watch("/r/", first).await.expect("watch");
    assert!(matches!(
        next_event(&mut events).await,
        Err(StoreError::Compacted { .. })
    ));
    // The newest revisions stay readable and watchable.
    let kept = store
        .list("/r/", None, Some(rev - 5), None)
        .await
        .expect("list inside the kept history");
    assert_eq!(kept.items[0].mod_revision, rev - 5);
    let mut recent = store.watch("/r/", rev - 5).await.expect("watch");
    let event = next_event(&mut recent).await.expect("event");
    assert_eq!(event.revision, rev - 5);
    assert_eq!(event.value, vec![44]);
    assert_eq!(event.prev_value, Some(vec![43]));
}

#[tokio::test]
async fn full_disk_fails_the_write_cleanly_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), EmbeddedOptions::default());
    let rev = store
        .create("/d/a", b"small".to_vec())
        .await
        .expect("create");
    // Cap the file at its current size: the next page it needs is "no space".
    let pages = page_count(dir.path());
    store.limit_pages(pages).await.expect("limit");
    match store.create("/d/big", vec![7; 256 * 1024]).await {
        Err(StoreError::Unavailable(text)) => assert!(text.contains("disk is full"), "{text}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(store.current_revision().await, Ok(rev), "no revision taken");
    assert_eq!(store.get("/d/big").await, Ok(None), "nothing half-written");
    store.limit_pages(1 << 30).await.expect("lift the limit");
    assert_eq!(
        store.create("/d/big", vec![7; 256 * 1024]).await,
        Ok(rev + 1)
    );
}

fn page_count(dir: &Path) -> i64 {
    let conn = schema::open_reader(&dir.join(schema::DB_FILE)).expect("reader");
    conn.pragma_query_value(None, "page_count", |row| row.get(0))
        .expect("page_count")
}

#[tokio::test]
async fn watch_ends_when_the_store_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), EmbeddedOptions::default());
    let mut events = store.watch("/", 0).await.expect("watch");
    drop(store);
    assert!(matches!(
        next_event(&mut events).await,
        Err(StoreError::Unavailable(_))
    ));
    let end = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(matches!(end, Ok(None)));
}

#[tokio::test]
async fn open_creates_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("a/b");
    let store = open(&data, EmbeddedOptions::default());
    assert_eq!(store.dir(), data.as_path());
    let mode = std::fs::metadata(&data).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}
