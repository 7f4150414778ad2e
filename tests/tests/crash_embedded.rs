//! kill -9 of an apiserver on the embedded store, several times, under 64
//! concurrent writers: every acknowledged create and update survives with
//! its content, resourceVersions only grow, and a watch resumed from the
//! last seen resourceVersion misses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e_tests::apiserver::ApiServerProcess;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const WRITERS: usize = 64;
const ROUNDS: usize = 3;

#[derive(Default, Clone)]
struct Acked {
    /// name -> value of every acknowledged create.
    creates: BTreeMap<String, String>,
    /// counter name -> last acknowledged value.
    counters: BTreeMap<String, u64>,
    max_rv: u64,
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).unwrap()
}

fn rv_of(c: &ConfigMap) -> u64 {
    c.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_no_acknowledged_write() {
    let data = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let watched = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut watch_rv = String::from("0");

    for round in 0..ROUNDS {
        let mut server = ApiServerProcess::start_embedded_in(data.path(), &[]).unwrap();
        let client = server.client().await.unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let snapshot = acked.lock().unwrap().clone();
        verify(&cms, &snapshot).await;

        // A watcher resumed from the last resourceVersion it saw.
        let w_cms = cms.clone();
        let w_seen = watched.clone();
        let start = watch_rv.clone();
        let watcher = tokio::spawn(async move {
            let mut last = start.clone();
            let Ok(stream) = w_cms
                .watch(&WatchParams::default().timeout(60), &start)
                .await
            else {
                return last;
            };
            let mut stream = stream.boxed();
            while let Ok(Some(ev)) = stream.try_next().await {
                match ev {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        last = o.metadata.resource_version.clone().unwrap();
                        w_seen.lock().unwrap().insert(o.metadata.name.unwrap());
                    }
                    WatchEvent::Deleted(o) => last = o.metadata.resource_version.clone().unwrap(),
                    WatchEvent::Bookmark(b) => last = b.metadata.resource_version,
                    WatchEvent::Error(e) => panic!("watch error after restart: {e:?}"),
                }
            }
            last
        });

        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let cms = cms.clone();
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    if w % 4 == 0 {
                        // Read-modify-write of this writer's counter.
                        let name = format!("counter-{w}");
                        let cur = match cms.get_opt(&name).await {
                            Ok(c) => c,
                            Err(_) => return,
                        };
                        let next = cur
                            .as_ref()
                            .map_or(0, |c| c.data.as_ref().unwrap()["v"].parse::<u64>().unwrap())
                            + 1;
                        let result = match cur {
                            None => {
                                cms.create(&PostParams::default(), &cm(&name, &next.to_string()))
                                    .await
                            }
                            Some(mut c) => {
                                c.data
                                    .as_mut()
                                    .unwrap()
                                    .insert("v".into(), next.to_string());
                                cms.replace(&name, &PostParams::default(), &c).await
                            }
                        };
                        match result {
                            Ok(c) => {
                                let mut a = acked.lock().unwrap();
                                a.counters.insert(name, next);
                                a.max_rv = a.max_rv.max(rv_of(&c));
                            }
                            Err(_) => return,
                        }
                    } else {
                        let name = format!("r{round}-w{w}-{n}");
                        let value = format!("{round}/{w}/{n}");
                        match cms.create(&PostParams::default(), &cm(&name, &value)).await {
                            Ok(c) => {
                                let mut a = acked.lock().unwrap();
                                a.creates.insert(name, value);
                                a.max_rv = a.max_rv.max(rv_of(&c));
                            }
                            Err(_) => return,
                        }
                    }
                }
            }));
        }
        // Let the writers run for a while that differs per round, then crash.
        tokio::time::sleep(Duration::from_millis(700 + 400 * round as u64)).await;
        server.kill9();
        for w in writers {
            w.await.unwrap();
        }
        watch_rv = watcher.await.unwrap();
        let a = acked.lock().unwrap();
        assert!(
            a.creates.len() > round * 10,
            "writers made progress: {}",
            a.creates.len()
        );
    }

    let server = ApiServerProcess::start_embedded_in(data.path(), &[]).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let a = acked.lock().unwrap().clone();
    verify(&cms, &a).await;
    // The last watcher resumes once more and catches up.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &watch_rv)
        .await
        .unwrap()
        .boxed();
    while let Ok(Some(ev)) = stream.try_next().await {
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) = ev {
            watched.lock().unwrap().insert(o.metadata.name.unwrap());
        }
    }
    let seen = watched.lock().unwrap();
    let missed: Vec<&String> = a.creates.keys().filter(|n| !seen.contains(*n)).collect();
    assert!(
        missed.is_empty(),
        "watches missed {} acknowledged creates, e.g. {:?}",
        missed.len(),
        &missed[..missed.len().min(5)]
    );
}

/// Every acknowledged write is there with its content; the store's revision
/// is past every acknowledged one.
async fn verify(cms: &Api<ConfigMap>, a: &Acked) {
    let list = cms.list(&ListParams::default()).await.unwrap();
    let list_rv: u64 = list
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        list_rv >= a.max_rv,
        "revision went back: {list_rv} < {}",
        a.max_rv
    );
    let stored: BTreeMap<String, String> = list
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap(),
                c.data
                    .unwrap_or_default()
                    .get("v")
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    for (name, value) in &a.creates {
        assert_eq!(
            stored.get(name),
            Some(value),
            "acknowledged create {name} lost or changed"
        );
    }
    for (name, value) in &a.counters {
        let got: u64 = stored
            .get(name)
            .unwrap_or_else(|| panic!("counter {name} lost"))
            .parse()
            .unwrap();
        // An unacknowledged write may have landed just before the kill.
        assert!(
            got == *value || got == value + 1,
            "counter {name}: stored {got}, acknowledged {value}"
        );
    }
}
