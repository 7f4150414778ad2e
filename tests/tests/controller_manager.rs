//! kube-controller-manager against a real etcd + kube-apiserver. No kubelet
//! or scheduler runs: tests create Node objects, bind pods through
//! pods/binding and set pod status (Ready, podIP) through pods/status.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use e2e_tests::apiserver::TestCluster;
use e2e_tests::component::ComponentProcess;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(60);

/// A cluster (etcd + apiserver) and a controller manager.
struct Env {
    cm: Option<ComponentProcess>,
    client: Client,
    cluster: TestCluster,
}

impl Env {
    /// A cluster with a controller manager started with `extra` flags.
    async fn start(extra: &[&str]) -> Env {
        let mut env = Env::cluster().await;
        env.start_cm(extra);
        env
    }

    /// A cluster without a controller manager (yet).
    async fn cluster() -> Env {
        let cluster = TestCluster::start().expect("etcd + apiserver");
        let client = cluster.apiserver.client().await.expect("client");
        Env {
            cm: None,
            client,
            cluster,
        }
    }

    /// (Re)start the controller manager.
    fn start_cm(&mut self, extra: &[&str]) {
        if let Some(mut old) = self.cm.take() {
            old.kill9();
        }
        let mut args = vec![
            format!(
                "--kubeconfig={}",
                self.cluster.apiserver.kubeconfig().display()
            ),
            "--secure-port=0".to_string(),
            "--leader-elect=false".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.cm = Some(
            ComponentProcess::start(
                "kube-controller-manager",
                "controller-manager",
                self.cluster.apiserver.dir(),
                &args,
            )
            .expect("start kube-controller-manager"),
        );
    }

    fn cm_log(&self) -> String {
        self.cm.as_ref().map(|c| c.log()).unwrap_or_default()
    }

    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.cluster.kubectl(33, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Poll `f` until it returns Some, or fail after the deadline with the
    /// controller manager's log.
    async fn wait_for<T, F, Fut>(&mut self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if let Some(cm) = self.cm.as_mut() {
                assert!(cm.alive(), "controller manager exited:\n{}", cm.log());
            }
            if start.elapsed() > DEADLINE {
                let log = self.cm_log();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                panic!(
                    "timed out waiting for {what}; controller-manager log (last lines, newest first):\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

fn rc(name: &str, replicas: i32, app: &str) -> ReplicationController {
    obj(json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"app": app},
            "template": {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                    "ports": [{"name": "http", "containerPort": 8080}]}]}}}
    }))
}

fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    obj(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
}

/// Active pods (not being deleted) in `ns` carrying label app=`app`.
async fn active_pods(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn owner_uids(p: &Pod) -> Vec<String> {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.clone())
        .collect()
}

/// Bind a pod to a node as the scheduler would.
async fn bind(client: &Client, ns: &str, pod: &str, node: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod}, "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    api.create_subresource::<Value, Value>("binding", pod, &PostParams::default(), &binding)
        .await
        .expect("bind pod");
}

/// Set a pod's status as a kubelet would: Running with an IP, Ready or not.
async fn set_pod_status(client: &Client, ns: &str, pod: &str, ip: &str, ready: bool) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "Ready", "status": status},
            {"type": "ContainersReady", "status": status}]}});
    api.patch_status(pod, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("set pod status");
}

