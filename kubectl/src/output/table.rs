//! Server-side Tables (`meta.k8s.io/v1 Table`) printed as kubectl prints them
//! (k8s.io/cli-runtime printers: `decorateTable` + `printTable`): upper-case headers,
//! only priority-0 columns unless wide, optional NAMESPACE first, `kind/name` when
//! several kinds are listed, LABELS and `-L` columns last.

use serde_json::Value;

use crate::tabwriter::TabWriter;

#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    pub wide: bool,
    pub no_headers: bool,
    pub with_namespace: bool,
    /// `kind` or `kind.group`, lower-case, to prefix names with (several kinds listed).
    pub with_kind: Option<String>,
    pub show_labels: bool,
    /// `-L key`: one column per label key.
    pub label_columns: Vec<String>,
}

/// Prints one kind's tables; remembers columns and headers across calls, as a watch
/// prints one header and then rows.
pub struct TablePrinter {
    options: TableOptions,
    last_columns: Option<Value>,
    printed_headers: bool,
}

struct Column {
    name: String,
    priority: i64,
}

impl TablePrinter {
    pub fn new(options: TableOptions) -> Self {
        Self {
            options,
            last_columns: None,
            printed_headers: false,
        }
    }

    /// Write `table` (a Table object) to `w`.
    pub fn print(&mut self, table: &Value, w: &mut TabWriter) {
        let mut column_defs = table
            .get("columnDefinitions")
            .cloned()
            .unwrap_or(Value::Null);
        let empty_defs = column_defs.as_array().is_none_or(Vec::is_empty);
        let mut no_headers = self.options.no_headers;
        if self.printed_headers && (empty_defs || self.last_columns.as_ref() == Some(&column_defs))
        {
            no_headers = true;
        }
        if empty_defs {
            column_defs = self.last_columns.clone().unwrap_or(Value::Null);
        } else if self.last_columns.as_ref() != Some(&column_defs) {
            self.last_columns = Some(column_defs.clone());
            self.printed_headers = false;
        }
        let rows = table
            .get("rows")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !rows.is_empty() {
            self.printed_headers = true;
        }

        let (columns, rows) = self.decorate(&column_defs, &rows);
        let shown = |c: &Column| self.options.wide || c.priority == 0;

        if !no_headers {
            if rows.is_empty() {
                return;
            }
            let header: Vec<String> = columns
                .iter()
                .filter(|c| shown(c))
                .map(|c| c.name.to_uppercase())
                .collect();
            w.write(&header.join("\t"));
            w.write("\n");
        }
        for cells in rows {
            let mut line = Vec::new();
            for (i, cell) in cells.iter().enumerate() {
                let Some(column) = columns.get(i) else { break };
                if !shown(column) {
                    continue;
                }
                line.push(cell.clone());
            }
            w.write(&line.join("\t"));
            w.write("\n");
        }
    }

    /// The columns and the rows' cells as text, with the options' extra columns.
    fn decorate(&self, column_defs: &Value, rows: &[Value]) -> (Vec<Column>, Vec<Vec<String>>) {
        let defs: Vec<&Value> = column_defs
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let name_column = self.options.with_kind.as_ref().and_then(|_| {
            defs.iter().position(|d| {
                d.get("format").and_then(Value::as_str) == Some("name")
                    && d.get("type").and_then(Value::as_str) == Some("string")
            })
        });
        let mut columns = Vec::new();
        if self.options.with_namespace {
            columns.push(Column {
                name: "Namespace".into(),
                priority: 0,
            });
        }
        for d in &defs {
            columns.push(Column {
                name: d
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                priority: d.get("priority").and_then(Value::as_i64).unwrap_or(0),
            });
        }
        for key in &self.options.label_columns {
            columns.push(Column {
                name: key.rsplit('/').next().unwrap_or(key).to_string(),
                priority: 0,
            });
        }
        if self.options.show_labels {
            columns.push(Column {
                name: "Labels".into(),
                priority: 0,
            });
        }

        let rows = rows
            .iter()
            .map(|row| {
                let mut cells: Vec<String> = row
                    .get("cells")
                    .and_then(Value::as_array)
                    .map(|c| c.iter().map(cell_text).collect())
                    .unwrap_or_default();
                if let (Some(i), Some(kind)) = (name_column, &self.options.with_kind) {
                    if let Some(cell) = cells.get_mut(i) {
                        *cell = format!("{kind}/{cell}");
                    }
                }
                let metadata = row.get("object").and_then(|o| o.get("metadata"));
                if self.options.with_namespace {
                    let ns = metadata
                        .and_then(|m| m.get("namespace"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    cells.insert(0, ns.to_string());
                }
                let labels = metadata.and_then(|m| m.get("labels"));
                for key in &self.options.label_columns {
                    let v = labels
                        .and_then(|l| l.get(key))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    cells.push(v.to_string());
                }
                if self.options.show_labels {
                    cells.push(format_labels(labels));
                }
                cells
            })
            .collect();
        (columns, rows)
    }
}

/// A cell as kubectl prints it: strings cut at the first line break (`...` added).
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::Null => String::new(),
        Value::String(s) => match s.find(['\n', '\r', '\u{c}']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// `labels.FormatLabels`: sorted `k=v` joined by commas, or `<none>`.
pub fn format_labels(labels: Option<&Value>) -> String {
    let Some(Value::Object(map)) = labels else {
        return "<none>".into();
    };
    if map.is_empty() {
        return "<none>".into();
    }
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods_table() -> Value {
        json!({
            "kind": "Table",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "format": "", "priority": 0},
                {"name": "IP", "type": "string", "format": "", "priority": 1},
            ],
            "rows": [{"cells": ["web", "1/1", "10.0.0.1"],
                      "object": {"metadata": {"name": "web", "namespace": "default", "labels": {"b": "2", "a": "1"}}}}]
        })
    }

    #[test]
    fn plain_and_wide() {
        let mut w = TabWriter::for_tables();
        TablePrinter::new(TableOptions::default()).print(&pods_table(), &mut w);
        assert_eq!(w.take(), "NAME   READY\nweb    1/1\n");
        let mut w = TabWriter::for_tables();
        TablePrinter::new(TableOptions {
            wide: true,
            ..Default::default()
        })
        .print(&pods_table(), &mut w);
        assert_eq!(w.take(), "NAME   READY   IP\nweb    1/1     10.0.0.1\n");
    }

    #[test]
    fn decorated() {
        let mut w = TabWriter::for_tables();
        TablePrinter::new(TableOptions {
            with_namespace: true,
            with_kind: Some("pod".into()),
            show_labels: true,
            ..Default::default()
        })
        .print(&pods_table(), &mut w);
        assert_eq!(
            w.take(),
            "NAMESPACE   NAME      READY   LABELS\ndefault     pod/web   1/1     a=1,b=2\n"
        );
    }

    #[test]
    fn watch_prints_one_header() {
        let mut w = TabWriter::for_tables();
        let mut p = TablePrinter::new(TableOptions::default());
        p.print(&pods_table(), &mut w);
        p.print(&pods_table(), &mut w);
        assert_eq!(w.take(), "NAME   READY\nweb    1/1\nweb    1/1\n");
    }
}
