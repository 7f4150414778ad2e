//! /healthz, /livez, /readyz and /metrics. Like component_base::serve_health,
//! except that /readyz answers 503 until the first full list of Services
//! and Endpoints has arrived (CoreDNS's `ready` plugin does the same).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// Serve on `addr` in the background; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<SocketAddr> {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::Acquire) {
                    (StatusCode::OK, "ok")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "waiting for the first list of Services and Endpoints",
                    )
                }
            }),
        )
        .route("/metrics", get(move || async move { metrics(&registry) }));
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

fn metrics(registry: &Registry) -> impl IntoResponse {
    let mut body = String::new();
    match encode(&mut body, registry) {
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
