//! Who may use the kubelet's API on --port, as upstream's kubelet decides
//! it: a client certificate signed by --client-ca-file names the user (the
//! apiserver shows its kubelet client certificate); without one the request
//! is anonymous, or gets 401 with --anonymous-auth=false. With
//! --authorization-mode=Webhook the apiserver decides through a
//! SubjectAccessReview on the node (`nodes/proxy`, `nodes/log`, ...);
//! answers are reused for a while (5 min allowed, 30 s denied by default).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use rustls_pki_types::CertificateDer;

use crate::config::{AuthorizationMode, ServerAuth};
use crate::kubelet::Kubelet;

/// The user of one request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    fn anonymous() -> Self {
        Self {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }
}

/// Client certificates, else anonymous (or 401).
pub struct CertificateAuthenticator {
    pub anonymous: bool,
}

impl component_base::tls::Authenticate for CertificateAuthenticator {
    type Peer = User;
    type User = User;

    fn peer(&self, leaf: &CertificateDer<'_>) -> Option<User> {
        let (name, mut groups) = component_base::tls::certificate_user(leaf)?;
        groups.push("system:authenticated".into());
        Some(User { name, groups })
    }

    fn authenticate(
        &self,
        _headers: &http::HeaderMap,
        peer: Option<&User>,
        _path: &str,
    ) -> Result<User, Box<Response>> {
        match peer {
            Some(user) => Ok(user.clone()),
            None if self.anonymous => Ok(User::anonymous()),
            None => Err(Box::new(
                (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
            )),
        }
    }
}

/// What a request asks of the node, in the apiserver's terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRequest {
    pub verb: &'static str,
    pub subresource: &'static str,
}

/// Upstream's mapping: the HTTP method gives the verb; the path's first
/// segment the subresource of `nodes/<node>` (anything not listed is
/// `proxy`).
pub fn node_request(method: &http::Method, path: &str) -> NodeRequest {
    // Any other method has no verb, which no rule allows.
    let verb = match *method {
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "",
    };
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let subresource = [
        ("/stats", "stats"),
        ("/metrics", "metrics"),
        ("/logs", "log"),
        ("/spec", "spec"),
        ("/checkpoint", "checkpoint"),
    ]
    .into_iter()
    .find(|(prefix, _)| under(prefix))
    .map_or("proxy", |(_, sub)| sub);
    NodeRequest { verb, subresource }
}

const MAX_CACHED: usize = 10_000;

/// Webhook answers, reused until they expire.
#[derive(Default)]
pub struct DecisionCache {
    entries: Mutex<HashMap<(User, NodeRequest), (bool, Instant)>>,
}

impl DecisionCache {
    fn get(&self, key: &(User, NodeRequest)) -> Option<bool> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(allowed, _)| *allowed)
    }

    fn put(&self, key: (User, NodeRequest), allowed: bool, auth: &ServerAuth) {
        let ttl = if allowed {
            auth.authorized_ttl
        } else {
            auth.unauthorized_ttl
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: expired answers go when the map grows, and if it is still
        // full, everything (answers are only a cache).
        if entries.len() >= MAX_CACHED {
            let now = Instant::now();
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(key, (allowed, Instant::now() + ttl));
    }
}

/// The middleware in front of every route when the server speaks TLS.
pub async fn authorize(State(kl): State<Arc<Kubelet>>, req: Request, next: Next) -> Response {
    let auth = &kl.config.server_auth;
    let Some(user) = req.extensions().get::<User>().cloned() else {
        // Plain HTTP: no authentication configured.
        return next.run(req).await;
    };
    if auth.mode == AuthorizationMode::AlwaysAllow {
        return next.run(req).await;
    }
    let asked = node_request(req.method(), req.uri().path());
    let key = (user, asked);
    let allowed = match kl.authz_cache.get(&key) {
        Some(allowed) => allowed,
        None => match review(&kl, &key.0, &key.1).await {
            Ok(allowed) => {
                kl.authz_cache.put(key.clone(), allowed, auth);
                allowed
            }
            Err(e) => {
                tracing::warn!(error = %e, "SubjectAccessReview failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Authorization error (the apiserver could not be asked)",
                )
                    .into_response();
            }
        },
    };
    if allowed {
        return next.run(req).await;
    }
    let (user, asked) = key;
    (
        StatusCode::FORBIDDEN,
        format!(
            "Forbidden (user={}, verb={}, resource=nodes, subresource={})",
            user.name, asked.verb, asked.subresource
        ),
    )
        .into_response()
}

async fn review(kl: &Kubelet, user: &User, asked: &NodeRequest) -> kube::Result<bool> {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(asked.verb.to_string()),
                group: Some(String::new()),
                version: Some("v1".into()),
                resource: Some("nodes".into()),
                subresource: Some(asked.subresource.to_string()),
                name: Some(kl.config.node_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(kl.client.clone());
    let answer = api.create(&PostParams::default(), &sar).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_map_as_upstream() {
        let get = http::Method::GET;
        let r = |m: &http::Method, p: &str| {
            let n = node_request(m, p);
            (n.verb, n.subresource)
        };
        assert_eq!(r(&get, "/containerLogs/ns/p/c"), ("get", "proxy"));
        assert_eq!(r(&http::Method::POST, "/exec/ns/p/c"), ("create", "proxy"));
        assert_eq!(r(&get, "/pods"), ("get", "proxy"));
        assert_eq!(r(&get, "/stats/summary"), ("get", "stats"));
        assert_eq!(r(&get, "/metrics/cadvisor"), ("get", "metrics"));
        assert_eq!(r(&get, "/logs/syslog"), ("get", "log"));
        assert_eq!(r(&get, "/spec"), ("get", "spec"));
        assert_eq!(r(&http::Method::DELETE, "/"), ("delete", "proxy"));
        // Only whole path segments count; unknown methods get no verb.
        assert_eq!(r(&get, "//stats/summary"), ("get", "proxy"));
        assert_eq!(r(&get, "/statsx"), ("get", "proxy"));
        assert_eq!(r(&http::Method::HEAD, "/pods"), ("", "proxy"));
    }

    #[test]
    fn answers_expire_by_their_own_ttl() {
        let auth = ServerAuth {
            tls: None,
            client_ca_file: None,
            anonymous: false,
            mode: AuthorizationMode::Webhook,
            authorized_ttl: std::time::Duration::from_secs(300),
            unauthorized_ttl: std::time::Duration::ZERO,
        };
        let cache = DecisionCache::default();
        let who = |n: &str| User {
            name: n.into(),
            groups: vec![],
        };
        let asked = node_request(&http::Method::GET, "/pods");
        cache.put((who("yes"), asked.clone()), true, &auth);
        cache.put((who("no"), asked.clone()), false, &auth);
        assert_eq!(cache.get(&(who("yes"), asked.clone())), Some(true));
        // A denial with a zero TTL is asked again at once.
        assert_eq!(cache.get(&(who("no"), asked.clone())), None);
        assert_eq!(cache.get(&(who("other"), asked)), None);
    }
}
