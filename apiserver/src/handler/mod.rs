//! The one generic resource handler: every kind in the registry is served by
//! this code; kinds differ only by their [`crate::strategy::Strategy`].

mod delete;
mod filter;
mod kubelet_proxy;
mod query;
mod read;
mod subresource;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::allocator::ServiceAllocator;
use crate::authn::UserInfo;
use crate::codec::{self, Output};
use crate::error::{ApiError, ApiResult};
use crate::openapi::OpenApi;
use crate::path::{self, ResourcePath, Target};
use crate::registry::{Registry, ResourceInfo};
use crate::storage::Store;
use crate::watch_cache::WatchCache;

pub use query::{FieldValidation, Query};
pub use write::{create_object, WriteOptions};

/// Everything a request needs: the kinds, the store and its cache.
pub struct Api {
    pub registry: &'static Registry,
    pub store: Arc<dyn Store>,
    pub cache: Arc<WatchCache>,
    /// The storage key prefix (`--etcd-prefix`).
    pub prefix: String,
    pub openapi: OpenApi,
    pub services: ServiceAllocator,
    pub metrics: crate::metrics::Metrics,
    pub toleration_seconds: crate::admission::DefaultTolerationSeconds,
    pub authz: crate::authz::Authorizer,
    pub tokens: Arc<crate::serviceaccount::Tokens>,
    /// The CA bundle published to pods as kube-root-ca.crt.
    pub root_ca: String,
    /// How pods' logs, exec and port-forward reach kubelets.
    pub kubelet: crate::kubelet_client::KubeletClient,
}

/// One request to a resource, after routing.
pub(crate) struct Ctx<'a> {
    pub api: &'a Api,
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub query: Query,
    pub headers: HeaderMap,
    pub output: Output,
    pub stream: StreamRequest,
    /// The authenticated user (none on the plain port).
    pub user: Option<UserInfo>,
}

/// What a streaming subresource (exec, attach, portforward) needs beyond
/// the parsed request: the connection upgrade and the raw query, whose
/// parameters repeat (`command=a&command=b`).
pub(crate) struct StreamRequest {
    pub upgrade: std::sync::Mutex<Option<hyper::upgrade::OnUpgrade>>,
    pub raw_query: String,
}

impl Ctx<'_> {
    pub fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn key(&self, name: &str) -> String {
        crate::meta::key(&self.api.prefix, self.info, self.ns(), name)
    }

    pub fn key_prefix(&self) -> String {
        crate::meta::key_prefix(&self.api.prefix, self.info, self.ns())
    }
}

