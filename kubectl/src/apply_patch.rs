//! The three-way strategic merge patch of client-side `apply`, computed as upstream
//! does (`strategicpatch.CreateThreeWayMergePatch`): the changes from the live object
//! to the new configuration, ignoring what the configuration leaves out, plus the
//! removal of what the last-applied configuration had and the new one dropped.
//!
//! Lists merge as the apiserver merges them: by merge key for the tagged lists of the
//! kinds we serve (containers by name, container ports by containerPort, service
//! ports by port, env by name, ...), as sets for finalizers; every other list is
//! replaced whole. Merged lists carry `$setElementOrder` so their order follows the
//! configuration; removed elements get `$patch: delete`.

use serde_json::{Map, Value};

/// The kind of object a map is, as far as list merging cares.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Schema {
    Root(RootKind),
    ObjectMeta,
    PodTemplate,
    PodSpec,
    Container,
    ServiceSpec,
    ControllerSpec,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RootKind {
    Pod,
    Service,
    Controller,
    PodTemplate,
    Other,
}

/// How a list field merges.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ListStrategy {
    Replace,
    /// By this key; elements are of the given schema.
    MergeKey(&'static str, Schema),
    /// As a set of scalars.
    MergeScalars,
}

impl Schema {
    fn for_kind(kind: &str) -> Schema {
        Schema::Root(match kind {
            "Pod" => RootKind::Pod,
            "Service" => RootKind::Service,
            "ReplicationController"
            | "ReplicaSet"
            | "Deployment"
            | "DaemonSet"
            | "StatefulSet"
            | "Job" => RootKind::Controller,
            "PodTemplate" => RootKind::PodTemplate,
            _ => RootKind::Other,
        })
    }

    /// The schema of a map-valued field.
    fn field(self, name: &str) -> Schema {
        match (self, name) {
            (Schema::Root(_), "metadata") | (Schema::PodTemplate, "metadata") => Schema::ObjectMeta,
            (Schema::Root(RootKind::Pod), "spec") | (Schema::PodTemplate, "spec") => {
                Schema::PodSpec
            }
            (Schema::Root(RootKind::Service), "spec") => Schema::ServiceSpec,
            (Schema::Root(RootKind::Controller), "spec") => Schema::ControllerSpec,
            (Schema::Root(RootKind::PodTemplate), "template")
            | (Schema::ControllerSpec, "template") => Schema::PodTemplate,
            _ => Schema::Other,
        }
    }

    /// How a list-valued field merges.
    fn list(self, name: &str) -> ListStrategy {
        use ListStrategy::*;
        match (self, name) {
            (Schema::ObjectMeta, "finalizers") => MergeScalars,
            (Schema::ObjectMeta, "ownerReferences") => MergeKey("uid", Schema::Other),
            (Schema::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
                MergeKey("name", Schema::Container)
            }
            (
                Schema::PodSpec,
                "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims",
            ) => MergeKey("name", Schema::Other),
            (Schema::PodSpec, "hostAliases") => MergeKey("ip", Schema::Other),
            (Schema::PodSpec, "topologySpreadConstraints") => {
                MergeKey("topologyKey", Schema::Other)
            }
            (Schema::Container, "ports") => MergeKey("containerPort", Schema::Other),
            (Schema::Container, "env") => MergeKey("name", Schema::Other),
            (Schema::Container, "volumeMounts") => MergeKey("mountPath", Schema::Other),
            (Schema::Container, "volumeDevices") => MergeKey("devicePath", Schema::Other),
            (Schema::ServiceSpec, "ports") => MergeKey("port", Schema::Other),
            _ => Replace,
        }
    }
}

#[derive(Clone, Copy)]
struct Options {
    ignore_deletions: bool,
    ignore_changes: bool,
}

