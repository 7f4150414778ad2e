//! Images: importing the tarballs of --image-dir at start (air-gapped
//! clusters) and making sure a container's image is there before it is
//! created, by its pull policy (upstream's images/image_manager.go).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cri::Cri;
use crate::error::{Error, IoContext, Result};

/// The image names a tarball carries: `io.containerd.image.name` (or
/// `org.opencontainers.image.ref.name`) annotations of an OCI layout's
/// index.json, or RepoTags of a docker-archive's manifest.json.
pub fn tarball_image_names(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let mut names = Vec::new();
    for entry in archive
        .entries()
        .ctx(|| format!("read {}", path.display()))?
    {
        let mut entry = entry.ctx(|| format!("read {}", path.display()))?;
        let entry_path = entry
            .path()
            .ctx(|| format!("read {}", path.display()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if entry_path != "index.json" && entry_path != "manifest.json" {
            continue;
        }
        let mut body = String::new();
        entry
            .read_to_string(&mut body)
            .ctx(|| format!("read {entry_path} in {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::Other(format!("{entry_path} in {}: {e}", path.display())))?;
        if entry_path == "index.json" {
            for m in json["manifests"].as_array().into_iter().flatten() {
                let ann = &m["annotations"];
                if let Some(n) = ann["io.containerd.image.name"]
                    .as_str()
                    .or_else(|| ann["org.opencontainers.image.ref.name"].as_str())
                {
                    names.push(n.to_string());
                }
            }
        } else {
            for m in json.as_array().into_iter().flatten() {
                for t in m["RepoTags"].as_array().into_iter().flatten() {
                    if let Some(t) = t.as_str() {
                        names.push(t.to_string());
                    }
                }
            }
        }
    }
    Ok(names)
}

/// Import every `*.tar` of `dir` whose images are not all present yet.
/// Returns the image IDs the directory provides (present or imported).
pub async fn import_dir(cri: &Cri, ctr: &Path, dir: &Path) -> Result<HashSet<String>> {
    let mut tarballs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ctx(|| format!("read --image-dir {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    tarballs.sort();
    let mut ids = HashSet::new();
    for tarball in tarballs {
        let names = tarball_image_names(&tarball)?;
        let mut missing = names.is_empty();
        for n in &names {
            if cri.image_status(n).await?.is_none() {
                missing = true;
            }
        }
        if missing {
            let started = std::time::Instant::now();
            let out = tokio::process::Command::new(ctr)
                .arg("--address")
                .arg(&cri.socket)
                .args(["-n", "k8s.io", "images", "import"])
                .arg(&tarball)
                .output()
                .await
                .ctx(|| format!("run {}", ctr.display()))?;
            if !out.status.success() {
                return Err(Error::Runtime(format!(
                    "ctr images import {}: {}",
                    tarball.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            tracing::info!(tarball = %tarball.display(), images = ?names, elapsed = ?started.elapsed(), "imported images");
        } else {
            tracing::info!(tarball = %tarball.display(), images = ?names, "images already present");
        }
        for n in &names {
            if let Some(img) = cri.image_status(n).await? {
                ids.insert(img.id);
            }
        }
    }
    Ok(ids)
}

/// Why a container's image is not usable: (waiting reason, message).
pub type ImageError = (&'static str, String);

/// The image's ID once it is present, pulling when the policy says so.
/// `Always` does not pull an image that --image-dir provided: such a node
/// has no registry to ask.
pub async fn ensure_image(
    cri: &Cri,
    image: &str,
    policy: &str,
    preloaded: &HashSet<String>,
) -> Result<String, ImageError> {
    let present = cri.image_status(image).await.map_err(|e| {
        (
            "ErrImageInspect",
            format!("Failed to inspect image \"{image}\": {e}"),
        )
    })?;
    let pull = match (&present, policy) {
        (Some(img), "Always") => !preloaded.contains(&img.id),
        (Some(_), _) => false,
        (None, "Never") => {
            return Err((
                "ErrImageNeverPull",
                format!("Container image \"{image}\" is not present with pull policy of Never"),
            ))
        }
        (None, _) => true,
    };
    if !pull {
        return Ok(present.map(|i| i.id).unwrap_or_default());
    }
    tracing::info!(image, "pulling image");
    match cri.pull_image(image).await {
        Ok(image_ref) => Ok(image_ref),
        Err(e) => Err((
            "ErrImagePull",
            format!("Failed to pull image \"{image}\": {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(dir: &Path, entry: &str, body: &str) -> PathBuf {
        let path = dir.join("img.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, entry, body.as_bytes()).unwrap();
        b.finish().unwrap();
        path
    }

    #[test]
    fn names_from_oci_and_docker_archives() {
        let dir = tempfile::tempdir().unwrap();
        let oci = tarball(
            dir.path(),
            "index.json",
            r#"{"schemaVersion":2,"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/busybox:latest"}}]}"#,
        );
        assert_eq!(
            tarball_image_names(&oci).unwrap(),
            vec!["docker.io/library/busybox:latest"]
        );
        let docker = tarball(
            dir.path(),
            "manifest.json",
            r#"[{"Config":"x.json","RepoTags":["registry.k8s.io/pause:3.10"],"Layers":[]}]"#,
        );
        assert_eq!(
            tarball_image_names(&docker).unwrap(),
            vec!["registry.k8s.io/pause:3.10"]
        );
    }
}
