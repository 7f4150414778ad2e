//! `kubectl get`: the server's Tables for the default and wide output, whole objects
//! for yaml, json, name and jsonpath; `-w` watches (Tables too).

use futures::{StreamExt, TryStreamExt};
use kube::api::{GetParams, ListParams, WatchParams};
use kube::core::WatchEvent;
use serde_json::Value;

use crate::cli::GetArgs;
use crate::error::{Error, Result};
use crate::out;
use crate::output::table::{TableOptions, TablePrinter};
use crate::output::{self, OutputFormat};
use crate::session::{request_for, Session};
use crate::tabwriter::TabWriter;
use crate::targets::{self, Target};

pub async fn run(session: &Session, a: GetArgs) -> Result<()> {
    let format = OutputFormat::parse(a.output.as_deref())?;
    let (targets, mut errors) = if !a.files.filenames.is_empty() {
        let (mut t, e) =
            targets::from_files(session, &a.files.filenames, a.files.recursive).await?;
        for target in &mut t {
            target.manifest = None;
        }
        (t, e)
    } else if a.args.is_empty() {
        return Err(Error::msg(
            "Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples",
        ));
    } else {
        (
            targets::from_args(session, &a.args, true).await?,
            Vec::new(),
        )
    };

    if a.watch || a.watch_only {
        return watch(session, &a, &format, &targets).await;
    }

    if format.is_structured() {
        let single = targets.len() == 1 && targets[0].name.is_some();
        let mut objects = Vec::new();
        for t in &targets {
            let result = match &t.name {
                Some(_) => targets::get_object(session, t).await.map(|o| vec![o]),
                None => {
                    targets::list_objects(
                        session,
                        t,
                        a.selector.as_deref(),
                        a.field_selector.as_deref(),
                    )
                    .await
                }
            };
            match result {
                Ok(objs) => objects.extend(objs),
                Err(e) if e.is_not_found() && a.ignore_not_found => {}
                Err(e) => errors.push(e),
            }
        }
        if !(single && objects.is_empty()) {
            out::print(&output::print_objects(&format, &objects, single)?);
        }
        return Error::aggregate(errors);
    }

    let mut w = TabWriter::for_tables();
    let kinds: Vec<&str> = targets.iter().map(|t| t.info.plural.as_str()).collect();
    let several_kinds = kinds.iter().any(|k| *k != kinds[0]);
    let mut printer: Option<(String, TablePrinter)> = None;
    let mut emitter = Emitter::default();
    for t in &targets {
        let table = match fetch_table(session, t, &a).await {
            Ok(table) => table,
            Err(e) if e.is_not_found() && a.ignore_not_found => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let key = t.info.resource_group();
        if printer.as_ref().is_none_or(|(k, _)| *k != key) {
            emitter.emit(&w.take());
            w.reset_widths();
            // A blank line between kinds, once something was printed.
            if printer.is_some() && !a.no_headers && emitter.written {
                emitter.separator_ready = true;
            }
            let options = TableOptions {
                wide: matches!(format, OutputFormat::Wide),
                no_headers: a.no_headers,
                with_namespace: session.all_namespaces && t.info.namespaced,
                with_kind: several_kinds.then(|| t.info.kind_group()),
                show_labels: a.show_labels,
                label_columns: a.label_columns.clone(),
            };
            printer = Some((key, TablePrinter::new(options)));
        }
        if let Some((_, p)) = printer.as_mut() {
            p.print(&table, &mut w);
        }
    }
    emitter.emit(&w.take());
    let printed_any = emitter.written;
    if !printed_any && errors.is_empty() && !a.ignore_not_found {
        let all_namespaced = !session.all_namespaces && targets.iter().all(|t| t.info.namespaced);
        if all_namespaced {
            out::eprintln(&format!(
                "No resources found in {} namespace.",
                session.namespace
            ));
        } else {
            out::eprintln("No resources found");
        }
    }
    Error::aggregate(errors)
}

/// Writes tables to stdout, with a blank line before the next kind's table.
#[derive(Default)]
struct Emitter {
    written: bool,
    separator_ready: bool,
}

impl Emitter {
    fn emit(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.separator_ready {
            out::print("\n");
            self.separator_ready = false;
        }
        out::print(text);
        self.written = true;
    }
}

/// One target as a Table: a GET for a name, else a LIST with the selectors.
async fn fetch_table(session: &Session, t: &Target, a: &GetArgs) -> Result<Value> {
    let req = request_for(&t.info, t.namespace.as_deref());
    let request = match &t.name {
        Some(name) => req.get(name, &GetParams::default()),
        None => {
            let lp = ListParams {
                label_selector: a.selector.clone(),
                field_selector: a.field_selector.clone(),
                ..ListParams::default()
            };
            req.list(&lp)
        }
    }
    .map_err(|e| Error::msg(e.to_string()))?;
    let value = session.send_for_table(request).await?;
    Ok(as_table(value, &t.info))
}

/// A server that answered with an object or list instead of a Table gets the
/// NAME/AGE table kubectl makes for it.
fn as_table(value: Value, info: &crate::discovery::ResourceInfo) -> Value {
    if value.get("kind").and_then(Value::as_str) == Some("Table") {
        return value;
    }
    let items: Vec<Value> = match value.get("items").and_then(Value::as_array) {
        Some(items) => items.clone(),
        None => vec![value],
    };
    let rows: Vec<Value> = items
        .into_iter()
        .map(|o| {
            let o = targets::with_type(o, info);
            let name = o.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
            let age = output::age_since(
                o.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str),
            );
            serde_json::json!({"cells": [name, age], "object": o})
        })
        .collect();
    serde_json::json!({
        "kind": "Table",
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "priority": 0},
        ],
        "rows": rows,
    })
}

