//! A connection to the cluster: the kube-rs client built from the kubeconfig and
//! flags, the namespace to work in, and the server's resources (discovered once).

use http::header::{HeaderValue, ACCEPT};
use kube::api::{Api, DynamicObject};
use kube::config::KubeConfigOptions;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::discovery::{Discovery, ResourceInfo};
use crate::error::{Error, Result};
use crate::kubeconfig::{server_host, Loaded, Overrides};

/// `get` asks for Tables, falling back to plain JSON, as kubectl does.
pub const ACCEPT_TABLE: &str =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

pub struct Session {
    pub client: kube::Client,
    /// The namespace from `-n`, the context, or `default`.
    pub namespace: String,
    /// `-n` was given.
    pub explicit_namespace: bool,
    /// `-A`: every namespace.
    pub all_namespaces: bool,
    /// The server's URL.
    pub server: String,
    /// `--request-timeout`: how long any one request (a watch, a log stream) may take.
    pub request_timeout: Option<std::time::Duration>,
    discovery: OnceCell<Discovery>,
}

impl Session {
    /// Build the client from the kubeconfig and flags (no request is sent yet).
    pub async fn connect(overrides: &Overrides, all_namespaces: bool) -> Result<Self> {
        let loaded = Loaded::load(overrides.kubeconfig.as_deref())?;
        let resolved = loaded.resolve(overrides)?;
        let mut config = match &resolved.context_name {
            Some(context) => kube::Config::from_custom_kubeconfig(
                loaded.kube_kubeconfig()?,
                &KubeConfigOptions {
                    context: Some(context.clone()),
                    cluster: overrides.cluster.clone(),
                    user: overrides.user.clone(),
                },
            )
            .await
            .map_err(|e| Error::msg(format!("invalid configuration: {e}")))?,
            None => kube::Config::new(parse_url(&resolved.server)?),
        };
        config.cluster_url = parse_url(&resolved.server)?;
        config.default_namespace = resolved.namespace.clone();
        // kubectl waits as long as it takes (watches, logs -f, waits) unless told otherwise.
        let request_timeout = overrides.timeout()?;
        config.read_timeout = request_timeout;
        config.write_timeout = request_timeout;
        if let Some(t) = request_timeout {
            config.connect_timeout = Some(t);
        }
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::msg(format!("unable to build the client: {e}")))?;
        Ok(Self {
            client,
            namespace: resolved.namespace,
            explicit_namespace: resolved.explicit_namespace,
            all_namespaces,
            server: resolved.server,
            request_timeout,
            discovery: OnceCell::new(),
        })
    }

    /// host:port of the server, as connection errors name it.
    pub fn server_host(&self) -> String {
        server_host(&self.server)
    }

    pub async fn discovery(&self) -> Result<&Discovery> {
        self.discovery
            .get_or_try_init(|| Discovery::load(&self.client))
            .await
    }

    /// The namespace a request for `info` goes to: none for cluster-scoped resources
    /// or with `-A`.
    pub fn namespace_for(&self, info: &ResourceInfo) -> Option<&str> {
        if !info.namespaced || self.all_namespaces {
            None
        } else {
            Some(&self.namespace)
        }
    }

    /// A dynamic API for `info` in `namespace` (all namespaces when `None`).
    pub fn api(&self, info: &ResourceInfo, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = info.api_resource();
        match namespace {
            Some(ns) if info.namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// A request built with kube's `Request`, answered as JSON.
    pub async fn send_json(&self, request: http::Request<Vec<u8>>) -> Result<Value> {
        Ok(self.client.request::<Value>(request).await?)
    }

    /// The same request, asking for a Table.
    pub async fn send_for_table(&self, mut request: http::Request<Vec<u8>>) -> Result<Value> {
        request
            .headers_mut()
            .insert(ACCEPT, HeaderValue::from_static(ACCEPT_TABLE));
        self.send_json(request).await
    }
}

fn parse_url(server: &str) -> Result<http::Uri> {
    server
        .parse()
        .map_err(|e| Error::msg(format!("invalid server address {server:?}: {e}")))
}

/// A kube `Request` for `info`'s collection in `namespace`.
pub fn request_for(info: &ResourceInfo, namespace: Option<&str>) -> kube::core::Request {
    kube::core::Request::new(info.url_path(namespace))
}

/// A dynamic object as JSON.
pub fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// JSON as a dynamic object.
pub fn from_value(value: &Value) -> Result<DynamicObject> {
    serde_json::from_value(value.clone()).map_err(|e| Error::msg(format!("invalid object: {e}")))
}
