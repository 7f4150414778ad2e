//! The store contract against a real etcd, plus what only the etcd backend promises.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::storage::etcd::EtcdStore;
use apiserver::storage::{contract, EventKind, Store, StoreError};
use e2e_tests::etcd::EtcdProcess;
use futures::StreamExt;

const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn etcd_store_passes_the_contract() -> anyhow::Result<()> {
    let etcd = EtcdProcess::start()?;
    let store = EtcdStore::connect(&etcd.endpoints()).await?;
    let store: Arc<dyn Store> = Arc::new(store);
    contract::run_all(store, "/contract/etcd/").await;
    Ok(())
}

/// etcd's range error does not carry the compacted revision; the store finds it.
#[tokio::test]
async fn compacted_read_reports_the_compacted_revision() -> anyhow::Result<()> {
    let etcd = EtcdProcess::start()?;
    let store = EtcdStore::connect(&etcd.endpoints()).await?;
    let r1 = store.create("/c/a", b"1".to_vec()).await?;
    let r2 = store.update("/c/a", b"2".to_vec(), r1).await?;
    store.compact(r2).await?;
    let result = store.list("/c/", None, Some(r1), None).await;
    assert_eq!(
        result,
        Err(StoreError::Compacted {
            requested: r1,
            compacted: r2
        })
    );
    Ok(())
}

/// The stream owns the etcd watch: it keeps working after the store handle is gone.
#[tokio::test]
async fn watch_outlives_the_store_handle() -> anyhow::Result<()> {
    let etcd = EtcdProcess::start()?;
    let store = EtcdStore::connect(&etcd.endpoints()).await?;
    let from = store.current_revision().await? + 1;
    let mut events = store.watch("/w/", from).await?;
    drop(store);
    let writer = EtcdStore::connect(&etcd.endpoints()).await?;
    let rev = writer.create("/w/a", b"a".to_vec()).await?;
    let event = tokio::time::timeout(EVENT_TIMEOUT, events.next()).await?;
    let event = event.expect("an event")?;
    assert_eq!((event.kind, event.revision), (EventKind::Created, rev));
    Ok(())
}

/// A dead etcd surfaces as Unavailable, on requests and on open watches.
#[tokio::test]
async fn dead_etcd_is_unavailable() -> anyhow::Result<()> {
    let etcd = EtcdProcess::start()?;
    let store = EtcdStore::connect(&etcd.endpoints()).await?;
    let from = store.current_revision().await? + 1;
    let mut events = store.watch("/d/", from).await?;
    drop(etcd);

    let started = Instant::now();
    let item = tokio::time::timeout(Duration::from_secs(30), events.next()).await?;
    assert!(
        matches!(item, Some(Err(StoreError::Unavailable(_)))),
        "watch item after etcd died: {item:?}"
    );
    let after_error = tokio::time::timeout(EVENT_TIMEOUT, events.next()).await?;
    assert!(after_error.is_none(), "the stream ends after an error");

    let result = store.get("/d/a").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "get after etcd died: {result:?}"
    );
    eprintln!("dead etcd detected in {:?}", started.elapsed());
    Ok(())
}
