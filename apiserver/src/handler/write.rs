//! CREATE, UPDATE and PATCH, and the one read-modify-write loop
//! ([`guaranteed_update`]) that every change to an existing object goes
//! through: compare-and-swap on the revision, retried while the client gave
//! no resourceVersion precondition.

use axum::body::Bytes;
use axum::response::Response;
use http::{header, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::{json, Value};

use crate::admission;
use crate::codec;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::patch::{self, PatchType};
use crate::registry::ResourceInfo;
use crate::storage::StoreError;

use super::query::{FieldValidation, Query};
use super::read::current;
use super::{object_response, with_warnings, Api, Ctx};

/// Options shared by every write.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

impl WriteOptions {
    pub fn from_query(q: &Query) -> ApiResult<Self> {
        Ok(Self {
            dry_run: q.dry_run()?,
            field_validation: q.field_validation()?,
        })
    }

    /// What the server itself uses for objects it makes.
    pub fn internal() -> Self {
        Self {
            dry_run: false,
            field_validation: FieldValidation::Strict,
        }
    }
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but the status (for kinds with one).
    Main,
    /// The status subresource: only the status.
    Status,
    /// The server's own change (binding, scale, finalize, graceful delete):
    /// the closure's result is taken as it is.
    Raw,
}

/// The apiVersion and kind in a body must be the endpoint's, when given.
fn check_type(info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body of the request is not a {} object",
            info.kind
        )));
    }
    let want = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != want => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want})"
            )))
        }
        _ => {}
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if k != info.kind => Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            info.kind
        ))),
        _ => Ok(()),
    }
}

/// Decode through the kind's type: unknown fields are dropped and, per
/// fieldValidation, rejected or turned into warnings.
fn normalize(
    info: &ResourceInfo,
    obj: &Value,
    fv: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    check_type(info, obj)?;
    let (out, unknown) = info
        .strategy
        .normalize(obj)
        .map_err(|e| cannot_handle(info, e))?;
    Ok((out, unknown_fields(unknown, fv)?))
}

fn cannot_handle(info: &ResourceInfo, e: String) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {e}",
        info.kind, info.version, info.kind
    ))
}

/// Unknown fields per fieldValidation: an error (Strict), warnings (Warn) or nothing.
fn unknown_fields(unknown: Vec<String>, fv: FieldValidation) -> ApiResult<Vec<String>> {
    let texts: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match fv {
        FieldValidation::Strict if !texts.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            texts.join(", ")
        ))),
        FieldValidation::Ignore => Ok(Vec::new()),
        _ => Ok(texts),
    }
}

fn validate_or_invalid(
    info: &ResourceInfo,
    name: &str,
    errors: Vec<crate::strategy::FieldError>,
) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(info, name, &errors))
    }
}

fn stored_bytes(obj: &Value) -> ApiResult<Vec<u8>> {
    // The resourceVersion is the key's revision, never stored in the value
    // (a create has none: no copy needed then).
    if obj.pointer("/metadata/resourceVersion").is_none() {
        return serde_json::to_vec(obj).map_err(|e| ApiError::internal(e.to_string()));
    }
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).map_err(|e| ApiError::internal(e.to_string()))
}

