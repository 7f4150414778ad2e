//! `/exec/{namespace}/{pod}/{container}`: CRI Exec hands out a URL on the
//! runtime's streaming server (containerd speaks SPDY/3.1 and the WebSocket
//! channel protocols there); the kubelet proxies the client's upgrade
//! request to it and then joins the two upgraded connections, as upstream's
//! kubelet does when it does not redirect container streaming.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::ExecRequest;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;

use crate::kubelet::Kubelet;
use crate::labels;
use crate::server::status_response;

/// The exec options of a query string: `command` may repeat.
#[derive(Debug, Default, PartialEq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub fn parse_query(query: &str) -> ExecOptions {
    let mut o = ExecOptions::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let on = matches!(v.as_ref(), "true" | "1" | "True");
        match k.as_ref() {
            "command" => o.command.push(v.into_owned()),
            "stdin" | "input" => o.stdin = on,
            "stdout" | "output" => o.stdout = on,
            "stderr" | "error" => o.stderr = on,
            "tty" => o.tty = on,
            _ => {}
        }
    }
    o
}

pub async fn exec(
    State(kl): State<Arc<Kubelet>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    mut req: Request,
) -> Response {
    let opts = parse_query(req.uri().query().unwrap_or(""));
    if opts.command.is_empty() {
        return status_response(
            StatusCode::BAD_REQUEST,
            "you must specify at least one command".into(),
        );
    }
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
    let mut sel = labels::uid_selector(&uid);
    sel.insert(labels::CONTAINER_NAME.into(), container.clone());
    let running = match kl.cri.list_containers(sel).await {
        Ok(list) => list.into_iter().find(|c| {
            crate::cri::container_state(c) == k8s_cri::v1::ContainerState::ContainerRunning
        }),
        Err(e) => return status_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some(c) = running else {
        return status_response(
            StatusCode::BAD_REQUEST,
            format!("container {container} is not running in pod {pod_name}"),
        );
    };
    let url = match kl
        .cri
        .exec(ExecRequest {
            container_id: c.id.clone(),
            cmd: opts.command.clone(),
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr && !opts.tty,
        })
        .await
    {
        Ok(u) => u,
        Err(e) => return status_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match proxy_upgrade(&url, &mut req).await {
        Ok(resp) => resp,
        Err(e) => status_response(StatusCode::BAD_GATEWAY, format!("exec stream: {e}")),
    }
}

/// Send the client's request (its upgrade headers) to the runtime's URL;
/// on 101 join the upgraded connections, otherwise pass the answer back.
async fn proxy_upgrade(url: &str, req: &mut Request) -> Result<Response, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let authority = uri.authority().ok_or("URL without host")?.clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut upstream = http::Request::builder()
        .method(req.method().clone())
        .uri(path);
    for (k, v) in req.headers() {
        if k != header::HOST && k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
            upstream = upstream.header(k, v);
        }
    }
    let upstream = upstream
        .header(header::HOST, authority.as_str())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let mut resp = sender
        .send_request(upstream)
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut out = Response::builder().status(status);
        for (k, v) in &headers {
            out = out.header(k, v);
        }
        return out.body(Body::from(body)).map_err(|e| e.to_string());
    }
    let backend = hyper::upgrade::on(&mut resp);
    let client = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let (Ok(backend), Ok(client)) = (backend.await, client.await) else {
            tracing::warn!("exec upgrade failed");
            return;
        };
        let mut backend = TokioIo::new(backend);
        let mut client = TokioIo::new(client);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    out.body(Body::empty()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_commands_and_flags() {
        let o =
            parse_query("command=sh&command=-c&command=echo%20hi&stdout=true&stderr=1&tty=false");
        assert_eq!(o.command, vec!["sh", "-c", "echo hi"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let o = parse_query("command=ls&input=1&output=1");
        assert!(o.stdin && o.stdout);
    }
}
