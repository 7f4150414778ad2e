//! The apiserver through kube-rs, as controllers and client libraries use it:
//! CRUD, defaults, watch from a resourceVersion, 410 Gone, CAS conflicts,
//! every patch type, selectors, pagination and concurrent writers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e_tests::apiserver::{ApiServerProcess, TestCluster};
use e2e_tests::etcd::EtcdProcess;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service, ServiceAccount};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::Client;
use serde_json::json;

fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )
    .unwrap()
}

async fn client(c: &TestCluster) -> Client {
    c.apiserver.client().await.expect("client")
}

#[tokio::test]
async fn bootstrap_objects_exist() {
    let c = TestCluster::start().unwrap();
    let client = client(&c).await;
    let names: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&ns.to_string()), "{ns} in {names:?}");
        let sa = Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get("default")
            .await
            .unwrap();
        assert_eq!(sa.metadata.namespace.as_deref(), Some(ns));
    }
    let svc = Api::<Service>::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await
        .unwrap();
    assert_eq!(svc.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));
    // A new namespace gets its default ServiceAccount.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    let ns = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    Api::<ServiceAccount>::namespaced(client, "team-a")
        .get("default")
        .await
        .unwrap();
}

async fn create_defaults_get_update_delete(c: TestCluster) {
    let pods: Api<Pod> = Api::namespaced(client(&c).await, "default");
    let created = pods
        .create(&PostParams::default(), &pod("p1", &[("app", "x")]))
        .await
        .unwrap();
    let md = &created.metadata;
    assert!(md.uid.is_some() && md.creation_timestamp.is_some() && md.resource_version.is_some());
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );

    // Duplicate create: 409 AlreadyExists.
    let err = pods
        .create(&PostParams::default(), &pod("p1", &[]))
        .await
        .unwrap_err();
    assert_api_error(err, 409, "AlreadyExists");

    // generateName.
    let mut g = pod("", &[]);
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let made = pods.create(&PostParams::default(), &g).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Update bumps the resourceVersion; a stale one is a 409 Conflict.
    let mut p = pods.get("p1").await.unwrap();
    p.metadata
        .labels
        .get_or_insert_default()
        .insert("v".into(), "2".into());
    let updated = pods
        .replace("p1", &PostParams::default(), &p)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        p.metadata.resource_version
    );
    let err = pods
        .replace("p1", &PostParams::default(), &p)
        .await
        .unwrap_err();
    assert_api_error(err, 409, "Conflict");

    // dryRun stores nothing.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    pods.create(&dry, &pod("dry", &[])).await.unwrap();
    assert_api_error(pods.get("dry").await.unwrap_err(), 404, "NotFound");

    // An unbound pod goes at once.
    pods.delete("p1", &DeleteParams::default()).await.unwrap();
    assert_api_error(pods.get("p1").await.unwrap_err(), 404, "NotFound");
}

