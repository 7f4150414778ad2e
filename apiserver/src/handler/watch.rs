//! WATCH: a chunked stream of `{"type": ..., "object": ...}` lines from the
//! watch cache, filtered per watcher, with BOOKMARKs and a timeout.
//!
//! An object that stops matching the filter is sent as DELETED, one that
//! starts matching as ADDED, as upstream does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{header, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::codec::Output;
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::storage::EventKind;
use crate::table;
use crate::watch_cache::CacheEvent;
use futures::stream::BoxStream;
use futures::StreamExt;

use super::filter::Filter;
use super::Ctx;

/// How often an idle watch with allowWatchBookmarks gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// Without timeoutSeconds, upstream ends watches after 30-60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How each event's object is rendered for this watcher.
#[derive(Clone, Copy)]
struct Render {
    output: Output,
    include: table::IncludeObject,
}

impl Render {
    fn object(&self, info: &ResourceInfo, obj: Value, first: bool) -> Value {
        match self.output {
            Output::Table { v1beta1 } => table::table(
                info,
                [table::Source::Tree(obj)],
                json!({}),
                self.include,
                v1beta1,
                first,
            ),
            Output::Metadata { v1beta1 } => table::partial_metadata(&obj, v1beta1),
            _ => obj,
        }
    }
}

pub(crate) async fn watch(ctx: &Ctx<'_>, name: Option<&str>) -> ApiResult<Response> {
    let filter = Filter::from_ctx(ctx, name)?;
    let rv = ctx.query.resource_version()?;
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let initial_events = ctx.query.flag("sendInitialEvents");
    let timeout = ctx
        .query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let prefix = ctx.key_prefix();

    // rv unset or "0": start with the current state (ADDED events); unset is
    // consistent, so wait for the cache to reach the store's revision first.
    // An explicit revision: events after it. sendInitialEvents=true adds the
    // state at that revision followed by a marked BOOKMARK.
    let from = match rv {
        None | Some(0) => {
            if rv.is_none() {
                let current = ctx.api.store.current_revision().await?;
                let _ = ctx.api.cache.wait_for(current).await;
            }
            None
        }
        Some(r) if initial_events => {
            ctx.api.cache.wait_for(r).await?;
            None
        }
        Some(r) => {
            ctx.api.cache.wait_for(r).await?;
            Some(r)
        }
    };
    let (replay, source, start_rv) = match ctx.api.cache.subscribe(&prefix, from) {
        Ok(sub) => (sub.replay, Source::Cache(sub.live), sub.revision),
        // Older than the cache's history: the store may still have it (a
        // restarted apiserver, a long-disconnected client). If it does not,
        // the stream's first item is the 410, sent as an ERROR event.
        Err(e) if e.code == 410 => {
            let rv = from.unwrap_or(0);
            match ctx.api.store.watch(&prefix, rv + 1).await {
                Ok(stream) => (Vec::new(), Source::Store(stream), rv),
                Err(_) => return Ok(error_stream(&e)),
            }
        }
        Err(e) => return Err(e),
    };

    let render = Render {
        output: ctx.output,
        include: table::IncludeObject::parse(ctx.query.get("includeObject")),
    };
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let info = ctx.info;
    let initial_end = initial_events && bookmarks;
    tokio::spawn(async move {
        let mut w = Watcher {
            info,
            prefix,
            filter,
            render,
            tx,
            last_rv: start_rv,
            first: true,
        };
        for ev in &replay {
            if !w.send_event(ev).await {
                return;
            }
        }
        w.last_rv = w.last_rv.max(start_rv);
        if initial_end && !w.bookmark(true).await {
            return;
        }
        w.run(source, bookmarks, timeout).await;
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, crate::codec::JSON)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .expect("valid response"))
}

fn error_stream(e: &crate::error::ApiError) -> Response {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.status()})).unwrap_or_default();
    line.push(b'\n');
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, crate::codec::JSON)
        .body(Body::from(line))
        .expect("valid response")
}

