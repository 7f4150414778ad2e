//! Certificates for a cluster (issue 8): a CA, serving certificates with
//! the SANs clients check, client certificates whose CN is the user and O
//! the groups (how the apiserver reads x509 identities). rcgen with ring;
//! PEM in and out.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, PkiError>;

/// The names clients use for the apiserver: localhost and the `kubernetes`
/// Service's names (a serving certificate has them all as SANs).
pub const APISERVER_DNS_NAMES: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertKey {
    /// Write `<dir>/<name>.crt` and `<dir>/<name>.key` (the key readable by
    /// its owner only).
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        write_atomic(&cert, &self.cert_pem, 0o644).map_err(io(&cert))?;
        write_private(&key, &self.key_pem).map_err(io(&key))?;
        Ok((cert, key))
    }

    /// Read what [`CertKey::write`] wrote.
    pub fn read(dir: &Path, name: &str) -> Result<Self> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| PkiError::Io { path, source })
        };
        Ok(Self {
            cert_pem: read(dir.join(format!("{name}.crt")))?,
            key_pem: read(dir.join(format!("{name}.key")))?,
        })
    }
}

/// Write `content` to `path` readable by its owner only, whole or not at
/// all: into a fresh 0600 file beside it, synced, then renamed over it (an
/// existing file's looser mode is not kept, and a crash leaves the old file).
pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    write_atomic(path, content, 0o600)
}

fn write_atomic(path: &Path, content: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A certificate authority that signs the cluster's certificates.
pub struct Ca {
    pub cert_key: CertKey,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new self-signed CA valid for `validity` from now.
    pub fn generate(common_name: &str, validity: Duration) -> Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, validity);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let cert_key = CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self {
            cert_key,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its PEM certificate and key (e.g. read back from disk).
    pub fn load(cert_key: CertKey) -> Result<Self> {
        let key = KeyPair::from_pem(&cert_key.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_key.cert_pem, key)?;
        Ok(Self { cert_key, issuer })
    }

    /// A serving certificate for `dns` names and `ips`.
    pub fn issue_serving(
        &self,
        common_name: &str,
        dns: &[&str],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<CertKey> {
        let params = serving_params(common_name, dns, ips, validity)?;
        self.sign(params)
    }

    /// A client certificate: CN = user, O = groups.
    pub fn issue_client(&self, user: &str, groups: &[&str], validity: Duration) -> Result<CertKey> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(user, groups);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, validity);
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<CertKey> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A self-signed serving certificate (what kube-apiserver makes in
/// `--cert-dir` when given no certificate).
pub fn self_signed_serving(
    common_name: &str,
    dns: &[&str],
    ips: &[IpAddr],
    validity: Duration,
) -> Result<CertKey> {
    let params = serving_params(common_name, dns, ips, validity)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn serving_params(
    common_name: &str,
    dns: &[&str],
    ips: &[IpAddr],
    validity: Duration,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.distinguished_name = name(common_name, &[]);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, validity);
    Ok(params)
}

fn name(common_name: &str, organizations: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for o in organizations {
        dn.push(DnType::OrganizationName, *o);
    }
    dn
}

/// Valid from a minute ago (clock skew between machines) for `validity`.
fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after =
        now + time::Duration::try_from(validity).unwrap_or(time::Duration::days(365));
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    #[test]
    fn ca_signs_serving_and_client_certificates_that_round_trip() {
        let ca = Ca::generate("mini-kubernetes-ca", YEAR).unwrap();
        let serving = ca
            .issue_serving(
                "kube-apiserver",
                &["kubernetes", "kubernetes.default.svc"],
                &["10.96.0.1".parse().unwrap()],
                YEAR,
            )
            .unwrap();
        assert!(serving.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let admin = ca.issue_client("admin", &["system:masters"], YEAR).unwrap();
        assert!(admin.key_pem.contains("PRIVATE KEY"));

        let dir = tempfile::tempdir().unwrap();
        let (_, key) = admin.write(dir.path(), "admin").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            CertKey::read(dir.path(), "admin").unwrap().cert_pem,
            admin.cert_pem
        );

        // A CA read back from PEM still signs.
        let again = Ca::load(ca.cert_key.clone()).unwrap();
        again
            .issue_client("system:node:n1", &["system:nodes"], YEAR)
            .unwrap();
    }
}
