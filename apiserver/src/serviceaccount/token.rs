//! ServiceAccount tokens: ES256-signed JWTs with upstream's claims (issuer,
//! subject `system:serviceaccount:<ns>:<name>`, audiences, expiry, and the
//! `kubernetes.io` claim naming the service account and the pod or node the
//! token is bound to), issued by TokenRequest and checked by authentication.
//!
//! Keys: `--service-account-signing-key-file` (an ECDSA P-256 private key,
//! PKCS#8 PEM) signs; its public key and those in `--service-account-key-file`
//! verify. Without flags the key is made once in `--cert-dir/sa.key` (as the
//! self-signed serving certificate is), or kept in memory when the server has
//! no secure port (tests on the plain port).

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// For tokens given a long life for old clients: when to warn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// The user name of a service account.
pub fn user_name(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

pub struct Tokens {
    signing: EncodingKey,
    kid: String,
    verifying: Vec<(String, DecodingKey)>,
    /// The first issues; all are accepted.
    issuers: Vec<String>,
    /// Audiences a token must name one of to be accepted by this server.
    pub audiences: Vec<String>,
}

/// A key pair's public half: (kid, PEM).
fn public_of(pair: &rcgen::KeyPair) -> anyhow::Result<(String, String)> {
    if pair.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
        bail!("only ECDSA P-256 keys are supported for service account tokens");
    }
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(pair.public_key_raw()));
    Ok((kid, pair.public_key_pem()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The signing key in `dir/sa.key`, made (and written atomically) if absent.
fn key_in(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("sa.key");
    if path.exists() {
        return read(&path);
    }
    generate_key_in(dir)
}

/// A new signing key written atomically to `dir/sa.key` (0600).
pub fn generate_key_in(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("sa.key");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pem = rcgen::KeyPair::generate()?.serialize_pem();
    let tmp = dir.join(format!(".sa.key.{}", std::process::id()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "made a service account signing key");
    Ok(pem)
}

impl Tokens {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let signing_pem = match &config.service_account_signing_key_file {
            Some(path) => read(path)?,
            None if config.secure_port != 0 => key_in(&config.cert_dir)?,
            None => {
                tracing::info!("service account tokens signed with a key kept in memory (no secure port, no --service-account-signing-key-file)");
                rcgen::KeyPair::generate()?.serialize_pem()
            }
        };
        let mut extra = Vec::new();
        for path in &config.service_account_key_file {
            extra.push(read(path)?);
        }
        let issuers = config.service_account_issuer.clone();
        let audiences = if config.api_audiences.is_empty() {
            issuers.iter().take(1).cloned().collect()
        } else {
            config.api_audiences.clone()
        };
        Self::new(&signing_pem, &extra, issuers, audiences)
    }

    /// `signing_pem`: a PKCS#8 private key; `extra`: PEM public (or private)
    /// keys whose tokens are also accepted.
    pub fn new(
        signing_pem: &str,
        extra: &[String],
        issuers: Vec<String>,
        audiences: Vec<String>,
    ) -> anyhow::Result<Self> {
        if issuers.is_empty() {
            bail!("--service-account-issuer must be given");
        }
        let pair =
            rcgen::KeyPair::from_pem(signing_pem).context("the service account signing key")?;
        let (kid, public) = public_of(&pair)?;
        let signing = EncodingKey::from_ec_pem(signing_pem.as_bytes())
            .context("the service account signing key")?;
        let mut verifying = vec![(kid.clone(), DecodingKey::from_ec_pem(public.as_bytes())?)];
        for pem in extra {
            let public = if pem.contains("PRIVATE KEY") {
                public_of(&rcgen::KeyPair::from_pem(pem)?)?.1
            } else {
                pem.clone()
            };
            let key = DecodingKey::from_ec_pem(public.as_bytes())
                .context("--service-account-key-file: an ECDSA P-256 public key in PEM")?;
            verifying.push((String::new(), key));
        }
        Ok(Self {
            signing,
            kid,
            verifying,
            issuers,
            audiences,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuers[0]
    }

    pub fn issue(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.signing)?)
    }

    /// The claims of a token this server signed, for one of its audiences,
    /// not expired. `None` if the token is not one of ours (so other
    /// authenticators may try); `Some(Err)` if it is ours but invalid.
    pub fn verify(&self, token: &str) -> Option<Result<Claims, String>> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::ES256 {
            return None;
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&self.issuers);
        validation.set_audience(&self.audiences);
        validation.validate_nbf = true;
        validation.leeway = 60;
        let mut last = String::from("invalid signature");
        for (kid, key) in &self.verifying {
            if !kid.is_empty() && header.kid.as_deref().is_some_and(|k| k != kid) {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Some(Ok(data.claims)),
                Err(e) => last = e.to_string(),
            }
        }
        Some(Err(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64, aud: &str) -> Claims {
        let now = jiff::Timestamp::now().as_second();
        Claims {
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            sub: user_name("default", "builder"),
            aud: vec![aud.into()],
            exp: now + exp_in,
            iat: now,
            nbf: now,
            jti: "1".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: ObjectRef {
                    name: "builder".into(),
                    uid: "u1".into(),
                },
                pod: None,
                node: None,
                warnafter: None,
            },
        }
    }

    fn tokens(pem: &str) -> Tokens {
        let iss = "https://kubernetes.default.svc.cluster.local".to_string();
        Tokens::new(pem, &[], vec![iss.clone()], vec![iss]).unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let t = tokens(&rcgen::KeyPair::generate().unwrap().serialize_pem());
        let good = claims(600, "https://kubernetes.default.svc.cluster.local");
        let token = t.issue(&good).unwrap();
        assert_eq!(t.verify(&token), Some(Ok(good)));

        let expired = t.issue(&claims(-3600, t.issuer())).unwrap();
        assert!(matches!(t.verify(&expired), Some(Err(_))));
        let other_audience = t.issue(&claims(600, "vault")).unwrap();
        assert!(matches!(t.verify(&other_audience), Some(Err(_))));
        let other_key = tokens(&rcgen::KeyPair::generate().unwrap().serialize_pem());
        let forged = other_key.issue(&claims(600, t.issuer())).unwrap();
        assert!(matches!(t.verify(&forged), Some(Err(_))));
        // A changed payload breaks the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(600, t.issuer());
        c.sub = user_name("kube-system", "admin");
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&c).unwrap());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert!(matches!(t.verify(&tampered), Some(Err(_))));
        assert_eq!(t.verify("not-a-jwt"), None);
    }

    #[test]
    fn extra_public_keys_verify_old_tokens() {
        let old_pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let old = tokens(&old_pem);
        let token = old.issue(&claims(600, old.issuer())).unwrap();
        let iss = old.issuer().to_string();
        let public = rcgen::KeyPair::from_pem(&old_pem).unwrap().public_key_pem();
        let new = Tokens::new(
            &rcgen::KeyPair::generate().unwrap().serialize_pem(),
            &[public],
            vec![iss.clone()],
            vec![iss],
        )
        .unwrap();
        assert!(matches!(new.verify(&token), Some(Ok(_))));
    }
}