async fn bound_pods_are_deleted_gracefully(c: TestCluster) {
    let client = client(&c).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("b", &[]))
        .await
        .unwrap();
    // Bind through pods/binding, as the scheduler does.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"}, "target": {"kind": "Node", "name": "node-1"}});
    let req = http::Request::post("/api/v1/namespaces/default/pods/b/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    client.request_text(req).await.unwrap();
    let bound = pods.get("b").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    // A second binding is a conflict.
    let req = http::Request::post("/api/v1/namespaces/default/pods/b/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    assert_api_error(client.request_text(req).await.unwrap_err(), 409, "Conflict");

    pods.delete("b", &DeleteParams::default()).await.unwrap();
    let marked = pods.get("b").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    // The kubelet's final delete with grace 0 removes it.
    pods.delete(
        "b",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_api_error(pods.get("b").await.unwrap_err(), 404, "NotFound");
}

async fn finalizers_hold_an_object_until_removed(c: TestCluster) {
    let cms: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let mut x = cm("fin", &[]);
    x.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &x).await.unwrap();
    cms.delete("fin", &DeleteParams::default()).await.unwrap();
    let held = cms.get("fin").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let patch = json!({"metadata": {"finalizers": null}});
    cms.patch("fin", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_api_error(cms.get("fin").await.unwrap_err(), 404, "NotFound");
}

/// Orphan and Foreground deletes leave the object marked with the garbage
/// collector's finalizer (upstream's contract with the GC); Background does
/// not; bad options are a 422.
async fn propagation_policies_become_gc_finalizers(c: TestCluster) {
    let cms: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    for (name, dp, finalizer) in [
        ("orphaned", DeleteParams::orphan(), "orphan"),
        (
            "foreground",
            DeleteParams::foreground(),
            "foregroundDeletion",
        ),
    ] {
        cms.create(&PostParams::default(), &cm(name, &[]))
            .await
            .unwrap();
        cms.delete(name, &dp).await.unwrap();
        let held = cms.get(name).await.unwrap();
        assert!(held.metadata.deletion_timestamp.is_some(), "{name}");
        assert_eq!(held.metadata.finalizers, Some(vec![finalizer.to_string()]));
        // The GC's part: remove its finalizer; the object then goes.
        let patch = json!({"metadata": {"finalizers": null}});
        cms.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_api_error(cms.get(name).await.unwrap_err(), 404, "NotFound");
    }
    // Switching policy on a second delete swaps the finalizer, keeping others.
    let mut x = cm("switch", &[]);
    x.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &x).await.unwrap();
    cms.delete("switch", &DeleteParams::orphan()).await.unwrap();
    cms.delete("switch", &DeleteParams::foreground())
        .await
        .unwrap();
    let held = cms.get("switch").await.unwrap();
    assert_eq!(
        held.metadata.finalizers,
        Some(vec![
            "example.com/hold".to_string(),
            "foregroundDeletion".to_string()
        ])
    );
    cms.delete("switch", &DeleteParams::background())
        .await
        .unwrap();
    let held = cms.get("switch").await.unwrap();
    assert_eq!(
        held.metadata.finalizers,
        Some(vec!["example.com/hold".to_string()])
    );

    cms.create(&PostParams::default(), &cm("bg", &[]))
        .await
        .unwrap();
    cms.delete("bg", &DeleteParams::background()).await.unwrap();
    assert_api_error(cms.get("bg").await.unwrap_err(), 404, "NotFound");

    let req = http::Request::delete("/api/v1/namespaces/default/configmaps/switch")
        .header("content-type", "application/json")
        .body(br#"{"propagationPolicy":"Sideways"}"#.to_vec())
        .unwrap();
    let err = client(&c)
        .await
        .request::<serde_json::Value>(req)
        .await
        .unwrap_err();
    assert_api_error(err, 422, "Invalid");
}

/// A watch sees its own kind only, however busy the other kinds are.
async fn watches_see_only_their_resource(c: TestCluster) {
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = cms.list(&ListParams::default()).await.unwrap();
    let rv = start.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    pods.create(&PostParams::default(), &pod("other-kind", &[]))
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &cm("other-ns", &[]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("mine", &[]))
        .await
        .unwrap();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("mine")),
        other => panic!("expected ADDED mine, got {other:?}"),
    }
}

async fn watch_from_a_resource_version(c: TestCluster) {
    let cms: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let first = cms
        .create(&PostParams::default(), &cm("w1", &[("a", "1")]))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("w2", &[]))
        .await
        .unwrap();
    cms.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("w2", &DeleteParams::default()).await.unwrap();

    let mut stream = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(format!(
                "MODIFIED {} a={}",
                o.metadata.name.unwrap(),
                o.data.unwrap()["a"]
            )),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED w2", "MODIFIED w1 a=2", "DELETED w2"]);

    // A label-selected watch sees an object leave its selection as DELETED.
    let lp = WatchParams::default().labels("team=a").timeout(10);
    let cur = cms
        .get("w1")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms.watch(&lp, &cur).await.unwrap().boxed();
    cms.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            _ => {}
        }
    }
    assert_eq!(kinds, vec!["ADDED", "DELETED"]);
}

