//! `kubectl scale --replicas=N`: a merge patch of the scale subresource.

use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::cli::ScaleArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::session::Session;
use crate::targets::{self, Target};

pub async fn run(session: &Session, a: ScaleArgs) -> Result<()> {
    if a.replicas < 0 {
        return Err(Error::msg(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        ));
    }
    let (targets, mut errors) = if !a.files.filenames.is_empty() {
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?
    } else {
        (
            targets::from_args(session, &a.args, false).await?,
            Vec::new(),
        )
    };
    let mut named: Vec<Target> = Vec::new();
    for t in targets {
        if t.name.is_some() {
            named.push(t);
        } else if a.selector.is_some() || a.all {
            named.extend(
                targets::expand(session, &t, a.selector.as_deref(), None)
                    .await?
                    .into_iter()
                    .map(|(t, _)| t),
            );
        } else {
            return Err(Error::msg(
                "resource(s) were provided, but no name was specified",
            ));
        }
    }
    if named.is_empty() && errors.is_empty() {
        return Err(Error::msg("no objects passed to scale"));
    }
    for t in named {
        // As kubectl, the object is read first; a missing one means nothing to scale.
        if let Err(e) = targets::get_object(session, &t).await {
            match e {
                Error::Api(status) if status.code == 404 => {
                    errors.push(Error::msg(format!(
                        "no objects passed to scale {}",
                        status.message
                    )));
                }
                other => errors.push(other),
            }
            continue;
        }
        match scale(session, &t, a.replicas, a.current_replicas).await {
            Ok(()) => out::println(&format!(
                "{}/{} scaled",
                t.info.kind_group(),
                t.name.as_deref().unwrap_or("")
            )),
            Err(e) => errors.push(e),
        }
    }
    Error::aggregate(errors)
}

async fn scale(session: &Session, t: &Target, replicas: i64, current: i64) -> Result<()> {
    if !t.info.subresources.iter().any(|s| s == "scale") && !t.info.subresources.is_empty() {
        return Err(Error::msg(format!(
            "cannot scale {}: the server does not serve its scale subresource",
            t.info.resource_group()
        )));
    }
    let name = t.name.as_deref().unwrap_or("");
    let api = session.api(&t.info, t.namespace.as_deref());
    if current >= 0 {
        let scale = api.get_scale(name).await?;
        let now = scale.spec.and_then(|s| s.replicas).unwrap_or(0) as i64;
        if now != current {
            return Err(Error::msg(format!(
                "Expected replicas to be {current}, was {now}"
            )));
        }
    }
    let patch = json!({"spec": {"replicas": replicas}});
    api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
