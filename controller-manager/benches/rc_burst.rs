//! Benchmark: how long a ReplicationController of N replicas (default
//! 1,000) takes to have all its pods created, against a real etcd +
//! kube-apiserver and the kube-controller-manager binary, both from the
//! same target directory and profile as this program:
//! `cargo build --release -p apiserver -p controller-manager --bins`, then
//! `cargo bench -p controller-manager --bench rc_burst [-- N [runs]]`
//! (or `--profile dev` with debug binaries).
//! Prints one row per run: seconds to the first pod, to all pods, and the
//! creation rate. Only pods are created: nothing schedules or runs them.

use std::time::{Duration, Instant};

use e2e_tests::apiserver::TestCluster;
use e2e_tests::component::ComponentProcess;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::Api;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let cluster = TestCluster::start()?;
    let client = cluster.apiserver.client().await?;
    let cm_args = vec![
        format!("--kubeconfig={}", cluster.apiserver.kubeconfig().display()),
        "--secure-port=0".to_string(),
        "--leader-elect=false".to_string(),
    ];
    let _cm = ComponentProcess::start(
        "kube-controller-manager",
        "controller-manager",
        cluster.apiserver.dir(),
        &cm_args,
    )?;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("| run | replicas | first pod (s) | all pods (s) | pods/s |");
    println!("|---|---|---|---|---|");
    for run in 1..=runs {
        let app = format!("burst{run}");
        let rv = pods
            .list(&ListParams::default().limit(1))
            .await?
            .metadata
            .resource_version
            .unwrap_or_default();
        let mut watch = pods
            .watch(&WatchParams::default().labels(&format!("app={app}")), &rv)
            .await?
            .boxed();
        let rc: ReplicationController = serde_json::from_value(json!({
            "metadata": {"name": app},
            "spec": {"replicas": n, "selector": {"app": app},
                "template": {"metadata": {"labels": {"app": app}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        }))?;
        let start = Instant::now();
        rcs.create(&PostParams::default(), &rc).await?;
        let mut seen = 0usize;
        let mut first = None;
        while seen < n {
            match tokio::time::timeout(Duration::from_secs(120), watch.next()).await {
                Ok(Some(Ok(WatchEvent::Added(_)))) => {
                    seen += 1;
                    first.get_or_insert_with(|| start.elapsed());
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => anyhow::bail!("watch: {e}"),
                Ok(None) => anyhow::bail!("watch ended after {seen} pods"),
                Err(_) => anyhow::bail!("no pod for 120s after {seen} pods"),
            }
        }
        let all = start.elapsed();
        println!(
            "| {run} | {n} | {:.3} | {:.2} | {:.0} |",
            first.unwrap_or_default().as_secs_f64(),
            all.as_secs_f64(),
            n as f64 / all.as_secs_f64()
        );
        // Clean up (the garbage collector deletes the pods) before the next run.
        rcs.delete(&app, &DeleteParams::background()).await?;
        let deadline = Instant::now() + Duration::from_secs(300);
        while !pods
            .list(&ListParams::default().labels(&format!("app={app}")).limit(1))
            .await?
            .items
            .is_empty()
        {
            anyhow::ensure!(Instant::now() < deadline, "pods of {app} not collected");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}
