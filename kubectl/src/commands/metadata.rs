//! `kubectl label` and `kubectl annotate`: `key=value` sets, `key-` removes,
//! `--overwrite` allows changing a value; one merge patch per object.

use std::collections::BTreeMap;

use kube::api::{Patch, PatchParams};
use serde_json::{json, Map, Value};

use crate::cli::MetadataArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::output::{self, OutputFormat};
use crate::session::Session;
use crate::targets::{self, Target};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Labels => "labels",
            Field::Annotations => "annotations",
        }
    }
}

pub async fn run(session: &Session, a: MetadataArgs, field: Field) -> Result<()> {
    let format = OutputFormat::parse(a.output.as_deref())?;
    // Resources first, then the pairs (anything with `=` or ending in `-`).
    let split = a
        .args
        .iter()
        .position(|s| s.contains('=') || (s.ends_with('-') && s.len() > 1))
        .unwrap_or(a.args.len());
    let (resource_args, pair_args) = a.args.split_at(split);
    if pair_args.is_empty() && !a.list {
        return Err(Error::msg(format!(
            "at least one {} update is required",
            if field == Field::Labels {
                "label"
            } else {
                "annotation"
            }
        )));
    }
    let (set, remove) = parse_changes(pair_args, field)?;
    let (targets, mut errors) = if !a.files.filenames.is_empty() {
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?
    } else if resource_args.is_empty() {
        return Err(Error::msg(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>",
        ));
    } else {
        (
            targets::from_args(session, resource_args, false).await?,
            Vec::new(),
        )
    };
    let mut objects: Vec<(Target, Value)> = Vec::new();
    for t in targets {
        if t.name.is_some() {
            match targets::get_object(session, &t).await {
                Ok(o) => objects.push((t, o)),
                Err(e) => errors.push(e),
            }
        } else if a.selector.is_some() || a.all {
            objects.extend(targets::expand(session, &t, a.selector.as_deref(), None).await?);
        } else {
            return Err(Error::msg(
                "resource(s) were provided, but no name was specified",
            ));
        }
    }
    for (t, obj) in objects {
        match change(session, &t, &obj, field, &set, &remove, &a).await {
            Ok((updated, message)) => match &format {
                OutputFormat::Default | OutputFormat::Wide => {
                    if a.list {
                        let current = updated
                            .pointer(&format!("/metadata/{}", field.key()))
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        let mut keys: Vec<&String> = current.keys().collect();
                        keys.sort();
                        for k in keys {
                            out::println(&format!("{k}={}", current[k].as_str().unwrap_or("")));
                        }
                    } else {
                        out::println(&format!(
                            "{} {message}",
                            output::object_name(&t.info.kind_group(), &updated)
                        ));
                    }
                }
                other => out::print(&output::print_objects(other, &[updated], true)?),
            },
            Err(e) => errors.push(e),
        }
    }
    Error::aggregate(errors)
}

/// The pairs to set and the keys to remove.
fn parse_changes(
    pairs: &[String],
    field: Field,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    let what = if field == Field::Labels {
        "label"
    } else {
        "annotation"
    };
    for p in pairs {
        if let Some((k, v)) = p.split_once('=') {
            if field == Field::Labels && v.contains('=') {
                return Err(Error::msg(format!("invalid label spec: {p}")));
            }
            if k.is_empty() {
                return Err(Error::msg(format!("invalid {what} spec: {p}")));
            }
            set.insert(k.to_string(), v.to_string());
        } else if let Some(k) = p.strip_suffix('-') {
            remove.push(k.to_string());
        } else {
            return Err(Error::msg(format!("unknown {what} spec: {p}")));
        }
    }
    if remove.iter().any(|k| set.contains_key(k)) {
        return Err(Error::msg(format!(
            "can not both modify and remove {} in the same command",
            if field == Field::Labels {
                "a label"
            } else {
                "an annotation"
            }
        )));
    }
    Ok((set, remove))
}

async fn change(
    session: &Session,
    t: &Target,
    obj: &Value,
    field: Field,
    set: &BTreeMap<String, String>,
    remove: &[String],
    a: &MetadataArgs,
) -> Result<(Value, &'static str)> {
    let current: Map<String, Value> = obj
        .pointer(&format!("/metadata/{}", field.key()))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !a.overwrite {
        let mut clashes = Vec::new();
        for (k, v) in set {
            if let Some(old) = current.get(k).and_then(Value::as_str) {
                if old != v {
                    clashes.push((k.clone(), old.to_string()));
                }
            }
        }
        if !clashes.is_empty() {
            return Err(match field {
                Field::Labels => Error::aggregate(
                    clashes
                        .into_iter()
                        .map(|(k, old)| {
                            Error::msg(format!(
                                "'{k}' already has a value ({old}), and --overwrite is false"
                            ))
                        })
                        .collect(),
                )
                .unwrap_err(),
                Field::Annotations => Error::msg(format!(
                    "--overwrite is false but found the following declared annotation(s): {}",
                    clashes
                        .iter()
                        .map(|(k, old)| format!("'{k}' already has a value ({old})"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            });
        }
    }
    let mut patch = Map::new();
    let mut added = false;
    let mut removed = false;
    for (k, v) in set {
        if current.get(k).and_then(Value::as_str) != Some(v.as_str()) {
            patch.insert(k.clone(), Value::String(v.clone()));
            added = true;
        }
    }
    for k in remove {
        if current.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
            removed = true;
        } else if field == Field::Labels && !a.list {
            out::println(&format!("label \"{k}\" not found."));
        }
    }
    let message = match field {
        Field::Labels if added => "labeled",
        Field::Labels if removed => "unlabeled",
        Field::Labels => "not labeled",
        Field::Annotations => "annotated",
    };
    if patch.is_empty() || a.list {
        return Ok((obj.clone(), message));
    }
    let mut body = json!({"metadata": {field.key(): patch}});
    if let Some(rv) = &a.resource_version {
        body["metadata"]["resourceVersion"] = json!(rv);
    }
    let name = t.name.as_deref().unwrap_or("");
    let updated = session
        .api(&t.info, t.namespace.as_deref())
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await?;
    Ok((
        targets::with_type(crate::session::to_value(&updated), &t.info),
        message,
    ))
}
