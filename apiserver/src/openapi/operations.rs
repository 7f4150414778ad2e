//! The operations of each served resource, as a model both document flavours
//! render from: paths, verbs, operation ids, parameters, bodies, responses and
//! the `x-kubernetes-action` / `x-kubernetes-group-version-kind` extensions
//! kubectl reads (explain finds a resource's kind through them; the
//! query-param verifier looks at PATCH operations carrying the kind).

use serde_json::{json, Value};

use k8s_openapi::api::autoscaling::v1 as autoscaling;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::params::{self, Param};
use super::schemas::{name_of, Definitions};
use crate::registry::ResourceInfo;

/// A group/version/kind, as in `x-kubernetes-group-version-kind`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub(super) fn new(group: &str, version: &str, kind: &str) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

/// Response media types of object operations.
pub(super) const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
/// Response media types of list operations (which also watch).
const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const LOG_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const ANY: &[&str] = &["*/*"];
/// Patch media types. Strategic merge patch is accepted but deliberately not
/// listed: the schemas carry no patch-merge-key metadata, and kubectl apply
/// computes its strategic merge patch from the document whenever the
/// document lists that media type, treating every list as atomic. Unlisted,
/// kubectl falls back to its compiled-in types, whose patch metadata is right.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];

/// What a response (or request) carries.
#[derive(Clone, Debug)]
pub(super) enum Payload {
    /// A definition by name.
    Definition(String),
    /// A plain string (logs, streams).
    Text,
}

#[derive(Clone, Debug)]
pub(super) struct Body {
    pub definition: String,
    pub media_types: &'static [&'static str],
    /// Delete options may be left out; objects and patches may not.
    pub required: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Operation {
    /// Lower-case HTTP method, as the document's key.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub tag: String,
    pub action: Option<&'static str>,
    pub gvk: Option<Gvk>,
    /// Operation-level (query) parameters.
    pub params: Vec<Param>,
    pub body: Option<Body>,
    /// Success codes, each answered with `payload`.
    pub codes: &'static [u16],
    pub payload: Payload,
    pub media_types: &'static [&'static str],
}

/// One path with its shared parameters and operations.
#[derive(Clone, Debug)]
pub(super) struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// "Core", "Coordination", "RbacAuthorization": the group in operation ids.
pub(super) fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    let short = group.strip_suffix(".k8s.io").unwrap_or(group);
    short.split('.').map(capitalize).collect()
}

/// The group in tags: "core", "coordination", "rbacAuthorization".
pub(super) fn group_tag(group: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => camel,
    }
}

pub(super) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "/api/v1" or "/apis/<group>/<version>".
pub(super) fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Names shared by one resource's operations.
struct Names {
    /// "CoreV1".
    gv: String,
    /// "core_v1".
    tag: String,
    /// "Namespaced" or "".
    scope: &'static str,
    kind: &'static str,
    gvk: Gvk,
    definition: &'static str,
}

impl Names {
    fn of(r: &ResourceInfo) -> Self {
        Self {
            gv: format!("{}{}", group_camel(r.group), capitalize(r.version)),
            tag: format!("{}_{}", group_tag(r.group), r.version),
            scope: if r.namespaced { "Namespaced" } else { "" },
            kind: r.kind,
            gvk: Gvk::new(r.group, r.version, r.kind),
            definition: r.definition,
        }
    }

    /// An operation with the shared fields filled in.
    fn op(
        &self,
        method: &'static str,
        id: String,
        description: String,
        action: &'static str,
    ) -> Operation {
        Operation {
            method,
            id,
            description,
            tag: self.tag.clone(),
            action: Some(action),
            gvk: Some(self.gvk.clone()),
            params: Vec::new(),
            body: None,
            codes: &[200],
            payload: Payload::Definition(self.definition.to_string()),
            media_types: OBJECT_TYPES,
        }
    }
}

fn body(definition: &str, media_types: &'static [&'static str]) -> Option<Body> {
    Some(Body {
        definition: definition.to_string(),
        media_types,
        required: true,
    })
}

fn optional_body(definition: &str) -> Option<Body> {
    Some(Body {
        definition: definition.to_string(),
        media_types: ANY,
        required: false,
    })
}

