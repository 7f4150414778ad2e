//! Authentication on the secure port: x509 client certificates verified
//! against --client-ca-file (CN = user, O = groups) and static bearer tokens
//! from --token-auth-file. When any authenticator is configured, a request
//! that none of them accepts gets 401 Unauthorized, except the health and
//! version paths anyone may read (upstream's anonymous access to
//! system:public-info-viewer). The plain loopback port bypasses all this.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use http::header::AUTHORIZATION;

use crate::error::ApiError;

/// Who made a request; kept in the request's extensions for authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// Who a request without credentials is (upstream's anonymous user),
    /// for the paths that need none.
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    fn new(name: String, uid: String, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        Self { name, uid, groups }
    }
}

/// The configured authenticators.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// Client certificates are verified by the TLS layer; this says whether
    /// one is required to be present for the request to count.
    pub client_certs: bool,
    tokens: HashMap<String, UserInfo>,
    service_accounts: Option<crate::serviceaccount::TokenAuthenticator>,
}

impl Authenticator {
    pub fn new(client_certs: bool, token_file: Option<&Path>) -> anyhow::Result<Self> {
        let tokens = match token_file {
            Some(path) => read_token_file(path)?,
            None => HashMap::new(),
        };
        Ok(Self {
            client_certs,
            tokens,
            service_accounts: None,
        })
    }

    /// Also accept service account tokens (they do not make authentication
    /// required by themselves: every server can issue them).
    pub fn with_service_accounts(mut self, sa: crate::serviceaccount::TokenAuthenticator) -> Self {
        self.service_accounts = Some(sa);
        self
    }

    /// Whether requests must authenticate at all.
    pub fn enabled(&self) -> bool {
        self.client_certs || !self.tokens.is_empty()
    }

    /// The user of a request that arrived with `peer` (the verified client
    /// certificate's identity, if any).
    pub fn authenticate(
        &self,
        headers: &http::HeaderMap,
        peer: Option<&UserInfo>,
        path: &str,
    ) -> Result<Option<UserInfo>, ApiError> {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            // A token that does not authenticate is a 401 even with a
            // certificate, as upstream's union authenticator ends up.
            if let Some(user) = token.and_then(|t| self.tokens.get(t)) {
                return Ok(Some(user.clone()));
            }
            let sa = token.zip(self.service_accounts.as_ref());
            return match sa.and_then(|(t, sa)| sa.authenticate(t)) {
                Some(Ok(user)) => Ok(Some(user)),
                Some(Err(why)) => {
                    tracing::debug!(reason = why, "service account token rejected");
                    Err(unauthorized())
                }
                None if !self.enabled() => Ok(None),
                None => Err(unauthorized()),
            };
        }
        if let Some(user) = peer {
            return Ok(Some(user.clone()));
        }
        if !self.enabled() || public(path) {
            return Ok(None);
        }
        Err(unauthorized())
    }
}

/// Paths anyone may read (upstream's system:public-info-viewer).
fn public(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz", "/version"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The identity in a verified client certificate (DER).
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (name, groups) = component_base::tls::certificate_user(der)?;
    Some(UserInfo::new(name, String::new(), groups))
}

/// `token,user,uid,"group1,group2"` per line (upstream's static token file).
fn read_token_file(path: &Path) -> anyhow::Result<HashMap<String, UserInfo>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --token-auth-file {}", path.display()))?;
    let mut tokens = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line);
        if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
            bail!(
                "{} line {}: want token,user,uid[,\"groups\"]",
                path.display(),
                n + 1
            );
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        tokens.insert(
            fields[0].clone(),
            UserInfo::new(fields[1].clone(), fields[2].clone(), groups),
        );
    }
    Ok(tokens)
}

/// One CSV line: commas separate fields except inside double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_tokens(text: &str) -> Authenticator {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, text).unwrap();
        Authenticator::new(false, Some(&path)).unwrap()
    }

    fn bearer(t: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        h
    }

    #[test]
    fn token_file_users_and_groups() {
        let a = with_tokens("s3cret,alice,1001,\"dev,ops\"\nother,bob,1002\n");
        let u = a
            .authenticate(&bearer("s3cret"), None, "/api")
            .unwrap()
            .unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.uid, "1001");
        assert_eq!(u.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(
            a.authenticate(&bearer("wrong"), None, "/api")
                .unwrap_err()
                .code,
            401
        );
    }

    #[test]
    fn anonymous_only_on_public_paths() {
        let a = with_tokens("t,u,1\n");
        let none = http::HeaderMap::new();
        assert_eq!(
            a.authenticate(&none, None, "/api/v1/pods")
                .unwrap_err()
                .code,
            401
        );
        assert!(a.authenticate(&none, None, "/healthz").unwrap().is_none());
        assert!(a
            .authenticate(&none, None, "/readyz/ping")
            .unwrap()
            .is_none());
        assert!(a.authenticate(&none, None, "/version").unwrap().is_none());
        assert_eq!(
            a.authenticate(&none, None, "/healthzz").unwrap_err().code,
            401
        );
        // Nothing configured: everything goes, as before.
        let open = Authenticator::default();
        assert!(open.authenticate(&none, None, "/api").unwrap().is_none());
    }

    #[test]
    fn bad_token_file_lines_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "only-a-token\n").unwrap();
        assert!(Authenticator::new(false, Some(&path)).is_err());
    }

    #[test]
    fn certificate_subject_is_the_user() {
        let ca =
            component_base::pki::Ca::generate("ca", std::time::Duration::from_secs(3600)).unwrap();
        let c = ca
            .issue_client(
                "system:node:n1",
                &["system:nodes"],
                std::time::Duration::from_secs(3600),
            )
            .unwrap();
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap();
        let u = user_from_certificate(&der).unwrap();
        assert_eq!(u.name, "system:node:n1");
        assert_eq!(u.groups, ["system:nodes", "system:authenticated"]);
    }
}