/// The patch taking `current` to `modified`, given the `original` (last-applied)
/// configuration. An empty object means nothing to change.
pub fn three_way(original: Option<&Value>, modified: &Value, current: &Value, kind: &str) -> Value {
    let schema = Schema::for_kind(kind);
    let empty = Map::new();
    let as_map = |v: Option<&Value>| {
        v.and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let modified = as_map(Some(modified));
    let current = as_map(Some(current));
    let original = as_map(original);
    let delta = diff_maps(
        &current,
        &modified,
        schema,
        Options {
            ignore_deletions: true,
            ignore_changes: false,
        },
    );
    let deletions = diff_maps(
        &original,
        &modified,
        schema,
        Options {
            ignore_deletions: false,
            ignore_changes: true,
        },
    );
    Value::Object(merge_patches(deletions, delta))
}

fn diff_maps(
    from: &Map<String, Value>,
    to: &Map<String, Value>,
    schema: Schema,
    o: Options,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, to_v) in to {
        let Some(from_v) = from.get(key) else {
            if !o.ignore_changes {
                patch.insert(key.clone(), to_v.clone());
            }
            continue;
        };
        match (from_v, to_v) {
            (Value::Object(f), Value::Object(t)) => {
                let sub = diff_maps(f, t, schema.field(key), o);
                if !sub.is_empty() {
                    patch.insert(key.clone(), Value::Object(sub));
                }
            }
            (Value::Array(f), Value::Array(t)) => match schema.list(key) {
                ListStrategy::Replace => {
                    if !o.ignore_changes && f != t {
                        patch.insert(key.clone(), to_v.clone());
                    }
                }
                ListStrategy::MergeKey(merge_key, item_schema) => {
                    let (items, changed) = diff_keyed_lists(f, t, merge_key, item_schema, o);
                    if changed {
                        let order: Vec<Value> = t
                            .iter()
                            .filter_map(|i| i.get(merge_key))
                            .map(|k| {
                                let mut m = Map::new();
                                m.insert(merge_key.to_string(), k.clone());
                                Value::Object(m)
                            })
                            .collect();
                        patch.insert(format!("$setElementOrder/{key}"), Value::Array(order));
                    }
                    if !items.is_empty() {
                        patch.insert(key.clone(), Value::Array(items));
                    }
                }
                ListStrategy::MergeScalars => {
                    let added: Vec<Value> = t.iter().filter(|v| !f.contains(v)).cloned().collect();
                    let removed: Vec<Value> =
                        f.iter().filter(|v| !t.contains(v)).cloned().collect();
                    let mut changed = false;
                    if !o.ignore_changes && !added.is_empty() {
                        patch.insert(key.clone(), Value::Array(added));
                        changed = true;
                    }
                    if !o.ignore_deletions && !removed.is_empty() {
                        patch.insert(
                            format!("$deleteFromPrimitiveList/{key}"),
                            Value::Array(removed),
                        );
                        changed = true;
                    }
                    if changed {
                        patch.insert(format!("$setElementOrder/{key}"), to_v.clone());
                    }
                }
            },
            (f, t) => {
                if !o.ignore_changes && f != t {
                    patch.insert(key.clone(), t.clone());
                }
            }
        }
    }
    if !o.ignore_deletions {
        for key in from.keys() {
            if !to.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    patch
}

/// The patch elements for a list merged by `merge_key`, and whether it changed.
fn diff_keyed_lists(
    from: &[Value],
    to: &[Value],
    merge_key: &str,
    schema: Schema,
    o: Options,
) -> (Vec<Value>, bool) {
    let key_of = |v: &Value| v.get(merge_key).cloned();
    let mut items = Vec::new();
    for t in to {
        let k = key_of(t);
        let found = from.iter().find(|f| k.is_some() && key_of(f) == k);
        match (found, t) {
            (None, _) => {
                if !o.ignore_changes {
                    items.push(t.clone());
                }
            }
            (Some(Value::Object(f)), Value::Object(tm)) => {
                let mut sub = diff_maps(f, tm, schema, o);
                if !sub.is_empty() {
                    if let Some(k) = &k {
                        sub.insert(merge_key.to_string(), k.clone());
                    }
                    items.push(Value::Object(sub));
                }
            }
            (Some(f), t) => {
                if !o.ignore_changes && f != t {
                    items.push(t.clone());
                }
            }
        }
    }
    if !o.ignore_deletions {
        for f in from {
            let k = key_of(f);
            if k.is_some() && !to.iter().any(|t| key_of(t) == k) {
                let mut m = Map::new();
                m.insert(merge_key.to_string(), k.unwrap_or(Value::Null));
                m.insert("$patch".into(), Value::String("delete".into()));
                items.push(Value::Object(m));
            }
        }
    }
    let changed = !items.is_empty();
    (items, changed)
}

/// Combine the deletions patch and the changes patch.
fn merge_patches(mut a: Map<String, Value>, b: Map<String, Value>) -> Map<String, Value> {
    for (key, bv) in b {
        match (a.remove(&key), bv) {
            (Some(Value::Object(am)), Value::Object(bm)) => {
                a.insert(key, Value::Object(merge_patches(am, bm)));
            }
            (Some(Value::Array(mut aa)), Value::Array(ba)) if !key.starts_with('$') => {
                aa.extend(ba);
                a.insert(key, Value::Array(aa));
            }
            (_, bv) => {
                a.insert(key, bv);
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unchanged_when_live_only_adds_defaults() {
        let applied = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                             "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}});
        let live = json!({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": "s", "uid": "u", "resourceVersion": "5"},
                          "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30001}],
                                   "selector": {"app": "x"}, "clusterIP": "10.96.0.5", "type": "ClusterIP"}});
        assert_eq!(
            three_way(Some(&applied), &applied, &live, "Service"),
            json!({})
        );
    }

    #[test]
    fn changes_and_removals() {
        let original = json!({"metadata": {"name": "rc", "labels": {"a": "1", "old": "x"}},
                              "spec": {"replicas": 2, "template": {"spec": {"containers": [
                                  {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]},
                                  {"name": "side", "image": "busybox"}]}}}});
        let modified = json!({"metadata": {"name": "rc", "labels": {"a": "1"}},
                              "spec": {"replicas": 3, "template": {"spec": {"containers": [
                                  {"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}]}]}}}});
        let current = json!({"metadata": {"name": "rc", "labels": {"a": "1", "old": "x", "keep": "y"}},
                             "spec": {"replicas": 5, "template": {"spec": {"containers": [
                                 {"name": "web", "image": "nginx", "imagePullPolicy": "Always",
                                  "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                                 {"name": "side", "image": "busybox"}],
                                 "dnsPolicy": "ClusterFirst"}}}});
        let patch = three_way(
            Some(&original),
            &modified,
            &current,
            "ReplicationController",
        );
        assert_eq!(
            patch,
            json!({
                "metadata": {"labels": {"old": null}},
                "spec": {"replicas": 3, "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"name": "side", "$patch": "delete"}, {"image": "nginx:2", "name": "web"}],
                }}}
            })
        );
    }

    #[test]
    fn scalar_sets_and_replaced_lists() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "c", "args": ["1", "2"]}]}});
        let modified = json!({"metadata": {"finalizers": ["b", "c"]}, "spec": {"containers": [{"name": "c", "args": ["1"]}]}});
        let patch = three_way(Some(&original), &modified, &original, "Pod");
        assert_eq!(patch["metadata"]["finalizers"], json!(["c"]));
        assert_eq!(
            patch["metadata"]["$deleteFromPrimitiveList/finalizers"],
            json!(["a"])
        );
        assert_eq!(
            patch["spec"]["containers"],
            json!([{"args": ["1"], "name": "c"}])
        );
    }
}