#[tokio::test]
async fn too_old_resource_versions_get_410() {
    let etcd = EtcdProcess::start().unwrap();
    let server = ApiServerProcess::start(&etcd.endpoints(), &["--watch-cache-size=5"]).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let first = cms
        .create(&PostParams::default(), &cm("old", &[]))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("n{i}"), &[]))
            .await
            .unwrap();
    }
    // Older than the watch cache's history, but still in the store's: served
    // from the store, nothing missed.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let mut names = Vec::new();
    while names.len() < 10 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => names.push(o.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    assert_eq!(names, expected);
    drop(stream);

    // Once the store has compacted it too: 410, as upstream a 200 watch whose
    // only event is an ERROR.
    let store = apiserver::storage::etcd::EtcdStore::connect(&etcd.endpoints())
        .await
        .unwrap();
    use apiserver::storage::Store;
    store
        .compact(store.current_revision().await.unwrap())
        .await
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("expected 410, got {other:?}"),
    }

    // A continue token from before a compaction is expired.
    let page = cms.list(&ListParams::default().limit(3)).await.unwrap();
    let token = page.metadata.continue_.clone().expect("more pages");
    let store = apiserver::storage::etcd::EtcdStore::connect(&etcd.endpoints())
        .await
        .unwrap();
    // Compact past the first page's revision.
    cms.create(&PostParams::default(), &cm("after", &[]))
        .await
        .unwrap();
    let now = store.current_revision().await.unwrap();
    store.compact(now).await.unwrap();
    let err = cms
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap_err();
    assert_api_error(err, 410, "Expired");
}

async fn every_patch_type(c: TestCluster) {
    let pods: Api<Pod> = Api::namespaced(client(&c).await, "default");
    let mut two = pod("two", &[]);
    two.spec
        .as_mut()
        .unwrap()
        .containers
        .push(serde_json::from_value(json!({"name": "d", "image": "busybox:1.0"})).unwrap());
    pods.create(&PostParams::default(), &two).await.unwrap();

    // Strategic merge: containers merge by name; the other container stays.
    let smp = json!({"spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}});
    let p = pods
        .patch("two", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let cs = p.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].image.as_deref(), Some("nginx:1.25"));
    assert_eq!(cs[1].image.as_deref(), Some("busybox:1.0"));

    // Merge patch replaces lists and sets labels.
    let mp = json!({"metadata": {"labels": {"x": "y"}}});
    let p = pods
        .patch("two", &PatchParams::default(), &Patch::Merge(mp))
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["x"], "y");

    // JSON patch, including a failing test op (422, nothing written).
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
        {"op": "add", "path": "/spec/activeDeadlineSeconds", "value": 100}
    ]))
    .unwrap();
    let p = pods
        .patch("two", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(p.metadata.annotations.unwrap()["a"], "b");
    assert_eq!(p.spec.unwrap().active_deadline_seconds, Some(100));
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/metadata/name", "value": "nope"}]))
            .unwrap();
    let err = pods
        .patch("two", &PatchParams::default(), &Patch::<()>::Json(bad))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 422),
        "{err:?}"
    );

    // Status patch changes only the status.
    let sp = json!({"status": {"phase": "Running"}, "spec": {"activeDeadlineSeconds": 5}});
    let p = pods
        .patch_status("two", &PatchParams::default(), &Patch::Merge(sp))
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(p.spec.unwrap().active_deadline_seconds, Some(100));
    // A main-resource write cannot change the status.
    let p = pods
        .patch(
            "two",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
}