async fn rc_status(api: &Api<ReplicationController>, name: &str) -> Value {
    api.get(name)
        .await
        .ok()
        .and_then(|rc| serde_json::to_value(rc.status).ok())
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------
// ReplicationController
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rc_scales_up_and_down() {
    let mut env = Env::start(&[]).await;
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    let created = rcs
        .create(&PostParams::default(), &rc("web", 3, "web"))
        .await
        .unwrap();
    let rc_uid = created.uid().unwrap();

    let three = env
        .wait_for("3 pods", || async {
            let p = active_pods(&pods, "web").await;
            (p.len() == 3).then_some(p)
        })
        .await;
    for p in &three {
        assert!(p.name_any().starts_with("web-"), "{}", p.name_any());
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.name.as_str(),
                r.uid.as_str()
            ),
            ("v1", "ReplicationController", "web", rc_uid.as_str())
        );
        assert_eq!(
            (r.controller, r.block_owner_deletion),
            (Some(true), Some(true))
        );
    }
    env.wait_for("status.replicas 3", || async {
        let s = rc_status(&rcs, "web").await;
        (s["replicas"] == 3 && s["observedGeneration"] == 1 && s["fullyLabeledReplicas"] == 3)
            .then_some(())
    })
    .await;

    // Scale up with the real kubectl (PATCH .../scale).
    env.kubectl(&["scale", "rc", "web", "--replicas=5"]);
    env.wait_for("5 pods", || async {
        (active_pods(&pods, "web").await.len() == 5).then_some(())
    })
    .await;

    // One pod scheduled and ready: it survives the scale-down, as the
    // unscheduled ones go first.
    let keeper = active_pods(&pods, "web").await[0].name_any();
    bind(&env.client, "default", &keeper, "node-a").await;
    set_pod_status(&env.client, "default", &keeper, "10.244.0.5", true).await;
    env.kubectl(&["scale", "rc", "web", "--replicas=1"]);
    let left = env
        .wait_for("1 pod", || async {
            let p = active_pods(&pods, "web").await;
            (p.len() == 1).then_some(p)
        })
        .await;
    assert_eq!(left[0].name_any(), keeper);
    env.wait_for("status 1 ready, observedGeneration 3", || async {
        let s = rc_status(&rcs, "web").await;
        (s["replicas"] == 1
            && s["readyReplicas"] == 1
            && s["availableReplicas"] == 1
            && s["observedGeneration"] == 3)
            .then_some(())
    })
    .await;

    // Events as upstream's replication controller writes them.
    let out = env.kubectl(&["get", "events", "-o", "json"]);
    let events: Value = serde_json::from_str(&out).unwrap();
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "web")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"SuccessfulCreate"), "{reasons:?}");
    assert!(reasons.contains(&"SuccessfulDelete"), "{reasons:?}");
}

#[tokio::test]
async fn rc_replaces_a_deleted_pod() {
    let mut env = Env::start(&[]).await;
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    rcs.create(&PostParams::default(), &rc("nginx", 2, "nginx"))
        .await
        .unwrap();
    let before = env
        .wait_for("2 pods", || async {
            let p = active_pods(&pods, "nginx").await;
            (p.len() == 2).then_some(p)
        })
        .await;
    let victim = before[0].name_any();
    env.kubectl(&["delete", "pod", &victim]);
    let after = env
        .wait_for("a replacement pod", || async {
            let p = active_pods(&pods, "nginx").await;
            (p.len() == 2 && p.iter().all(|p| p.name_any() != victim)).then_some(p)
        })
        .await;
    assert!(after.iter().any(|p| p.name_any() == before[1].name_any()));
}

#[tokio::test]
async fn rc_adopts_orphans_and_releases_pods_that_stop_matching() {
    let mut env = Env::start(&[]).await;
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    pods.create(&PostParams::default(), &pod("orphan", &[("app", "db")]))
        .await
        .unwrap();
    let rc_uid = rcs
        .create(&PostParams::default(), &rc("db", 2, "db"))
        .await
        .unwrap()
        .uid()
        .unwrap();

    // The orphan is adopted and counts: only one pod is created.
    let owned = env
        .wait_for("orphan adopted, 2 pods", || async {
            let p = active_pods(&pods, "db").await;
            let adopted = p
                .iter()
                .any(|p| p.name_any() == "orphan" && owner_uids(p) == [rc_uid.clone()]);
            (adopted && p.len() == 2 && p.iter().all(|p| owner_uids(p) == [rc_uid.clone()]))
                .then_some(p)
        })
        .await;
    assert_eq!(owned.len(), 2);

    // Relabel the orphan: it is released and replaced.
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    env.wait_for("orphan released and replaced", || async {
        let released = pods.get("orphan").await.ok()?;
        let p = active_pods(&pods, "db").await;
        (owner_uids(&released).is_empty()
            && p.len() == 2
            && p.iter().all(|p| owner_uids(p) == [rc_uid.clone()]))
        .then_some(())
    })
    .await;
    // And it stays released and alive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let released = pods.get("orphan").await.unwrap();
    assert!(released.metadata.deletion_timestamp.is_none());
    assert!(owner_uids(&released).is_empty());
}

