//! Subresources the pod's kubelet answers: the apiserver finds the pod's
//! node, the node's kubelet address (an InternalIP, else its Hostname) and
//! port (status.daemonEndpoints.kubeletEndpoint), and streams the kubelet's
//! answer back, as upstream's pods/log does. exec, attach and portforward
//! are upgraded connections (SPDY or WebSocket): the request goes to the
//! kubelet with its upgrade headers, and once the kubelet switches
//! protocols the two connections are joined byte for byte.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::meta;

use super::read::current;
use super::Ctx;

/// Log options passed through to the kubelet as they are.
const LOG_OPTIONS: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
];
const INT_LOG_OPTIONS: &[&str] = &["tailLines", "limitBytes", "sinceSeconds"];

/// An error answer from a kubelet is read at most this far.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// GET pods/NAME/log.
pub(crate) async fn log(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    for k in INT_LOG_OPTIONS {
        if ctx.query.int(k)?.is_some_and(|v| v < 0) {
            return Err(ApiError::bad_request(format!("{k}: must be >= 0")));
        }
    }
    let (pod, _) = current(ctx, name).await?;
    let container = pick_container(&pod, name, ctx.query.get("container"))?;
    let base = kubelet_base_url(ctx, &pod, name).await?;
    // The serializer is not Send: finish it before any await.
    let query = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for k in LOG_OPTIONS {
            if let Some(v) = ctx.query.get(k) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    };
    let url = format!(
        "{base}/containerLogs/{}/{name}/{container}?{query}",
        meta::namespace(&pod).unwrap_or("default"),
    );
    forward_get(ctx, &url).await
}

/// Headers that carry the upgrade negotiation to the kubelet and back.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-accept",
];

/// POST (SPDY) or GET (WebSocket) pods/NAME/{exec,attach,portforward}.
pub(crate) async fn stream(
    ctx: &Ctx<'_>,
    method: http::Method,
    name: &str,
    sub: &str,
) -> ApiResult<Response> {
    let Some(client_upgrade) = ctx.stream.upgrade.lock().ok().and_then(|mut u| u.take()) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let (pod, _) = current(ctx, name).await?;
    let params: Vec<(String, String)> = form_urlencoded::parse(ctx.stream.raw_query.as_bytes())
        .into_owned()
        .collect();
    let base = kubelet_base_url(ctx, &pod, name).await?;
    let ns = meta::namespace(&pod).unwrap_or("default");
    let url = if sub == "portforward" {
        let query = kubelet_query(&params, &["ports"]);
        format!("{base}/portForward/{ns}/{name}?{query}")
    } else {
        let asked = params
            .iter()
            .find(|(k, _)| k == "container")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty());
        let container = pick_container(&pod, name, asked)?;
        let query = kubelet_query(&params, &["command"]);
        format!("{base}/{sub}/{ns}/{name}/{container}?{query}")
    };
    let mut req = http::Request::builder().method(method).uri(&url);
    for h in UPGRADE_HEADERS {
        for v in ctx.headers.get_all(*h) {
            req = req.header(*h, v);
        }
    }
    let req = req
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = ctx
        .api
        .kubelet
        .client
        .request(req)
        .await
        .map_err(|e| ApiError::unavailable(format!("error dialing backend: {e}")))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(error_from_kubelet(resp).await);
    }
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for h in UPGRADE_HEADERS {
        for v in resp.headers().get_all(*h) {
            out = out.header(*h, v);
        }
    }
    let kubelet_upgrade = hyper::upgrade::on(resp);
    tokio::spawn(async move {
        match tokio::try_join!(client_upgrade, kubelet_upgrade) {
            Ok((client_io, kubelet_io)) => {
                let mut client_io = hyper_util::rt::TokioIo::new(client_io);
                let mut kubelet_io = hyper_util::rt::TokioIo::new(kubelet_io);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client_io, &mut kubelet_io).await
                {
                    tracing::debug!(error = %e, "stream to kubelet ended");
                }
            }
            Err(e) => tracing::warn!(error = %e, "upgrade to a kubelet stream failed"),
        }
    });
    out.body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The kubelet's spelling of the stream options: stdin/stdout/stderr/tty
