//! Schemas come from k8s-openapi's `JsonSchema` impls (feature "schemars"),
//! whose schema names already are upstream's definition names
//! (`io.k8s.api.core.v1.Pod`, `io.k8s.apimachinery.pkg.util.intstr.IntOrString`,
//! ...). A schemars generator collects every schema a kind references; this
//! module adds what upstream adds on top: `<Kind>List` schemas and the
//! `x-kubernetes-group-version-kind` extension.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::autoscaling::v1 as autoscaling;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::operations::Gvk;

/// Which document flavour the schemas go into: where definitions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Style {
    /// Swagger 2.0: `#/definitions/<name>`.
    V2,
    /// OpenAPI 3.0: `#/components/schemas/<name>`.
    V3,
}

impl Style {
    fn definitions_path(self) -> &'static str {
        match self {
            Self::V2 => "/definitions",
            Self::V3 => "/components/schemas",
        }
    }

    /// The `$ref` pointing at a definition.
    pub(super) fn reference(self, definition: &str) -> String {
        format!("#{}/{}", self.definitions_path(), definition)
    }
}

/// A type's schema name and the generator call that adds it (and every schema
/// it references) to the definitions.
type Entry = (
    fn() -> Cow<'static, str>,
    fn(&mut SchemaGenerator) -> Schema,
);

fn entry<T: JsonSchema>() -> Entry {
    (T::schema_name, SchemaGenerator::subschema_for::<T>)
}

/// Every type a document may name directly: the served kinds, the kinds of
/// their subresources and the meta types operations use. Adding a kind to the
/// registry needs one line here.
fn known() -> Vec<Entry> {
    vec![
        entry::<core::Namespace>(),
        entry::<core::Pod>(),
        entry::<core::ReplicationController>(),
        entry::<core::Service>(),
        entry::<core::Endpoints>(),
        entry::<core::Node>(),
        entry::<core::Event>(),
        entry::<core::ConfigMap>(),
        entry::<core::ServiceAccount>(),
        entry::<coordination::Lease>(),
        entry::<rbac::ClusterRole>(),
        entry::<rbac::ClusterRoleBinding>(),
        entry::<rbac::Role>(),
        entry::<rbac::RoleBinding>(),
        // Subresource kinds.
        entry::<core::Binding>(),
        entry::<autoscaling::Scale>(),
        entry::<policy::Eviction>(),
        // Meta types used by operations and discovery.
        entry::<meta::DeleteOptions>(),
        entry::<meta::Status>(),
        entry::<meta::WatchEvent<core::Pod>>(),
        entry::<meta::Patch>(),
        entry::<meta::ListMeta>(),
        entry::<meta::APIResourceList>(),
        entry::<meta::APIVersions>(),
        entry::<meta::APIGroupList>(),
        entry::<meta::APIGroup>(),
    ]
}

/// The upstream definition name of a Rust type.
pub(super) fn name_of<T: JsonSchema>() -> String {
    T::schema_name().into_owned()
}

/// Adds the schema named `definition` (and all it references) to `gen`;
/// returns the `$ref` schema, or None for a name this module does not know.
pub(super) fn register(gen: &mut SchemaGenerator, definition: &str) -> Option<Schema> {
    known()
        .into_iter()
        .find(|(name, _)| name() == definition)
        .map(|(_, add)| add(gen))
}

/// A `<Kind>List` to synthesise: k8s-openapi has no schema for lists.
struct ListSchema {
    name: String,
    item: String,
}

/// The definitions of one document, collected while its operations are built.
pub(super) struct Definitions {
    style: Style,
    gen: SchemaGenerator,
    lists: Vec<ListSchema>,
    gvks: BTreeMap<String, BTreeSet<Gvk>>,
}

impl Definitions {
    pub(super) fn new(style: Style) -> Self {
        // No transforms: upstream keeps `$ref` siblings (a field's description
        // next to its type's `$ref`), and k8s-openapi's schemas need nothing else.
        let gen = SchemaSettings::draft07()
            .with(|s| {
                s.definitions_path = style.definitions_path().into();
                s.meta_schema = None;
                s.transforms.clear();
            })
            .into_generator();
        Self {
            style,
            gen,
            lists: Vec::new(),
            gvks: BTreeMap::new(),
        }
    }

    /// Adds a known type; false if `definition` is unknown.
    pub(super) fn add(&mut self, definition: &str) -> bool {
        register(&mut self.gen, definition).is_some()
    }

    /// Adds a known type and records `gvk` for its extension.
    pub(super) fn add_kind(&mut self, definition: &str, gvk: Gvk) -> bool {
        if !self.add(definition) {
            return false;
        }
        self.gvks
            .entry(definition.to_string())
            .or_default()
            .insert(gvk);
        true
    }

