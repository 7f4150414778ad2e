//! The token volume every pod gets (upstream's ServiceAccount admission): a
//! projected `kube-api-access-<suffix>` volume with a token for the pod's
//! service account, the cluster CA and the namespace, mounted read-only at
//! /var/run/secrets/kubernetes.io/serviceaccount in each container, unless the
//! pod or its service account opts out with automountServiceAccountToken:
//! false or a container already mounts something there.

use serde_json::{json, Value};

pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// What kubelets ask for (upstream's default; see request.rs).
const TOKEN_SECONDS: i64 = 3607;

pub fn add_token_volume(pod: &mut Value, service_account: &Value) {
    let wanted = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| service_account["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    if !wanted {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let name = format!("kube-api-access-{}", crate::meta::random_suffix());
    let mut mounted = false;
    for key in ["initContainers", "containers"] {
        for c in spec
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(list) = mounts.as_array_mut() else {
                continue;
            };
            if list.iter().any(|m| m["mountPath"] == MOUNT_PATH) {
                continue;
            }
            list.push(json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH}));
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": super::root_ca::NAME, "items": [{"key": super::root_ca::KEY, "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    match volumes.as_array_mut() {
        Some(list) => list.push(volume),
        None => *volumes = json!([volume]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_gets_the_token_unless_it_opts_out() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "volumeMounts": [{"name": "own", "mountPath": MOUNT_PATH}]},
        ]}});
        add_token_volume(&mut pod, &json!({}));
        let volume = &pod["spec"]["volumes"][0];
        let name = volume["name"].as_str().unwrap();
        assert!(name.starts_with("kube-api-access-"));
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
            json!(name)
        );
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            volume["projected"]["sources"][0]["serviceAccountToken"]["path"],
            json!("token")
        );

        let mut off = json!({"spec": {"containers": [{"name": "a"}]}});
        add_token_volume(&mut off, &json!({"automountServiceAccountToken": false}));
        assert!(off["spec"].get("volumes").is_none());
        let mut pod_wins =
            json!({"spec": {"automountServiceAccountToken": true, "containers": [{"name": "a"}]}});
        add_token_volume(
            &mut pod_wins,
            &json!({"automountServiceAccountToken": false}),
        );
        assert_eq!(pod_wins["spec"]["volumes"].as_array().unwrap().len(), 1);
    }
}
