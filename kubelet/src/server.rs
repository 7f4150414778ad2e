//! The kubelet's server (--port): container logs, exec, the pod list and
//! health. HTTPS with --tls-cert-file (who may use it: server_auth.rs),
//! else plain HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use crate::error::{Error, Result};
use crate::kubelet::Kubelet;
use crate::labels;
use crate::logs::{self, LogOptions};

pub async fn serve(kl: Arc<Kubelet>) -> Result<SocketAddr> {
    let addr = SocketAddr::new(kl.config.address, kl.config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io {
            context: format!("listen on {addr}"),
            source: e,
        })?;
    let bound = listener.local_addr().map_err(|e| Error::Io {
        context: "local address".into(),
        source: e,
    })?;
    let auth = kl.config.server_auth.clone();
    let app = router(kl.clone());
    match &auth.tls {
        Some((cert, key)) => {
            let tls = component_base::tls::server_config(cert, key, auth.client_ca_file.as_deref())
                .map_err(|e| Error::Config(format!("the server's TLS: {e:#}")))?;
            let app = app.layer(axum::middleware::from_fn_with_state(
                kl,
                crate::server_auth::authorize,
            ));
            let authn = Arc::new(crate::server_auth::CertificateAuthenticator {
                anonymous: auth.anonymous,
            });
            tokio::spawn(component_base::tls::serve(app, listener, tls, authn));
        }
        None => {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "kubelet server stopped");
                }
            });
        }
    }
    Ok(bound)
}

fn router(kl: Arc<Kubelet>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(crate::exec::exec).post(crate::exec::exec),
        )
        .with_state(kl)
}

pub fn status_response(code: StatusCode, message: String) -> Response {
    let reason = match code {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::BAD_REQUEST => "BadRequest",
        _ => "InternalError",
    };
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn pods(State(kl): State<Arc<Kubelet>>) -> Response {
    let items: Vec<Pod> = kl.pods.state().iter().map(|p| (**p).clone()).collect();
    let body = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn container_logs(
    State(kl): State<Arc<Kubelet>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(opts): Query<LogOptions>,
) -> Response {
    let Some(pod) = kl
        .pods
        .get(&ObjectRef::<Pod>::new(&pod_name).within(&namespace))
    else {
        return status_response(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod_name} not found"),
        );
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let known = pod.spec.iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .map(|c| c.name.clone())
    });
    if !known.into_iter().any(|n| n == container) {
        return status_response(
            StatusCode::BAD_REQUEST,
            format!("container {container} is not valid for pod {pod_name}"),
        );
    }
    let mut sel = labels::uid_selector(&uid);
    sel.insert(labels::CONTAINER_NAME.into(), container.clone());
    let mut found = match kl.cri.list_containers(sel).await {
        Ok(c) => c,
        Err(e) => return status_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    found.sort_by_key(|c| std::cmp::Reverse((labels::restart_count(&c.annotations), c.created_at)));
    let index = usize::from(opts.previous);
    let Some(c) = found.get(index) else {
        let msg = if opts.previous {
            format!("previous terminated container \"{container}\" in pod \"{pod_name}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod_name}\" is waiting to start: ContainerCreating")
        };
        return status_response(StatusCode::BAD_REQUEST, msg);
    };
    let st = match kl.cri.container_status(&c.id).await {
        Ok(st) => st,
        Err(e) => return status_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !std::path::Path::new(&st.log_path).is_file() {
        return status_response(
            StatusCode::NOT_FOUND,
            format!(
                "failed to open log file {:?} of container {container}",
                st.log_path
            ),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(logs::stream(
        st.log_path.into(),
        opts,
        kl.cri.clone(),
        c.id.clone(),
        tx,
    ));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| status_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
