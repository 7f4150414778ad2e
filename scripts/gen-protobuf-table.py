#!/usr/bin/env python3
"""Generate apiserver/src/protobuf/table.rs: the wire schema of the kinds the
apiserver reads from Kubernetes protobuf request bodies and writes to
protobuf responses.

Sources (both unpacked in the cargo registry, at the versions Cargo.lock pins):
  - k8s-pb (prost structs): message names, field numbers, wire types, nesting.
  - k8s-openapi (the apiserver's types): the JSON name of every field and whether
    it is required (not an Option). A k8s-pb field is matched to a k8s-openapi
    field by name with case and underscores ignored ("pod_ip" ~ "podIP"), so the
    JSON names always come from the types the server decodes into. Fields that
    the k8s-openapi version we build against does not know are left out: the
    server would drop them from JSON too.

Go facts that neither crate carries (which fields are pointers, which are
omitempty) are in KEEP_EMPTY_STRING and OMIT_ZERO below. Needs python3, cargo
and rustfmt. Run after changing ROOTS, or after bumping k8s-pb or k8s-openapi:
    scripts/gen-protobuf-table.py            # rewrites the table
    scripts/gen-protobuf-table.py -v         # ... and lists skipped fields
    scripts/gen-protobuf-table.py --check    # exits 1 if the table is stale
apiserver's test schema_matches_k8s_openapi then checks every JSON name and type
of the table against k8s-openapi's JSON schemas.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "apiserver/src/protobuf/table.rs"

# The kinds a request body may carry: (apiVersion, kind, OpenAPI definition).
# apiVersion "*" matches any: upstream registers DeleteOptions in every group.
ROOTS = [
    ("v1", "Namespace", "io.k8s.api.core.v1.Namespace"),
    ("v1", "Pod", "io.k8s.api.core.v1.Pod"),
    ("v1", "ReplicationController", "io.k8s.api.core.v1.ReplicationController"),
    ("v1", "Service", "io.k8s.api.core.v1.Service"),
    ("v1", "Endpoints", "io.k8s.api.core.v1.Endpoints"),
    ("v1", "Node", "io.k8s.api.core.v1.Node"),
    ("v1", "Event", "io.k8s.api.core.v1.Event"),
    ("v1", "ConfigMap", "io.k8s.api.core.v1.ConfigMap"),
    ("v1", "ServiceAccount", "io.k8s.api.core.v1.ServiceAccount"),
    ("v1", "Binding", "io.k8s.api.core.v1.Binding"),
    ("coordination.k8s.io/v1", "Lease", "io.k8s.api.coordination.v1.Lease"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "io.k8s.api.rbac.v1.ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "io.k8s.api.rbac.v1.ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role", "io.k8s.api.rbac.v1.Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "io.k8s.api.rbac.v1.RoleBinding"),
    # Create-only reviews (crate::authz::review).
    ("authorization.k8s.io/v1", "SubjectAccessReview", "io.k8s.api.authorization.v1.SubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "io.k8s.api.authorization.v1.SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", "io.k8s.api.authorization.v1.LocalSubjectAccessReview"),
    ("authentication.k8s.io/v1", "TokenRequest", "io.k8s.api.authentication.v1.TokenRequest"),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "io.k8s.api.authentication.v1.SelfSubjectReview"),
    ("autoscaling/v1", "Scale", "io.k8s.api.autoscaling.v1.Scale"),
    ("*", "DeleteOptions", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    # Only in responses: the server encodes errors as meta/v1 Status.
    ("v1", "Status", "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
]

# Response-only list kinds: `<Kind>List` of each root kind that k8s-pb has.
# k8s-openapi has no per-kind list definitions (it has a generic List<T>), so
# their JSON fields are these two, the same for every list.
LIST_FIELDS = {"metadata": ("metadata", False), "items": ("items", True)}

# Messages whose JSON form is not an object (see Type in schema.rs).
SPECIAL = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
}

# Messages left out with the fields that hold them: the reviews' `extra`
# (map of ExtraValue, a wrapped []string) that this server never reads.
UNSUPPORTED = {
    "io.k8s.api.authorization.v1.ExtraValue",
    "io.k8s.api.authentication.v1.ExtraValue",
}

# Go always writes its non-pointer fields to protobuf, zero or not, and leaves
# omitempty zeros out of JSON. Neither k8s-pb nor k8s-openapi says which fields
# are Go pointers, so these two lists carry that (taken from the Go types in
# k8s.io/api and k8s.io/apimachinery, v0.33; a field missing here only changes
# whether an explicit zero shows up in JSON, which Go clients read the same).
#
# Optional string fields drop "" unless listed here (Go *string, where "" is a
# value, or a Go string without omitempty, which JSON always carries).
KEEP_EMPTY_STRING = {
    "io.k8s.api.core.v1.Event.reportingComponent",
    "io.k8s.api.core.v1.Event.reportingInstance",
    "io.k8s.api.core.v1.NodeRuntimeHandler.name",
    "io.k8s.api.core.v1.PodDNSConfigOption.value",
    "io.k8s.api.core.v1.PortStatus.error",
    "io.k8s.api.core.v1.GRPCAction.service",
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec.storageClassName",
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec.volumeMode",
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec.volumeAttributesClassName",
    "io.k8s.api.core.v1.TypedLocalObjectReference.apiGroup",
    "io.k8s.api.core.v1.TypedObjectReference.apiGroup",
    "io.k8s.api.core.v1.TypedObjectReference.namespace",
    "io.k8s.api.core.v1.HostPathVolumeSource.type",
    "io.k8s.api.core.v1.ISCSIVolumeSource.initiatorName",
    "io.k8s.api.core.v1.AzureDiskVolumeSource.cachingMode",
    "io.k8s.api.core.v1.AzureDiskVolumeSource.fsType",
    "io.k8s.api.core.v1.AzureDiskVolumeSource.kind",
    "io.k8s.api.core.v1.ClusterTrustBundleProjection.name",
    "io.k8s.api.core.v1.ClusterTrustBundleProjection.signerName",
    "io.k8s.api.core.v1.CSIVolumeSource.fsType",
    "io.k8s.api.core.v1.VolumeMount.recursiveReadOnly",
    "io.k8s.api.core.v1.VolumeMount.mountPropagation",
    "io.k8s.api.core.v1.VolumeMountStatus.recursiveReadOnly",
    "io.k8s.api.core.v1.Container.restartPolicy",
    "io.k8s.api.core.v1.EphemeralContainerCommon.restartPolicy",
    "io.k8s.api.core.v1.PodSpec.runtimeClassName",
    "io.k8s.api.core.v1.PodSpec.preemptionPolicy",
    "io.k8s.api.core.v1.PodResourceClaim.resourceClaimName",
    "io.k8s.api.core.v1.PodResourceClaim.resourceClaimTemplateName",
    "io.k8s.api.core.v1.PodResourceClaimStatus.resourceClaimName",
    "io.k8s.api.core.v1.TopologySpreadConstraint.nodeAffinityPolicy",
    "io.k8s.api.core.v1.TopologySpreadConstraint.nodeTaintsPolicy",
    "io.k8s.api.core.v1.PodSecurityContext.supplementalGroupsPolicy",
    "io.k8s.api.core.v1.PodSecurityContext.fsGroupChangePolicy",
    "io.k8s.api.core.v1.PodSecurityContext.seLinuxChangePolicy",
    "io.k8s.api.core.v1.SeccompProfile.localhostProfile",
    "io.k8s.api.core.v1.AppArmorProfile.localhostProfile",
    "io.k8s.api.core.v1.SecurityContext.procMount",
    "io.k8s.api.core.v1.WindowsSecurityContextOptions.gmsaCredentialSpecName",
    "io.k8s.api.core.v1.WindowsSecurityContextOptions.gmsaCredentialSpec",
    "io.k8s.api.core.v1.WindowsSecurityContextOptions.runAsUserName",
    "io.k8s.api.core.v1.LoadBalancerIngress.ipMode",
    "io.k8s.api.core.v1.ServiceSpec.ipFamilyPolicy",
    "io.k8s.api.core.v1.ServiceSpec.loadBalancerClass",
    "io.k8s.api.core.v1.ServiceSpec.internalTrafficPolicy",
    "io.k8s.api.core.v1.ServiceSpec.trafficDistribution",
    "io.k8s.api.core.v1.ServicePort.appProtocol",
    "io.k8s.api.core.v1.EndpointAddress.nodeName",
    "io.k8s.api.core.v1.EndpointPort.appProtocol",
    "io.k8s.api.core.v1.NodeSwapStatus.capacity",
    "io.k8s.api.core.v1.ContainerStatus.stopSignal",
    "io.k8s.api.core.v1.Lifecycle.stopSignal",
    "io.k8s.api.coordination.v1.LeaseSpec.holderIdentity",
    "io.k8s.api.coordination.v1.LeaseSpec.strategy",
    "io.k8s.api.coordination.v1.LeaseSpec.preferredHolder",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions.uid",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions.resourceVersion",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions.propagationPolicy",
}

# Optional numbers and booleans keep an explicit 0/false (a Go pointer's value)
# unless listed here (Go non-pointer omitempty: zero means "not set").
OMIT_ZERO = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status.code",
    "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails.retryAfterSeconds",
    "io.k8s.api.core.v1.Probe.initialDelaySeconds",
    "io.k8s.api.core.v1.Probe.timeoutSeconds",
    "io.k8s.api.core.v1.Probe.periodSeconds",
    "io.k8s.api.core.v1.Probe.successThreshold",
    "io.k8s.api.core.v1.Probe.failureThreshold",
    "io.k8s.api.core.v1.VolumeMountStatus.readOnly",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta.generation",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry.subresource",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition.observedGeneration",
    "io.k8s.api.core.v1.ContainerPort.hostPort",
    "io.k8s.api.core.v1.Container.stdin",
    "io.k8s.api.core.v1.Container.stdinOnce",
    "io.k8s.api.core.v1.Container.tty",
    "io.k8s.api.core.v1.EphemeralContainerCommon.stdin",
    "io.k8s.api.core.v1.EphemeralContainerCommon.stdinOnce",
    "io.k8s.api.core.v1.EphemeralContainerCommon.tty",
    "io.k8s.api.core.v1.VolumeMount.readOnly",
    "io.k8s.api.core.v1.PodSpec.hostNetwork",
    "io.k8s.api.core.v1.PodSpec.hostPID",
    "io.k8s.api.core.v1.PodSpec.hostIPC",
    "io.k8s.api.core.v1.PodStatus.observedGeneration",
    "io.k8s.api.core.v1.PodCondition.observedGeneration",
    "io.k8s.api.core.v1.ServicePort.nodePort",
    "io.k8s.api.core.v1.ServiceSpec.healthCheckNodePort",
    "io.k8s.api.core.v1.ServiceSpec.publishNotReadyAddresses",
    "io.k8s.api.core.v1.ReplicationControllerStatus.fullyLabeledReplicas",
    "io.k8s.api.core.v1.ReplicationControllerStatus.readyReplicas",
    "io.k8s.api.core.v1.ReplicationControllerStatus.availableReplicas",
    "io.k8s.api.core.v1.ReplicationControllerStatus.observedGeneration",
    "io.k8s.api.core.v1.ReplicationControllerSpec.minReadySeconds",
    "io.k8s.api.core.v1.NodeSpec.unschedulable",
    "io.k8s.api.core.v1.Event.count",
    "io.k8s.api.core.v1.EventSeries.count",
    "io.k8s.api.core.v1.GCEPersistentDiskVolumeSource.partition",
    "io.k8s.api.core.v1.GCEPersistentDiskVolumeSource.readOnly",
    "io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource.partition",
    "io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource.readOnly",
    "io.k8s.api.core.v1.GitRepoVolumeSource.directory",
    "io.k8s.api.core.v1.NFSVolumeSource.readOnly",
    "io.k8s.api.core.v1.ISCSIVolumeSource.iscsiInterface",
    "io.k8s.api.core.v1.ISCSIVolumeSource.readOnly",
    "io.k8s.api.core.v1.ISCSIVolumeSource.chapAuthDiscovery",
    "io.k8s.api.core.v1.ISCSIVolumeSource.chapAuthSession",
    "io.k8s.api.core.v1.GlusterfsVolumeSource.readOnly",
    "io.k8s.api.core.v1.PersistentVolumeClaimVolumeSource.readOnly",
    "io.k8s.api.core.v1.RBDVolumeSource.readOnly",
    "io.k8s.api.core.v1.FlexVolumeSource.readOnly",
    "io.k8s.api.core.v1.CinderVolumeSource.readOnly",
    "io.k8s.api.core.v1.CephFSVolumeSource.readOnly",
    "io.k8s.api.core.v1.FlockerVolumeSource.datasetUUID",
    "io.k8s.api.core.v1.FCVolumeSource.readOnly",
    "io.k8s.api.core.v1.AzureFileVolumeSource.readOnly",
    "io.k8s.api.core.v1.QuobyteVolumeSource.readOnly",
    "io.k8s.api.core.v1.ScaleIOVolumeSource.sslEnabled",
    "io.k8s.api.core.v1.ScaleIOVolumeSource.readOnly",
    "io.k8s.api.core.v1.StorageOSVolumeSource.readOnly",
    "io.k8s.api.core.v1.PortworxVolumeSource.readOnly",
    "io.k8s.api.core.v1.ContainerStateTerminated.signal",
    "io.k8s.api.core.v1.NodeConfigStatus.error",
    "io.k8s.api.core.v1.ContainerImage.sizeBytes",
    "io.k8s.api.autoscaling.v1.ScaleSpec.replicas",
}


def crate_version(directory):
    return re.search(r'^version = "([^"]+)"', (directory / "Cargo.toml").read_text(), re.M).group(1)


def registry_source(name):
    """The unpacked source of the version of `name` that Cargo.lock pins."""
    lock = (REPO / "Cargo.lock").read_text()
    m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
    if not m:
        sys.exit(f"{name} is not in Cargo.lock: add it to the workspace and build once")
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    for directory in sorted((cargo_home / "registry" / "src").glob(f"*/{name}-{m.group(1)}")):
        return directory
    sys.exit(f"{name} {m.group(1)} is not unpacked under {cargo_home}/registry/src: run `cargo fetch`")


def cargo_sources(args):
    """The source directories of k8s-pb and k8s-openapi and the k8s-openapi
    feature (v1_XX) the workspace builds with."""
    dirs = {}
    for name, given in (("k8s-pb", args.k8s_pb), ("k8s-openapi", args.k8s_openapi)):
        directory = Path(given) if given else registry_source(name)
        dirs[name] = (directory, crate_version(directory))
    ws = (REPO / "Cargo.toml").read_text()
    m = re.search(r'k8s-openapi\s*=\s*\{[^}]*features\s*=\s*\[[^\]]*"(v1_\d+)"', ws)
    if not m or len(dirs) != 2:
        sys.exit("k8s-pb and k8s-openapi (with a v1_XX feature) must be workspace dependencies")
    return dirs["k8s-pb"], dirs["k8s-openapi"], m.group(1)


def norm(name):
    """A field name with case, underscores, raw-identifier and punctuation removed."""
    return re.sub(r"[^a-z0-9]", "", name.removeprefix("r#").lower())


def split_top(text, sep=","):
    """Split on sep outside angle brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def definition_name(module):
    """k8s-pb module path ("api.core.v1") -> OpenAPI package ("io.k8s.api.core.v1")."""
    first, _, rest = module.partition(".")
    first = first.replace("_", "-")
    return f"io.k8s.{first}.{rest}" if rest else f"io.k8s.{first}"


