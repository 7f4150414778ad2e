//! Which lists a strategic merge patch merges, and by which key.
//!
//! The knowledge is upstream's: the `patchStrategy` / `patchMergeKey` struct tags of the
//! core/v1 and meta/v1 Go types (k8s.io/api and k8s.io/apimachinery v0.33), which also show
//! up as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` in the OpenAPI
//! spec. coordination/v1 (Lease) declares none. `TAGGED_FIELDS` is the one table of tags;
//! `FIELD_TYPES` only says which Go type sits under a field, so that a JSON path such as
//! `spec.template.spec.containers` reaches `PodSpec.containers` from any kind.

/// How a field merges under a strategic merge patch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatchMeta {
    /// `patchStrategy:"merge"`: lists merge element by element instead of being replaced.
    pub merge: bool,
    /// `retainKeys` is also declared (it shapes patches kubectl computes; applying
    /// honours a `$retainKeys` directive wherever it appears).
    pub retain_keys: bool,
    /// `patchMergeKey`: the field identifying an element of a merging list of objects.
    /// `None` for merging lists of scalars (set semantics).
    pub merge_key: Option<&'static str>,
}

/// One tagged field of a Go type.
struct Tag {
    go_type: &'static str,
    field: &'static str,
    retain_keys: bool,
    merge_key: Option<&'static str>,
}

/// `patchStrategy:"merge"` with `patchMergeKey` (or none for a list of scalars).
const fn merge(go_type: &'static str, field: &'static str, merge_key: Option<&'static str>) -> Tag {
    Tag {
        go_type,
        field,
        retain_keys: false,
        merge_key,
    }
}

/// `patchStrategy:"merge,retainKeys"`.
const fn merge_retain_keys(
    go_type: &'static str,
    field: &'static str,
    merge_key: Option<&'static str>,
) -> Tag {
    Tag {
        retain_keys: true,
        ..merge(go_type, field, merge_key)
    }
}

/// Upstream's tags (in core/v1 and meta/v1 every tagged field is `patchStrategy:"merge"`).
/// Fields absent here are atomic: a patch replaces lists and merges objects key by key.
/// Notably atomic upstream: tolerations, node taints, endpoints subsets, service
/// externalIPs, namespace finalizers.
const TAGGED_FIELDS: &[Tag] = &[
    // meta/v1
    merge("ObjectMeta", "ownerReferences", Some("uid")),
    merge("ObjectMeta", "finalizers", None),
    // core/v1 PodSpec
    merge_retain_keys("PodSpec", "volumes", Some("name")),
    merge("PodSpec", "initContainers", Some("name")),
    merge("PodSpec", "containers", Some("name")),
    merge("PodSpec", "ephemeralContainers", Some("name")),
    merge("PodSpec", "imagePullSecrets", Some("name")),
    merge("PodSpec", "hostAliases", Some("ip")),
    merge("PodSpec", "topologySpreadConstraints", Some("topologyKey")),
    merge("PodSpec", "schedulingGates", Some("name")),
    merge_retain_keys("PodSpec", "resourceClaims", Some("name")),
    merge("Container", "ports", Some("containerPort")),
    merge("Container", "env", Some("name")),
    merge("Container", "volumeMounts", Some("mountPath")),
    merge("Container", "volumeDevices", Some("devicePath")),
    // EphemeralContainerCommon, inlined into EphemeralContainer
    merge("EphemeralContainer", "ports", Some("containerPort")),
    merge("EphemeralContainer", "env", Some("name")),
    merge("EphemeralContainer", "volumeMounts", Some("mountPath")),
    merge("EphemeralContainer", "volumeDevices", Some("devicePath")),
    // core/v1 PodStatus
    merge("PodStatus", "conditions", Some("type")),
    merge("PodStatus", "hostIPs", Some("ip")),
    merge("PodStatus", "podIPs", Some("ip")),
    merge_retain_keys("PodStatus", "resourceClaimStatuses", Some("name")),
    merge("ContainerStatus", "volumeMounts", Some("mountPath")),
    merge("ContainerStatus", "allocatedResourcesStatus", Some("name")),
    // other core/v1 kinds
    merge("ReplicationControllerStatus", "conditions", Some("type")),
    merge("ServiceSpec", "ports", Some("port")),
    merge("ServiceStatus", "conditions", Some("type")),
    merge("ServiceAccount", "secrets", Some("name")),
    merge("NodeSpec", "podCIDRs", None),
    merge("NodeStatus", "conditions", Some("type")),
    merge("NodeStatus", "addresses", Some("type")),
    merge("NamespaceStatus", "conditions", Some("type")),
    merge("ComponentStatus", "conditions", Some("type")),
    merge("PersistentVolumeClaimStatus", "conditions", Some("type")),
];

