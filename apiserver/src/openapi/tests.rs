//! Document-level tests: what kubectl reads from the documents (explain's kind
//! lookup, the fieldValidation verifier), hashes and reference integrity.

use std::marker::PhantomData;

use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

use super::*;
use crate::registry::ResourceInfo;
use crate::strategy::{KindStrategy, Typed};

/// A strategy with every default: these tests only need the registry's names.
struct Plain<K>(PhantomData<fn() -> K>);

impl<K> KindStrategy for Plain<K>
where
    K: serde::Serialize
        + serde::de::DeserializeOwned
        + k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Default
        + Clone
        + Send
        + Sync
        + 'static,
{
    type Object = K;
}

fn info<K>(
    plural: &'static str,
    namespaced: bool,
    subresources: &'static [&'static str],
) -> ResourceInfo
where
    K: serde::Serialize
        + serde::de::DeserializeOwned
        + k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + schemars::JsonSchema
        + Default
        + Clone
        + Send
        + Sync
        + 'static,
{
    let definition: &'static str = Box::leak(K::schema_name().into_owned().into_boxed_str());
    ResourceInfo {
        group: K::GROUP,
        version: K::VERSION,
        kind: K::KIND,
        plural,
        singular: "",
        namespaced,
        short_names: &[],
        categories: &[],
        subresources,
        has_status: subresources.contains(&"status"),
        definition,
        strategy: Box::new(Typed(Plain::<K>(PhantomData))),
    }
}

/// The served kinds, with the subresources they are likely to have; "token"
/// stands for a subresource the documents do not know.
fn registry() -> Registry {
    Registry {
        resources: vec![
            info::<core::Namespace>("namespaces", false, &["status", "finalize"]),
            info::<core::Pod>(
                "pods",
                true,
                &[
                    "status",
                    "binding",
                    "eviction",
                    "log",
                    "exec",
                    "attach",
                    "portforward",
                    "ephemeralcontainers",
                ],
            ),
            info::<core::ReplicationController>(
                "replicationcontrollers",
                true,
                &["status", "scale"],
            ),
            info::<core::Service>("services", true, &["status", "proxy"]),
            info::<core::Endpoints>("endpoints", true, &[]),
            info::<core::Node>("nodes", false, &["status", "proxy"]),
            info::<core::Event>("events", true, &[]),
            info::<core::ConfigMap>("configmaps", true, &[]),
            info::<core::ServiceAccount>("serviceaccounts", true, &["token"]),
            info::<coordination::Lease>("leases", true, &[]),
        ],
    }
}

fn parse(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).expect("document is JSON")
}

fn v3(api: &OpenApi, path: &str) -> Value {
    let (bytes, _) = api.v3_document(path).expect("document exists");
    parse(&bytes)
}

/// Resolves a local `$ref` as kubectl's explain does (JSON pointer in the document).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn assert_refs_resolve(doc: &Value, prefix: &str) {
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(r.starts_with(prefix), "{r}");
        assert!(resolve(doc, &r).is_some(), "dangling {r}");
    }
}

#[test]
fn index_lists_each_document_with_its_hash() {
    let api = OpenApi::new(&registry());
    let index = api.v3_index();
    let paths = index["paths"].as_object().unwrap();
    let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "api",
            "api/v1",
            "apis",
            "apis/coordination.k8s.io",
            "apis/coordination.k8s.io/v1"
        ]
    );
    for (key, entry) in paths {
        let (_, hash) = api.v3_document(key).unwrap();
        assert_eq!(
            entry["serverRelativeURL"],
            format!("/openapi/v3/{key}?hash={hash}"),
            "{key}"
        );
    }
    assert!(api.v3_document("apis/apps/v1").is_none());
    // Leading and trailing slashes are tolerated.
    assert_eq!(
        api.v3_document("/api/v1/").unwrap().1,
        api.v3_document("api/v1").unwrap().1
    );
}

#[test]
fn hashes_are_stable_and_follow_content() {
    let a = OpenApi::new(&registry());
    let b = OpenApi::new(&registry());
    assert_eq!(a.v3_index(), b.v3_index());
    assert_eq!(a.v2_hash(), b.v2_hash());
    assert_eq!(a.v2_document(), b.v2_document());
    let (_, h1) = a.v3_document("api").unwrap();
    let (_, h2) = a.v3_document("api/v1").unwrap();
    assert_ne!(h1, h2);
    assert_eq!(h1.len(), 32);

    let mut smaller = registry();
    smaller.resources.retain(|r| r.kind != "ConfigMap");
    let c = OpenApi::new(&smaller);
    assert_ne!(c.v3_document("api/v1").unwrap().1, h2);
    assert_eq!(c.v3_document("api").unwrap().1, h1);
}