/// become input/output/error/tty=1, and `pass` keys (command, ports) go
/// through, repeated as given.
fn kubelet_query(params: &[(String, String)], pass: &[&str]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        let on = v == "true" || v == "1";
        match k.as_str() {
            "stdin" if on => {
                q.append_pair("input", "1");
            }
            "stdout" if on => {
                q.append_pair("output", "1");
            }
            "stderr" if on => {
                q.append_pair("error", "1");
            }
            "tty" if on => {
                q.append_pair("tty", "1");
            }
            k if pass.contains(&k) => {
                q.append_pair(k, v);
            }
            _ => {}
        }
    }
    q.finish()
}

/// The container a request names, or the pod's only container.
fn pick_container(pod: &Value, pod_name: &str, asked: Option<&str>) -> ApiResult<String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    match asked {
        Some(c) if containers.iter().chain(&init).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// `https://<node address>:<kubelet port>` (or http://, see
/// [`crate::kubelet_client`]) for the pod's node.
async fn kubelet_base_url(ctx: &Ctx<'_>, pod: &Value, pod_name: &str) -> ApiResult<String> {
    let node_name = pod["spec"]["nodeName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {pod_name} does not have a host assigned"))
        })?;
    let nodes = ctx
        .api
        .registry
        .find("", "v1", "nodes")
        .expect("nodes are registered");
    let key = meta::key(&ctx.api.prefix, nodes, None, node_name);
    let node: Value = match ctx.api.cache.get(&key) {
        Some(n) => n.value(),
        None => match ctx.api.store.get(&key).await? {
            Some(kv) => serde_json::from_slice(&kv.value).unwrap_or(Value::Null),
            None => return Err(ApiError::not_found(nodes, node_name)),
        },
    };
    let addresses = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let address_of = |kind: &str| {
        addresses
            .iter()
            .find(|a| a["type"] == kind)
            .and_then(|a| a["address"].as_str())
            .map(String::from)
    };
    let host = address_of("InternalIP")
        .or_else(|| address_of("Hostname"))
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "node {node_name:?} reports no address for its kubelet"
            ))
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .filter(|p| (1..=65535).contains(p))
        .unwrap_or(10250);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("{}://{host}:{port}", ctx.api.kubelet.scheme))
}

/// GET `url` on a kubelet; a 200 streams through, anything else becomes a
/// Status with the kubelet's words.
async fn forward_get(ctx: &Ctx<'_>, url: &str) -> ApiResult<Response> {
    let req = http::Request::get(url)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = ctx
        .api
        .kubelet
        .client
        .request(req)
        .await
        .map_err(|e| ApiError::unavailable(format!("Get \"{url}\": {e}")))?;
    if resp.status() != StatusCode::OK {
        return Err(error_from_kubelet(resp).await);
    }
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| http::HeaderValue::from_static("text/plain"));
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut()
        .insert(http::header::CONTENT_TYPE, content_type);
    Ok(out)
}

/// A kubelet's refusal as a Status with the kubelet's words.
async fn error_from_kubelet(resp: http::Response<hyper::body::Incoming>) -> ApiError {
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    // A kubelet answering with a Status keeps its message.
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or(text);
    ApiError::with_code(status.as_u16(), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_options_in_the_kubelets_words() {
        let params: Vec<(String, String)> = form_urlencoded::parse(
            b"command=sh&command=-c&command=echo%20hi&container=web&stdin=true&stdout=true&stderr=false&tty=true",
        )
        .into_owned()
        .collect();
        assert_eq!(
            kubelet_query(&params, &["command"]),
            "command=sh&command=-c&command=echo+hi&input=1&output=1&tty=1"
        );
        let pf: Vec<(String, String)> = vec![("ports".into(), "8080".into())];
        assert_eq!(kubelet_query(&pf, &["ports"]), "ports=8080");
    }

    #[test]
    fn container_choice() {
        let one = json!({"spec": {"containers": [{"name": "web"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "web");
        assert_eq!(pick_container(&one, "p", Some("web")).unwrap(), "web");
        let e = pick_container(&one, "p", Some("db")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container db is not valid for pod p")
        );

        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                   "initContainers": [{"name": "init"}]}});
        let e = pick_container(&two, "p", None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [init]"
        );
        assert_eq!(pick_container(&two, "p", Some("init")).unwrap(), "init");
    }
}