/// RBAC objects may not grant more than their writer holds.
fn escalation_check(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<()> {
    let api = ctx.api;
    let user = ctx.user.as_ref();
    crate::authz::escalation::check(
        &api.authz,
        &api.cache,
        &api.prefix,
        user,
        ctx.info,
        ctx.ns(),
        obj,
    )
}

pub(crate) async fn create(ctx: &Ctx<'_>, body: &Bytes) -> ApiResult<Response> {
    let obj = codec::decode_body(&ctx.headers, body)?;
    if ctx.api.authz.restricts_nodes() {
        crate::authz::node::admit_create(ctx.user.as_ref(), ctx.info, &obj)?;
    }
    escalation_check(ctx, &obj)?;
    let opts = WriteOptions::from_query(&ctx.query)?;
    let created = create_object(ctx.api, ctx.info, ctx.ns(), obj, opts).await?;
    let resp = if ctx.output == codec::Output::Json {
        // The stored bytes with the resourceVersion: no second serialisation.
        codec::json_bytes(StatusCode::CREATED, created.json)
    } else {
        object_response(ctx, StatusCode::CREATED, &created.object)
    };
    Ok(with_warnings(resp, &created.warnings))
}

/// A created object, as a tree and as the JSON the client gets.
pub struct Created {
    pub object: Value,
    pub json: Vec<u8>,
    pub warnings: Vec<String>,
}

/// Create one object: decode, default, validate, admit, store. Used by the
/// API and by the server's own bootstrap.
pub async fn create_object(
    api: &Api,
    info: &'static ResourceInfo,
    namespace: Option<&str>,
    obj: Value,
    opts: WriteOptions,
) -> ApiResult<Created> {
    check_type(info, &obj)?;
    let mut refused = None;
    let mut generated = false;
    let decoded = info
        .strategy
        .decode_for_create(&obj, &mut |m| match server_metadata(info, namespace, m) {
            Ok(g) => generated = g,
            Err(e) => refused = Some(e),
        })
        .map_err(|e| cannot_handle(info, e))?;
    drop(obj);
    let warnings = unknown_fields(decoded.unknown, opts.field_validation)?;
    if let Some(e) = refused {
        return Err(e);
    }
    let mut obj = decoded.object;
    let name = meta::name(&obj).unwrap_or_default().to_string();
    validate_or_invalid(info, &name, decoded.errors)?;
    admission::before_create(api, info, &mut obj, opts.dry_run).await?;
    if opts.dry_run {
        admission::undo_create(api, info, &obj);
        let json = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(Created {
            object: obj,
            json,
            warnings,
        });
    }
    // A generated name may collide: retry with new suffixes, as upstream.
    let mut attempts = 0;
    loop {
        let name = meta::name(&obj).unwrap_or_default().to_string();
        let key = meta::key(&api.prefix, info, namespace, &name);
        let stored = stored_bytes(&obj)?;
        match api.store.create(&key, stored.clone()).await {
            Ok(rev) => {
                meta::set_resource_version(&mut obj, rev);
                admission::after_create(api, info, &obj).await;
                let json = match crate::watch_cache::stamp_resource_version(&stored, rev) {
                    Some(j) => j,
                    None => serde_json::to_vec(&obj).unwrap_or_default(),
                };
                return Ok(Created {
                    object: obj,
                    json,
                    warnings,
                });
            }
            Err(StoreError::AlreadyExists(_)) if generated && attempts < 7 => {
                attempts += 1;
                let g = meta::str_field(&obj, "generateName")
                    .unwrap_or_default()
                    .to_string();
                meta::meta_mut(&mut obj).insert(
                    "name".into(),
                    json!(format!("{g}{}", meta::random_suffix())),
                );
            }
            Err(e) => {
                admission::undo_create(api, info, &obj);
                return Err(ApiError::from_store(e, info, &name));
            }
        }
    }
}

/// The metadata a create gets from the server: the request's namespace, a
/// new uid and creation time, generation 1, a generated name; fields only
/// the server sets are cleared. True when the name was generated.
fn server_metadata(
    info: &ResourceInfo,
    namespace: Option<&str>,
    m: &mut ObjectMeta,
) -> ApiResult<bool> {
    if info.namespaced {
        let ns = namespace.ok_or_else(ApiError::method_not_allowed)?;
        match m.namespace.as_deref() {
            Some(o) if !o.is_empty() && o != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => m.namespace = Some(ns.to_string()),
        }
    } else {
        m.namespace = None;
    }
    m.resource_version = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    m.self_link = None;
    m.managed_fields = None;
    m.generation = info.tracks_generation().then_some(1);
    m.uid = Some(uuid::Uuid::new_v4().to_string());
    m.creation_timestamp = Some(Time(jiff::Timestamp::now()));
    if m.name.as_deref().is_some_and(|n| !n.is_empty()) {
        return Ok(false);
    }
    match m.generate_name.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => {
            m.name = Some(format!("{g}{}", meta::random_suffix()));
            Ok(true)
        }
        None => Err(ApiError::invalid(
            info,
            "",
            &[crate::strategy::FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        )),
    }
}

pub(crate) async fn update(
    ctx: &Ctx<'_>,
    name: &str,
    body: &Bytes,
    part: Part,
) -> ApiResult<Response> {
    let obj = codec::decode_body(&ctx.headers, body)?;
    let opts = WriteOptions::from_query(&ctx.query)?;
    let (desired, warnings) = normalize(ctx.info, &obj, opts.field_validation)?;
    if let Some(n) = meta::name(&desired) {
        if n != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    let updated = guaranteed_update(ctx, name, opts, part, |_| Ok(desired.clone())).await?;
    Ok(with_warnings(
        object_response(ctx, StatusCode::OK, &updated),
        &warnings,
    ))
}

pub(crate) async fn patch(
    ctx: &Ctx<'_>,
    name: &str,
    body: &Bytes,
    part: Part,
) -> ApiResult<Response> {
    let opts = WriteOptions::from_query(&ctx.query)?;
    let (doc, pt) = decode_patch(ctx, body)?;
    let explicit_rv = doc
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .is_some_and(|v| !v.is_null());
    let mut warnings = Vec::new();
    let updated = guaranteed_update(ctx, name, opts, part, |cur| {
        let patched = patch::apply_patch(ctx.info.kind, cur, pt, &doc)
            .map_err(|e| ApiError::with_code(e.status_code(), e.to_string()))?;
        let (mut out, w) = normalize(ctx.info, &patched, opts.field_validation)?;
        warnings = w;
        if !explicit_rv {
            meta::meta_mut(&mut out).remove("resourceVersion");
        }
        Ok(out)
    })
    .await?;
    Ok(with_warnings(
        object_response(ctx, StatusCode::OK, &updated),
        &warnings,
    ))
}

/// The patch document and its type, from the Content-Type.
pub(crate) fn decode_patch(ctx: &Ctx<'_>, body: &Bytes) -> ApiResult<(Value, PatchType)> {
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let pt = PatchType::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"),
        )
    })?;
    let doc = match pt {
        PatchType::Apply => codec::decode_yaml(body)?,
        _ => codec::decode_json(body)?,
    };
    Ok((doc, pt))
}

