//! kubeconfig files as kubectl loads them (client-go's clientcmd loading rules):
//! `--kubeconfig FILE` alone, else every file in $KUBECONFIG merged (the first file
//! to define a name or the current context wins), else ~/.kube/config; then the
//! context from `--context` or `current-context`, and `--cluster`, `--user`,
//! `--server`, `--namespace` on top.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The three named lists of a kubeconfig and the key of each entry's body.
const SECTIONS: [(&str, &str); 3] = [
    ("clusters", "cluster"),
    ("contexts", "context"),
    ("users", "user"),
];

/// The flags that choose and override the configuration.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub server: Option<String>,
    pub namespace: Option<String>,
    /// `--request-timeout`: Go duration, or plain seconds; "0" for none.
    pub request_timeout: String,
}

impl Overrides {
    /// The request timeout, if any.
    pub fn timeout(&self) -> Result<Option<std::time::Duration>> {
        let t = self.request_timeout.trim();
        if t.is_empty() || t == "0" {
            return Ok(None);
        }
        let d = match t.parse::<u64>() {
            Ok(secs) => std::time::Duration::from_secs(secs),
            Err(_) => component_base::parse_duration(t).map_err(|_| {
                Error::msg(
                    "Invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)",
                )
            })?,
        };
        Ok((!d.is_zero()).then_some(d))
    }
}

/// The files read and their merged content.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Each file read, with its content (files that do not exist are skipped).
    pub files: Vec<(PathBuf, Value)>,
    /// The merged configuration, in kubeconfig v1 layout (lists sorted by name).
    pub merged: Value,
}

/// Where the client goes and as whom, after overrides.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub context_name: Option<String>,
    pub cluster_name: Option<String>,
    pub user_name: Option<String>,
    pub server: String,
    pub namespace: String,
    /// The namespace came from `-n`.
    pub explicit_namespace: bool,
}