/// Any kind's `metadata`.
const ANY_KIND: &str = "*";

/// (Go type, JSON field, Go type of the value or of a list element): only the edges that
/// lead to a tagged field. A Go type that is a kind is spelled like the kind.
const FIELD_TYPES: &[(&str, &str, &str)] = &[
    (ANY_KIND, "metadata", "ObjectMeta"),
    ("Pod", "spec", "PodSpec"),
    ("Pod", "status", "PodStatus"),
    ("PodSpec", "containers", "Container"),
    ("PodSpec", "initContainers", "Container"),
    ("PodSpec", "ephemeralContainers", "EphemeralContainer"),
    ("PodSpec", "volumes", "Volume"),
    ("Volume", "ephemeral", "EphemeralVolumeSource"),
    (
        "EphemeralVolumeSource",
        "volumeClaimTemplate",
        "PersistentVolumeClaimTemplate",
    ),
    ("PersistentVolumeClaimTemplate", "metadata", "ObjectMeta"),
    ("PodStatus", "containerStatuses", "ContainerStatus"),
    ("PodStatus", "initContainerStatuses", "ContainerStatus"),
    ("PodStatus", "ephemeralContainerStatuses", "ContainerStatus"),
    ("PodTemplate", "template", "PodTemplateSpec"),
    ("PodTemplateSpec", "metadata", "ObjectMeta"),
    ("PodTemplateSpec", "spec", "PodSpec"),
    ("ReplicationController", "spec", "ReplicationControllerSpec"),
    (
        "ReplicationController",
        "status",
        "ReplicationControllerStatus",
    ),
    ("ReplicationControllerSpec", "template", "PodTemplateSpec"),
    ("Service", "spec", "ServiceSpec"),
    ("Service", "status", "ServiceStatus"),
    ("Node", "spec", "NodeSpec"),
    ("Node", "status", "NodeStatus"),
    ("Namespace", "status", "NamespaceStatus"),
    (
        "PersistentVolumeClaim",
        "status",
        "PersistentVolumeClaimStatus",
    ),
];

/// Kinds whose Go type appears in the tables above (core/v1 and coordination/v1).
const KNOWN_KINDS: &[&str] = &[
    "Binding",
    "ComponentStatus",
    "ConfigMap",
    "Endpoints",
    "Event",
    "LimitRange",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ResourceQuota",
    "Secret",
    "Service",
    "ServiceAccount",
    "Lease",
];

/// Whether the tables describe `kind`. Other kinds still get strategic merge patches,
/// with only `metadata`'s tags known (every list of theirs is then replaced).
pub fn is_known_kind(kind: &str) -> bool {
    KNOWN_KINDS.contains(&kind)
}

/// A position in the type graph: the Go type of the JSON object being merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schema {
    /// `None`: a type the tables know nothing about (maps, atomic structs, ...).
    go_type: Option<&'static str>,
    /// The object is a whole resource of some kind (so `metadata` is `ObjectMeta`).
    root: bool,
}

impl Schema {
    /// The schema of a whole object of `kind`.
    pub(crate) fn for_kind(kind: &str) -> Schema {
        Schema {
            go_type: KNOWN_KINDS.iter().copied().find(|k| *k == kind),
            root: true,
        }
    }