#[test]
fn core_document_has_pod_with_gvk_and_resolvable_containers() {
    let api = OpenApi::new(&registry());
    let doc = v3(&api, "api/v1");
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = &doc["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert!(pod["description"]
        .as_str()
        .unwrap()
        .starts_with("Pod is a collection of containers"));
    let spec_ref = pod["properties"]["spec"]["$ref"].as_str().unwrap();
    assert_eq!(spec_ref, "#/components/schemas/io.k8s.api.core.v1.PodSpec");
    let spec = resolve(&doc, spec_ref).unwrap();
    let containers = &spec["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    let item = resolve(&doc, containers["items"]["$ref"].as_str().unwrap()).unwrap();
    assert!(item["properties"]["image"]["description"].is_string());
    assert_eq!(item["required"], json!(["name"]));

    for name in [
        "io.k8s.api.core.v1.PodList",
        "io.k8s.api.core.v1.Namespace",
        "io.k8s.api.core.v1.ReplicationController",
        "io.k8s.api.core.v1.Service",
        "io.k8s.api.core.v1.Endpoints",
        "io.k8s.api.core.v1.Node",
        "io.k8s.api.core.v1.Event",
        "io.k8s.api.core.v1.ConfigMap",
        "io.k8s.api.core.v1.ServiceAccount",
        "io.k8s.api.core.v1.Binding",
        "io.k8s.api.policy.v1.Eviction",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    ] {
        assert!(schemas.get(name).is_some(), "missing {name}");
    }
    // Other groups' kinds stay in their own documents.
    assert!(schemas.get("io.k8s.api.coordination.v1.Lease").is_none());
}

#[test]
fn coordination_document_serves_leases() {
    let api = OpenApi::new(&registry());
    let doc = v3(&api, "apis/coordination.k8s.io/v1");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.api.coordination.v1.Lease"]["x-kubernetes-group-version-kind"],
        json!([{"group": "coordination.k8s.io", "kind": "Lease", "version": "v1"}])
    );
    assert!(schemas
        .get("io.k8s.api.coordination.v1.LeaseList")
        .is_some());
    assert!(schemas.get("io.k8s.api.core.v1.Pod").is_none());
    let paths = &doc["paths"];
    let item = &paths["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"];
    assert_eq!(
        item["patch"]["operationId"],
        "patchCoordinationV1NamespacedLease"
    );
    assert_eq!(item["get"]["x-kubernetes-action"], "get");
    assert_eq!(
        paths["/apis/coordination.k8s.io/v1/leases"]["get"]["operationId"],
        "listCoordinationV1LeaseForAllNamespaces"
    );
    assert_eq!(
        paths["/apis/coordination.k8s.io/v1/"]["get"]["operationId"],
        "getCoordinationV1APIResources"
    );
}

#[test]
fn every_reference_resolves_in_every_document() {
    let api = OpenApi::new(&registry());
    for key in api.v3_index()["paths"].as_object().unwrap().keys() {
        assert_refs_resolve(&v3(&api, key), "#/components/schemas/");
    }
    let v2 = parse(&api.v2_document());
    assert_refs_resolve(&v2, "#/definitions/");
}

#[test]
fn schemas_are_objects_as_openapi_3_0_requires() {
    // OpenAPI 3.0 has no boolean schemas; only additionalProperties may be a bool.
    fn check(v: &Value, path: &str) {
        if let Value::Object(m) = v {
            for key in ["items", "not"] {
                if let Some(x) = m.get(key) {
                    assert!(x.is_object(), "{path}/{key}");
                }
            }
            if let Some(Value::Object(props)) = m.get("properties") {
                for (name, p) in props {
                    assert!(p.is_object(), "{path}/properties/{name}");
                    check(p, &format!("{path}/properties/{name}"));
                }
            }
            for key in ["items", "additionalProperties"] {
                if let Some(x) = m.get(key) {
                    check(x, &format!("{path}/{key}"));
                }
            }
            for key in ["allOf", "anyOf", "oneOf"] {
                if let Some(Value::Array(xs)) = m.get(key) {
                    xs.iter()
                        .for_each(|x| assert!(x.is_object(), "{path}/{key}"));
                }
            }
        }
    }
    let api = OpenApi::new(&registry());
    let doc = v3(&api, "api/v1");
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        assert!(schema.is_object(), "{name}");
        check(schema, name);
    }
}

