//! Validation shared by every kind, with upstream's field paths and messages:
//! name formats (DNS-1123 subdomain and label, DNS-1035 label), qualified
//! names and label values, object metadata, ports and IP addresses.
//! The pod spec rules shared by Pod and the ReplicationController template
//! live in [`pod_spec`] and [`container`].

pub mod container;
pub mod pod_spec;

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::strategy::{FieldError, FieldErrorType};

pub const FIELD_IMMUTABLE: &str = "field is immutable";
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";

/// A JSON field path in upstream's spelling (`spec.containers[0].name`).
/// Built lazily: each step borrows its parent, and the text is only made
/// when an error names the path (validation of a valid object formats none).
#[derive(Clone, Copy, Debug)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    Name(&'a str),
    Index(usize),
    Key(&'a str),
}

impl<'a> Path<'a> {
    pub fn new(root: &'a str) -> Self {
        Self {
            parent: None,
            step: Step::Name(root),
        }
    }

    pub fn child<'b>(&'b self, name: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            step: Step::Name(name),
        }
    }

    pub fn index(&self, i: usize) -> Path<'_> {
        Path {
            parent: Some(self),
            step: Step::Index(i),
        }
    }

    pub fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            step: Step::Key(key),
        }
    }

    fn write(&self, out: &mut String) {
        use std::fmt::Write;
        if let Some(p) = self.parent {
            p.write(out);
        }
        match self.step {
            Step::Name(n) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(n);
            }
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Step::Key(k) => {
                let _ = write!(out, "[{k}]");
            }
        }
    }
}

impl From<&Path<'_>> for String {
    fn from(p: &Path<'_>) -> Self {
        let mut out = String::new();
        p.write(&mut out);
        out
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(self))
    }
}

/// A field error without a value, e.g. upstream's `field.TooLong(path, "", n)`.
pub fn too_long(field: &Path, max_bytes: usize) -> FieldError {
    FieldError {
        kind: FieldErrorType::TooLong,
        field: field.into(),
        value: None,
        detail: format!("may not be more than {max_bytes} bytes"),
    }
}

/// Upstream's `field.NotFound`.
pub fn not_found(field: &Path, value: impl Serialize) -> FieldError {
    FieldError {
        kind: FieldErrorType::NotFound,
        field: field.into(),
        value: Some(serde_json::to_string(&value).unwrap_or_default()),
        detail: String::new(),
    }
}

/// One `Invalid` error per message.
pub fn invalid_each(field: &Path, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(field, value, m))
        .collect()
}

// ---- string formats (upstream's k8s.io/apimachinery/pkg/util/validation) ----

/// Upstream's `RegexError`, including its quirky double space between examples.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes().first().is_some_and(|b| b.is_ascii_lowercase())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream's `IsQualifiedName` (label keys, annotation keys, finalizers...).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

pub fn is_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Keys of ConfigMap and Secret data.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    let charset_ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !charset_ok {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    match value {
        "." => errs.push("must not be '.'".to_string()),
        ".." => errs.push("must not be '..'".to_string()),
        v if v.starts_with("..") => errs.push("must not start with '..'".to_string()),
        _ => {}
    }
    errs
}

/// IANA service names used as port names.
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream's `IsValidIP`.
pub fn validate_ip(field: &Path, value: &str) -> Vec<FieldError> {
    if value.parse::<IpAddr>().is_ok() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

/// Upstream's `IsValidCIDR`.
pub fn validate_cidr(field: &Path, value: &str) -> Vec<FieldError> {
    let ok = value.split_once('/').is_some_and(|(ip, bits)| {
        let max = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && bits.parse::<u32>().is_ok_and(|b| b <= max)
    });
    if ok {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            value,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    }
}

pub fn validate_dns1123_label(field: &Path, value: &str) -> Vec<FieldError> {
    invalid_each(field, value, is_dns1123_label(value))
}

pub fn validate_dns1123_subdomain(field: &Path, value: &str) -> Vec<FieldError> {
    invalid_each(field, value, is_dns1123_subdomain(value))
}

pub fn validate_qualified_name(field: &Path, value: &str) -> Vec<FieldError> {
    invalid_each(field, value, is_qualified_name(value))
}

pub fn validate_nonnegative(field: &Path, value: i64) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(field, value, IS_NEGATIVE)]
    } else {
        Vec::new()
    }
}

/// Upstream's `ValidateImmutableField`, comparing serialized forms.
pub fn validate_immutable<T: Serialize + PartialEq>(
    field: &Path,
    new: &T,
    old: &T,
) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(field, new, FIELD_IMMUTABLE)]
    }
}

/// Port protocols in upstream's (sorted) order.
pub const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// Required when empty, NotSupported when not one of `supported`.
pub fn validate_enum(path: &Path, value: Option<&str>, supported: &[&str]) -> Vec<FieldError> {
    match value.unwrap_or("") {
        "" => vec![FieldError::required(path, "")],
        v if supported.contains(&v) => Vec::new(),
        v => vec![FieldError::not_supported(path, v, supported)],
    }
}