    /// Tags of `field` in this type, and the schema of its value (or list elements).
    pub(crate) fn field(&self, field: &str) -> (PatchMeta, Schema) {
        let meta = self
            .go_type
            .and_then(|ty| {
                TAGGED_FIELDS
                    .iter()
                    .find(|tag| tag.go_type == ty && tag.field == field)
            })
            .map(|tag| PatchMeta {
                merge: true,
                retain_keys: tag.retain_keys,
                merge_key: tag.merge_key,
            })
            .unwrap_or_default();
        let child = FIELD_TYPES
            .iter()
            .find(|(t, f, _)| {
                *f == field && (Some(*t) == self.go_type || (self.root && *t == ANY_KIND))
            })
            .map(|&(_, _, child)| child);
        (
            meta,
            Schema {
                go_type: child,
                root: false,
            },
        )
    }
}

/// Tags of the field at `path` (field names separated by dots, list indexes left out)
/// in an object of `kind`, e.g. `("Pod", "spec.containers.ports")`.
pub fn patch_meta(kind: &str, path: &str) -> PatchMeta {
    let mut schema = Schema::for_kind(kind);
    let mut meta = PatchMeta::default();
    for field in path.split('.') {
        (meta, schema) = schema.field(field);
    }
    meta
}

/// The merge key of the list at `path` in an object of `kind`, e.g.
/// `merge_key("ReplicationController", "spec.template.spec.containers") == Some("name")`.
pub fn merge_key(kind: &str, path: &str) -> Option<&'static str> {
    patch_meta(kind, path).merge_key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_lists_are_found_under_every_prefix() {
        assert_eq!(merge_key("Pod", "spec.containers"), Some("name"));
        assert_eq!(
            merge_key("Pod", "spec.containers.ports"),
            Some("containerPort")
        );
        assert_eq!(merge_key("Pod", "spec.initContainers.env"), Some("name"));
        assert_eq!(
            merge_key("Pod", "spec.ephemeralContainers.volumeMounts"),
            Some("mountPath")
        );
        assert_eq!(
            merge_key("ReplicationController", "spec.template.spec.containers"),
            Some("name")
        );
        assert_eq!(
            merge_key(
                "ReplicationController",
                "spec.template.spec.containers.volumeDevices"
            ),
            Some("devicePath")
        );
        assert_eq!(
            merge_key("PodTemplate", "template.spec.volumes"),
            Some("name")
        );
        assert_eq!(
            merge_key(
                "ReplicationController",
                "spec.template.metadata.ownerReferences"
            ),
            Some("uid")
        );
    }

    #[test]
    fn other_kinds_lists() {
        assert_eq!(merge_key("Service", "spec.ports"), Some("port"));
        assert_eq!(merge_key("Node", "status.addresses"), Some("type"));
        assert_eq!(merge_key("Node", "status.conditions"), Some("type"));
        assert_eq!(merge_key("ComponentStatus", "conditions"), Some("type"));
        assert_eq!(merge_key("ServiceAccount", "secrets"), Some("name"));
        assert_eq!(merge_key("Lease", "metadata.ownerReferences"), Some("uid"));
        assert_eq!(merge_key("Widget", "metadata.ownerReferences"), Some("uid"));
    }

    #[test]
    fn scalar_and_atomic_lists() {
        let finalizers = patch_meta("Pod", "metadata.finalizers");
        assert!(finalizers.merge);
        assert_eq!(finalizers.merge_key, None);
        assert!(patch_meta("Node", "spec.podCIDRs").merge);
        assert_eq!(patch_meta("Node", "spec.taints"), PatchMeta::default());
        assert_eq!(patch_meta("Pod", "spec.tolerations"), PatchMeta::default());
        assert_eq!(patch_meta("Endpoints", "subsets"), PatchMeta::default());
        assert!(!patch_meta("Namespace", "spec.finalizers").merge);
        assert!(patch_meta("Pod", "spec.volumes").retain_keys);
        // `metadata` is ObjectMeta only at the top of a kind.
        assert_eq!(
            patch_meta("Pod", "spec.metadata.finalizers"),
            PatchMeta::default()
        );
    }
}