#[test]
fn write_operations_document_field_validation() {
    let api = OpenApi::new(&registry());
    let doc = v3(&api, "api/v1");
    let names = |op: &Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
    let post = &collection["post"];
    assert_eq!(post["operationId"], "createCoreV1NamespacedPod");
    for p in ["dryRun", "fieldManager", "fieldValidation"] {
        assert!(names(post).contains(&p.to_string()), "{p}");
    }
    assert!(collection["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "pretty"));
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    for method in ["put", "patch"] {
        assert!(
            names(&item[method]).contains(&"fieldValidation".to_string()),
            "{method}"
        );
    }
    assert_eq!(
        item["patch"]["requestBody"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json"
        ]
    );
}

/// kubectl's openapi3 query-param verifier: the first PATCH operation tagged
/// with the GVK (in map order, i.e. any of them) must list the parameter.
fn verifier_supports(doc: &Value, gvk: &Value, param: &str) -> Option<bool> {
    let mut answers = Vec::new();
    for item in doc["paths"].as_object()?.values() {
        let Some(op) = item.get("patch") else {
            continue;
        };
        if op.get("x-kubernetes-group-version-kind") != Some(gvk) {
            continue;
        }
        let params = op["parameters"].as_array()?;
        answers.push(params.iter().any(|p| p["name"] == param));
    }
    // Every candidate must agree, since Go's map order is random.
    match answers.as_slice() {
        [] => Some(false),
        [first, rest @ ..] => rest.iter().all(|a| a == first).then_some(*first),
    }
}

#[test]
fn kubectl_verifier_finds_field_validation_for_every_kind() {
    let reg = registry();
    let api = OpenApi::new(&reg);
    for r in &reg.resources {
        let doc = v3(&api, &gv_key(r.group, r.version));
        let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
        assert_eq!(
            verifier_supports(&doc, &gvk, "fieldValidation"),
            Some(true),
            "{}",
            r.kind
        );
    }
}

/// The steps of kubectl explain v2's template: the GVK from the resource's
/// paths, then the schema whose GVK list contains it, then the field path.
fn explain<'a>(
    doc: &'a Value,
    prefix: &str,
    plural: &str,
    field_path: &[&str],
) -> Option<&'a Value> {
    let candidates = [
        format!("{prefix}/{plural}"),
        format!("{prefix}/{plural}/{{name}}"),
        format!("{prefix}/namespaces/{{namespace}}/{plural}"),
        format!("{prefix}/namespaces/{{namespace}}/{plural}/{{name}}"),
    ];
    let gvk = candidates.iter().find_map(|p| {
        let item = doc["paths"].get(p)?;
        ["get", "post", "put", "patch", "delete"]
            .iter()
            .find_map(|m| item.get(*m)?.get("x-kubernetes-group-version-kind"))
    })?;
    let mut schema = doc["components"]["schemas"]
        .as_object()?
        .values()
        .find(|s| {
            s.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|l| l.contains(gvk))
        })?;
    for field in field_path {
        schema = follow(doc, schema);
        schema = schema.get("properties")?.get(*field)?;
    }
    Some(follow(doc, schema))
}

/// Through `$ref` and array items, as explain's "output" template does.
fn follow<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match resolve(doc, r) {
                Some(s) => schema = s,
                None => return schema,
            }
        } else if let Some(items) = schema.get("items") {
            schema = items;
        } else {
            return schema;
        }
    }
}

#[test]
fn explain_finds_pod_containers_and_leases() {
    let api = OpenApi::new(&registry());
    let core_doc = v3(&api, "api/v1");
    let pod = explain(&core_doc, "/api/v1", "pods", &[]).unwrap();
    assert!(pod["properties"]["spec"].is_object());
    let containers = explain(&core_doc, "/api/v1", "pods", &["spec", "containers"]).unwrap();
    assert!(containers["properties"]["image"].is_object());
    assert!(containers["description"]
        .as_str()
        .unwrap()
        .starts_with("A single application container"));
    let node = explain(&core_doc, "/api/v1", "nodes", &["spec", "podCIDR"]).unwrap();
    assert_eq!(node["type"], "string");

    let lease_doc = v3(&api, "apis/coordination.k8s.io/v1");
    let holder = explain(
        &lease_doc,
        "/apis/coordination.k8s.io/v1",
        "leases",
        &["spec", "holderIdentity"],
    )
    .unwrap();
    assert_eq!(holder["type"], "string");
}

