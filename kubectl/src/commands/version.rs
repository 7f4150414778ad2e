//! `kubectl version`: this client's version and the server's (GET /version).

use serde_json::{json, Value};

use crate::cli::VersionArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::output::yaml::to_yaml;
use crate::session::Session;

/// The Kubernetes API this client speaks, with this crate's version as build metadata.
pub fn client_version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("v1.33.0+kubectl-rs.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn run(session: Option<&Session>, a: &VersionArgs) -> Result<()> {
    let client = client_version();
    let (server, server_err) = match session {
        Some(s) => match s.client.apiserver_version().await {
            Ok(info) => (Some(serde_json::to_value(info)?), None),
            Err(e) => (None, Some(Error::from(e))),
        },
        None => (None, None),
    };
    match a.output.as_deref() {
        None | Some("") => {
            let mut text = format!(
                "Client Version: {}\n",
                client["gitVersion"].as_str().unwrap_or("")
            );
            if let Some(server) = &server {
                text.push_str(&format!(
                    "Server Version: {}\n",
                    server["gitVersion"].as_str().unwrap_or("")
                ));
            }
            out::print(&text);
        }
        Some(format @ ("json" | "yaml")) => {
            let mut v = json!({"clientVersion": client});
            if let Some(server) = server {
                v["serverVersion"] = server;
            }
            if format == "json" {
                out::println(&serde_json::to_string_pretty(&v)?);
            } else {
                out::print(&to_yaml(&v));
            }
        }
        Some(other) => {
            return Err(Error::msg(format!(
                "--output must be 'yaml' or 'json', not {other:?}"
            )))
        }
    }
    match server_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
