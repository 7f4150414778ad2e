//! RBAC's escalation prevention: nobody grants what they do not hold. A
//! user may write a Role or ClusterRole only with rules they are themselves
//! allowed (or with the `escalate` verb on that kind), and a RoleBinding or
//! ClusterRoleBinding only to a role whose rules they hold (or with the
//! `bind` verb on that role). Without it, anyone allowed to create bindings
//! could bind themselves to cluster-admin.

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use serde_json::Value;

use super::attributes::{Attributes, Request, ResourceAttributes};
use super::{Authorizer, Decision};
use crate::authn::UserInfo;
use crate::error::{ApiError, ApiResult};
use crate::registry::kinds::rbac::GROUP;
use crate::registry::ResourceInfo;
use crate::watch_cache::WatchCache;

/// Checks a write of `obj` (an RBAC kind) by `user`.
pub fn check(
    authz: &Authorizer,
    cache: &WatchCache,
    prefix: &str,
    user: Option<&UserInfo>,
    info: &ResourceInfo,
    request_namespace: Option<&str>,
    obj: &Value,
) -> ApiResult<()> {
    let Some(user) = user else { return Ok(()) };
    if info.group != GROUP || !authz.enforces_rbac() {
        return Ok(());
    }
    let name = crate::meta::name(obj).unwrap_or("");
    let namespace = crate::meta::namespace(obj)
        .filter(|ns| !ns.is_empty())
        .or(request_namespace)
        .unwrap_or("");
    let allowed = |verb: &str, resource: &str, object: &str| {
        let a = resource_attrs(user, verb, GROUP, resource, namespace, object);
        authz.authorize(&a) == Decision::Allow
    };
    let (rules, exempt) = match info.plural {
        "roles" | "clusterroles" => {
            let rules: Vec<PolicyRule> =
                serde_json::from_value(obj["rules"].clone()).unwrap_or_default();
            (rules, allowed("escalate", info.plural, name))
        }
        "rolebindings" | "clusterrolebindings" => {
            let Ok(role_ref) = serde_json::from_value::<RoleRef>(obj["roleRef"].clone()) else {
                return Ok(()); // validation reports it
            };
            let plural = if role_ref.kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if allowed("bind", plural, &role_ref.name) {
                return Ok(());
            }
            (referenced_rules(cache, prefix, &role_ref, namespace), false)
        }
        _ => return Ok(()),
    };
    if exempt {
        return Ok(());
    }
    let missing: Vec<String> = rules
        .iter()
        .flat_map(|r| uncovered(authz, user, namespace, r))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let groups = format!("{:?}", user.groups);
    Err(ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: user \"{}\" (groups={groups}) is attempting to grant RBAC permissions not currently held:\n{}",
        info.qualified_resource(),
        user.name,
        missing.join("\n")
    )))
}

/// The rules of the role a binding names (none if it does not exist yet:
/// binding to a missing role grants nothing).
fn referenced_rules(
    cache: &WatchCache,
    prefix: &str,
    r: &RoleRef,
    namespace: &str,
) -> Vec<PolicyRule> {
    let key = match r.kind.as_str() {
        "Role" => format!("{prefix}/roles/{namespace}/{}", r.name),
        _ => format!("{prefix}/clusterroles/{}", r.name),
    };
    cache
        .get(&key)
        .and_then(|o| serde_json::from_value(o.value()["rules"].take()).ok())
        .unwrap_or_default()
}

fn resource_attrs(
    user: &UserInfo,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Attributes {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    Attributes {
        user: user.clone(),
        verb: verb.to_string(),
        target: Request::Resource(ResourceAttributes {
            group: group.to_string(),
            version: String::new(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            field_selector: String::new(),
        }),
    }
}

/// The parts of `rule` the user does not hold, in upstream's rendering.
fn uncovered(
    authz: &Authorizer,
    user: &UserInfo,
    namespace: &str,
    rule: &PolicyRule,
) -> Vec<String> {
    let mut missing = Vec::new();
    let verbs = &rule.verbs;
    for url in rule.non_resource_urls.iter().flatten() {
        for verb in verbs {
            let a = Attributes {
                user: user.clone(),
                verb: verb.clone(),
                target: Request::NonResource { path: url.clone() },
            };
            if authz.authorize(&a) != Decision::Allow {
                missing.push(format!(
                    "{{NonResourceURLs:[\"{url}\"], Verbs:[\"{verb}\"]}}"
                ));
            }
        }
    }
    let names: Vec<&str> = match rule.resource_names.as_deref() {
        Some(n) if !n.is_empty() => n.iter().map(String::as_str).collect(),
        _ => vec![""],
    };
    for group in rule.api_groups.iter().flatten() {
        for resource in rule.resources.iter().flatten() {
            for name in &names {
                for verb in verbs {
                    let a = resource_attrs(user, verb, group, resource, namespace, name);
                    if authz.authorize(&a) != Decision::Allow {
                        let names = if name.is_empty() {
                            String::new()
                        } else {
                            format!(", ResourceNames:[\"{name}\"]")
                        };
                        missing.push(format!(
                            "{{APIGroups:[\"{group}\"], Resources:[\"{resource}\"]{names}, Verbs:[\"{verb}\"]}}"
                        ));
                    }
                }
            }
        }
    }
    missing
}