/// All paths of one resource. Registers the definitions they name; a
/// resource whose kind has no known schema gets no paths (and a warning).
pub(super) fn resource_paths(r: &ResourceInfo, defs: &mut Definitions) -> Vec<PathItem> {
    let n = Names::of(r);
    if !defs.add_kind(r.definition, n.gvk.clone()) {
        tracing::warn!(
            definition = r.definition,
            "no schema for kind; left out of the OpenAPI documents"
        );
        return Vec::new();
    }
    let verbs = r.verbs();
    let has = |v: &str| verbs.contains(&v);
    let prefix = gv_prefix(r.group, r.version);
    let collection = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let mut scope_params = Vec::new();
    if r.namespaced {
        scope_params.push(params::namespace());
    }
    let mut item_params = vec![params::name(r.kind)];
    item_params.extend(scope_params.iter().cloned());

    let status = name_of::<meta::Status>();
    let delete_options = name_of::<meta::DeleteOptions>();
    let patch = name_of::<meta::Patch>();
    let needs_meta = [&status, &delete_options, &patch];
    if needs_meta.iter().any(|d| !defs.add(d)) {
        return Vec::new();
    }
    let list = defs.add_list(r.definition, &n.gvk);

    let mut out = Vec::new();

    // The collection: list (and watch), create, deletecollection.
    let mut ops = Vec::new();
    if let (true, Some(list)) = (has("list"), &list) {
        let mut op = n.op(
            "get",
            format!("list{}{}{}", n.gv, n.scope, n.kind),
            format!("list or watch objects of kind {}", n.kind),
            "list",
        );
        op.params = params::list();
        op.payload = Payload::Definition(list.clone());
        op.media_types = LIST_TYPES;
        ops.push(op);
    }
    if has("create") {
        let mut op = n.op(
            "post",
            format!("create{}{}{}", n.gv, n.scope, n.kind),
            format!("create a {}", n.kind),
            "post",
        );
        op.params = params::write();
        op.body = body(n.definition, ANY);
        op.codes = &[200, 201, 202];
        ops.push(op);
    }
    if has("deletecollection") {
        let mut op = n.op(
            "delete",
            format!("delete{}Collection{}{}", n.gv, n.scope, n.kind),
            format!("delete collection of {}", n.kind),
            "deletecollection",
        );
        op.params = params::delete_collection();
        op.body = optional_body(&delete_options);
        op.payload = Payload::Definition(status.clone());
        ops.push(op);
    }
    push_path(&mut out, &collection, &scope_params, true, ops);

    // One object: read, replace, patch, delete.
    let mut ops = Vec::new();
    if has("get") {
        ops.push(n.op(
            "get",
            format!("read{}{}{}", n.gv, n.scope, n.kind),
            format!("read the specified {}", n.kind),
            "get",
        ));
    }
    if has("update") {
        let mut op = n.op(
            "put",
            format!("replace{}{}{}", n.gv, n.scope, n.kind),
            format!("replace the specified {}", n.kind),
            "put",
        );
        op.params = params::write();
        op.body = body(n.definition, ANY);
        op.codes = &[200, 201];
        ops.push(op);
    }
    if has("patch") {
        let mut op = n.op(
            "patch",
            format!("patch{}{}{}", n.gv, n.scope, n.kind),
            format!("partially update the specified {}", n.kind),
            "patch",
        );
        op.params = params::patch();
        op.body = body(&patch, PATCH_TYPES);
        op.codes = &[200, 201];
        ops.push(op);
    }
    if has("delete") {
        let mut op = n.op(
            "delete",
            format!("delete{}{}{}", n.gv, n.scope, n.kind),
            format!("delete a {}", n.kind),
            "delete",
        );
        op.params = params::delete();
        op.body = optional_body(&delete_options);
        op.codes = &[200, 202];
        op.payload = Payload::Definition(status.clone());
        ops.push(op);
    }
    push_path(&mut out, &item, &item_params, true, ops);

    // A namespaced kind also lists across all namespaces.
    if let (true, true, Some(list)) = (r.namespaced, has("list"), &list) {
        let mut op = n.op(
            "get",
            format!("list{}{}ForAllNamespaces", n.gv, n.kind),
            format!("list or watch objects of kind {}", n.kind),
            "list",
        );
        op.params = params::list();
        op.payload = Payload::Definition(list.clone());
        op.media_types = LIST_TYPES;
        push_path(
            &mut out,
            &format!("{prefix}/{}", r.plural),
            &[],
            true,
            vec![op],
        );
    }

    for sub in r.subresources {
        match subresource_ops(&n, sub, defs) {
            Some((ops, pretty)) => push_path(
                &mut out,
                &format!("{item}/{sub}"),
                &item_params,
                pretty,
                ops,
            ),
            None => tracing::warn!(
                kind = r.kind,
                subresource = sub,
                "subresource left out of the OpenAPI documents"
            ),
        }
    }
    out
}

fn push_path(
    out: &mut Vec<PathItem>,
    path: &str,
    shared: &[Param],
    pretty: bool,
    operations: Vec<Operation>,
) {
    if operations.is_empty() {
        return;
    }
    let mut params = shared.to_vec();
    if pretty {
        params.push(params::PRETTY);
    }
    out.push(PathItem {
        path: path.to_string(),
        params,
        operations,
    });
}