def resolve(module, rust_type):
    """A prost field type (relative path, maybe wrapped) -> OpenAPI name."""
    ty = rust_type.replace(" ", "").replace("\n", "")
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<"):
        if ty.startswith(wrapper):
            # rustfmt leaves a trailing comma in long wrapped types.
            ty = ty[len(wrapper) : -1].rstrip(",")
    parts = module.split(".")
    segs = ty.split("::")
    while segs[0] == "super":
        parts.pop()
        segs.pop(0)
    return definition_name(".".join(parts + segs[:-1])) + "." + segs[-1]


STRUCT_RE = re.compile(r"pub struct (\w+) \{\n(.*?)\n\}", re.S)
FIELD_RE = re.compile(r"#\[prost\(([^\]]*)\)\]\s*pub ((?:r#)?\w+):")


def struct_fields(body):
    """(prost attribute, field name, field type) of each field of a struct body."""
    for m in FIELD_RE.finditer(body):
        ty = split_top(body[m.end() :])[0]
        yield m.group(1), m.group(2), re.sub(r"\s+", "", ty).rstrip(",")


def parse_k8s_pb(src):
    """{definition: [(number, rust_name, label, type, message_ref)]}"""
    messages = {}
    for path in src.rglob("mod.rs"):
        module = ".".join(path.parent.relative_to(src).parts)
        text = "\n".join(
            line for line in path.read_text().splitlines() if not line.strip().startswith("///")
        )
        for name, body in STRUCT_RE.findall(text):
            fields = []
            for attr, fname, fty in struct_fields(body):
                number = int(re.search(r'tag = "(\d+)"', attr).group(1))
                kind = attr.split(",")[0].split("=")[0].strip()
                if kind == "btree_map":
                    key, value = re.search(r'btree_map = "(\w+), (\w+)"', attr).groups()
                    assert key == "string", (name, fname)
                    ref = None
                    if value == "message":
                        inner = fty.split("BTreeMap<", 1)[1][:-1]
                        ref = resolve(module, split_top(inner)[1])
                    fields.append((number, fname, "Map", value, ref))
                    continue
                label = "Repeated" if "repeated" in attr else "Single"
                ref = resolve(module, fty) if kind == "message" else None
                fields.append((number, fname, label, kind, ref))
            messages[f"{definition_name(module)}.{name}"] = fields
    return messages


