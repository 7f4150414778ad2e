//! `kubectl config view | use-context | current-context | get-contexts`.

use serde_json::Value;

use crate::cli::ConfigCommand;
use crate::error::{Error, Result};
use crate::kubeconfig::{self, Loaded, Overrides};
use crate::out;
use crate::output::{json, yaml, OutputFormat};
use crate::tabwriter::TabWriter;

pub fn run(overrides: &Overrides, command: &ConfigCommand) -> Result<()> {
    let loaded = Loaded::load(overrides.kubeconfig.as_deref())?;
    match command {
        ConfigCommand::View(a) => {
            let v = kubeconfig::view(&loaded, a.minify, a.raw, overrides.context.as_deref())?;
            match OutputFormat::parse(a.output.as_deref())? {
                OutputFormat::Default | OutputFormat::Yaml => out::print(&yaml::to_yaml(&v)),
                OutputFormat::Json => out::print(&json::to_json_pretty_in_order(&struct_order(&v))),
                OutputFormat::JsonPath(t) => out::print(
                    &t.execute(&v)
                        .map_err(|e| Error::msg(format!("error executing jsonpath: {e}")))?,
                ),
                _ => return Err(Error::msg("--output must be yaml, json or jsonpath")),
            }
            Ok(())
        }
        ConfigCommand::CurrentContext => {
            match overrides.context.as_deref().or(loaded.current_context()) {
                Some(c) => {
                    out::println(c);
                    Ok(())
                }
                None => Err(Error::msg("current-context is not set")),
            }
        }
        ConfigCommand::UseContext { name } => {
            if loaded.entry("contexts", name).is_none() {
                return Err(Error::msg(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            let path = loaded.file_for_current_context(overrides.kubeconfig.as_deref());
            let mut doc = loaded
                .files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| serde_json::json!({"apiVersion": "v1", "kind": "Config"}));
            doc["current-context"] = Value::String(name.clone());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, yaml::to_yaml(&doc))
                .map_err(|e| Error::msg(format!("write {}: {e}", path.display())))?;
            out::println(&format!("Switched to context \"{name}\"."));
            Ok(())
        }
        ConfigCommand::GetContexts(a) => {
            let current = overrides
                .context
                .as_deref()
                .or(loaded.current_context())
                .unwrap_or("");
            let contexts: Vec<Value> = loaded
                .merged
                .get("contexts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let name_of = |c: &Value| {
                c.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let mut errors = Vec::new();
            let mut shown = Vec::new();
            if a.names.is_empty() {
                shown = contexts.clone();
            } else {
                for n in &a.names {
                    match contexts.iter().find(|c| name_of(c) == *n) {
                        Some(c) => shown.push(c.clone()),
                        None => errors.push(Error::msg(format!("context {n} not found"))),
                    }
                }
            }
            let name_only = match a.output.as_deref() {
                None | Some("") => false,
                Some("name") => true,
                Some(other) => {
                    return Err(Error::msg(format!(
                        "--output {other} is not available in kubectl config get-contexts; resetting to default output format"
                    )))
                }
            };
            let mut w = TabWriter::for_tables();
            if name_only {
                for c in &shown {
                    w.write(&format!("{}\n", name_of(c)));
                }
            } else {
                if !a.no_headers {
                    w.write("CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE\n");
                }
                for c in &shown {
                    let name = name_of(c);
                    let field = |k: &str| {
                        c.pointer(&format!("/context/{k}"))
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    let mark = if name == current { "*" } else { "" };
                    w.write(&format!(
                        "{mark}\t{name}\t{}\t{}\t{}\n",
                        field("cluster"),
                        field("user"),
                        field("namespace")
                    ));
                }
            }
            out::print(&w.take());
            Error::aggregate(errors)
        }
    }
}

/// The configuration in clientcmd's field order, as `config view -o json` prints it.
fn struct_order(v: &Value) -> Value {
    let entry = |e: &Value, body: &str| {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), e.get("name").cloned().unwrap_or(Value::Null));
        m.insert(
            body.into(),
            e.get(body)
                .cloned()
                .unwrap_or_else(|| serde_json::json!({})),
        );
        Value::Object(m)
    };
    let list = |key: &str, body: &str| {
        Value::Array(
            v.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| entry(e, body))
                .collect(),
        )
    };
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), serde_json::json!("Config"));
    m.insert("apiVersion".into(), serde_json::json!("v1"));
    m.insert(
        "preferences".into(),
        v.get("preferences")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    );
    m.insert("clusters".into(), list("clusters", "cluster"));
    m.insert("users".into(), list("users", "user"));
    m.insert("contexts".into(), list("contexts", "context"));
    m.insert(
        "current-context".into(),
        v.get("current-context")
            .cloned()
            .unwrap_or_else(|| serde_json::json!("")),
    );
    Value::Object(m)
}
