//! Service accounts as identities: TokenRequest (`serviceaccounts/<name>/token`)
//! issues tokens ([`token`]), and authentication accepts them while the
//! service account (and the pod a token is bound to) still exists with the
//! same uid, so deleting either revokes its tokens.

pub mod mount;
pub mod request;
pub mod root_ca;
pub mod token;

use std::sync::Arc;

use serde_json::Value;

use crate::authn::UserInfo;
use crate::watch_cache::WatchCache;

pub use token::Tokens;

/// Authenticates service account tokens against the objects they name.
pub struct TokenAuthenticator {
    tokens: Arc<Tokens>,
    cache: Arc<WatchCache>,
    prefix: String,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAuthenticator")
    }
}

impl TokenAuthenticator {
    pub fn new(tokens: Arc<Tokens>, cache: Arc<WatchCache>, prefix: &str) -> Self {
        Self {
            tokens,
            cache,
            prefix: prefix.to_string(),
        }
    }

    fn uid_of(&self, plural: &str, namespace: &str, name: &str) -> Option<String> {
        let obj = self
            .cache
            .get(&format!("{}/{plural}/{namespace}/{name}", self.prefix))?
            .value();
        obj.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// `None`: not a service account token of this server. `Some(Err)`: one
    /// that does not (or no longer does) authenticate.
    pub fn authenticate(&self, token: &str) -> Option<Result<UserInfo, String>> {
        let claims = match self.tokens.verify(token)? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        let sa = &k.serviceaccount;
        if self.uid_of("serviceaccounts", ns, &sa.name).as_deref() != Some(sa.uid.as_str()) {
            return Some(Err(format!(
                "service account {ns}/{} has been deleted",
                sa.name
            )));
        }
        if let Some(pod) = &k.pod {
            if self.uid_of("pods", ns, &pod.name).as_deref() != Some(pod.uid.as_str()) {
                return Some(Err(format!("pod {ns}/{} has been deleted", pod.name)));
            }
        }
        Some(Ok(UserInfo {
            name: token::user_name(ns, &sa.name),
            uid: sa.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }))
    }
}
