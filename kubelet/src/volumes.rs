//! Pod volumes on the node: emptyDir, hostPath, configMap and projected
//! (service account tokens, ConfigMaps, downward API), as directories under
//! `<root-dir>/pods/<uid>/volumes/kubernetes.io~<plugin>/`, mounted into
//! containers by CRI bind mounts.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_cri::v1::Mount;
use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Volume};

use crate::env::EnvInputs;

/// A prepared volume: where it is on the node.
#[derive(Clone, Debug, PartialEq)]
pub struct HostVolume {
    pub path: PathBuf,
    /// configMap volumes are always read-only.
    pub read_only: bool,
}

pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// The key of a projected service account token in the tokens map.
pub fn token_key(volume: &str, path: &str) -> String {
    format!("{volume}/{path}")
}

/// Make every volume of the pod exist on the node; a message (for the
/// container's waiting state) when one cannot. `inputs` has the pod's
/// ConfigMaps and downward-API values, `tokens` its service account tokens
/// by [`token_key`].
pub fn prepare(
    root: &Path,
    pod: &Pod,
    inputs: &EnvInputs,
    tokens: &HashMap<String, String>,
) -> Result<HashMap<String, HostVolume>, String> {
    prepare_some(root, pod, inputs, tokens, |_| true)
}

/// Write a running pod's configMap and projected volumes again (the others
/// are left alone: an emptyDir's or hostPath's contents and modes are the
/// containers' business).
pub fn refresh(
    root: &Path,
    pod: &Pod,
    inputs: &EnvInputs,
    tokens: &HashMap<String, String>,
) -> Result<(), String> {
    prepare_some(root, pod, inputs, tokens, is_updatable).map(|_| ())
}

/// Volumes whose contents follow API objects.
pub fn is_updatable(vol: &Volume) -> bool {
    vol.config_map.is_some() || vol.projected.is_some()
}

fn prepare_some(
    root: &Path,
    pod: &Pod,
    inputs: &EnvInputs,
    tokens: &HashMap<String, String>,
    which: impl Fn(&Volume) -> bool,
) -> Result<HashMap<String, HostVolume>, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let base = pod_dir(root, uid).join("volumes");
    let mut out = HashMap::new();
    for vol in pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter(|v| which(v))
    {
        let prepared = prepare_one(&base, pod, vol, inputs, tokens)
            .map_err(|e| format!("MountVolume.SetUp failed for volume \"{}\" : {e}", vol.name))?;
        if let Some(v) = prepared {
            out.insert(vol.name.clone(), v);
        }
    }
    Ok(out)
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

fn make_dir(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| io_err("mkdir", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("chmod", path, e))
}

/// A file of a volume: path inside it, content, mode.
type File = (String, Vec<u8>, Option<i32>);

/// The files a ConfigMap gives (all keys, or the `items`); none when it is
/// missing and `optional`.
fn config_map_files(
    config_maps: &HashMap<String, Option<ConfigMap>>,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
) -> Result<Vec<File>, String> {
    let Some(cm) = config_maps.get(name).and_then(|c| c.as_ref()) else {
        if optional {
            return Ok(Vec::new());
        }
        return Err(format!("configmap \"{name}\" not found"));
    };
    let mut files = Vec::new();
    let value = |key: &str| -> Option<Vec<u8>> {
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| v.as_bytes().to_vec())
            .or_else(|| {
                cm.binary_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|b| b.0.clone())
            })
    };
    match items {
        Some(items) if !items.is_empty() => {
            for item in items {
                match value(&item.key) {
                    Some(v) => files.push((item.path.clone(), v, item.mode)),
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {}",
                            item.key
                        ))
                    }
                }
            }
        }
        _ => {
            let keys = cm
                .data
                .iter()
                .flat_map(|d| d.keys())
                .chain(cm.binary_data.iter().flat_map(|d| d.keys()));
            for key in keys {
                if let Some(v) = value(key) {
                    files.push((key.clone(), v, None));
                }
            }
        }
    }
    Ok(files)
}

/// A downward-API file: one field, or a whole labels/annotations map as
/// upstream writes it (`key="value"` lines, sorted).
fn downward_file(pod: &Pod, path: &str, inputs: &EnvInputs) -> Result<Vec<u8>, String> {
    let map = match path {
        "metadata.labels" => Some(&pod.metadata.labels),
        "metadata.annotations" => Some(&pod.metadata.annotations),
        _ => None,
    };
    if let Some(map) = map {
        let lines: Vec<String> = map
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        return Ok(lines.join("\n").into_bytes());
    }
    crate::env::field_value(pod, path, inputs).map(String::into_bytes)
}