#[tokio::test]
async fn rc_does_not_overshoot_and_serves_health() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = Env::start(&[]).await;
    // A second controller manager, with leader election and the health
    // server, running no controllers (the first one does the work).
    let args = vec![
        format!("--kubeconfig={}", env.cluster.apiserver.kubeconfig().display()),
        "--bind-address=127.0.0.1".to_string(),
        format!("--secure-port={port}"),
        "--leader-elect=true".to_string(),
        "--controllers=-replicationcontroller,-endpoint,-garbagecollector,-namespace,-nodelifecycle,-taint-eviction-controller,-nodeipam,-podgc".to_string(),
    ];
    let mut health = ComponentProcess::start(
        "kube-controller-manager",
        "controller-manager-health",
        env.cluster.apiserver.dir(),
        &args,
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    env.wait_for("/healthz", || async {
        e2e_tests::apiserver::http_get_ok(&base, "/healthz").then_some(())
    })
    .await;
    assert!(health.alive(), "{}", health.log());
    // It took the leader lease.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = env.api("kube-system");
    env.wait_for("leader lease", || async {
        leases.get("kube-controller-manager").await.ok().map(|_| ())
    })
    .await;

    // A big RC reaches exactly its count and stays there.
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    rcs.create(&PostParams::default(), &rc("many", 40, "many"))
        .await
        .unwrap();
    env.wait_for("40 pods", || async {
        (active_pods(&pods, "many").await.len() == 40).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = pods
        .list(&ListParams::default().labels("app=many"))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 40);
    let _ = rcs.delete("many", &DeleteParams::default()).await;
}

// ---------------------------------------------------------------------------
// Garbage collector
// ---------------------------------------------------------------------------

/// Every pod with label app=`app`, terminating or not.
async fn all_pods(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

#[tokio::test]
async fn deleting_an_rc_deletes_its_pods() {
    let mut env = Env::start(&[]).await;
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    rcs.create(&PostParams::default(), &rc("bg", 3, "bg"))
        .await
        .unwrap();
    env.wait_for("3 pods", || async {
        (active_pods(&pods, "bg").await.len() == 3).then_some(())
    })
    .await;
    // kubectl deletes with propagationPolicy Background and waits.
    env.kubectl(&["delete", "rc", "bg"]);
    env.wait_for("pods collected", || async {
        all_pods(&pods, "bg").await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_removes_pods_then_the_rc() {
    let mut env = Env::start(&[]).await;
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    rcs.create(&PostParams::default(), &rc("fg", 2, "fg"))
        .await
        .unwrap();
    env.wait_for("2 pods", || async {
        (active_pods(&pods, "fg").await.len() == 2).then_some(())
    })
    .await;
    env.kubectl(&["delete", "rc", "fg", "--cascade=foreground", "--wait=false"]);
    env.wait_for("pods and rc gone", || async {
        let rc_gone = matches!(rcs.get_opt("fg").await, Ok(None));
        (rc_gone && all_pods(&pods, "fg").await.is_empty()).then_some(())
    })
    .await;
}

/// Needs the apiserver to honour propagationPolicy Orphan (the `orphan`
/// finalizer); with Background semantics the pods are deleted.
#[tokio::test]
async fn orphan_deletion_keeps_pods_without_owner() {
    let mut env = Env::start(&[]).await;
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    rcs.create(&PostParams::default(), &rc("keep", 2, "keep"))
        .await
        .unwrap();
    let before = env
        .wait_for("2 pods", || async {
            let p = active_pods(&pods, "keep").await;
            (p.len() == 2).then_some(p)
        })
        .await;
    env.kubectl(&["delete", "rc", "keep", "--cascade=orphan"]);
    env.wait_for("rc gone, pods orphaned", || async {
        let rc_gone = matches!(rcs.get_opt("keep").await, Ok(None));
        let p = active_pods(&pods, "keep").await;
        (rc_gone && p.len() == 2 && p.iter().all(|p| owner_uids(p).is_empty())).then_some(())
    })
    .await;
    // Still there a moment later, the same pods.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut names: Vec<String> = active_pods(&pods, "keep")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    let mut expected: Vec<String> = before.iter().map(|p| p.name_any()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn dependents_of_any_kind_follow_their_owner() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let mut env = Env::start(&[]).await;
    let cms: Api<ConfigMap> = env.api("default");
    let owner = cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "owner"}, "data": {"a": "1"}})),
        )
        .await
        .unwrap();
    let child = |name: &str, uid: &str| -> ConfigMap {
        obj(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}))
    };
    cms.create(
        &PostParams::default(),
        &child("child", &owner.uid().unwrap()),
    )
    .await
    .unwrap();
    // A dependent whose owner never existed is collected too.
    cms.create(
        &PostParams::default(),
        &child("stray", "00000000-0000-0000-0000-000000000000"),
    )
    .await
    .unwrap();
    env.wait_for("stray collected", || async {
        matches!(cms.get_opt("stray").await, Ok(None)).then_some(())
    })
    .await;
    assert!(cms.get_opt("child").await.unwrap().is_some());
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    env.wait_for("child collected", || async {
        matches!(cms.get_opt("child").await, Ok(None)).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

#[tokio::test]
async fn endpoints_follow_readiness_and_named_target_ports() {
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    let mut env = Env::start(&[]).await;
    let svcs: Api<Service> = env.api("default");
    let eps: Api<Endpoints> = env.api("default");
    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    svcs.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
        ),
    )
    .await
    .unwrap();
    // A Service without selector with hand-made Endpoints: left alone.
    svcs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 5432}]}})),
    )
    .await
    .unwrap();
    let manual = eps
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "manual"},
                "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]})),
        )
        .await
        .unwrap();

    rcs.create(&PostParams::default(), &rc("web", 2, "web"))
        .await
        .unwrap();
    let two = env
        .wait_for("2 pods", || async {
            let p = active_pods(&pods, "web").await;
            (p.len() == 2).then_some(p)
        })
        .await;
    let (a, b) = (two[0].name_any(), two[1].name_any());
    // Pods without an IP are not listed at all.
    env.wait_for("empty Endpoints", || async {
        let ep = eps.get("web").await.ok()?;
        ep.subsets.unwrap_or_default().is_empty().then_some(())
    })
    .await;
    bind(&env.client, "default", &a, "node-a").await;
    bind(&env.client, "default", &b, "node-a").await;
    set_pod_status(&env.client, "default", &a, "10.244.1.10", true).await;
    set_pod_status(&env.client, "default", &b, "10.244.1.11", false).await;

    let ep = env
        .wait_for("one ready, one not ready", || async {
            let ep = eps.get("web").await.ok()?;
            let s = serde_json::to_value(&ep.subsets).ok()?;
            (s[0]["addresses"].as_array().map(Vec::len) == Some(1)
                && s[0]["notReadyAddresses"].as_array().map(Vec::len) == Some(1))
            .then_some(ep)
        })
        .await;
    let s = serde_json::to_value(&ep.subsets).unwrap();
    assert_eq!(s[0]["addresses"][0]["ip"], "10.244.1.10");
    assert_eq!(s[0]["addresses"][0]["nodeName"], "node-a");
    assert_eq!(s[0]["addresses"][0]["targetRef"]["kind"], "Pod");
    assert_eq!(s[0]["addresses"][0]["targetRef"]["name"], a.as_str());
    assert_eq!(s[0]["notReadyAddresses"][0]["ip"], "10.244.1.11");
    // targetPort "http" resolved to the container port of that name.
    assert_eq!(
        s[0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(ep.metadata.labels.unwrap()["tier"], "front");

    set_pod_status(&env.client, "default", &b, "10.244.1.11", true).await;
    env.wait_for("both ready", || async {
        let ep = eps.get("web").await.ok()?;
        let s = serde_json::to_value(&ep.subsets).ok()?;
        (s[0]["addresses"].as_array().map(Vec::len) == Some(2)
            && s[0].get("notReadyAddresses").is_none())
        .then_some(())
    })
    .await;
    set_pod_status(&env.client, "default", &a, "10.244.1.10", false).await;
    env.wait_for("a not ready again", || async {
        let ep = eps.get("web").await.ok()?;
        let s = serde_json::to_value(&ep.subsets).ok()?;
        (s[0]["notReadyAddresses"][0]["ip"] == "10.244.1.10").then_some(())
    })
    .await;

    // The selector-less Service's Endpoints are untouched.
    let still = eps.get("manual").await.unwrap();
    assert_eq!(
        still.metadata.resource_version,
        manual.metadata.resource_version
    );

    // Deleting the Service deletes its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    env.wait_for("Endpoints deleted", || async {
        matches!(eps.get_opt("web").await, Ok(None)).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------
// Namespace
// ---------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_namespace_removes_its_content_then_itself() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
    let mut env = Env::start(&[]).await;
    env.kubectl(&["create", "namespace", "team"]);
    let rcs: Api<ReplicationController> = env.api("team");
    let pods: Api<Pod> = env.api("team");
    let cms: Api<ConfigMap> = env.api("team");
    let svcs: Api<Service> = env.api("team");
    rcs.create(&PostParams::default(), &rc("app", 2, "app"))
        .await
        .unwrap();
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "settings"}, "data": {"k": "v"}})),
    )
    .await
    .unwrap();
    svcs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "app"},
            "spec": {"selector": {"app": "app"}, "ports": [{"port": 80}]}})),
    )
    .await
    .unwrap();
    env.wait_for("2 pods", || async {
        (active_pods(&pods, "app").await.len() == 2).then_some(())
    })
    .await;

    env.kubectl(&["delete", "namespace", "team", "--wait=false"]);
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    env.wait_for("namespace gone", || async {
        matches!(namespaces.get_opt("team").await, Ok(None)).then_some(())
    })
    .await;
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(rcs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(svcs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    // The name can be used again.
    env.kubectl(&["create", "namespace", "team"]);
}

// ---------------------------------------------------------------------------
// Node IPAM
// ---------------------------------------------------------------------------

async fn create_node(client: &Client, name: &str, spec: Value) {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name}, "spec": spec})),
        )
        .await
        .expect("create node");
}