/// A port given by number (1-65535) or by IANA name.
pub fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|m| FieldError::invalid(path, n, m))
            .collect(),
        IntOrString::String(s) => invalid_each(path, s, is_valid_port_name(s)),
    }
}

// ---- names ----

/// The name format a kind requires (upstream's `ValidateNameFunc`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds: pods, nodes, configmaps, ...
    Dns1123Subdomain,
    /// Namespaces.
    Dns1123Label,
    /// Services.
    Dns1035Label,
    /// RBAC kinds: anything usable as one URL path segment.
    PathSegment,
}

impl NameRule {
    /// Messages for `name`; a `prefix` (generateName) may end with a dash.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.ends_with('-') {
            masked = mask_trailing_dash(name);
            masked.as_str()
        } else {
            name
        };
        match self {
            Self::Dns1123Subdomain => is_dns1123_subdomain(name),
            Self::Dns1123Label => is_dns1123_label(name),
            Self::Dns1035Label => is_dns1035_label(name),
            Self::PathSegment => is_path_segment_name(name),
        }
    }
}

/// Upstream's `path.IsValidPathSegmentName`.
fn is_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ['/', '%']
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// Upstream replaces the last two characters by "a" (sic).
fn mask_trailing_dash(name: &str) -> String {
    let keep = name.len().saturating_sub(2);
    format!("{}a", name.get(..keep).unwrap_or(""))
}

// ---- metadata ----

/// Upstream's core `ValidateObjectMeta`: name format, namespace presence,
/// labels, annotations, owner references, finalizers (including the
/// core rule that unqualified finalizers must be standard ones).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let mut errs = validate_generic_object_meta(meta, namespaced, rule);
    let metadata_path = Path::new("metadata");
    let path = metadata_path.child("finalizers");
    for (i, f) in meta.finalizers.iter().flatten().enumerate() {
        errs.extend(validate_kube_finalizer_name(&path.index(i), f));
    }
    errs
}

/// apimachinery's `ValidateObjectMeta` (used by non-core groups such as
/// coordination.k8s.io), without the core finalizer rule.
pub fn validate_generic_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let mut errs = validate_names(meta, rule, &path);
    errs.extend(validate_namespace_presence(meta, namespaced, &path));
    errs.extend(validate_nonnegative(
        &path.child("generation"),
        meta.generation.unwrap_or(0),
    ));
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta,
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref().unwrap_or_default(),
        &path.child("finalizers"),
    ));
    errs.extend(validate_managed_fields(meta, &path.child("managedFields")));
    errs
}

fn validate_names(meta: &ObjectMeta, rule: NameRule, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(prefix) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        errs.extend(invalid_each(
            &path.child("generateName"),
            prefix,
            rule.check(prefix, true),
        ));
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        )),
        Some(name) => errs.extend(invalid_each(
            &path.child("name"),
            name,
            rule.check(name, false),
        )),
    }
    errs
}

fn validate_namespace_presence(
    meta: &ObjectMeta,
    namespaced: bool,
    path: &Path,
) -> Vec<FieldError> {
    let ns_path = path.child("namespace");
    let namespace = meta.namespace.as_deref().unwrap_or("");
    match (namespaced, namespace.is_empty()) {
        (true, true) => vec![FieldError::required(&ns_path, "")],
        (true, false) => invalid_each(
            &ns_path,
            namespace,
            NameRule::Dns1123Label.check(namespace, false),
        ),
        (false, false) => vec![FieldError::forbidden(&ns_path, "not allowed on this type")],
        (false, true) => Vec::new(),
    }
}

/// Label keys must be qualified names and values valid label values; errors
/// point at the map itself, as upstream's.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        errs.extend(invalid_each(path, k, is_qualified_name(k)));
        errs.extend(invalid_each(path, v, is_label_value(v)));
    }
    errs
}

/// Annotation keys are qualified names regardless of case; 256 KiB in total.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        errs.extend(invalid_each(path, k, is_qualified_name(&k.to_lowercase())));
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_references(meta: &ObjectMeta, path: &Path) -> Vec<FieldError> {
    let refs = meta.owner_references.as_deref().unwrap_or_default();
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let (group, version) = split_api_version(&r.api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                &r.kind,
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("name"),
                &r.name,
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("uid"),
                &r.uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    refs,
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// "apps/v1" -> ("apps", "v1"), "v1" -> ("", "v1"); malformed -> ("", "").
fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [version] => ("", version),
        [group, version] => (group, version),
        _ => ("", ""),
    }
}

fn validate_finalizers(finalizers: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        errs.extend(invalid_each(path, f, is_qualified_name(f)));
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            finalizers,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Core kinds: an unqualified finalizer must be a standard one.
pub fn validate_kube_finalizer_name(path: &Path, name: &str) -> Vec<FieldError> {
    let standard = ["kubernetes", "orphan", "foregroundDeletion"];
    if !name.contains('/') && !standard.contains(&name) {
        vec![FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )]
    } else {
        Vec::new()
    }
}

