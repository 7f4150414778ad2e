//! `kubectl apply -f`, client-side: the configuration is kept in the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation; a new object is
//! created with it, an existing one gets the three-way strategic merge patch of
//! [`crate::apply_patch`]; an empty patch means "unchanged".

use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value};

use crate::apply_patch::three_way;
use crate::cli::ApplyArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::output::json::to_json_compact;
use crate::output::OutputFormat;
use crate::session::{to_value, Session};
use crate::targets::{self, Target};

use super::{create_object, report_object, DryRun};

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub async fn run(session: &Session, a: ApplyArgs) -> Result<()> {
    if a.server_side {
        return Err(Error::msg(
            "server-side apply is not served by this cluster's apiserver; use client-side apply (without --server-side)",
        ));
    }
    if a.files.filenames.is_empty() {
        return Err(Error::msg("must specify one of -f and -k"));
    }
    let format = OutputFormat::parse(a.output.as_deref())?;
    let dry_run = DryRun::parse(a.dry_run.as_deref())?;
    let (targets, mut errors) =
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?;
    for t in targets {
        if let Err(e) = apply_one(session, &t, &format, dry_run).await {
            errors.push(e);
        }
    }
    Error::aggregate(errors)
}

async fn apply_one(
    session: &Session,
    t: &Target,
    format: &OutputFormat,
    dry_run: DryRun,
) -> Result<()> {
    let Some(m) = &t.manifest else { return Ok(()) };
    let name = t.name.clone().ok_or_else(|| {
        Error::msg(format!(
            "error when retrieving current configuration of:\nResource: \"{}\", GroupVersionKind: \"{}\"\nName: \"\", Namespace: \"{}\"\nfrom server for: \"{}\": resource name may not be empty",
            t.info.resource_group(),
            t.info.api_version(),
            t.namespace.as_deref().unwrap_or(""),
            m.source
        ))
    })?;
    let mut object = m.object.clone();
    if let Some(ns) = &t.namespace {
        object["metadata"]["namespace"] = Value::String(ns.clone());
    }
    let modified = with_last_applied(&object);
    let api = session.api(&t.info, t.namespace.as_deref());
    let current = match api.get_opt(&name).await? {
        Some(c) => to_value(&c),
        None => {
            let created = if dry_run == DryRun::Client {
                modified
            } else {
                create_object(session, &t.info, t.namespace.as_deref(), &modified, dry_run)
                    .await
                    .map_err(|e| e.with_source("creating", &m.source))?
            };
            return report_object(format, &t.info.kind_group(), &created, "created", dry_run);
        }
    };
    let original: Option<Value> = match current
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
    {
        Some(text) => serde_json::from_str(text).ok(),
        None => {
            out::eprintln(&format!(
                "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively by either kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically.",
                t.info.resource_group()
            ));
            None
        }
    };
    let patch = three_way(original.as_ref(), &modified, &current, &t.info.kind);
    if patch.as_object().is_none_or(Map::is_empty) {
        return report_object(format, &t.info.kind_group(), &current, "unchanged", dry_run);
    }
    let updated = if dry_run == DryRun::Client {
        current
    } else {
        let pp = PatchParams {
            dry_run: dry_run == DryRun::Server,
            field_manager: Some("kubectl-client-side-apply".into()),
            ..PatchParams::default()
        };
        let patched = api
            .patch(&name, &pp, &Patch::Strategic(&patch))
            .await
            .map_err(|e| Error::from(e).with_source("patching", &m.source))?;
        to_value(&patched)
    };
    report_object(
        format,
        &t.info.kind_group(),
        &updated,
        "configured",
        dry_run,
    )
}

/// The object with its own configuration in the last-applied annotation: compact JSON
/// with sorted keys and a final newline, of the object without that annotation
/// (`annotations: {}` stays when it had no others), as kubectl writes it.
pub fn with_last_applied(object: &Value) -> Value {
    let mut obj = object.clone();
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    let mut annotations = obj["metadata"]
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.remove(LAST_APPLIED);
    obj["metadata"]["annotations"] = Value::Object(annotations.clone());
    let config = format!("{}\n", to_json_compact(&obj));
    annotations.insert(LAST_APPLIED.into(), Value::String(config));
    obj["metadata"]["annotations"] = Value::Object(annotations);
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_applied_like_kubectl() {
        let obj = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cm1", "namespace": "default"}, "data": {"a": "1"}});
        let m = with_last_applied(&obj);
        assert_eq!(
            m["metadata"]["annotations"][LAST_APPLIED],
            "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"cm1\",\"namespace\":\"default\"}}\n"
        );
    }
}
