//! Labels and annotations the kubelet puts on CRI objects, with upstream's
//! keys (pkg/kubelet/types/labels.go, kuberuntime/labels.go), so that a
//! restarted kubelet finds its pods and containers again.

use std::collections::HashMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Set by the kubelet on sandboxes (value "podsandbox").
pub const CONTAINER_TYPE: &str = "io.kubernetes.container.type";

pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// Whether the container is an init container ("true"), ours only.
pub const INIT_CONTAINER: &str = "io.kubernetes.container.init";

pub fn pod_labels(namespace: &str, name: &str, uid: &str) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAME.to_string(), name.to_string()),
        (POD_NAMESPACE.to_string(), namespace.to_string()),
        (POD_UID.to_string(), uid.to_string()),
    ])
}

/// Only the pod's uid, for list filters.
pub fn uid_selector(uid: &str) -> HashMap<String, String> {
    HashMap::from([(POD_UID.to_string(), uid.to_string())])
}

/// The restart count a container was created with (0 when missing).
pub fn restart_count(annotations: &HashMap<String, String>) -> i32 {
    annotations
        .get(RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