/// Make `dir` hold exactly `files`: each changed file is written beside and
/// renamed into place (a reader never sees half a file), unchanged ones are
/// not touched (no spurious inotify events), and files of keys that are gone
/// are removed.
fn write_files(dir: &Path, files: Vec<File>, default_mode: u32) -> Result<(), String> {
    make_dir(dir, 0o755)?;
    let mut keep = std::collections::HashSet::new();
    for (rel, content, mode) in files {
        if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
            return Err(format!("invalid item path {rel:?}"));
        }
        let file = dir.join(&rel);
        keep.insert(file.clone());
        let mode = mode.map(|m| m as u32).unwrap_or(default_mode);
        let unchanged = std::fs::metadata(&file)
            .is_ok_and(|m| m.permissions().mode() & 0o7777 == mode)
            && std::fs::read(&file).is_ok_and(|old| old == content);
        if unchanged {
            continue;
        }
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err("mkdir", parent, e))?;
        }
        let tmp = file.with_extension("kubelet-tmp");
        std::fs::write(&tmp, &content).map_err(|e| io_err("write", &tmp, e))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("chmod", &tmp, e))?;
        std::fs::rename(&tmp, &file).map_err(|e| io_err("rename", &file, e))?;
    }
    remove_others(dir, &keep)
}

/// Remove the files under `dir` that are not in `keep`.
fn remove_others(dir: &Path, keep: &std::collections::HashSet<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err("read", dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => remove_others(&path, keep)?,
            Ok(_) if !keep.contains(&path) => {
                std::fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?
            }
            _ => {}
        }
    }
    Ok(())
}

fn prepare_one(
    base: &Path,
    pod: &Pod,
    vol: &Volume,
    inputs: &EnvInputs,
    tokens: &HashMap<String, String>,
) -> Result<Option<HostVolume>, String> {
    if vol.empty_dir.is_some() {
        let path = base.join("kubernetes.io~empty-dir").join(&vol.name);
        // World-writable as upstream's emptyDir (0777).
        make_dir(&path, 0o777)?;
        return Ok(Some(HostVolume {
            path,
            read_only: false,
        }));
    }
    if let Some(hp) = &vol.host_path {
        let path = PathBuf::from(&hp.path);
        match hp.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => make_dir(&path, 0o755)?,
            "FileOrCreate" if !path.exists() => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_err("mkdir", parent, e))?;
                }
                std::fs::File::create(&path).map_err(|e| io_err("create", &path, e))?;
            }
            "Directory" if !path.is_dir() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a directory",
                    hp.path
                ))
            }
            "File" if !path.is_file() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a file",
                    hp.path
                ))
            }
            _ => {}
        }
        return Ok(Some(HostVolume {
            path,
            read_only: false,
        }));
    }
    if let Some(src) = &vol.config_map {
        let path = base.join("kubernetes.io~configmap").join(&vol.name);
        let files = config_map_files(
            inputs.config_maps,
            &src.name,
            src.items.as_deref(),
            src.optional.unwrap_or(false),
        )?;
        write_files(&path, files, src.default_mode.unwrap_or(0o644) as u32)?;
        return Ok(Some(HostVolume {
            path,
            read_only: true,
        }));
    }
    if let Some(projected) = &vol.projected {
        let path = base.join("kubernetes.io~projected").join(&vol.name);
        let mut files = Vec::new();
        for src in projected.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                files.extend(config_map_files(
                    inputs.config_maps,
                    &cm.name,
                    cm.items.as_deref(),
                    cm.optional.unwrap_or(false),
                )?);
            }
            for item in src
                .downward_api
                .iter()
                .flat_map(|d| d.items.iter().flatten())
            {
                let Some(field) = &item.field_ref else {
                    return Err(format!(
                        "downwardAPI item {:?}: only fieldRef is supported",
                        item.path
                    ));
                };
                let content = downward_file(pod, &field.field_path, inputs)?;
                files.push((item.path.clone(), content, item.mode));
            }
            if let Some(t) = &src.service_account_token {
                let token = tokens
                    .get(&token_key(&vol.name, &t.path))
                    .ok_or_else(|| format!("no service account token for {:?}", t.path))?;
                files.push((t.path.clone(), token.clone().into_bytes(), None));
            }
            if src.secret.is_some() || src.cluster_trust_bundle.is_some() {
                return Err("secret and clusterTrustBundle projections are not supported".into());
            }
        }
        write_files(&path, files, projected.default_mode.unwrap_or(0o644) as u32)?;
        return Ok(Some(HostVolume {
            path,
            read_only: true,
        }));
    }
    // Other volume kinds (secret, PVCs, ...) are not
    // supported: an empty directory stands in so the container still starts.
    let path = base.join("kubernetes.io~unsupported").join(&vol.name);
    make_dir(&path, 0o755)?;
    Ok(Some(HostVolume {
        path,
        read_only: true,
    }))
}