OPENAPI_FIELD_RE = re.compile(r"^    pub (\w+): (.*),$", re.M)
JSON_NAME_RE = re.compile(r'"([^"]+)" => Field::Key_(\w+),')
RESOURCE_RE = re.compile(r'const API_VERSION: &\'static str = "([^"]*)";\s*const GROUP.*?const KIND: &\'static str = "(\w+)";', re.S)


def parse_k8s_openapi(src):
    """{definition: ({rust_name: (json_name, required)}, (apiVersion, kind) | None)}"""
    types = {}
    for path in src.rglob("*.rs"):
        text = path.read_text()
        m = re.match(r"// Generated from definition (\S+)", text)
        if not m:
            continue
        struct = re.search(r"pub struct \w+ \{\n(.*?)\n\}", text, re.S)
        json_names = dict((rust, js) for js, rust in JSON_NAME_RE.findall(text))
        fields = {}
        if struct:
            for rust, ty in OPENAPI_FIELD_RE.findall(struct.group(1)):
                if rust in json_names:
                    fields[rust] = (json_names[rust], not ty.startswith("Option<"))
        res = RESOURCE_RE.search(text)
        types[m.group(1)] = (fields, res.groups() if res else None)
    return types


def canonical_names(pb, openapi):
    """Rename k8s-pb messages to k8s-openapi's definition names: prost rewrites
    acronyms in type names (PodDNSConfig -> PodDnsConfig)."""
    by_lower = {name.lower(): name for name in openapi}
    by_lower.update({name.lower(): name for name in SPECIAL})

    def canon(name):
        return by_lower.get(name.lower(), name)

    return {
        canon(name): [(n, rust, label, kind, ref and canon(ref)) for n, rust, label, kind, ref in fields]
        for name, fields in pb.items()
    }


