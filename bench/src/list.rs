//! Phase 3: LIST of many pods: consistent (no resourceVersion), from the
//! watch cache (resourceVersion=0), paginated, and as a kubectl Table.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;

use crate::load::closed_loop;
use crate::machine::Pids;
use crate::pods;
use crate::report::Row;
use crate::stats::{bytes, ms, rate};
use crate::throughput::outcome_line;

const NAMESPACE: &str = "bench-list";
const FILL_LIMIT: Duration = Duration::from_secs(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Repetitions of each LIST; the median is reported.
const REPEATS: usize = 3;
const PAGE: usize = 500;
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

pub struct Settings {
    pub count: usize,
    pub workers: usize,
}

/// One way of listing.
#[derive(Clone, Copy)]
enum Mode {
    Consistent,
    WatchCache,
    Paginated,
    Table,
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Consistent => "resourceVersion unset (consistent)".into(),
            Mode::WatchCache => "resourceVersion=0 (watch cache)".into(),
            Mode::Paginated => format!("limit={PAGE} pages, resourceVersion unset"),
            Mode::Table => "as Table (kubectl get), resourceVersion unset".into(),
        }
    }
}

/// What one LIST returned.
struct Listed {
    elapsed: Duration,
    items: usize,
    bytes: usize,
    requests: usize,
}

pub async fn run(client: &kube::Client, pids: Pids, s: &Settings) -> Result<Vec<Row>> {
    pods::ensure_namespace(client, NAMESPACE).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let before = pids.cpu();
    let fill = closed_loop(s.count, s.workers, FILL_LIMIT, move |i| {
        let api = api.clone();
        async move { pods::create(&api, NAMESPACE, &format!("list-{i}")).await }
    })
    .await;
    let after_fill = pids.cpu();
    fill.require_some("creating pods to list")?;
    eprintln!(
        "  created {} pods: {:.0}/s",
        fill.ok,
        rate(fill.ok, fill.elapsed)
    );

    let mut rows = vec![
        Row::info(
            format!("Create {} pods to list, {} concurrent", s.count, s.workers),
            outcome_line(&fill),
        ),
        Row::info(
            "CPU, creates to list",
            after_fill.per_op_since(&before, fill.ok),
        ),
    ];
    // The apiserver's memory with these pods stored (the store target), once
    // the creates have settled and before any LIST allocates big answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored = pods::count_all(client).await.unwrap_or(0);
    rows.push(crate::machine::memory_row(
        &format!("kube-apiserver memory with {stored} pods stored (VmRSS, peak VmHWM)"),
        Some(pids.apiserver),
    ));
    for mode in [
        Mode::Consistent,
        Mode::WatchCache,
        Mode::Paginated,
        Mode::Table,
    ] {
        let measure = format!("LIST {} pods, {}", fill.ok, mode.label());
        match repeat(client, mode, fill.ok, pids).await {
            Ok(row) => rows.push(Row::info(measure, row)),
            Err(e) => rows.push(Row::failed(&measure, &e)),
        }
    }
    Ok(rows)
}

/// The median of REPEATS lists, with size and the apiserver's CPU per list.
async fn repeat(client: &kube::Client, mode: Mode, expected: usize, pids: Pids) -> Result<String> {
    let mut runs = Vec::with_capacity(REPEATS);
    let before = pids.cpu();
    for _ in 0..REPEATS {
        let listed = tokio::time::timeout(REQUEST_TIMEOUT, list(client, mode))
            .await
            .context("LIST timed out")??;
        anyhow::ensure!(
            listed.items == expected,
            "listed {} items, expected {expected}",
            listed.items
        );
        runs.push(listed);
    }
    let after = pids.cpu();
    runs.sort_by_key(|l| l.elapsed);
    let median = &runs[runs.len() / 2];
    let fastest = &runs[0];
    Ok(format!(
        "{} ms median (min {} ms) of {REPEATS}, {} in {} request(s); apiserver CPU {:.0} ms per list",
        ms(median.elapsed),
        ms(fastest.elapsed),
        bytes(median.bytes as u64),
        median.requests,
        (after.apiserver - before.apiserver) * 1000.0 / REPEATS as f64
    ))
}

/// One full LIST; the time counts requests and bodies, not the parsing
/// this benchmark does afterwards to count items.
async fn list(client: &kube::Client, mode: Mode) -> Result<Listed> {
    let base = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let mut listed = Listed {
        elapsed: Duration::ZERO,
        items: 0,
        bytes: 0,
        requests: 0,
    };
    let mut continue_token: Option<String> = None;
    loop {
        let uri = match (mode, &continue_token) {
            (Mode::Consistent | Mode::Table, _) => base.clone(),
            (Mode::WatchCache, _) => format!("{base}?resourceVersion=0"),
            (Mode::Paginated, None) => format!("{base}?limit={PAGE}"),
            (Mode::Paginated, Some(token)) => format!("{base}?limit={PAGE}&continue={token}"),
        };
        let accept = if matches!(mode, Mode::Table) {
            TABLE
        } else {
            "application/json"
        };
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, accept)
            .body(Vec::new())?;
        let started = Instant::now();
        let text = client.request_text(request).await?;
        listed.elapsed += started.elapsed();
        listed.requests += 1;
        listed.bytes += text.len();
        let body: Value = serde_json::from_str(&text).context("LIST answer is not JSON")?;
        let field = if matches!(mode, Mode::Table) {
            "rows"
        } else {
            "items"
        };
        listed.items += body[field]
            .as_array()
            .with_context(|| format!("LIST answer has no {field}"))?
            .len();
        continue_token = body["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(encode_query_value);
        if continue_token.is_none() || !matches!(mode, Mode::Paginated) {
            return Ok(listed);
        }
    }
}

/// A continue token as a query value (tokens are base64 and may hold `+/=`).
fn encode_query_value(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_are_query_safe() {
        assert_eq!(encode_query_value("abc-_"), "abc-_");
        assert_eq!(encode_query_value("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