    /// Adds `<definition>List` for a served kind; returns its name, or None
    /// if the item type is unknown.
    pub(super) fn add_list(&mut self, item: &str, item_gvk: &Gvk) -> Option<String> {
        if !self.add(item) || !self.add(&name_of::<meta::ListMeta>()) {
            return None;
        }
        let name = format!("{item}List");
        if !self.lists.iter().any(|l| l.name == name) {
            self.lists.push(ListSchema {
                name: name.clone(),
                item: item.to_string(),
            });
        }
        let list_gvk = Gvk::new(
            &item_gvk.group,
            &item_gvk.version,
            &format!("{}List", item_gvk.kind),
        );
        self.gvks.entry(name.clone()).or_default().insert(list_gvk);
        Some(name)
    }

    /// All definitions, sorted by name, with lists and GVK extensions added.
    pub(super) fn finish(mut self) -> Map<String, Value> {
        let mut defs: BTreeMap<String, Value> =
            self.gen.take_definitions(false).into_iter().collect();
        for list in &self.lists {
            let value = list_schema(self.style, list, defs.get(&list.item));
            defs.insert(list.name.clone(), value);
        }
        for (name, gvks) in &self.gvks {
            if let Some(Value::Object(schema)) = defs.get_mut(name) {
                let list: Vec<Value> = gvks.iter().map(Gvk::to_json).collect();
                schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
            }
        }
        defs.into_iter().collect()
    }
}

/// The schema of `<Kind>List`, shaped as upstream's: apiVersion, kind,
/// metadata (ListMeta) and the required items.
fn list_schema(style: Style, list: &ListSchema, item_schema: Option<&Value>) -> Value {
    let kind = list.item.rsplit('.').next().unwrap_or(&list.item);
    let mut properties = Map::new();
    // apiVersion and kind mean the same on a list as on its items.
    for field in ["apiVersion", "kind"] {
        let prop = item_schema
            .and_then(|s| s.pointer(&format!("/properties/{field}")))
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}));
        properties.insert(field.to_string(), prop);
    }
    properties.insert(
        "items".into(),
        json!({
            "description": format!("Items is the list of {kind} objects."),
            "type": "array",
            "items": {"$ref": style.reference(&list.item)},
        }),
    );
    properties.insert(
        "metadata".into(),
        json!({
            "$ref": style.reference(&name_of::<meta::ListMeta>()),
            "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
        }),
    );
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": properties,
        "required": ["items"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k8s_openapi_names_are_upstream_definition_names() {
        assert_eq!(name_of::<core::PodSpec>(), "io.k8s.api.core.v1.PodSpec");
        assert_eq!(
            name_of::<meta::Time>(),
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
        );
        assert_eq!(
            name_of::<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>(),
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
        );
        assert_eq!(
            name_of::<k8s_openapi::apimachinery::pkg::api::resource::Quantity>(),
            "io.k8s.apimachinery.pkg.api.resource.Quantity"
        );
        assert_eq!(
            name_of::<coordination::Lease>(),
            "io.k8s.api.coordination.v1.Lease"
        );
    }

    #[test]
    fn registering_a_kind_collects_what_it_references() {
        let mut defs = Definitions::new(Style::V3);
        assert!(defs.add_kind("io.k8s.api.core.v1.Pod", Gvk::new("", "v1", "Pod")));
        assert!(!defs.add("io.k8s.api.core.v1.NoSuchKind"));
        let out = defs.finish();
        for name in [
            "io.k8s.api.core.v1.Pod",
            "io.k8s.api.core.v1.PodSpec",
            "io.k8s.api.core.v1.Container",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
            "io.k8s.apimachinery.pkg.api.resource.Quantity",
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        ] {
            assert!(out.contains_key(name), "missing {name}");
        }
        assert_eq!(
            out["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        assert_eq!(
            out["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
    }

    #[test]
    fn lists_are_synthesised_with_their_own_gvk() {
        let mut defs = Definitions::new(Style::V2);
        let gvk = Gvk::new("coordination.k8s.io", "v1", "Lease");
        assert_eq!(
            defs.add_list("io.k8s.api.coordination.v1.Lease", &gvk)
                .as_deref(),
            Some("io.k8s.api.coordination.v1.LeaseList")
        );
        let out = defs.finish();
        let list = &out["io.k8s.api.coordination.v1.LeaseList"];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/definitions/io.k8s.api.coordination.v1.Lease"
        );
        assert_eq!(
            list["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
        );
        assert_eq!(list["required"], json!(["items"]));
        assert_eq!(
            list["x-kubernetes-group-version-kind"],
            json!([{"group": "coordination.k8s.io", "kind": "LeaseList", "version": "v1"}])
        );
        assert!(list["properties"]["kind"]["description"].is_string());
    }
}