/// Where live events come from.
enum Source {
    Cache(broadcast::Receiver<Arc<CacheEvent>>),
    Store(BoxStream<'static, Result<crate::storage::WatchEvent, crate::storage::StoreError>>),
}

impl Source {
    /// The next event. `Err(Some(e))`: tell the client `e`, then end;
    /// `Err(None)`: end (the client resumes from its last resourceVersion).
    async fn next(&mut self) -> Result<Arc<CacheEvent>, Option<ApiError>> {
        match self {
            // Lagged or closed (the cache re-listed): end the watch.
            Source::Cache(rx) => rx.recv().await.map_err(|_| None),
            Source::Store(stream) => loop {
                match stream.next().await {
                    Some(Ok(ev)) => match crate::watch_cache::from_store_event(&ev) {
                        Some(e) => return Ok(Arc::new(e)),
                        None => continue,
                    },
                    Some(Err(e)) => return Err(Some(ApiError::from(e))),
                    None => return Err(None),
                }
            },
        }
    }
}

struct Watcher {
    info: &'static ResourceInfo,
    /// The cache broadcasts every key's events: only this prefix concerns
    /// this watch.
    prefix: String,
    filter: Filter,
    render: Render,
    tx: mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    last_rv: i64,
    first: bool,
}

impl Watcher {
    async fn run(&mut self, mut source: Source, bookmarks: bool, timeout: Duration) {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        let mut bookmarked = self.last_rv;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if self.last_rv > bookmarked {
                        if !self.bookmark(false).await { return; }
                        bookmarked = self.last_rv;
                    }
                }
                ev = source.next() => match ev {
                    Ok(ev) => {
                        if ev.revision <= self.last_rv { continue; }
                        if !ev.key.starts_with(&self.prefix) {
                            // Still this watch's progress, for bookmarks.
                            self.last_rv = ev.revision;
                            continue;
                        }
                        if !self.send_event(&ev).await { return; }
                        self.last_rv = ev.revision;
                    }
                    Err(Some(e)) => {
                        let _ = self.send("ERROR", e.status()).await;
                        return;
                    }
                    Err(None) => return,
                },
            }
        }
    }

    /// Send one event if it concerns this watcher. False once the client is gone.
    async fn send_event(&mut self, ev: &CacheEvent) -> bool {
        let now = self.filter.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.filter.matches(p));
        let kind = match ev.kind {
            EventKind::Created if now => "ADDED",
            EventKind::Modified if now && before => "MODIFIED",
            EventKind::Modified if now => "ADDED",
            EventKind::Modified if before => "DELETED",
            EventKind::Deleted if now => "DELETED",
            _ => return true,
        };
        if matches!(
            self.render.output,
            Output::Json | Output::Yaml | Output::Protobuf
        ) {
            // The object as it is: one serialisation shared by every watcher.
            let mut line = Vec::with_capacity(ev.object.json().len() + 32);
            line.extend_from_slice(b"{\"type\":\"");
            line.extend_from_slice(kind.as_bytes());
            line.extend_from_slice(b"\",\"object\":");
            line.extend_from_slice(ev.object.json());
            line.extend_from_slice(b"}\n");
            return self.tx.send(Ok(line)).await.is_ok();
        }
        let object = self.render.object(self.info, ev.object.value(), self.first);
        self.first = false;
        self.send(kind, object).await
    }

    async fn bookmark(&mut self, initial_end: bool) -> bool {
        let mut metadata = json!({"resourceVersion": self.last_rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.info.kind,
            "apiVersion": self.info.api_version(),
            "metadata": metadata,
        });
        self.send("BOOKMARK", object).await
    }

    async fn send(&self, kind: &str, object: Value) -> bool {
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        self.tx.send(Ok(line)).await.is_ok()
    }
}
