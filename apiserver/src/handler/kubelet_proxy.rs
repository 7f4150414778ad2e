//! Subresources the pod's kubelet answers: the apiserver finds the pod's
//! node, the node's kubelet address (an InternalIP, else its Hostname) and
//! port (status.daemonEndpoints.kubeletEndpoint), and streams the kubelet's
//! answer back, as upstream's pods/log does.

use std::sync::OnceLock;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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

fn http_client() -> &'static Client<HttpConnector, Body> {
    static CLIENT: OnceLock<Client<HttpConnector, Body>> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

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
    forward_get(&url).await
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

/// `http://<node address>:<kubelet port>` for the pod's node.
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
        Some(n) => (*n).clone(),
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
    Ok(format!("http://{host}:{port}"))
}

/// GET `url` on a kubelet; a 200 streams through, anything else becomes a
/// Status with the kubelet's words.
async fn forward_get(url: &str) -> ApiResult<Response> {
    let req = http::Request::get(url)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = http_client()
        .request(req)
        .await
        .map_err(|e| ApiError::unavailable(format!("Get \"{url}\": {e}")))?;
    let status = resp.status();
    if status == StatusCode::OK {
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| http::HeaderValue::from_static("text/plain"));
        let mut out = Response::new(Body::new(resp.into_body()));
        out.headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type);
        return Ok(out);
    }
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
    Err(ApiError::with_code(status.as_u16(), message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