/// The CRI mounts for a container's volumeMounts.
pub fn container_mounts(
    container: &Container,
    volumes: &HashMap<String, HostVolume>,
) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let Some(vol) = volumes.get(&vm.name) else {
            return Err(format!("unable to find volume {:?} for the mount", vm.name));
        };
        let mut host = vol.path.clone();
        if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.split('/').any(|c| c == "..") || sub.starts_with('/') {
                return Err(format!("invalid subPath {sub:?}"));
            }
            host = host.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host).map_err(|e| io_err("mkdir", &host, e))?;
            }
        }
        mounts.push(Mount {
            container_path: vm.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: vol.read_only || vm.read_only.unwrap_or(false),
            ..Default::default()
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewriting_keeps_unchanged_files_and_drops_gone_keys() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = |k: &str, v: &str| (k.to_string(), v.as_bytes().to_vec(), None);
        write_files(dir.path(), vec![f("a", "1"), f("sub/b", "2")], 0o644).unwrap();
        let inode = std::fs::metadata(dir.path().join("a")).unwrap().ino();
        write_files(dir.path(), vec![f("a", "1"), f("c", "3")], 0o644).unwrap();
        // Unchanged: the same file, not a replacement.
        assert_eq!(
            std::fs::metadata(dir.path().join("a")).unwrap().ino(),
            inode
        );
        assert!(!dir.path().join("sub/b").exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("c")).unwrap(), "3");
        write_files(dir.path(), vec![f("a", "changed")], 0o644).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a")).unwrap(),
            "changed"
        );
        assert!(!dir.path().join("c").exists());
    }

    fn inputs(cms: &HashMap<String, Option<ConfigMap>>) -> EnvInputs<'_> {
        EnvInputs {
            pod_ips: vec!["10.244.0.5".into()],
            host_ip: "10.250.0.10".into(),
            services: Vec::new(),
            config_maps: cms,
            node_cpu_milli: 2000,
            node_memory_bytes: 1 << 30,
        }
    }

    #[test]
    fn config_map_and_empty_dir_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/s"}]}],
                "volumes": [{"name": "cfg", "configMap": {"name": "app"}},
                            {"name": "picked", "configMap": {"name": "app", "items": [{"key": "a", "path": "sub/x.txt", "mode": 0o600}]}},
                            {"name": "scratch", "emptyDir": {}}]}
        }))
        .unwrap();
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "app"}, "data": {"a": "hello", "b": "world"}}),
        )
        .unwrap();
        let cms = HashMap::from([("app".to_string(), Some(cm))]);
        let vols = prepare(dir.path(), &pod, &inputs(&cms), &HashMap::new()).unwrap();
        let cfg = &vols["cfg"];
        assert!(cfg.read_only);
        assert_eq!(
            std::fs::read_to_string(cfg.path.join("a")).unwrap(),
            "hello"
        );
        assert_eq!(
            std::fs::read_to_string(cfg.path.join("b")).unwrap(),
            "world"
        );
        let picked = vols["picked"].path.join("sub/x.txt");
        assert_eq!(std::fs::read_to_string(&picked).unwrap(), "hello");
        assert_eq!(
            std::fs::metadata(&picked).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!vols["picked"].path.join("b").exists());
        let scratch = &vols["scratch"];
        assert!(scratch.path.is_dir());
        assert_eq!(
            std::fs::metadata(&scratch.path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o777
        );

        let mounts = container_mounts(&pod.spec.as_ref().unwrap().containers[0], &vols).unwrap();
        assert_eq!(mounts.len(), 2);
        assert!(mounts[0].readonly);
        assert_eq!(mounts[0].container_path, "/etc/cfg");
        assert!(!mounts[1].readonly);

        let missing = HashMap::from([("app".to_string(), None)]);
        let err = prepare(dir.path(), &pod, &inputs(&missing), &HashMap::new()).unwrap_err();
        assert!(err.contains("configmap \"app\" not found"), "{err}");
    }

    #[test]
    fn projected_token_ca_and_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "dev", "uid": "u2", "labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "kube-api-access-x", "projected": {"defaultMode": 0o644, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [
                        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}]}
        }))
        .unwrap();
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "PEM"}}),
        )
        .unwrap();
        let cms = HashMap::from([("kube-root-ca.crt".to_string(), Some(cm))]);
        let tokens = HashMap::from([(token_key("kube-api-access-x", "token"), "jwt".to_string())]);
        let vols = prepare(dir.path(), &pod, &inputs(&cms), &tokens).unwrap();
        let v = &vols["kube-api-access-x"];
        assert!(v.read_only);
        let read = |f: &str| std::fs::read_to_string(v.path.join(f)).unwrap();
        assert_eq!(read("token"), "jwt");
        assert_eq!(read("ca.crt"), "PEM");
        assert_eq!(read("namespace"), "dev");
        assert_eq!(read("labels"), "app=\"web\"\ntier=\"front\"");
        let err = prepare(dir.path(), &pod, &inputs(&cms), &HashMap::new()).unwrap_err();
        assert!(err.contains("no service account token"), "{err}");
    }
}
