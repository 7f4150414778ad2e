//! Phase 2: latency of pod create and pod get at a fixed open-loop rate.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::load::{open_loop, Outcome};
use crate::machine::Pids;
use crate::pods;
use crate::report::Row;
use crate::server_metrics;
use crate::stats::Summary;
use crate::throughput::server_vs_client;

const NAMESPACE: &str = "bench-lat";
const TARGET_P99: Duration = Duration::from_millis(25);
const OP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Settings {
    pub rate: u32,
    pub duration: Duration,
}

pub async fn run(client: &kube::Client, pids: Pids, s: &Settings) -> Result<Vec<Row>> {
    pods::ensure_namespace(client, NAMESPACE).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);

    let served_start = server_metrics::scrape(client, "POST", "pods").await.ok();
    let before = pids.cpu();
    let created = open_loop(s.rate, s.duration, OP_TIMEOUT, {
        let api = api.clone();
        move |i| {
            let api = api.clone();
            async move { pods::create(&api, NAMESPACE, &format!("lat-{i}")).await }
        }
    })
    .await;
    let after_create = pids.cpu();
    let served_created = server_metrics::scrape(client, "POST", "pods").await.ok();
    let served_get_start = server_metrics::scrape(client, "GET", "pods").await.ok();
    created.require_some("open-loop pod creates")?;

    // Gets cycle over the pods just created.
    let existing = created.ok + created.errors;
    let got = open_loop(s.rate, s.duration, OP_TIMEOUT, {
        let api = api.clone();
        move |i| {
            let api = api.clone();
            async move {
                api.get(&format!("lat-{}", i % existing)).await?;
                Ok(())
            }
        }
    })
    .await;
    let after_get = pids.cpu();
    let served_got = server_metrics::scrape(client, "GET", "pods").await.ok();

    let secs = s.duration.as_secs_f64();
    Ok(vec![
        latency_row(
            &format!("Pod create latency at {}/s open loop, {secs:.0} s", s.rate),
            &created,
        ),
        Row::info(
            "Pod create at fixed rate, mean inside the server vs at the client",
            server_vs_client(served_start, served_created, &created),
        ),
        Row::info(
            "CPU, create at fixed rate",
            after_create.per_op_since(&before, created.ok),
        ),
        latency_row(
            &format!("Pod get latency at {}/s open loop, {secs:.0} s", s.rate),
            &got,
        ),
        Row::info(
            "Pod get at fixed rate, mean inside the server vs at the client",
            server_vs_client(served_get_start, served_got, &got),
        ),
        Row::info(
            "CPU, get at fixed rate",
            after_get.per_op_since(&after_create, got.ok),
        ),
    ])
}

/// p50/p90/p99/max, checked against the p99 target; errors count as misses.
fn latency_row(measure: &str, o: &Outcome) -> Row {
    let mut latencies = o.latencies.clone();
    let Some(summary) = Summary::of(&mut latencies) else {
        return Row::checked(measure, "no successful request", "p99 <= 25 ms", false);
    };
    let mut result = format!("p50/p90/p99/max {}", summary.line());
    if o.errors > 0 {
        result.push_str(&format!(
            ", {} of {} failed (first: {})",
            o.errors,
            o.ok + o.errors,
            o.first_error.as_deref().unwrap_or("?")
        ));
    }
    Row::checked(
        measure,
        result,
        format!("p99 <= {} ms", TARGET_P99.as_millis()),
        summary.p99 <= TARGET_P99 && o.errors == 0,
    )
}