/// Read the current object, compute the desired one with `change`, check
/// preconditions, apply the kind's update rules, and write it with
/// compare-and-swap. A desired object that carries a resourceVersion is a
/// precondition (409 when stale); without one, conflicts are retried.
///
/// As upstream's GuaranteedUpdate, the first attempt starts from the watch
/// cache's copy instead of reading the store: the compare-and-swap catches a
/// stale copy (its failure carries the current object), and any other
/// failure or a no-op that stale data could explain is judged again on the
/// store's state before it is returned.
pub(crate) async fn guaranteed_update<F>(
    ctx: &Ctx<'_>,
    name: &str,
    opts: WriteOptions,
    part: Part,
    mut change: F,
) -> ApiResult<Value>
where
    F: FnMut(&Value) -> ApiResult<Value>,
{
    let info = ctx.info;
    let key = ctx.key(name);
    let mut state = match ctx.api.cache.get(&key) {
        Some(cached) if !opts.dry_run => Some(State {
            obj: cached.value(),
            rv: cached.revision(),
            current: false,
        }),
        _ => None,
    };
    for _ in 0..32 {
        let st = match state.take() {
            Some(st) => st,
            None => {
                let (obj, rv) = current(ctx, name).await?;
                State {
                    obj,
                    rv,
                    current: true,
                }
            }
        };
        let (cur, cur_rv) = (&st.obj, st.rv);
        let step = next_state(ctx, name, opts, part, &mut change, cur, cur_rv);
        if !st.current && !matches!(step, Ok(Step::Write { .. })) {
            // Perhaps only the cached copy was behind: decide on the store's.
            let (obj, rv) = current(ctx, name).await?;
            if rv != cur_rv {
                state = Some(State {
                    obj,
                    rv,
                    current: true,
                });
                continue;
            }
        }
        let (mut new, precondition) = match step? {
            Step::Unchanged => return Ok(st.obj),
            Step::Write { new, precondition } => (new, precondition),
        };
        if opts.dry_run {
            return Ok(new);
        }
        let delete_now = should_delete_now(info, &new);
        let written = if delete_now {
            ctx.api
                .store
                .delete(&key, Some(cur_rv))
                .await
                .map(|(rev, _)| rev)
        } else {
            ctx.api
                .store
                .update(&key, stored_bytes(&new)?, cur_rv)
                .await
        };
        match written {
            Ok(rev) => {
                meta::set_resource_version(&mut new, rev);
                if delete_now {
                    admission::after_delete(ctx.api, info, &new);
                } else {
                    admission::after_update(ctx.api, info, &new, cur);
                }
                return Ok(new);
            }
            Err(StoreError::Conflict { current, .. }) if !precondition => {
                admission::undo_update(ctx.api, info, &new, cur);
                // The failed write read the object: retry from that.
                if let Some(kv) = current {
                    state = Some(State {
                        obj: super::read::decode_kv(&kv)?,
                        rv: kv.mod_revision,
                        current: true,
                    });
                }
            }
            Err(e) => {
                admission::undo_update(ctx.api, info, &new, cur);
                return Err(ApiError::from_store(e, info, name));
            }
        }
    }
    Err(ApiError::stale(info, name))
}