async fn selectors_and_pagination(c: TestCluster) {
    let client = client(&c).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (n, app, tier) in [("a", "web", "fe"), ("b", "web", "be"), ("c", "db", "be")] {
        pods.create(
            &PostParams::default(),
            &pod(n, &[("app", app), ("tier", tier)]),
        )
        .await
        .unwrap();
    }
    let names = |l: kube::core::ObjectList<Pod>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(pods.list(&q("app=web")).await.unwrap()), ["a", "b"]);
    assert_eq!(names(pods.list(&q("app!=web")).await.unwrap()), ["c"]);
    assert_eq!(
        names(pods.list(&q("tier in (fe),app")).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        names(pods.list(&q("app notin (web)")).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        names(pods.list(&q("!tier")).await.unwrap()),
        Vec::<String>::new()
    );
    let f = ListParams::default().fields("metadata.name=b");
    assert_eq!(names(pods.list(&f).await.unwrap()), ["b"]);
    let f = ListParams::default().fields("status.phase=Pending,metadata.name!=a");
    assert_eq!(names(pods.list(&f).await.unwrap()), ["b", "c"]);
    let err = pods
        .list(&ListParams::default().fields("spec.bogus=1"))
        .await
        .unwrap_err();
    assert_api_error(err, 400, "BadRequest");
    let err = pods.list(&q("a in (")).await.unwrap_err();
    assert_api_error(err, 400, "BadRequest");

    // Pagination over 25 objects, 10 at a time.
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..25 {
        let mut page = cm(&format!("page-{i:02}"), &[]);
        page.metadata.labels = Some([("set".to_string(), "pages".to_string())].into());
        cms.create(&PostParams::default(), &page).await.unwrap();
    }
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        // kube-root-ca.crt lives in every namespace too, as upstream.
        let mut lp = ListParams::default().labels("set=pages").limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        all.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("page-{i:02}")).collect();
    assert_eq!(all, expected);
}

async fn concurrent_read_modify_write_loses_nothing(c: TestCluster) {
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("counter", &[("n", "0")]))
        .await
        .unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let cms = cms.clone();
        let ok = ok.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                let mut cur = cms.get("counter").await.unwrap();
                let n: u64 = cur.data.as_ref().unwrap()["n"].parse().unwrap();
                cur.data
                    .as_mut()
                    .unwrap()
                    .insert("n".into(), (n + 1).to_string());
                match cms.replace("counter", &PostParams::default(), &cur).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let final_n: usize = cms.get("counter").await.unwrap().data.unwrap()["n"]
        .parse()
        .unwrap();
    let successes = ok.load(Ordering::SeqCst);
    assert!(successes > 0);
    assert_eq!(final_n, successes);
}

/// Updates start from the watch cache's copy, which may be a write behind:
/// a write right after another must neither see a false conflict nor be
/// skipped as a no-op because the older copy already looked like it.
async fn updates_right_after_a_write_see_it(c: TestCluster) {
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut last = cms
        .create(&PostParams::default(), &cm("chained", &[("n", "0")]))
        .await
        .unwrap();
    for i in 1..=100 {
        // Chained on the resourceVersion the previous write returned.
        let mut next = cm("chained", &[("n", &i.to_string())]);
        next.metadata.resource_version = last.metadata.resource_version.clone();
        last = cms
            .replace("chained", &PostParams::default(), &next)
            .await
            .unwrap_or_else(|e| panic!("write {i} on its own resourceVersion: {e}"));
    }
    for i in 0..100 {
        // No precondition, toggling between two contents: a cached copy one
        // write behind equals the new content.
        let want = if i % 2 == 0 { "a" } else { "b" };
        let written = cms
            .replace(
                "chained",
                &PostParams::default(),
                &cm("chained", &[("n", want)]),
            )
            .await
            .unwrap();
        assert_eq!(
            written.data.as_ref().unwrap()["n"],
            want,
            "answer of write {i}"
        );
        let stored = cms.get("chained").await.unwrap();
        assert_eq!(stored.data.unwrap()["n"], want, "stored after write {i}");
    }
}