/// `-w`: print the current state (unless `--watch-only`), then every change.
async fn watch(
    session: &Session,
    a: &GetArgs,
    format: &OutputFormat,
    targets: &[Target],
) -> Result<()> {
    let kinds: Vec<&str> = targets.iter().map(|t| t.info.plural.as_str()).collect();
    if targets.is_empty() || kinds.iter().any(|k| *k != kinds[0]) {
        return Err(Error::msg("you may only specify a single resource type"));
    }
    let t = &targets[0];
    let field_selector = match (&t.name, &a.field_selector) {
        (Some(name), Some(fs)) => Some(format!("metadata.name={name},{fs}")),
        (Some(name), None) => Some(format!("metadata.name={name}")),
        (None, fs) => fs.clone(),
    };
    let list_target = Target {
        name: None,
        ..t.clone()
    };
    let req = request_for(&t.info, t.namespace.as_deref());
    let lp = ListParams {
        label_selector: a.selector.clone(),
        field_selector: field_selector.clone(),
        ..ListParams::default()
    };
    let list_request = req.list(&lp).map_err(|e| Error::msg(e.to_string()))?;

    let mut w = TabWriter::for_tables();
    let mut printer = TablePrinter::new(TableOptions {
        wide: matches!(format, OutputFormat::Wide),
        no_headers: a.no_headers,
        with_namespace: session.all_namespaces && t.info.namespaced,
        with_kind: None,
        show_labels: a.show_labels,
        label_columns: a.label_columns.clone(),
    });
    let structured = format.is_structured();
    let initial = if structured {
        session.send_json(list_request).await?
    } else {
        session.send_for_table(list_request).await?
    };
    let resource_version = initial
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("0")
        .to_string();
    if !a.watch_only {
        if structured {
            let items = initial
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                print_watched(format, &targets::with_type(item, &list_target.info))?;
            }
        } else {
            printer.print(&as_table(initial, &t.info), &mut w);
            out::print(&w.take());
        }
    }

    let wp = WatchParams {
        label_selector: a.selector.clone(),
        field_selector,
        timeout: Some(290),
        ..WatchParams::default()
    };
    let watch_request = req
        .watch(&wp, &resource_version)
        .map_err(|e| Error::msg(e.to_string()))?;
    let stream = if structured {
        session
            .client
            .request_events::<Value>(watch_request)
            .await?
            .boxed()
    } else {
        let mut watch_request = watch_request;
        watch_request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(crate::session::ACCEPT_TABLE),
        );
        session
            .client
            .request_events::<Value>(watch_request)
            .await?
            .boxed()
    };
    let mut stream = stream.map_err(Error::from);
    // With --request-timeout the watch ends quietly when the time is up, as kubectl's.
    let deadline = session
        .request_timeout
        .map(|t| tokio::time::Instant::now() + t);
    loop {
        let event = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                Ok(e) => e,
                Err(_) => break,
            },
            None => stream.next().await,
        };
        let Some(event) = event else { break };
        let obj = match event? {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(status) => return Err(Error::Api(status)),
        };
        if structured {
            print_watched(format, &targets::with_type(obj, &t.info))?;
        } else {
            printer.print(&as_table(obj, &t.info), &mut w);
            out::print(&w.take());
        }
    }
    Ok(())
}

fn print_watched(format: &OutputFormat, obj: &Value) -> Result<()> {
    let text = output::print_objects(format, std::slice::from_ref(obj), true)?;
    if matches!(format, OutputFormat::Yaml) {
        out::print("---\n");
    }
    out::print(&text);
    Ok(())
}