#[test]
fn subresources_get_their_operations() {
    let api = OpenApi::new(&registry());
    let doc = v3(&api, "api/v1");
    let paths = &doc["paths"];
    let ns = "/api/v1/namespaces/{namespace}";
    let status = &paths[format!("{ns}/pods/{{name}}/status")];
    assert_eq!(
        status["patch"]["operationId"],
        "patchCoreV1NamespacedPodStatus"
    );
    assert_eq!(
        status["put"]["x-kubernetes-group-version-kind"]["kind"],
        "Pod"
    );
    let binding = &paths[format!("{ns}/pods/{{name}}/binding")]["post"];
    assert_eq!(binding["operationId"], "createCoreV1NamespacedPodBinding");
    assert_eq!(
        binding["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Binding"
    );
    let scale = &paths[format!("{ns}/replicationcontrollers/{{name}}/scale")];
    assert_eq!(
        scale["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert_eq!(
        paths[format!("{ns}/pods/{{name}}/log")]["get"]["responses"]["200"]["content"]
            ["text/plain"]["schema"],
        json!({"type": "string"})
    );
    assert_eq!(
        paths[format!("{ns}/pods/{{name}}/exec")]["post"]["operationId"],
        "connectCoreV1PostNamespacedPodExec"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert_eq!(
        paths["/api/v1/nodes/{name}/status"]["get"]["operationId"],
        "readCoreV1NodeStatus"
    );
    // Unknown subresources are left out rather than half-documented.
    assert!(paths
        .get(format!("{ns}/serviceaccounts/{{name}}/token"))
        .is_none());
    // Cluster-scoped kinds have no namespace parameter and no all-namespaces list.
    let nodes = &paths["/api/v1/nodes/{name}"];
    assert!(nodes["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["name"] != "namespace"));
    assert_eq!(
        paths["/api/v1/nodes"]["get"]["operationId"],
        "listCoreV1Node"
    );
    assert_eq!(
        paths["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
}

#[test]
fn discovery_documents_describe_discovery() {
    let api = OpenApi::new(&registry());
    let doc = v3(&api, "api");
    assert_eq!(
        doc["paths"]["/api/"]["get"]["operationId"],
        "getCoreAPIVersions"
    );
    assert!(doc["components"]["schemas"]
        .get("io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions")
        .is_some());
    let doc = v3(&api, "apis");
    assert_eq!(
        doc["paths"]["/apis/"]["get"]["operationId"],
        "getAPIVersions"
    );
    let doc = v3(&api, "apis/coordination.k8s.io");
    assert_eq!(
        doc["paths"]["/apis/coordination.k8s.io/"]["get"]["operationId"],
        "getCoordinationAPIGroup"
    );
}

#[test]
fn v2_document_is_swagger_with_definitions() {
    let api = OpenApi::new(&registry());
    let doc = parse(&api.v2_document());
    assert_eq!(doc["swagger"], "2.0");
    let defs = &doc["definitions"];
    assert_eq!(
        defs["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        defs["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );
    assert!(defs.get("io.k8s.api.coordination.v1.LeaseList").is_some());
    let post = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"];
    let params = post["parameters"].as_array().unwrap();
    assert_eq!(params[0]["in"], "body");
    assert_eq!(
        params[0]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Pod"
    );
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["type"] == "string"));
    assert_eq!(
        post["responses"]["201"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Pod"
    );
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert!(!patch["consumes"]
        .as_array()
        .unwrap()
        .contains(&json!("application/strategic-merge-patch+json")));
    assert!(doc["paths"]
        .get("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")
        .is_some());
}

#[test]
fn kinds_without_a_known_schema_are_left_out() {
    let mut reg = registry();
    reg.resources
        .push(info::<core::Secret>("secrets", true, &[]));
    let api = OpenApi::new(&reg);
    let doc = v3(&api, "api/v1");
    assert!(doc["paths"]
        .get("/api/v1/namespaces/{namespace}/secrets")
        .is_none());
    assert_refs_resolve(&doc, "#/components/schemas/");
    assert!(doc["paths"]
        .get("/api/v1/namespaces/{namespace}/pods")
        .is_some());
}
