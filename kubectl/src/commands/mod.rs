//! One module per kubectl command, and what several of them share.

pub mod api_resources;
pub mod apply;
pub mod cluster_info;
pub mod config;
pub mod create;
pub mod delete;
pub mod describe;
pub mod exec;
pub mod expose;
pub mod get;
pub mod logs;
pub mod metadata;
pub mod run;
pub mod scale;
pub mod version;
pub mod wait;

use serde_json::Value;

use crate::discovery::ResourceInfo;
use crate::error::{Error, Result};
use crate::out;
use crate::output::{self, OutputFormat};
use crate::session::{request_for, Session};

/// `--dry-run`: none, client (nothing sent) or server (`dryRun=All`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl DryRun {
    pub fn parse(flag: Option<&str>) -> Result<Self> {
        match flag {
            None | Some("none") | Some("false") => Ok(DryRun::None),
            Some("client") | Some("true") => Ok(DryRun::Client),
            Some("server") => Ok(DryRun::Server),
            Some(other) => Err(Error::msg(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            ))),
        }
    }

    /// What kubectl appends to its messages.
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// POST `object` to `info`'s collection in `namespace`, with strict field validation
/// as kubectl sends it.
pub async fn create_object(
    session: &Session,
    info: &ResourceInfo,
    namespace: Option<&str>,
    object: &Value,
    dry_run: DryRun,
) -> Result<Value> {
    let pp = kube::api::PostParams {
        dry_run: dry_run == DryRun::Server,
        field_manager: Some("kubectl-create".into()),
    };
    let body = serde_json::to_vec(object)?;
    let mut request = request_for(info, namespace)
        .create(&pp, body)
        .map_err(|e| Error::msg(e.to_string()))?;
    add_query(&mut request, "fieldValidation=Strict");
    session.send_json(request).await
}

/// Append `param` to a request's query string.
pub fn add_query(request: &mut http::Request<Vec<u8>>, param: &str) {
    let uri = request.uri().to_string();
    let sep = if uri.contains('?') { '&' } else { '?' };
    if let Ok(new) = format!("{uri}{sep}{param}").parse() {
        *request.uri_mut() = new;
    }
}

/// The usual one-line report (`pod/web created`) or the object in the `-o` format.
pub fn report_object(
    format: &OutputFormat,
    kind_group: &str,
    obj: &Value,
    verb: &str,
    dry_run: DryRun,
) -> Result<()> {
    match format {
        OutputFormat::Default | OutputFormat::Wide => out::println(&format!(
            "{}{} {verb}{}",
            "",
            output::object_name(kind_group, obj),
            dry_run.suffix()
        )),
        OutputFormat::Name => out::println(&output::object_name(kind_group, obj)),
        other => out::print(&output::print_objects(
            other,
            std::slice::from_ref(obj),
            true,
        )?),
    }
    Ok(())
}

/// Split `key=value` pairs separated by commas (`--labels`, `--selector`).
pub fn parse_pairs(text: &str, what: &str) -> Result<serde_json::Map<String, Value>> {
    let mut map = serde_json::Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::msg(format!("invalid {what}: {pair:?}")));
        };
        map.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    Ok(map)
}