impl Loaded {
    /// Read the configuration as kubectl would.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let paths: Vec<PathBuf> = match explicit {
            Some(path) => {
                if !path.exists() {
                    return Err(Error::msg(format!(
                        "stat {}: no such file or directory",
                        path.display()
                    )));
                }
                vec![path.to_path_buf()]
            }
            None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
                Some(list) => std::env::split_paths(&list)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect(),
                None => home_config().into_iter().collect(),
            },
        };
        let mut files = Vec::new();
        for path in paths {
            if !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::msg(format!("open {}: {e}", path.display())))?;
            let value: Value = if text.trim().is_empty() {
                json!({})
            } else {
                serde_saphyr::from_str(&text).map_err(|e| {
                    Error::msg(format!(
                        "error loading config file \"{}\": {}",
                        path.display(),
                        first_line(&e.to_string())
                    ))
                })?
            };
            files.push((path, value));
        }
        let merged = merge(files.iter().map(|(_, v)| v));
        Ok(Self { files, merged })
    }

    /// The file `config use-context` and friends write to: the first file that sets
    /// current-context, else the first file, else ~/.kube/config.
    pub fn file_for_current_context(&self, explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        self.files
            .iter()
            .find(|(_, v)| {
                v.get("current-context")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            })
            .or(self.files.first())
            .map(|(p, _)| p.clone())
            .or_else(home_config)
            .unwrap_or_else(|| PathBuf::from(".kube/config"))
    }

    pub fn current_context(&self) -> Option<&str> {
        self.merged
            .get("current-context")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The body (`cluster`, `context`, `user`) of the named entry of a section.
    pub fn entry(&self, section: &str, name: &str) -> Option<&Value> {
        let body_key = SECTIONS.iter().find(|(s, _)| *s == section)?.1;
        self.merged
            .get(section)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|e| e.get(body_key))
    }

    /// Apply the context and overrides.
    pub fn resolve(&self, o: &Overrides) -> Result<Resolved> {
        let context_name = o
            .context
            .clone()
            .or_else(|| self.current_context().map(str::to_string));
        let context = match &context_name {
            Some(name) => match self.entry("contexts", name) {
                Some(c) => Some(c),
                None if o.context.is_some() => {
                    return Err(Error::msg(format!(
                        "context was not found for specified context: {name}"
                    )))
                }
                None => None,
            },
            None => None,
        };
        let field = |key: &str| {
            context
                .and_then(|c| c.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let cluster_name = o.cluster.clone().or_else(|| field("cluster"));
        let user_name = o.user.clone().or_else(|| field("user"));
        let cluster_server = cluster_name
            .as_deref()
            .and_then(|c| self.entry("clusters", c))
            .and_then(|c| c.get("server"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let server = match o.server.clone().or(cluster_server) {
            Some(s) if s.contains("://") => s,
            Some(s) => format!("http://{s}"),
            None => "http://localhost:8080".to_string(),
        };
        let (namespace, explicit_namespace) = match &o.namespace {
            Some(ns) => (ns.clone(), true),
            None => (
                field("namespace").unwrap_or_else(|| "default".into()),
                false,
            ),
        };
        Ok(Resolved {
            context_name: context.and(context_name),
            cluster_name,
            user_name,
            server,
            namespace,
            explicit_namespace,
        })
    }

    /// The merged configuration as kube-rs reads it.
    pub fn kube_kubeconfig(&self) -> Result<kube::config::Kubeconfig> {
        serde_json::from_value(self.merged.clone())
            .map_err(|e| Error::msg(format!("invalid configuration: {e}")))
    }
}

/// The host:port of a server URL, as connection errors name it.
pub fn server_host(server: &str) -> String {
    let rest = server.split_once("://").map(|(_, r)| r).unwrap_or(server);
    rest.split('/').next().unwrap_or(rest).to_string()
}

fn home_config() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// clientcmd's merge: for each named entry and for current-context, the first file wins.
fn merge<'a>(files: impl Iterator<Item = &'a Value>) -> Value {
    let mut merged = Map::new();
    merged.insert("apiVersion".into(), json!("v1"));
    let mut sections: Vec<Vec<Value>> = vec![Vec::new(); SECTIONS.len()];
    let mut current_context: Option<String> = None;
    let mut preferences = json!({});
    for file in files {
        for (i, (section, _)) in SECTIONS.iter().enumerate() {
            for entry in file
                .get(*section)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
                if !sections[i]
                    .iter()
                    .any(|e| e.get("name").and_then(Value::as_str) == Some(name))
                {
                    sections[i].push(entry.clone());
                }
            }
        }
        if current_context.is_none() {
            current_context = file
                .get("current-context")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        if let Some(Value::Object(p)) = file.get("preferences") {
            if let Value::Object(mine) = &mut preferences {
                for (k, v) in p {
                    mine.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    for (i, (section, _)) in SECTIONS.iter().enumerate() {
        let mut entries = std::mem::take(&mut sections[i]);
        entries.sort_by(|a, b| {
            let n = |v: &Value| {
                v.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            n(a).cmp(&n(b))
        });
        merged.insert(section.to_string(), Value::Array(entries));
    }
    merged.insert(
        "current-context".into(),
        json!(current_context.unwrap_or_default()),
    );
    merged.insert("kind".into(), json!("Config"));
    merged.insert("preferences".into(), preferences);
    Value::Object(merged)
}

/// What `config view` shows: `--minify` keeps only what the current context uses;
/// without `--raw`, certificate and key data become DATA+OMITTED and secrets REDACTED.
pub fn view(loaded: &Loaded, minify: bool, raw: bool, context: Option<&str>) -> Result<Value> {
    let mut v = loaded.merged.clone();
    if minify {
        let ctx_name = context
            .map(str::to_string)
            .or_else(|| loaded.current_context().map(str::to_string))
            .ok_or_else(|| Error::msg("current-context must exist in order to minify"))?;
        let ctx = loaded
            .entry("contexts", &ctx_name)
            .ok_or_else(|| Error::msg(format!("cannot locate context {ctx_name}")))?;
        let keep = |section: &str, name: Option<&str>| -> Value {
            let list = v
                .get(section)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Value::Array(
                list.into_iter()
                    .filter(|e| name.is_some() && e.get("name").and_then(Value::as_str) == name)
                    .collect(),
            )
        };
        let clusters = keep("clusters", ctx.get("cluster").and_then(Value::as_str));
        let users = keep("users", ctx.get("user").and_then(Value::as_str));
        let contexts = keep("contexts", Some(ctx_name.as_str()));
        v["clusters"] = clusters;
        v["users"] = users;
        v["contexts"] = contexts;
        v["current-context"] = json!(ctx_name);
    }
    if !raw {
        for (section, body) in [("clusters", "cluster"), ("users", "user")] {
            if let Some(list) = v.get_mut(section).and_then(Value::as_array_mut) {
                for entry in list {
                    if let Some(Value::Object(b)) = entry.get_mut(body) {
                        for (k, val) in b.iter_mut() {
                            if k.ends_with("-data") {
                                *val = json!("DATA+OMITTED");
                            } else if k == "token" || k == "password" {
                                *val = json!("REDACTED");
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_file_wins() {
        let a = json!({"clusters": [{"name": "c", "cluster": {"server": "http://a"}}],
                       "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                       "current-context": "x"});
        let b = json!({"clusters": [{"name": "c", "cluster": {"server": "http://b"}},
                                    {"name": "d", "cluster": {"server": "http://d"}}],
                       "contexts": [{"name": "y", "context": {"cluster": "d", "namespace": "kube-system"}}],
                       "current-context": "y"});
        let merged = merge([&a, &b].into_iter());
        let loaded = Loaded {
            files: vec![],
            merged,
        };
        let r = loaded.resolve(&Overrides::default()).unwrap();
        assert_eq!(r.server, "http://a");
        assert_eq!(r.namespace, "default");
        let r = loaded
            .resolve(&Overrides {
                context: Some("y".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.server, "http://d");
        assert_eq!(r.namespace, "kube-system");
        assert!(loaded
            .resolve(&Overrides {
                context: Some("nope".into()),
                ..Default::default()
            })
            .is_err());
        assert_eq!(server_host("http://127.0.0.1:1"), "127.0.0.1:1");
    }
}