def add_lists(pb, openapi):
    """ROOTS plus the list kinds, whose definitions are added to `openapi`."""
    roots = list(ROOTS)
    for api_version, kind, definition in ROOTS:
        name = definition + "List"
        if api_version != "*" and name in pb and name not in openapi:
            openapi[name] = (LIST_FIELDS, (api_version, kind + "List"))
            roots.append((api_version, kind + "List", name))
    return roots


def build(pb, openapi, roots):
    """Walk from ROOTS; returns ordered {definition: [field dict]} and notes.

    Go structs embedded with `json:",inline"` are a nested message in protobuf
    (Volume.volumeSource, Probe.handler) but flat in JSON: such a field has no
    JSON name of its own and its message's fields are the parent's JSON fields.
    Inlined messages without an OpenAPI definition take their JSON names from
    the parent's."""
    order, notes, pending = {}, [], [(d, None) for _, _, d in roots]
    while pending:
        name, inherited = pending.pop(0)
        if name in order or name in SPECIAL:
            continue
        source = openapi[name][0] if name in openapi else inherited
        if name not in pb or source is None:
            sys.exit(f"{name}: missing from k8s-pb or k8s-openapi")
        by_norm = {norm(r): v for r, v in source.items()}
        assert len(by_norm) == len(source), f"{name}: field names differ only in case"
        fields = []
        for number, rust, label, kind, ref in sorted(pb[name]):
            if ref in UNSUPPORTED:
                by_norm.pop(norm(rust), None)
                notes.append(f"{name}.{rust} (#{number}): {ref} unsupported, skipped")
                continue
            field = dict(number=number, label=label, kind=kind, ref=ref, json="", zero="Keep", required=False)
            if norm(rust) in by_norm:
                json_name, required = by_norm.pop(norm(rust))
                zero = zero_policy(f"{name}.{json_name}", label, kind, required)
                field.update(json=json_name, zero=zero, required=required)
                if ref:
                    pending.append((ref, None))
            elif is_inline(pb, ref, label, by_norm):
                for inner in pb[ref]:
                    by_norm.pop(norm(inner[1]), None)
                field.update(label="Inline")
                pending.append((ref, source))
            else:
                notes.append(f"{name}.{rust} (#{number}): not in k8s-openapi, skipped")
                continue
            fields.append(field)
        for json_name, _ in by_norm.values() if name in openapi else ():
            notes.append(f"{name}.{json_name}: in k8s-openapi but not in k8s-pb")
        order[name] = fields
    return order, notes