fn assert_api_error(err: kube::Error, code: u16, reason: &str) {
    match err {
        kube::Error::Api(e) => {
            assert_eq!((e.code, e.reason.as_str()), (code, reason), "{e:?}");
        }
        other => panic!("expected API error {code} {reason}, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_collection_and_unknown_field_warnings() {
    let c = TestCluster::start().unwrap();
    let client = client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (n, team) in [("d1", "a"), ("d2", "a"), ("d3", "b")] {
        let mut x = cm(n, &[]);
        x.metadata.labels = Some([("team".to_string(), team.to_string())].into());
        cms.create(&PostParams::default(), &x).await.unwrap();
    }
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("team=a"),
        )
        .await
        .unwrap();
    let names: Vec<String> = deleted
        .left()
        .expect("a list of deleted objects")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["d1", "d2"]);
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(
        left.contains(&"d3".to_string()) && !left.contains(&"d1".to_string()),
        "{left:?}"
    );

    // fieldValidation=Warn (the default) stores the object and warns.
    let req = http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"warned"},"bogus":true}"#
                .to_vec(),
        )
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let warning = resp
        .headers()
        .get("warning")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        warning.contains("unknown field") && warning.contains("bogus"),
        "{warning:?}"
    );
    let stored = cms.get("warned").await.unwrap();
    assert_eq!(stored.metadata.name.as_deref(), Some("warned"));
}

/// Each check runs against both storage backends.
macro_rules! on_both_stores {
    ($($check:ident),* $(,)?) => {
        mod on_etcd {
            $(#[tokio::test]
            async fn $check() {
                super::$check(super::TestCluster::start().unwrap()).await;
            })*
        }
        mod on_embedded {
            $(#[tokio::test]
            async fn $check() {
                super::$check(super::TestCluster::start_embedded().unwrap()).await;
            })*
        }
    };
}

on_both_stores!(
    create_defaults_get_update_delete,
    watch_from_a_resource_version,
    every_patch_type,
    selectors_and_pagination,
    concurrent_read_modify_write_loses_nothing,
    updates_right_after_a_write_see_it,
    bound_pods_are_deleted_gracefully,
    finalizers_hold_an_object_until_removed,
    propagation_policies_become_gc_finalizers,
    watches_see_only_their_resource,
);

/// A restarted apiserver finds its objects and its bootstrap objects as they were.
#[tokio::test]
async fn restart_on_the_same_etcd() {
    let etcd = EtcdProcess::start().unwrap();
    let first = ApiServerProcess::start(&etcd.endpoints(), &[]).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(first.client().await.unwrap(), "default");
    let made = cms
        .create(&PostParams::default(), &cm("kept", &[("k", "v")]))
        .await
        .unwrap();
    drop(first);
    let second = ApiServerProcess::start(&etcd.endpoints(), &[]).unwrap();
    let client = second.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let got = cms.get("kept").await.unwrap();
    assert_eq!(got.metadata.uid, made.metadata.uid);
    assert_eq!(got.data.unwrap()["k"], "v");
    let svc = Api::<Service>::namespaced(client, "default")
        .get("kubernetes")
        .await
        .unwrap();
    assert_eq!(svc.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));
}

/// Clients that ask for protobuf first (client-go, kubectl describe) get it;
/// it decodes to the same object as the JSON answer.
#[tokio::test]
async fn protobuf_responses() {
    let c = TestCluster::start().unwrap();
    let client = client(&c).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("pb", &[("app", "pb")]))
        .await
        .unwrap();
    for path in [
        "/api/v1/namespaces/default/pods/pb",
        "/api/v1/namespaces/default/pods",
    ] {
        let req = http::Request::get(path)
            .header(
                "accept",
                "application/vnd.kubernetes.protobuf, application/json",
            )
            .body(Vec::new())
            .unwrap();
        let resp = client
            .send(req.map(kube::client::Body::from))
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["content-type"],
            "application/vnd.kubernetes.protobuf"
        );
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(bytes.starts_with(b"k8s\0"));
        let decoded = apiserver::protobuf::decode_request(&bytes).unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &client
                .request_text(http::Request::get(path).body(Vec::new()).unwrap())
                .await
                .unwrap(),
        )
        .unwrap();
        if path.ends_with("/pb") {
            assert_eq!(decoded["metadata"]["uid"], json["metadata"]["uid"]);
            assert_eq!(decoded["spec"]["containers"], json["spec"]["containers"]);
            assert_eq!(decoded["status"]["phase"], "Pending");
        } else {
            assert_eq!(decoded["kind"], "PodList");
            assert_eq!(decoded["items"][0]["metadata"]["name"], "pb");
        }
    }
}
