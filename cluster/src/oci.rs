//! OCI image layout tarballs (image-spec v1: `oci-layout`, `index.json`, `blobs/sha256/`),
//! built byte for byte reproducibly so that an unchanged image gives an unchanged file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::IoContext;
use crate::{Error, Result};

/// Every timestamp in the images (file mtimes, `created`): fixed, for reproducible digests.
const EPOCH_SECONDS: u64 = 1_704_067_200;
const CREATED: &str = "2024-01-01T00:00:00Z";

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The annotation containerd's `ctr images import` names the image by.
pub(crate) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

enum Node {
    Dir { mode: u32, uid: u64, gid: u64 },
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// The file tree of a single-layer image, kept sorted so the layer tar is reproducible.
#[derive(Default)]
pub(crate) struct Rootfs {
    entries: BTreeMap<String, Node>,
}

fn clean(path: &str) -> String {
    path.trim_matches('/').to_string()
}

impl Rootfs {
    /// A directory with explicit mode and owner (parents: 0755 root).
    pub(crate) fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Node::Dir { mode, uid, gid });
    }

    /// A root-owned regular file.
    pub(crate) fn file(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(
            path,
            Node::File {
                data: data.into(),
                mode,
            },
        );
    }

    /// A regular file with the content and permission bits of a host file (symlinks
    /// followed: the image gets the file itself at `path`).
    pub(crate) fn host_file(&mut self, path: &str, host: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let data = std::fs::read(host).path_context("read", host)?;
        let mode = std::fs::metadata(host)
            .path_context("stat", host)?
            .permissions()
            .mode()
            & 0o7777;
        self.file(path, data, mode);
        Ok(())
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(
            path,
            Node::Symlink {
                target: target.to_string(),
            },
        );
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&clean(path))
    }

    fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            self.entries.entry(parent.to_string()).or_insert(Node::Dir {
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
            at += i + 1;
        }
    }

    /// The uncompressed layer tar: parents before children, fixed mtimes, numeric owners.
    pub(crate) fn layer_tar(&self) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, node) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(EPOCH_SECONDS);
            header.set_uid(0);
            header.set_gid(0);
            let result = match node {
                Node::Dir { mode, uid, gid } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_uid(*uid);
                    header.set_gid(*gid);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())
                }
                Node::File { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())
                }
                Node::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
            };
            result.context(|| format!("add {path} to a layer"))?;
        }
        builder.into_inner().context(|| "finish a layer".into())
    }
}

/// The parts of an image's runtime config (`config` in the OCI image config) we set.
#[derive(Default)]
pub(crate) struct RuntimeConfig {
    pub(crate) entrypoint: Vec<String>,
    pub(crate) cmd: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) working_dir: String,
    pub(crate) user: Option<String>,
    pub(crate) exposed_ports: Vec<String>,
    pub(crate) stop_signal: Option<String>,
}

impl RuntimeConfig {
    fn to_json(&self) -> Value {
        let mut config = serde_json::Map::new();
        if let Some(user) = &self.user {
            config.insert("User".into(), json!(user));
        }
        if !self.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        config.insert("Env".into(), json!(self.env));
        if !self.entrypoint.is_empty() {
            config.insert("Entrypoint".into(), json!(self.entrypoint));
        }
        if !self.cmd.is_empty() {
            config.insert("Cmd".into(), json!(self.cmd));
        }
        config.insert("WorkingDir".into(), json!(self.working_dir));
        if let Some(signal) = &self.stop_signal {
            config.insert("StopSignal".into(), json!(signal));
        }
        Value::Object(config)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The GOARCH name of the machine we build on (images hold this machine's binaries).
pub(crate) fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A complete OCI image layout as one tar: `name` (e.g. `docker.io/library/nginx:latest`)
/// goes into the index's `io.containerd.image.name` annotation.
pub(crate) fn image_layout_tar(
    name: &str,
    config: &RuntimeConfig,
    layer: &[u8],
) -> Result<Vec<u8>> {
    let tag = name
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map(|(_, tag)| tag)
        .ok_or_else(|| Error::Invalid(format!("image name {name:?} has no tag")))?;
    let layer_digest = sha256_hex(layer);
    let image_config = json!({
        "created": CREATED,
        "architecture": oci_architecture(),
        "os": "linux",
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created": CREATED, "created_by": "mini-kubernetes cluster::images"}],
    });
    let config_bytes = to_bytes(&image_config);
    let config_digest = sha256_hex(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": format!("sha256:{config_digest}"), "size": config_bytes.len()},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
    });
    let manifest_bytes = to_bytes(&manifest);
    let manifest_digest = sha256_hex(&manifest_bytes);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_bytes.len(),
            "platform": {"architecture": oci_architecture(), "os": "linux"},
            "annotations": {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: tag},
        }],
    });

    let mut out = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(EPOCH_SECONDS);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(data.len() as u64);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
        }
        out.append_data(&mut header, path, data)
            .context(|| format!("add {path} to the image layout"))
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &to_bytes(&index))?;
    add("blobs/", &[])?;
    add("blobs/sha256/", &[])?;
    add(&format!("blobs/sha256/{manifest_digest}"), &manifest_bytes)?;
    add(&format!("blobs/sha256/{config_digest}"), &config_bytes)?;
    add(&format!("blobs/sha256/{layer_digest}"), layer)?;
    out.into_inner()
        .context(|| "finish the image layout".into())
}

fn to_bytes(value: &Value) -> Vec<u8> {
    // Serializing a Value cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Write `data` to `path` unless the file already holds exactly that; the new file is
/// renamed into place, so a reader never sees half a tarball. Returns whether it wrote.
pub(crate) fn write_if_changed(path: &Path, data: &[u8]) -> Result<bool> {
    if let Ok(existing) = std::fs::read(path) {
        if existing == data {
            return Ok(false);
        }
    }
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent directory", path.display())))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.{}-{n}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).path_context("write", path);
    }
    Ok(true)
}