def is_inline(pb, ref, label, parent_fields):
    """A singular message field whose message's fields are the parent's JSON fields."""
    if ref is None or ref in SPECIAL or label != "Single" or ref not in pb:
        return False
    return any(norm(inner[1]) in parent_fields for inner in pb[ref])


def zero_policy(key, label, kind, required):
    """Whether a zero scalar is left out of JSON (see KEEP_EMPTY_STRING, OMIT_ZERO)."""
    if label != "Single" or required:
        return "Keep"
    if kind in ("string", "bytes"):
        return "Keep" if key in KEEP_EMPTY_STRING else "Omit"
    if kind in ("bool", "int32", "int64"):
        return "Omit" if key in OMIT_ZERO else "Keep"
    return "Keep"


def ident(definition):
    """io.k8s.api.core.v1.PodSpec -> CORE_V1_POD_SPEC."""
    parts = definition.removeprefix("io.k8s.").split(".")
    parts = [p for p in parts if p not in ("api", "apimachinery", "pkg", "apis")]
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", "_".join(parts))
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", words)
    return re.sub(r"[^A-Za-z0-9]", "_", words).upper()


def type_expr(kind, ref):
    if ref is not None:
        special = SPECIAL.get(ref)
        return f"Type::{special}" if special else f"Type::Message(&{ident(ref)})"
    return SCALARS[kind]