async fn pod_cidrs(client: &Client) -> BTreeMap<String, (Option<String>, Vec<String>)> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| {
            let spec = n.spec.clone().unwrap_or_default();
            (
                n.name_any(),
                (spec.pod_cidr, spec.pod_cidrs.unwrap_or_default()),
            )
        })
        .collect()
}

#[tokio::test]
async fn node_ipam_gives_each_node_its_own_subnet() {
    let mut env = Env::cluster().await;
    let client = env.client.clone();
    // A node that already has a subnet before the controller starts.
    create_node(
        &client,
        "old",
        json!({"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}),
    )
    .await;
    let flags = [
        "--allocate-node-cidrs",
        "--cluster-cidr=10.244.0.0/16",
        "--node-cidr-mask-size=24",
    ];
    env.start_cm(&flags);
    for n in ["n1", "n2", "n3"] {
        create_node(&client, n, json!({})).await;
    }
    let all_set = |want: usize| {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move {
                let m = pod_cidrs(&client).await;
                (m.len() == want && m.values().all(|(c, cs)| c.is_some() && cs.len() == 1))
                    .then_some(m)
            }
        }
    };
    let m = env.wait_for("every node has a podCIDR", all_set(4)).await;
    let mut seen = std::collections::BTreeSet::new();
    for (name, (cidr, cidrs)) in &m {
        let cidr = cidr.clone().unwrap();
        assert_eq!(cidrs, &vec![cidr.clone()], "{name}");
        assert!(
            cidr.starts_with("10.244.") && cidr.ends_with("/24"),
            "{name}: {cidr}"
        );
        assert!(seen.insert(cidr.clone()), "{cidr} given twice");
    }
    assert_eq!(m["old"].0.as_deref(), Some("10.244.0.0/24"));

    // A deleted node's subnet is released; a restarted controller rebuilds
    // its view from the nodes and still never hands out a used subnet.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes.delete("n2", &DeleteParams::default()).await.unwrap();
    env.start_cm(&flags);
    for n in ["n4", "n5"] {
        create_node(&client, n, json!({})).await;
    }
    let m = env.wait_for("new nodes have podCIDRs", all_set(5)).await;
    let cidrs: Vec<String> = m.values().map(|(c, _)| c.clone().unwrap()).collect();
    let unique: std::collections::BTreeSet<&String> = cidrs.iter().collect();
    assert_eq!(unique.len(), cidrs.len(), "duplicates in {cidrs:?}");
}

// ---------------------------------------------------------------------------
// Node lifecycle and taint eviction
// ---------------------------------------------------------------------------

async fn post_node_ready(client: &Client, name: &str) {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "message": "kubelet is posting ready status",
        "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("post node status");
}

/// Create or renew a node's Lease in kube-node-lease, as a kubelet does.
async fn renew_lease(client: &Client, name: &str) {
    use k8s_openapi::api::coordination::v1::Lease;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    if leases.get_opt(name).await.expect("get lease").is_none() {
        let lease: Lease = obj(json!({"metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}));
        leases
            .create(&PostParams::default(), &lease)
            .await
            .expect("create lease");
    } else {
        let patch = json!({"spec": {"renewTime": now}});
        leases
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("renew lease");
    }
}

fn node_taints(n: &k8s_openapi::api::core::v1::Node) -> Vec<(String, String)> {
    n.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .map(|t| (t.key.clone(), t.effect.clone()))
        .collect()
}

fn node_ready(
    n: &k8s_openapi::api::core::v1::Node,
) -> Option<(String, Option<String>, Option<String>)> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn unreachable_node_is_tainted_and_its_pods_are_evicted_and_replaced() {
    let mut env = Env::start(&["--node-monitor-grace-period=4s", "--node-monitor-period=1s"]).await;
    let client = env.client.clone();
    for n in ["healthy", "dying"] {
        create_node(&client, n, json!({})).await;
        post_node_ready(&client, n).await;
        renew_lease(&client, n).await;
    }
    // The healthy node's kubelet keeps renewing; the dying one stops now.
    let renewer = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                renew_lease(&client, "healthy").await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    let rcs: Api<ReplicationController> = env.api("default");
    let pods: Api<Pod> = env.api("default");
    let mut spec = rc("evict", 2, "evict");
    let tolerations = json!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]);
    spec.spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .tolerations = Some(serde_json::from_value(tolerations).unwrap());
    rcs.create(&PostParams::default(), &spec).await.unwrap();
    let first = env
        .wait_for("2 pods", || async {
            let p = active_pods(&pods, "evict").await;
            (p.len() == 2).then_some(p)
        })
        .await;
    for (i, p) in first.iter().enumerate() {
        bind(&client, "default", &p.name_any(), "dying").await;
        set_pod_status(
            &client,
            "default",
            &p.name_any(),
            &format!("10.244.9.{}", i + 2),
            true,
        )
        .await;
    }
    let old: Vec<String> = first.iter().map(|p| p.name_any()).collect();

    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node = env
        .wait_for("dying node Unknown and tainted unreachable", || async {
            let n = nodes.get("dying").await.ok()?;
            let ready = node_ready(&n)?;
            let tainted = node_taints(&n)
                .contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into()));
            (ready.0 == "Unknown" && tainted).then_some(n)
        })
        .await;
    let ready = node_ready(&node).unwrap();
    assert_eq!(ready.1.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.2.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    // Its pods were marked not ready, then evicted after their 2s
    // toleration; the RC made new ones (nothing schedules them here).
    env.wait_for("old pods evicted, 2 new pods", || async {
        let all = all_pods(&pods, "evict").await;
        let evicted = old.iter().all(|name| {
            all.iter().any(|p| {
                p.name_any() == *name
                    && p.metadata.deletion_timestamp.is_some()
                    && p.status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .any(|c| c.type_ == "Ready" && c.status == "False")
            }) || !all.iter().any(|p| p.name_any() == *name)
        });
        let fresh = all
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && !old.contains(&p.name_any()))
            .count();
        (evicted && fresh == 2).then_some(())
    })
    .await;
    let disrupted = all_pods(&pods, "evict")
        .await
        .into_iter()
        .filter(|p| old.contains(&p.name_any()))
        .all(|p| {
            p.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.reason.as_deref() == Some("DeletionByTaintManager")
                })
        });
    assert!(
        disrupted,
        "evicted pods carry the DisruptionTarget condition"
    );

    // The healthy node was left alone.
    let healthy = nodes.get("healthy").await.unwrap();
    assert_eq!(node_ready(&healthy).unwrap().0, "True");
    assert!(!node_taints(&healthy).iter().any(|(_, e)| e == "NoExecute"));

    // The dying node comes back: its NoExecute taint goes.
    renew_lease(&client, "dying").await;
    post_node_ready(&client, "dying").await;
    env.wait_for("taint removed", || async {
        let n = nodes.get("dying").await.ok()?;
        (!node_taints(&n).iter().any(|(_, e)| e == "NoExecute")).then_some(())
    })
    .await;
    renewer.abort();
}
