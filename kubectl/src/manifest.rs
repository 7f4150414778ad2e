//! Objects from `-f`: files, directories (their .yaml, .yml and .json files),
//! `-` for stdin; multi-document YAML and JSON; `kind: List` expanded. Errors name
//! the file and, for YAML mistakes, the line within the document, as kubectl does.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// One object read from a file, and where it came from.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file as kubectl names it in messages (`STDIN` for `-`).
    pub source: String,
    pub object: Value,
}

/// Everything the `-f` arguments hold, in order. A missing path fails at once; a
/// document that does not parse ends its file with an error entry (later files go on).
pub fn read(filenames: &[String], recursive: bool) -> Result<Vec<Result<Manifest>>> {
    let mut sources: Vec<(String, Option<PathBuf>)> = Vec::new();
    for name in filenames {
        if name == "-" {
            sources.push(("STDIN".into(), None));
            continue;
        }
        if name.starts_with("http://") || name.starts_with("https://") {
            return Err(Error::msg(format!(
                "reading manifests from URLs is not supported: {name}"
            )));
        }
        let path = Path::new(name);
        if !path.exists() {
            return Err(Error::msg(format!("the path \"{name}\" does not exist")));
        }
        if path.is_dir() {
            for file in dir_files(path, recursive)? {
                sources.push((file.display().to_string(), Some(file)));
            }
        } else {
            sources.push((name.clone(), Some(path.to_path_buf())));
        }
    }
    let mut out = Vec::new();
    for (source, path) in sources {
        let text = match &path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| Error::msg(format!("error reading \"{source}\": {e}")))?,
            None => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| Error::msg(format!("error reading STDIN: {e}")))?;
                s
            }
        };
        out.extend(parse(&text, &source));
    }
    Ok(out)
}

/// The manifest files in a directory, in name order (subdirectories when recursive).
fn dir_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::msg(format!("error reading \"{}\": {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                files.extend(dir_files(&entry, true)?);
            }
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(entry);
        }
    }
    Ok(files)
}

/// The objects in one stream. Stops at the first document that does not parse.
pub fn parse(text: &str, source: &str) -> Vec<Result<Manifest>> {
    let mut out = Vec::new();
    for doc in split_documents(text) {
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        }) {
            continue;
        }
        let value: Value = match serde_saphyr::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                out.push(Err(yaml_error(source, &e)));
                return out;
            }
        };
        if value.is_null() {
            continue;
        }
        let mut items = Vec::new();
        expand_lists(value, &mut items);
        for object in items {
            if let Err(e) = validate(&object, source) {
                out.push(Err(e));
                continue;
            }
            out.push(Ok(Manifest {
                source: source.to_string(),
                object,
            }));
        }
    }
    out
}

/// Documents split at `---` lines (apimachinery's YAMLReader: a line starting with
/// `---` followed by nothing but a comment or spaces).
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                docs.push(String::new());
                continue;
            }
        }
        if let Some(last) = docs.last_mut() {
            last.push_str(line);
        }
    }
    docs
}

/// `error parsing x.yaml: error converting YAML to JSON: yaml: line 5: <what>`.
fn yaml_error(source: &str, e: &serde_saphyr::Error) -> Error {
    let text = e.to_string();
    let what = text
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string();
    // The message carries its own position ("error: line 5 column 7: ..."): keep only
    // the description; the line goes first, as go-yaml puts it.
    let what = what.strip_prefix("error: ").unwrap_or(&what).to_string();
    let what = match what.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((position, rest)) if position.contains("column") => rest.to_string(),
        _ => what,
    };
    let what = match what.find(" at line ") {
        Some(i) => what[..i].to_string(),
        None => what,
    };
    let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
    match line {
        Some(line) => Error::msg(format!(
            "error parsing {source}: error converting YAML to JSON: yaml: line {line}: {what}"
        )),
        None => Error::msg(format!(
            "error parsing {source}: error converting YAML to JSON: yaml: {what}"
        )),
    }
}

/// `kind: List` (or any `*List` with items) becomes its items.
fn expand_lists(value: Value, out: &mut Vec<Value>) {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Some(Value::Array(items)) = value.get("items").cloned() {
            for item in items {
                expand_lists(item, out);
            }
        }
    } else {
        out.push(value);
    }
}

/// kubectl's client-side check that an object says what it is.
fn validate(object: &Value, source: &str) -> Result<()> {
    let mut missing = Vec::new();
    for field in ["apiVersion", "kind"] {
        if object
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            missing.push(format!("{field} not set"));
        }
    }
    let what = match missing.len() {
        0 => return Ok(()),
        1 => missing.remove(0),
        _ => format!("[{}]", missing.join(", ")),
    };
    Err(Error::msg(format!(
        "error validating \"{source}\": error validating data: {what}; if you choose to ignore these errors, turn validation off with --validate=false"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: b\n";
        let got: Vec<String> = parse(text, "x.yaml")
            .into_iter()
            .map(|m| {
                m.unwrap().object["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn json_documents() {
        let got = parse(
            "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"j\"}}",
            "p.json",
        );
        assert_eq!(got[0].as_ref().unwrap().object["metadata"]["name"], "j");
    }

    #[test]
    fn yaml_mistakes_name_file_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   bad: x\n";
        let got = parse(text, "bad.yaml");
        assert!(got[0].is_ok());
        let err = got[1].as_ref().unwrap_err().to_string();
        assert_eq!(
            err,
            "error: error parsing bad.yaml: error converting YAML to JSON: yaml: line 5: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn objects_must_say_what_they_are() {
        let got = parse("kind: ConfigMap\nmetadata:\n  name: x\n", "nokind.yaml");
        assert_eq!(
            got[0].as_ref().unwrap_err().to_string(),
            "error: error validating \"nokind.yaml\": error validating data: apiVersion not set; if you choose to ignore these errors, turn validation off with --validate=false"
        );
    }
}