# Protobuf scalar kinds the decoder handles (schema.rs Type).
SCALARS = {
    "string": "Type::String",
    "bytes": "Type::Bytes",
    "bool": "Type::Bool",
    "int32": "Type::Int32",
    "int64": "Type::Int64",
}

# Special messages the decoder handles (schema.rs Type).
SUPPORTED_SPECIAL = {"Time", "MicroTime", "RawJson", "Quantity", "IntOrString"}


def field_expr(f):
    """One schema.rs Field constructor call."""
    ty = type_expr(f["kind"], f["ref"])
    if f["label"] == "Inline":
        return f"Field::inline({f['number']}, {ty})"
    ctor = {"Repeated": "repeated", "Map": "map"}.get(f["label"])
    if ctor is None:
        ctor = "omit_zero" if f["zero"] == "Omit" else "single"
    return f'Field::{ctor}({f["number"]}, "{f["json"]}", {ty})'


def check_supported(order):
    for name, fields in order.items():
        for f in fields:
            special = SPECIAL.get(f["ref"])
            if (f["ref"] is None and f["kind"] not in SCALARS) or (special and special not in SUPPORTED_SPECIAL):
                sys.exit(f"{name}.{f['json']}: {special or f['kind']} is not supported by the decoder yet")


def render(order, versions, openapi, roots):
    pb_version, openapi_version, feature = versions
    out = [
        f"// @generated by scripts/gen-protobuf-table.py from k8s-pb {pb_version} and",
        f"// k8s-openapi {openapi_version} ({feature}). Do not edit; rerun the script.",
        "",
        "use super::schema::{Field, Message, Type};",
        "",
        "/// The kinds a protobuf body may carry: (apiVersion, kind, schema).",
        "pub(super) static ROOTS: &[(&str, &str, &Message)] = &[",
    ]
    for api_version, kind, definition in roots:
        res = openapi[definition][1]
        assert api_version == "*" or res == (api_version, kind), (definition, res)
        out.append(f'    ("{api_version}", "{kind}", &{ident(definition)}),')
    out.append("];")
    for name, fields in order.items():
        out += ["", f"static {ident(name)}: Message = Message {{", f'    name: "{name}",', "    fields: &["]
        out += [f"        {field_expr(f)}," for f in fields]
        out += ["    ],", "};"]
    text = "\n".join(out) + "\n"
    return subprocess.run(
        ["rustfmt", "--edition", "2021", "--emit", "stdout"], input=text, capture_output=True, text=True, check=True
    ).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the table is stale")
    parser.add_argument("-v", "--verbose", action="store_true", help="list skipped fields")
    parser.add_argument("--k8s-pb", help="k8s-pb source directory (default: from Cargo.lock)")
    parser.add_argument("--k8s-openapi", help="k8s-openapi source directory (default: from Cargo.lock)")
    args = parser.parse_args()
    (pb_dir, pb_version), (openapi_dir, openapi_version), feature = cargo_sources(args)
    pb = parse_k8s_pb(pb_dir / "src")
    openapi = parse_k8s_openapi(openapi_dir / "src" / feature)
    pb = canonical_names(pb, openapi)
    roots = add_lists(pb, openapi)
    order, notes = build(pb, openapi, roots)
    check_supported(order)
    for key in sorted(KEEP_EMPTY_STRING | OMIT_ZERO):
        definition, _, field = key.rpartition(".")
        matches = [f for f in order.get(definition, []) if f["json"] == field]
        if not matches:
            notes.append(f"{key}: listed but no such field")
        elif matches[0]["required"]:
            notes.append(f"{key}: listed but required (always kept)")
    if args.verbose:
        print("\n".join(notes), file=sys.stderr)
    text = render(order, (pb_version, openapi_version, feature), openapi, roots)
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        sys.exit(0 if current == text else "table.rs is stale: run scripts/gen-protobuf-table.py")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"{OUT.relative_to(REPO)}: {len(order)} messages", file=sys.stderr)


if __name__ == "__main__":
    main()