fn validate_managed_fields(meta: &ObjectMeta, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, entry) in meta.managed_fields.iter().flatten().enumerate() {
        let p = path.index(i);
        let operation = entry.operation.as_deref().unwrap_or("");
        if operation != "Apply" && operation != "Update" {
            errs.push(FieldError::invalid(
                &p.child("operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = entry.fields_type.as_deref().unwrap_or("");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(FieldError::invalid(
                &p.child("fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
    }
    errs
}

/// Selector maps must not be empty (upstream's `ValidateNonEmptySelector`).
pub fn validate_non_empty_selector(
    selector: Option<&BTreeMap<String, String>>,
    path: &Path,
) -> Vec<FieldError> {
    if selector.is_none_or(|s| s.is_empty()) {
        vec![FieldError::required(path, "")]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("default".to_string()),
            ..Default::default()
        }
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn subdomain_names_report_upstream_message() {
        let errs = validate_object_meta(&meta("Foo"), true, NameRule::Dns1123Subdomain);
        assert_eq!(
            messages(&errs),
            vec![
                "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert!(validate_object_meta(&meta("a.b-c"), true, NameRule::Dns1123Subdomain).is_empty());
    }

    #[test]
    fn label_names_reject_dots_and_keep_the_double_space() {
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("A"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn dns1035_labels_must_start_with_a_letter() {
        assert!(is_dns1035_label("web").is_empty());
        assert_eq!(
            is_dns1035_label("1web"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
    }

    #[test]
    fn generate_name_prefix_may_end_with_a_dash() {
        assert!(NameRule::Dns1123Subdomain.check("nginx-", true).is_empty());
        assert!(!NameRule::Dns1123Subdomain.check("nginx-", false).is_empty());
    }

    #[test]
    fn missing_name_and_namespace_rules() {
        let mut m = meta("");
        m.name = None;
        let errs = validate_object_meta(&m, true, NameRule::Dns1123Subdomain);
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        let errs = validate_object_meta(&meta("n1"), false, NameRule::Dns1123Subdomain);
        assert_eq!(
            messages(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let mut m = meta("x");
        m.namespace = None;
        let errs = validate_object_meta(&m, true, NameRule::Dns1123Subdomain);
        assert_eq!(messages(&errs), vec!["metadata.namespace: Required value"]);
    }

    #[test]
    fn label_keys_and_values() {
        let mut m = meta("x");
        m.labels = Some(BTreeMap::from([
            ("example.com/app".to_string(), "ok_value".to_string()),
            ("bad key".to_string(), "-bad".to_string()),
        ]));
        let errs = validate_object_meta(&m, true, NameRule::Dns1123Subdomain);
        assert_eq!(
            messages(&errs),
            vec![
                "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ]
        );
    }

    #[test]
    fn qualified_name_prefix_and_slashes() {
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(is_qualified_name("Example.com/x")[0]
            .starts_with("prefix part a lowercase RFC 1123 subdomain"));
    }

    #[test]
    fn annotations_are_case_insensitive_and_bounded() {
        let mut m = meta("x");
        m.annotations = Some(BTreeMap::from([(
            "Example.COM/Key".to_string(),
            "v".to_string(),
        )]));
        assert!(validate_object_meta(&m, true, NameRule::Dns1123Subdomain).is_empty());
        m.annotations = Some(BTreeMap::from([(
            "k".to_string(),
            "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT),
        )]));
        let errs = validate_object_meta(&m, true, NameRule::Dns1123Subdomain);
        assert_eq!(
            messages(&errs),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn finalizers_must_be_standard_or_qualified() {
        let mut m = meta("x");
        m.finalizers = Some(vec![
            "kubernetes".into(),
            "example.com/x".into(),
            "custom".into(),
        ]);
        let errs = validate_object_meta(&m, true, NameRule::Dns1123Subdomain);
        assert_eq!(
            messages(&errs),
            vec!["metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"]
        );
    }

    #[test]
    fn config_map_keys_and_port_names() {
        assert!(is_config_map_key("app.properties").is_empty());
        assert_eq!(is_config_map_key("..x"), vec!["must not start with '..'"]);
        assert!(is_config_map_key("a b")[0].starts_with("a valid config key"));
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(
            is_valid_port_name("80"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            is_valid_port_num(70000),
            vec!["must be between 1 and 65535, inclusive"]
        );
    }

    #[test]
    fn ips_and_cidrs() {
        let p = Path::new("x");
        assert!(validate_ip(&p, "10.0.0.1").is_empty());
        assert_eq!(
            validate_ip(&p, "10.0.0").first().map(ToString::to_string).unwrap_or_default(),
            "x: Invalid value: \"10.0.0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
        assert!(validate_cidr(&p, "10.244.1.0/24").is_empty());
        assert!(!validate_cidr(&p, "10.244.1.0/33").is_empty());
    }
}
