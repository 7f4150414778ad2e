//! The small HTTP server every component runs beside its work: /healthz,
//! /livez, /readyz and Prometheus /metrics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// Serve health and metrics on `addr` (port 0 picks a free port) in the
/// background; returns the bound address.
pub async fn serve_health(addr: SocketAddr, registry: Registry) -> anyhow::Result<SocketAddr> {
    serve_health_with_readiness(addr, registry, Arc::new(AtomicBool::new(true))).await
}

/// The same, with /readyz answering 503 until `ready` is set (e.g. after a
/// component's first full list).
pub async fn serve_health_with_readiness(
    addr: SocketAddr,
    registry: Registry,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<SocketAddr> {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::Acquire) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { metrics(&registry) }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen on {addr} for /healthz and /metrics"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    Ok(bound)
}

async fn ok() -> &'static str {
    "ok"
}

fn metrics(registry: &Registry) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn healthz_and_metrics() {
        let mut registry = Registry::default();
        let syncs: Counter = Counter::default();
        registry.register("syncs", "Syncs done", syncs.clone());
        syncs.inc_by(3);
        let addr = serve_health("127.0.0.1:0".parse().unwrap(), registry)
            .await
            .unwrap();
        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.0 200"), "{health}");
        assert!(health.ends_with("ok"));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.contains("syncs_total 3"), "{metrics}");
        assert!(get(addr, "/nope").await.contains(" 404 "));
    }
}
