//! `kubectl create -f`: POST each object of the files.

use crate::cli::CreateArgs;
use crate::error::{Error, Result};
use crate::output::OutputFormat;
use crate::session::Session;
use crate::targets;

use super::{create_object, report_object, DryRun};

pub async fn run(session: &Session, a: CreateArgs) -> Result<()> {
    if a.files.filenames.is_empty() {
        return Err(Error::msg(
            "must specify one of -f and -k\n\nerror: no objects passed to create",
        ));
    }
    let format = OutputFormat::parse(a.output.as_deref())?;
    let dry_run = DryRun::parse(a.dry_run.as_deref())?;
    let (targets, mut errors) =
        targets::from_files(session, &a.files.filenames, a.files.recursive).await?;
    for t in targets {
        let Some(m) = &t.manifest else { continue };
        let result = if dry_run == DryRun::Client {
            Ok(m.object.clone())
        } else {
            create_object(session, &t.info, t.namespace.as_deref(), &m.object, dry_run).await
        };
        match result {
            Ok(obj) => report_object(&format, &t.info.kind_group(), &obj, "created", dry_run)?,
            Err(e) => errors.push(e.with_source("creating", &m.source)),
        }
    }
    Error::aggregate(errors)
}
