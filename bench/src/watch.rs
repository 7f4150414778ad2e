//! Phase 4: watch fan-out. Many concurrent pod watches (one HTTP/1
//! connection each), then one write; how long until every watcher saw it.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::timeout_at;

use crate::machine::Pids;
use crate::pods;
use crate::report::Row;
use crate::stats::{ms, Summary};

const NAMESPACE: &str = "bench-watch";
const TARGET_PREFIX: &str = "watch-target-";
/// Watches being opened at once (each is a new TCP connection).
const OPEN_CONCURRENCY: usize = 100;
const OPEN_LIMIT: Duration = Duration::from_secs(120);
const DELIVERY_LIMIT: Duration = Duration::from_secs(30);
/// Server-side end of each watch; the benchmark is over long before.
const WATCH_SECONDS: u32 = 600;
const SETTLE: Duration = Duration::from_millis(500);

pub struct Settings {
    pub watchers: usize,
    /// Writes, one after another, each awaited by every watcher.
    pub rounds: usize,
}

/// A watcher saw the target pod of `round` at `at`.
struct Seen {
    round: usize,
    at: Instant,
}

pub async fn run(client: &kube::Client, pids: Pids, s: &Settings) -> Result<Vec<Row>> {
    pods::ensure_namespace(client, NAMESPACE).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let rv = api
        .list(&ListParams::default().limit(1))
        .await
        .context("list pods for the current resourceVersion")?
        .metadata
        .resource_version
        .context("LIST answer has no resourceVersion")?;

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
    let permits = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let opening = Instant::now();
    let tasks: Vec<JoinHandle<()>> = (0..s.watchers)
        .map(|_| {
            tokio::spawn(watcher(
                client.clone(),
                rv.clone(),
                permits.clone(),
                ready_tx.clone(),
                seen_tx.clone(),
            ))
        })
        .collect();
    let result = async {
        let (ready, open_errors) =
            await_ready(&mut ready_rx, s.watchers, opening + OPEN_LIMIT).await;
        let open_time = opening.elapsed();
        anyhow::ensure!(
            ready > 0,
            "no watch opened: {}",
            open_errors.unwrap_or_default()
        );
        eprintln!("  {ready} watches open in {} ms", ms(open_time));
        tokio::time::sleep(SETTLE).await;

        let mut rows = vec![Row::info(
            format!(
                "Open {} pod watches ({OPEN_CONCURRENCY} at a time)",
                s.watchers
            ),
            format!(
                "{ready} open in {} ms{}",
                ms(open_time),
                open_errors
                    .map(|e| format!("; failed: {e}"))
                    .unwrap_or_default()
            ),
        )];
        let before = pids.cpu();
        let mut all = Vec::new();
        for round in 0..s.rounds {
            let (row, mut delivered) = deliver_one(&api, round, ready, &mut seen_rx).await?;
            rows.push(row);
            all.append(&mut delivered);
            tokio::time::sleep(SETTLE).await;
        }
        let after = pids.cpu();
        if let Some(summary) = Summary::of(&mut all) {
            rows.push(Row::info(
                format!(
                    "Watch delivery, all {} rounds: per-watcher latency",
                    s.rounds
                ),
                format!("p50/p90/p99/max {}", summary.line()),
            ));
        }
        rows.push(Row::info(
            "CPU, fan-out (op = one write seen by every watcher)",
            after.per_op_since(&before, s.rounds),
        ));
        Ok(rows)
    }
    .await;
    for task in tasks {
        // Dropping each stream closes its connection.
        task.abort();
    }
    result
}

