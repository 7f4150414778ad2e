//! Phase 1: pod creates per second through the apiserver against raw etcd
//! writes of the same bytes, same etcd, same concurrency, in the same run.

use std::time::Duration;

use anyhow::{Context, Result};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::load::{closed_loop, Outcome};
use crate::machine::Pids;
use crate::pods;
use crate::report::Row;
use crate::server_metrics::{self, Served};
use crate::stats::{bytes, rate, Summary};

const NAMESPACE: &str = "bench-tput";
/// The share of raw etcd put throughput the apiserver should reach.
const TARGET_RATIO: f64 = 0.5;
const RUN_LIMIT: Duration = Duration::from_secs(120);

pub struct Settings {
    pub count: usize,
    pub workers: usize,
}

pub async fn run(
    client: &kube::Client,
    etcd: &etcd_client::Client,
    pids: Pids,
    s: &Settings,
) -> Result<Vec<Row>> {
    pods::ensure_namespace(client, NAMESPACE).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);

    // Warm-up: fills the client's connection pool and yields the bytes the
    // apiserver really stores for such a pod.
    let warm = creates(&api, "warm", s.workers, s.workers).await;
    warm.require_some("warm-up pod creates")?;
    let value = match stored_pod(etcd).await {
        Ok(v) => v,
        // The apiserver runs on its embedded store: the pod's JSON is what
        // it stores there.
        Err(_) => serde_json::to_vec(&api.get("warm-0").await?)?,
    };
    eprintln!("  stored pod: {} bytes", value.len());

    let before = pids.cpu();
    let put = closed_loop(s.count, s.workers, RUN_LIMIT, {
        let etcd = etcd.clone();
        let value = value.clone();
        move |i| {
            let mut kv = etcd.kv_client();
            let value = value.clone();
            async move {
                kv.put(format!("/bench-raw/put/{NAMESPACE}/raw-{i}"), value, None)
                    .await?;
                Ok(())
            }
        }
    })
    .await;
    let after_put = pids.cpu();
    put.require_some("raw etcd puts")?;
    eprintln!("  raw etcd put: {:.0}/s", rate(put.ok, put.elapsed));

    let txn = closed_loop(
        s.count,
        s.workers,
        RUN_LIMIT,
        create_txns(etcd, &value, "txn", false),
    )
    .await;
    let after_txn = pids.cpu();
    eprintln!("  raw etcd create txn: {:.0}/s", rate(txn.ok, txn.elapsed));

    // What the apiserver's create does in etcd today: a consistent GET of the
    // namespace (admission), then the create txn.
    let get_txn = closed_loop(
        s.count,
        s.workers,
        RUN_LIMIT,
        create_txns(etcd, &value, "get-txn", true),
    )
    .await;
    let after_get_txn = pids.cpu();
    eprintln!(
        "  raw etcd get + create txn: {:.0}/s",
        rate(get_txn.ok, get_txn.elapsed)
    );

    let served_before = server_metrics::scrape(client, "POST", "pods").await.ok();
    let created = creates(&api, "tput", s.count, s.workers).await;
    let after_create = pids.cpu();
    let served_after = server_metrics::scrape(client, "POST", "pods").await.ok();
    created.require_some("apiserver pod creates")?;
    eprintln!(
        "  apiserver create: {:.0}/s",
        rate(created.ok, created.elapsed)
    );

    let put_rate = rate(put.ok, put.elapsed);
    let create_rate = rate(created.ok, created.elapsed);
    let ratio = if put_rate > 0.0 {
        create_rate / put_rate
    } else {
        0.0
    };
    let label = |what: &str| {
        format!(
            "{what}, {} × {}, {} concurrent",
            s.count,
            bytes(value.len() as u64),
            s.workers
        )
    };
    Ok(vec![
        Row::info(label("Raw etcd put/s"), outcome_line(&put)),
        Row::info(
            label("Raw etcd create-if-absent txn/s (what a create costs in etcd)"),
            outcome_line(&txn),
        ),
        Row::info(
            label("Raw etcd consistent GET + create txn/s (a create that reads its namespace from etcd)"),
            outcome_line(&get_txn),
        ),
        Row::info(
            label("Apiserver pod create/s (kube-rs)"),
            outcome_line(&created),
        ),
        Row::info(
            "Apiserver create, mean time inside the server (its /metrics) vs at the client",
            server_vs_client(served_before, served_after, &created),
        ),
        Row::checked(
            "Apiserver creates / raw etcd puts",
            format!("{:.0}%", ratio * 100.0),
            format!(">= {:.0}%", TARGET_RATIO * 100.0),
            ratio >= TARGET_RATIO,
        ),
        Row::info("CPU, raw etcd put", after_put.per_op_since(&before, put.ok)),
        Row::info(
            "CPU, raw etcd txn",
            after_txn.per_op_since(&after_put, txn.ok),
        ),
        Row::info(
            "CPU, raw etcd GET + txn",
            after_get_txn.per_op_since(&after_txn, get_txn.ok),
        ),
        Row::info(
            "CPU, apiserver create",
            after_create.per_op_since(&after_get_txn, created.ok),
        ),
        Row::info(
            "CPU budget of a create at the target rate on this machine",
            budget_line(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                put_rate,
                after_create.ms_per_op(&after_get_txn, created.ok),
            ),
        ),
    ])
}