/// The object a read-modify-write starts from.
struct State {
    obj: Value,
    rv: i64,
    /// Read from the store by this request (not the watch cache's copy).
    current: bool,
}

/// What one attempt of [`guaranteed_update`] decided.
enum Step {
    Unchanged,
    /// `precondition`: the client named the resourceVersion it changes.
    Write {
        new: Value,
        precondition: bool,
    },
}

/// The desired object from `cur`, checked and prepared (no store access).
fn next_state<F>(
    ctx: &Ctx<'_>,
    name: &str,
    opts: WriteOptions,
    part: Part,
    change: &mut F,
    cur: &Value,
    cur_rv: i64,
) -> ApiResult<Step>
where
    F: FnMut(&Value) -> ApiResult<Value>,
{
    let info = ctx.info;
    let mut new = change(cur)?;
    let precondition = meta::resource_version(&new).map(String::from);
    if let Some(rv) = &precondition {
        if *rv != cur_rv.to_string() {
            return Err(ApiError::stale(info, name));
        }
    }
    if let Some(uid) = meta::uid(&new) {
        if Some(uid) != meta::uid(cur) {
            return Err(ApiError::uid_mismatch(
                info,
                name,
                uid,
                meta::uid(cur).unwrap_or(""),
            ));
        }
    }
    prepare_update(info, &mut new, cur, part)?;
    if part != Part::Raw {
        validate_or_invalid(info, name, info.strategy.validate_update(&new, cur))?;
    }
    admission::before_update(ctx.api, info, &mut new, cur, opts.dry_run)?;
    escalation_check(ctx, &new)?;
    if meta::same_content(&new, cur) {
        return Ok(Step::Unchanged);
    }
    Ok(Step::Write {
        new,
        precondition: precondition.is_some(),
    })
}

/// The generic update rules: identity and system fields come from the
/// current object; status or spec is protected depending on `part`;
/// defaults apply; generation counts spec changes.
fn prepare_update(info: &ResourceInfo, new: &mut Value, cur: &Value, part: Part) -> ApiResult<()> {
    match part {
        Part::Raw => {}
        Part::Status => {
            let status = new.get("status").cloned();
            *new = cur.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        Part::Main => {
            if let (Some(n), Some(c)) = (meta::namespace(new), meta::namespace(cur)) {
                if n != c {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
            let cur_meta = cur.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let m = meta::meta_mut(new);
            for f in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                match cur_meta.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            if info.has_status {
                match cur.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            info.strategy
                .prepare_update(new, cur)
                .map_err(ApiError::internal)?;
            if info.tracks_generation() && spec_of(new) != spec_of(cur) {
                let g = cur_meta
                    .get("generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta::meta_mut(new).insert("generation".into(), json!(g + 1));
            }
        }
    }
    meta::meta_mut(new).insert(
        "resourceVersion".into(),
        json!(meta::resource_version(cur).unwrap_or("")),
    );
    Ok(())
}

/// Everything but metadata and status.
fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// An object being deleted whose last finalizer is gone (including the
/// kind's own, e.g. a namespace's spec.finalizers) leaves the store.
fn should_delete_now(info: &ResourceInfo, obj: &Value) -> bool {
    if meta::deletion_timestamp(obj).is_none() || !meta::finalizers(obj).is_empty() {
        return false;
    }
    let grace = obj["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(0);
    if grace > 0 {
        return false;
    }
    !info.strategy.has_pending_finalizers(obj)
}