/// Serve one HTTP request.
pub async fn dispatch(api: Arc<Api>, req: http::Request<Body>) -> Response {
    let (mut parts, body) = req.into_parts();
    // exec/attach/portforward hand the connection over to the kubelet.
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => {
            // The rest of the body is unread: this connection cannot carry
            // another request, so tell the client not to reuse it.
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return resp;
        }
    };
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let started = std::time::Instant::now();
    let user = parts.extensions.remove::<UserInfo>();
    let allowed = match &user {
        Some(user) => authorize(&api, user, &parts.method, &path, &query),
        None => Ok(()),
    };
    // Labels only from fixed sets (registered resources, known methods), so
    // that no client can grow the metrics without bound.
    let resource = match path::parse(&path) {
        Target::Resource(rp)
            if api
                .registry
                .find(&rp.group, &rp.version, &rp.resource)
                .is_some() =>
        {
            rp.resource
        }
        _ => String::new(),
    };
    if let Err(e) = allowed {
        let resp = e.into_response();
        // Refusals count as requests, as upstream's apiserver_request_total does.
        api.metrics.observe(
            parts.method.as_str(),
            &resource,
            resp.status().as_u16(),
            started.elapsed(),
        );
        return resp;
    }
    if parts.method == Method::GET && path == "/metrics" {
        let text = api.metrics.render(api.cache.revision());
        return (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response();
    }
    let stream = StreamRequest {
        upgrade: std::sync::Mutex::new(upgrade),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
    };
    let incoming = Incoming {
        query,
        headers: parts.headers,
        body,
        stream,
        user,
    };
    let resp = match route(&api, &parts.method, &path, incoming).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let code = resp.status().as_u16();
    api.metrics
        .observe(parts.method.as_str(), &resource, code, started.elapsed());
    tracing::debug!(method = %parts.method, path, code, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}

/// 403 unless the authorizers allow `user` this request.
fn authorize(
    api: &Api,
    user: &UserInfo,
    method: &Method,
    path: &str,
    query: &Query,
) -> ApiResult<()> {
    let attrs = crate::authz::Attributes::from_request(user.clone(), method, path, query);
    match api.authz.authorize(&attrs) {
        crate::authz::Decision::Allow => Ok(()),
        crate::authz::Decision::Deny(reason) | crate::authz::Decision::NoOpinion(reason) => {
            tracing::debug!(
                user = user.name,
                verb = attrs.verb,
                path,
                reason,
                "forbidden"
            );
            Err(crate::authz::forbidden(&attrs, &reason))
        }
    }
}

async fn read_body(body: Body) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(body, codec::MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(codec::MAX_BODY))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// A request's parts past its method and path.
struct Incoming {
    query: Query,
    headers: HeaderMap,
    body: Bytes,
    stream: StreamRequest,
    user: Option<UserInfo>,
}

async fn route(api: &Api, method: &Method, path: &str, req: Incoming) -> ApiResult<Response> {
    if let Some(r) = crate::discovery::non_resource(api, method, path, &req.headers) {
        return r;
    }
    match path::parse(path) {
        Target::Resource(rp) => {
            let user = req.user.as_ref();
            if let Some(r) =
                crate::authz::review::serve(api, method, &rp, &req.headers, &req.body, user)
            {
                return r;
            }
            resource(api, method, rp, req).await
        }
        Target::Unknown => Err(ApiError::path_not_found()),
        other => crate::discovery::serve(api, method, other, &req.headers),
    }
}

async fn resource(
    api: &Api,
    method: &Method,
    rp: ResourcePath,
    req: Incoming,
) -> ApiResult<Response> {
    let Incoming {
        query,
        headers,
        body,
        stream,
        user,
    } = req;
    let info = api
        .registry
        .find(&rp.group, &rp.version, &rp.resource)
        .ok_or_else(ApiError::path_not_found)?;
    if rp.namespace.is_some() && !info.namespaced {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = &rp.subresource {
        if !info.subresources.contains(&sub.as_str()) {
            return Err(ApiError::path_not_found());
        }
    }
    let output = codec::negotiate(&headers)?;
    let ctx = Ctx {
        api,
        info,
        namespace: rp.namespace.clone(),
        query,
        headers,
        output,
        stream,
        user,
    };
    let watch = rp.watch_prefix || ctx.query.flag("watch");
    match (
        method.clone(),
        rp.name.as_deref(),
        rp.subresource.as_deref(),
    ) {
        (Method::GET, None, None) if watch => watch::watch(&ctx, None).await,
        (Method::GET, Some(name), None) if watch => watch::watch(&ctx, Some(name)).await,
        (Method::GET, None, None) => read::list(&ctx).await,
        (Method::GET, Some(name), None) => read::get(&ctx, name).await,
        (Method::POST, None, None) => {
            if info.namespaced && ctx.namespace.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            write::create(&ctx, &body).await
        }
        (Method::PUT, Some(name), None) => {
            write::update(&ctx, name, &body, write::Part::Main).await
        }
        (Method::PATCH, Some(name), None) => {
            write::patch(&ctx, name, &body, write::Part::Main).await
        }
        (Method::DELETE, Some(name), None) => delete::delete(&ctx, name, &body).await,
        (Method::DELETE, None, None) => delete::delete_collection(&ctx, &body).await,
        (m, Some(name), Some(sub)) => subresource::serve(&ctx, m, name, sub, &body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A single object in the requested form (JSON, YAML, Table or metadata).
pub(crate) fn object_response(ctx: &Ctx<'_>, code: StatusCode, obj: &Value) -> Response {
    let converted;
    let body = match ctx.output {
        Output::Table { v1beta1 } => {
            converted = crate::table::table(
                ctx.info,
                [crate::table::Source::Tree(obj.clone())],
                serde_json::json!({"resourceVersion": crate::meta::resource_version(obj).unwrap_or("")}),
                crate::table::IncludeObject::parse(ctx.query.get("includeObject")),
                v1beta1,
                true,
            );
            &converted
        }
        Output::Metadata { v1beta1 } => {
            converted = crate::table::partial_metadata(obj, v1beta1);
            &converted
        }
        _ => obj,
    };
    codec::respond(code, ctx.output, body)
}

/// Add `Warning` headers (e.g. unknown fields under fieldValidation=Warn).
pub(crate) fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}