/// Create-if-absent txns of `value` under `/bench-raw/<tag>/`, each preceded
/// by a consistent GET of the namespace's key when `read_namespace`.
fn create_txns(
    etcd: &etcd_client::Client,
    value: &[u8],
    tag: &'static str,
    read_namespace: bool,
) -> impl Fn(usize) -> BoxFuture<'static, Result<()>> + Send + Sync + 'static {
    let etcd = etcd.clone();
    let value = value.to_vec();
    move |i| {
        let mut kv = etcd.kv_client();
        let key = format!("/bench-raw/{tag}/{NAMESPACE}/raw-{i}");
        let txn = Txn::new()
            .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), value.clone(), None)]);
        Box::pin(async move {
            if read_namespace {
                // The key is absent when the apiserver uses its embedded
                // store; a consistent read costs etcd the same either way.
                kv.get(format!("/registry/namespaces/{NAMESPACE}"), None)
                    .await?;
            }
            let response = kv.txn(txn).await?;
            anyhow::ensure!(response.succeeded(), "key existed");
            Ok(())
        })
    }
}

/// "server X ms, client Y ms" means per request.
pub fn server_vs_client(before: Option<Served>, after: Option<Served>, o: &Outcome) -> String {
    let server = match (before, after) {
        (Some(b), Some(a)) => a
            .mean_ms_since(&b)
            .map_or("n/a".into(), |m| format!("{m:.2} ms")),
        _ => "n/a (no /metrics)".into(),
    };
    let total: Duration = o.latencies.iter().sum();
    let client = if o.latencies.is_empty() {
        "n/a".into()
    } else {
        format!(
            "{:.2} ms",
            total.as_secs_f64() * 1000.0 / o.latencies.len() as f64
        )
    };
    format!("server {server}, client {client}")
}

/// `count` pod creates named `<prefix>-<i>` on `workers` workers.
async fn creates(api: &Api<Pod>, prefix: &'static str, count: usize, workers: usize) -> Outcome {
    let api = api.clone();
    closed_loop(count, workers, RUN_LIMIT, move |i| {
        let api = api.clone();
        async move { pods::create(&api, NAMESPACE, &format!("{prefix}-{i}")).await }
    })
    .await
}

/// The bytes the apiserver wrote to etcd for warm-up pod 0.
async fn stored_pod(etcd: &etcd_client::Client) -> Result<Vec<u8>> {
    let key = format!("/registry/pods/{NAMESPACE}/warm-0");
    let response = etcd.kv_client().get(key.as_str(), None).await?;
    let kv = response
        .kvs()
        .first()
        .with_context(|| format!("the apiserver stored no {key} in etcd"))?;
    Ok(kv.value().to_vec())
}

/// "N/s (p50 / p90 / p99 / max ms), E errors".
pub fn outcome_line(o: &Outcome) -> String {
    let mut latencies = o.latencies.clone();
    let mut line = format!("{:.0}/s", rate(o.ok, o.elapsed));
    if let Some(summary) = Summary::of(&mut latencies) {
        line.push_str(&format!(" (latency {})", summary.line()));
    }
    if o.errors > 0 {
        line.push_str(&format!(
            ", {} errors (first: {})",
            o.errors,
            o.first_error.as_deref().unwrap_or("?")
        ));
    }
    line
}

/// Whether the target is reachable here at all: at TARGET_RATIO of the raw put
/// rate, all cores give each create `budget` ms of CPU; etcd's share of a
/// create and the client's are spent before the apiserver does anything.
fn budget_line(cores: usize, put_rate: f64, [apiserver, etcd, client]: [f64; 3]) -> String {
    let cores = cores as f64;
    let target_rate = TARGET_RATIO * put_rate;
    if target_rate <= 0.0 {
        return "unknown (no raw put rate)".into();
    }
    let budget = cores * 1000.0 / target_rate;
    format!(
        "{budget:.2} ms of CPU per create ({cores:.0} cores at {target_rate:.0} creates/s); \
         etcd + client used {:.2} ms, leaving {:.2} ms for the apiserver, which used {apiserver:.2} ms",
        etcd + client,
        budget - etcd - client,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_of_a_create() {
        assert_eq!(
            budget_line(2, 10_000.0, [0.27, 0.25, 0.15]),
            "0.40 ms of CPU per create (2 cores at 5000 creates/s); etcd + client used 0.40 ms, \
             leaving 0.00 ms for the apiserver, which used 0.27 ms"
        );
        assert!(budget_line(2, 0.0, [0.0; 3]).starts_with("unknown"));
    }
}
