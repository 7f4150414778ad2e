//! What a command acts on: `TYPE[,TYPE...] [NAME...]`, `TYPE/NAME...`, or the objects
//! of `-f` files; and reading those objects from the server.

use kube::api::ListParams;
use serde_json::Value;

use crate::discovery::ResourceInfo;
use crate::error::{Error, Result};
use crate::manifest::{self, Manifest};
use crate::session::{to_value, Session};

/// One resource type, optionally one object of it.
#[derive(Clone, Debug)]
pub struct Target {
    pub info: ResourceInfo,
    pub name: Option<String>,
    /// The namespace to act in (`None`: cluster-scoped, or all namespaces with `-A`).
    pub namespace: Option<String>,
    /// The object read from a file, and the file.
    pub manifest: Option<Manifest>,
}

impl Target {
    /// `pods "x"`: how NotFound messages name the object.
    pub fn display_name(&self) -> String {
        format!(
            "{} \"{}\"",
            self.info.resource_group(),
            self.name.as_deref().unwrap_or("")
        )
    }
}

/// Targets from resource arguments. `allow_categories`: `get all` style expansion.
pub async fn from_args(
    session: &Session,
    args: &[String],
    allow_categories: bool,
) -> Result<Vec<Target>> {
    let discovery = session.discovery().await?;
    let mut targets = Vec::new();
    if args.iter().any(|a| a.contains('/')) {
        for arg in args {
            let Some((ty, name)) = arg.split_once('/') else {
                return Err(Error::msg(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'",
                ));
            };
            if name.is_empty() {
                return Err(Error::msg(
                    "arguments in resource/name form must have a single resource and name",
                ));
            }
            let info = discovery.resolve_one(ty)?;
            targets.push(target(session, info, Some(name.to_string())));
        }
        return Ok(targets);
    }
    let Some((types, names)) = args.split_first() else {
        return Ok(targets);
    };
    let mut infos = Vec::new();
    for ty in types.split(',').filter(|t| !t.is_empty()) {
        if allow_categories {
            infos.extend(discovery.resolve(ty)?);
        } else {
            infos.push(discovery.resolve_one(ty)?);
        }
    }
    for info in infos {
        if names.is_empty() {
            targets.push(target(session, info, None));
        } else {
            for name in names {
                targets.push(target(session, info.clone(), Some(name.clone())));
            }
        }
    }
    Ok(targets)
}

fn target(session: &Session, info: ResourceInfo, name: Option<String>) -> Target {
    let namespace = session.namespace_for(&info).map(str::to_string);
    Target {
        info,
        name,
        namespace,
        manifest: None,
    }
}

/// Targets from `-f` files: one per object. Unreadable documents come back as errors
/// beside the targets (kubectl goes on with the rest and fails at the end).
pub async fn from_files(
    session: &Session,
    filenames: &[String],
    recursive: bool,
) -> Result<(Vec<Target>, Vec<Error>)> {
    let items = manifest::read(filenames, recursive)?;
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match item {
            Ok(m) => match target_for_manifest(session, m).await {
                Ok(t) => targets.push(t),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(e),
        }
    }
    Ok((targets, errors))
}

async fn target_for_manifest(session: &Session, m: Manifest) -> Result<Target> {
    let api_version = m.object["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = m.object["kind"].as_str().unwrap_or("").to_string();
    let name = m
        .object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let object_ns = m
        .object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let discovery = session.discovery().await?;
    let Some(info) = discovery.for_kind(&api_version, &kind).cloned() else {
        return Err(Error::msg(format!(
            "resource mapping not found for name: \"{}\" namespace: \"{}\" from \"{}\": no matches for kind \"{kind}\" in version \"{api_version}\"\nensure CRDs are installed first",
            name.as_deref().unwrap_or(""),
            object_ns.as_deref().unwrap_or(""),
            m.source
        )));
    };
    let namespace = if info.namespaced {
        match object_ns {
            Some(ns) if session.explicit_namespace && ns != session.namespace => {
                return Err(Error::msg(format!(
                    "the namespace from the provided object \"{ns}\" does not match the namespace \"{}\". You must pass '--namespace={ns}' to perform this operation.",
                    session.namespace
                )))
            }
            Some(ns) => Some(ns),
            None => Some(session.namespace.clone()),
        }
    } else {
        None
    };
    Ok(Target {
        info,
        name,
        namespace,
        manifest: Some(m),
    })
}

/// The object a named target points to, from the server.
pub async fn get_object(session: &Session, t: &Target) -> Result<Value> {
    let name = t.name.as_deref().unwrap_or("");
    let obj = session
        .api(&t.info, t.namespace.as_deref())
        .get(name)
        .await?;
    Ok(with_type(to_value(&obj), &t.info))
}

/// The objects of a target's type matching the selectors.
pub async fn list_objects(
    session: &Session,
    t: &Target,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Vec<Value>> {
    let lp = ListParams {
        label_selector: label_selector.map(str::to_string),
        field_selector: field_selector.map(str::to_string),
        ..ListParams::default()
    };
    let list = session
        .api(&t.info, t.namespace.as_deref())
        .list(&lp)
        .await?;
    Ok(list
        .items
        .iter()
        .map(|o| with_type(to_value(o), &t.info))
        .collect())
}

/// Named targets for every object of the target's type matching the selectors.
pub async fn expand(
    session: &Session,
    t: &Target,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Result<Vec<(Target, Value)>> {
    let objects = list_objects(session, t, label_selector, field_selector).await?;
    Ok(objects
        .into_iter()
        .map(|o| {
            let mut named = t.clone();
            named.name = o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string);
            if t.info.namespaced {
                named.namespace = o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            (named, o)
        })
        .collect())
}

/// Ensure apiVersion and kind are set (list items may lack them).
pub fn with_type(mut obj: Value, info: &ResourceInfo) -> Value {
    if let Value::Object(map) = &mut obj {
        if !map.contains_key("apiVersion") || !map.contains_key("kind") {
            let mut typed = serde_json::Map::new();
            typed.insert("apiVersion".into(), Value::String(info.api_version()));
            typed.insert("kind".into(), Value::String(info.kind.clone()));
            for (k, v) in std::mem::take(map) {
                if k != "apiVersion" && k != "kind" {
                    typed.insert(k, v);
                }
            }
            *map = typed;
        }
    }
    obj
}