/// The operations of `<plural>/<name>/<sub>` and whether its path takes
/// `pretty`; None for a subresource this module does not know.
fn subresource_ops(n: &Names, sub: &str, defs: &mut Definitions) -> Option<(Vec<Operation>, bool)> {
    let sub_camel = capitalize(sub);
    let id = |verb: &str| format!("{verb}{}{}{}{sub_camel}", n.gv, n.scope, n.kind);
    match sub {
        // The parent kind itself, through another door.
        "status" | "ephemeralcontainers" | "resize" => {
            Some((read_replace_patch(n, sub, &id, n.definition, &n.gvk), true))
        }
        "finalize" => {
            let mut op = n.op(
                "put",
                id("replace"),
                format!("replace {sub} of the specified {}", n.kind),
                "put",
            );
            op.params = params::write();
            op.body = body(n.definition, ANY);
            op.codes = &[200, 201];
            Some((vec![op], true))
        }
        "scale" => {
            let scale = name_of::<autoscaling::Scale>();
            let gvk = Gvk::new("autoscaling", "v1", "Scale");
            if !defs.add_kind(&scale, gvk.clone()) {
                return None;
            }
            Some((read_replace_patch(n, sub, &id, &scale, &gvk), true))
        }
        "binding" | "eviction" => {
            let (definition, gvk) = if sub == "binding" {
                (name_of::<core::Binding>(), Gvk::new("", "v1", "Binding"))
            } else {
                (
                    name_of::<policy::Eviction>(),
                    Gvk::new("policy", "v1", "Eviction"),
                )
            };
            if !defs.add_kind(&definition, gvk.clone()) {
                return None;
            }
            let mut op = n.op(
                "post",
                id("create"),
                format!("create {sub} of a {}", n.kind),
                "post",
            );
            op.gvk = Some(gvk);
            op.params = params::write();
            op.body = body(&definition, ANY);
            op.codes = &[200, 201, 202];
            op.payload = Payload::Definition(definition);
            Some((vec![op], true))
        }
        "log" => {
            let mut op = n.op(
                "get",
                id("read"),
                format!("read {sub} of the specified {}", n.kind),
                "get",
            );
            op.params = params::log();
            op.payload = Payload::Text;
            op.media_types = LOG_TYPES;
            Some((vec![op], true))
        }
        "exec" | "attach" | "portforward" => Some((connect_ops(n, sub, &["get", "post"]), false)),
        "proxy" => Some((
            connect_ops(
                n,
                sub,
                &["get", "put", "post", "delete", "options", "head", "patch"],
            ),
            false,
        )),
        _ => None,
    }
}

/// get/put/patch of a subresource whose object is `definition`.
fn read_replace_patch(
    n: &Names,
    sub: &str,
    id: &dyn Fn(&str) -> String,
    definition: &str,
    gvk: &Gvk,
) -> Vec<Operation> {
    let kind = n.kind;
    let read = n.op(
        "get",
        id("read"),
        format!("read {sub} of the specified {kind}"),
        "get",
    );
    let mut replace = n.op(
        "put",
        id("replace"),
        format!("replace {sub} of the specified {kind}"),
        "put",
    );
    replace.params = params::write();
    replace.body = body(definition, ANY);
    replace.codes = &[200, 201];
    let mut patch = n.op(
        "patch",
        id("patch"),
        format!("partially update {sub} of the specified {kind}"),
        "patch",
    );
    patch.params = params::patch();
    patch.body = body(&name_of::<meta::Patch>(), PATCH_TYPES);
    patch.codes = &[200, 201];
    let mut ops = vec![read, replace, patch];
    for op in &mut ops {
        op.gvk = Some(gvk.clone());
        op.payload = Payload::Definition(definition.to_string());
    }
    ops
}

/// Streaming "connect" operations (exec, attach, portforward, proxy).
fn connect_ops(n: &Names, sub: &str, methods: &[&'static str]) -> Vec<Operation> {
    // Upstream names the options kind, e.g. PodExecOptions, PodPortForwardOptions.
    let options = match sub {
        "portforward" => "PortForward".to_string(),
        other => capitalize(other),
    };
    let gvk = Gvk::new(
        &n.gvk.group,
        &n.gvk.version,
        &format!("{}{options}Options", n.kind),
    );
    methods
        .iter()
        .map(|&method| {
            let mut op = n.op(
                method,
                format!(
                    "connect{}{}{}{}{}",
                    n.gv,
                    capitalize(method),
                    n.scope,
                    n.kind,
                    capitalize(sub)
                ),
                format!(
                    "connect {} requests to {sub} of {}",
                    method.to_uppercase(),
                    n.kind
                ),
                "connect",
            );
            op.gvk = Some(gvk.clone());
            op.params = params::connect(sub);
            op.payload = Payload::Text;
            op.media_types = ANY;
            op
        })
        .collect()
}

/// A discovery document's one GET operation (`/api/`, `/apis/`, `/apis/<g>/`,
/// `/api/v1/`), answered with `definition`.
pub(super) fn discovery_path(
    path: &str,
    id: &str,
    description: &str,
    tag: &str,
    definition: &str,
) -> PathItem {
    PathItem {
        path: path.to_string(),
        params: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id: id.to_string(),
            description: description.to_string(),
            tag: tag.to_string(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            codes: &[200],
            payload: Payload::Definition(definition.to_string()),
            media_types: OBJECT_TYPES,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("coordination.k8s.io"), "Coordination");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_tag("rbac.authorization.k8s.io"), "rbacAuthorization");
        assert_eq!(group_tag(""), "core");
        assert_eq!(gv_prefix("", "v1"), "/api/v1");
        assert_eq!(
            gv_prefix("coordination.k8s.io", "v1"),
            "/apis/coordination.k8s.io/v1"
        );
    }
}