/// Counts watches whose response headers arrived (the server subscribed them).
async fn await_ready(
    ready_rx: &mut mpsc::UnboundedReceiver<Result<(), String>>,
    watchers: usize,
    deadline: Instant,
) -> (usize, Option<String>) {
    let (mut ready, mut failed, mut first_error) = (0, 0, None);
    while ready + failed < watchers {
        match timeout_at(deadline.into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let missing = watchers - ready;
    let errors = (missing > 0).then(|| {
        format!(
            "{missing} of {watchers} (first error: {})",
            first_error.unwrap_or_else(|| "timed out".into())
        )
    });
    (ready, errors)
}

/// Creates round `round`'s pod and waits until `ready` watchers saw it.
async fn deliver_one(
    api: &Api<Pod>,
    round: usize,
    ready: usize,
    seen_rx: &mut mpsc::UnboundedReceiver<Seen>,
) -> Result<(Row, Vec<Duration>)> {
    let written = Instant::now();
    pods::create(api, NAMESPACE, &format!("{TARGET_PREFIX}{round}")).await?;
    let create_latency = written.elapsed();
    let mut delivered = Vec::with_capacity(ready);
    let deadline = written + DELIVERY_LIMIT;
    while delivered.len() < ready {
        match timeout_at(deadline.into(), seen_rx.recv()).await {
            Ok(Some(seen)) if seen.round == round => {
                delivered.push(seen.at.saturating_duration_since(written))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let mut latencies = delivered.clone();
    let result = match Summary::of(&mut latencies) {
        Some(summary) => format!(
            "all {} seen {} ms after the write began (create answered in {} ms); per watcher p50/p90/p99/max {}{}",
            summary.count,
            ms(summary.max),
            ms(create_latency),
            summary.line(),
            if summary.count < ready {
                format!("; {} watchers never saw it", ready - summary.count)
            } else {
                String::new()
            }
        ),
        None => format!("no watcher saw the write in {DELIVERY_LIMIT:?}"),
    };
    Ok((
        Row::info(
            format!("Watch fan-out, write {} to {ready} watchers", round + 1),
            result,
        ),
        delivered,
    ))
}

/// One watch on its own connection; reports when it is open and when it
/// sees each target pod's ADDED event.
async fn watcher(
    client: kube::Client,
    rv: String,
    permits: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let opened = {
        let _permit = permits.acquire().await;
        let uri = format!(
            "/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={rv}&timeoutSeconds={WATCH_SECONDS}"
        );
        match http::Request::get(uri).body(Vec::new()) {
            Ok(request) => client
                .request_stream(request)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    let body = match opened {
        Ok(body) => body,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut lines = pin!(body.lines());
    while let Some(Ok(line)) = lines.next().await {
        let at = Instant::now();
        if let Some(round) = target_round(&line) {
            if seen.send(Seen { round, at }).is_err() {
                return;
            }
        }
    }
}

/// The round of an ADDED event for a target pod, or `None` for any other line.
fn target_round(line: &str) -> Option<usize> {
    // Cheap check first: most lines are not targets.
    if !line.contains(TARGET_PREFIX) {
        return None;
    }
    let event: Value = serde_json::from_str(line).ok()?;
    if event["type"] != "ADDED" {
        return None;
    }
    event["object"]["metadata"]["name"]
        .as_str()?
        .strip_prefix(TARGET_PREFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_target_events() {
        let added = r#"{"type":"ADDED","object":{"metadata":{"name":"watch-target-12"}}}"#;
        assert_eq!(target_round(added), Some(12));
        let modified = r#"{"type":"MODIFIED","object":{"metadata":{"name":"watch-target-1"}}}"#;
        assert_eq!(target_round(modified), None);
        let other = r#"{"type":"ADDED","object":{"metadata":{"name":"web-1"}}}"#;
        assert_eq!(target_round(other), None);
        assert_eq!(target_round("watch-target-1 not json"), None);
    }

    #[tokio::test]
    async fn await_ready_reports_missing_watchers() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(Ok(())).expect("send");
        tx.send(Err("refused".to_string())).expect("send");
        drop(tx);
        let (ready, errors) =
            await_ready(&mut rx, 3, Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(ready, 1);
        assert_eq!(errors.as_deref(), Some("2 of 3 (first error: refused)"));
    }
}
