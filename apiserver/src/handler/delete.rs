//! DELETE and DELETECOLLECTION, with preconditions, graceful deletion of
//! bound pods (deletionTimestamp + grace period; the kubelet finishes), and
//! finalizers (the object stays, marked, until its finalizers are removed).
//! A propagation policy of Orphan or Foreground becomes the finalizer
//! `orphan` or `foregroundDeletion`, which the garbage collector honours and
//! removes, as upstream does.

use axum::body::Bytes;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use crate::codec;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::storage::StoreError;

use super::filter::Filter;
use super::read::{cached_kv, current};
use super::write::{guaranteed_update, Part, WriteOptions};
use super::{object_response, Ctx};

/// The parts of metav1.DeleteOptions this server honours.
#[derive(Debug, Default, Clone)]
struct DeleteOptions {
    grace_period: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
    propagation: Option<Propagation>,
}

/// metav1.DeletionPropagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    Orphan,
    Background,
    Foreground,
}

const ORPHAN_FINALIZER: &str = "orphan";
const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

impl Propagation {
    fn parse(v: &str) -> ApiResult<Self> {
        match v {
            "Orphan" => Ok(Self::Orphan),
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            other => Err(ApiError::invalid_options(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }

    /// The garbage-collection finalizer this policy asks for.
    fn finalizer(self) -> Option<&'static str> {
        match self {
            Self::Orphan => Some(ORPHAN_FINALIZER),
            Self::Foreground => Some(FOREGROUND_FINALIZER),
            Self::Background => None,
        }
    }
}

/// The object's finalizers once the delete's propagation policy applies:
/// the policy's GC finalizer added and the other one removed; unchanged
/// when no policy was given (the kinds served default to Background, which
/// keeps a policy chosen by an earlier delete).
fn finalizers_after(obj: &Value, propagation: Option<Propagation>) -> Vec<String> {
    let mut finalizers = meta::finalizers(obj);
    let Some(p) = propagation else {
        return finalizers;
    };
    let wanted = p.finalizer();
    finalizers.retain(|f| {
        !((f == ORPHAN_FINALIZER || f == FOREGROUND_FINALIZER) && Some(f.as_str()) != wanted)
    });
    if let Some(w) = wanted {
        if !finalizers.iter().any(|f| f == w) {
            finalizers.push(w.to_string());
        }
    }
    finalizers
}

fn options(ctx: &Ctx<'_>, body: &Bytes) -> ApiResult<DeleteOptions> {
    let mut o = DeleteOptions {
        grace_period: ctx.query.int("gracePeriodSeconds")?,
        dry_run: ctx.query.dry_run()?,
        ..Default::default()
    };
    let mut orphan_dependents = ctx.query.get("orphanDependents").map(|v| v == "true");
    if let Some(p) = ctx.query.get("propagationPolicy") {
        o.propagation = Some(Propagation::parse(p)?);
    }
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let doc = codec::decode_body(&ctx.headers, body)?;
        if let Some(kind) = doc.get("kind").and_then(Value::as_str) {
            if kind != "DeleteOptions" {
                return Err(ApiError::bad_request(format!(
                    "expected DeleteOptions in the body, got {kind}"
                )));
            }
        }
        if let Some(g) = doc.get("gracePeriodSeconds").and_then(Value::as_i64) {
            o.grace_period = Some(g);
        }
        let pre = &doc["preconditions"];
        o.uid = pre["uid"].as_str().map(String::from);
        o.resource_version = pre["resourceVersion"].as_str().map(String::from);
        if let Some(p) = doc.get("propagationPolicy").and_then(Value::as_str) {
            o.propagation = Some(Propagation::parse(p)?);
        }
        if let Some(b) = doc.get("orphanDependents").and_then(Value::as_bool) {
            orphan_dependents = Some(b);
        }
        if let Some(d) = doc.get("dryRun").and_then(Value::as_array) {
            for v in d {
                match v.as_str() {
                    Some("All") => o.dry_run = true,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid dry run value: {other:?}: supported values: \"All\""
                        )))
                    }
                }
            }
        }
    }
    if let Some(orphan) = orphan_dependents {
        if o.propagation.is_some() {
            return Err(ApiError::invalid_options(
                "orphanDependents: Invalid value: false: orphanDependents and deletionPropagation cannot be both set".to_string(),
            ));
        }
        // The deprecated boolean: true is Orphan, false is Background.
        o.propagation = Some(if orphan {
            Propagation::Orphan
        } else {
            Propagation::Background
        });
    }
    if o.grace_period.is_some_and(|g| g < 0) {
        o.grace_period = Some(0);
    }
    Ok(o)
}

pub(crate) async fn delete(ctx: &Ctx<'_>, name: &str, body: &Bytes) -> ApiResult<Response> {
    let opts = options(ctx, body)?;
    let (obj, gone) = delete_one(ctx, name, &opts).await?;
    if gone && !ctx.info.strategy.returns_deleted_object() {
        let mut details =
            json!({"name": name, "kind": ctx.info.plural, "uid": meta::uid(&obj).unwrap_or("")});
        if !ctx.info.group.is_empty() {
            details["group"] = json!(ctx.info.group);
        }
        return Ok(codec::json(
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        ));
    }
    Ok(object_response(ctx, StatusCode::OK, &obj))
}

/// How a delete proceeds for this object.
enum Plan {
    /// Remove it from the store now.
    Now,
    /// Mark it (deletionTimestamp, grace) and leave it for its finalizers or kubelet.
    Mark { grace: i64 },
    /// Already marked with an equal or shorter grace period.
    Nothing,
}

fn plan(ctx: &Ctx<'_>, obj: &Value, opts: &DeleteOptions) -> Plan {
    let marked = meta::deletion_timestamp(obj).is_some();
    let cur_grace = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
    let finalizers = finalizers_after(obj, opts.propagation);
    let finalizers_change = finalizers != meta::finalizers(obj);
    let has_finalizers = !finalizers.is_empty() || ctx.info.strategy.has_pending_finalizers(obj);
    let grace = ctx.info.strategy.deletion_grace(obj, opts.grace_period);
    match (grace, has_finalizers, marked) {
        (0, false, _) => Plan::Now,
        (g, _, true) if cur_grace.is_some_and(|c| c <= g) && !finalizers_change => Plan::Nothing,
        (g, _, _) => Plan::Mark { grace: g },
    }
}

/// Delete (or mark) one object. Returns the object's last state and whether
/// it left the store.
async fn delete_one(ctx: &Ctx<'_>, name: &str, opts: &DeleteOptions) -> ApiResult<(Value, bool)> {
    let info = ctx.info;
    loop {
        let (cur, cur_rv) = current(ctx, name).await?;
        if let Some(uid) = &opts.uid {
            if Some(uid.as_str()) != meta::uid(&cur) {
                return Err(ApiError::uid_mismatch(
                    info,
                    name,
                    uid,
                    meta::uid(&cur).unwrap_or(""),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if *rv != cur_rv.to_string() {
                return Err(ApiError::conflict(info, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {cur_rv}"
                )));
            }
        }
        match plan(ctx, &cur, opts) {
            Plan::Nothing => return Ok((cur, false)),
            Plan::Mark { grace } => {
                let wopts = WriteOptions {
                    dry_run: opts.dry_run,
                    ..WriteOptions::internal()
                };
                let marked = guaranteed_update(ctx, name, wopts, Part::Raw, |c| {
                    let mut o = c.clone();
                    let m = meta::meta_mut(&mut o);
                    let ts = meta::now_plus(grace);
                    let keep_ts = m.contains_key("deletionTimestamp")
                        && grace
                            >= m.get("deletionGracePeriodSeconds")
                                .and_then(Value::as_i64)
                                .unwrap_or(i64::MAX);
                    if !keep_ts {
                        m.insert("deletionTimestamp".into(), json!(ts));
                    }
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                    let finalizers = finalizers_after(c, opts.propagation);
                    if finalizers.is_empty() {
                        m.remove("finalizers");
                    } else {
                        m.insert("finalizers".into(), json!(finalizers));
                    }
                    info.strategy
                        .prepare_for_delete(&mut o)
                        .map_err(ApiError::internal)?;
                    Ok(o)
                })
                .await?;
                // A marked object stays: its grace period or finalizers hold it.
                return Ok((marked, false));
            }
            Plan::Now => {
                if opts.dry_run {
                    return Ok((cur, true));
                }
                match ctx.api.store.delete(&ctx.key(name), Some(cur_rv)).await {
                    Ok((rev, _)) => {
                        let mut last = cur;
                        meta::set_resource_version(&mut last, rev);
                        crate::admission::after_delete(ctx.api, info, &last);
                        return Ok((last, true));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(ApiError::from_store(e, info, name)),
                }
            }
        }
    }
}

pub(crate) async fn delete_collection(ctx: &Ctx<'_>, body: &Bytes) -> ApiResult<Response> {
    let opts = options(ctx, body)?;
    let filter = Filter::from_ctx(ctx, None)?;
    let page = ctx
        .api
        .store
        .list(&ctx.key_prefix(), None, None, None)
        .await?;
    let mut deleted = Vec::new();
    for kv in &page.items {
        let obj = cached_kv(kv)?;
        if !filter.matches(&obj) {
            continue;
        }
        let obj = obj.value();
        let Some(name) = meta::name(&obj) else {
            continue;
        };
        match delete_one(ctx, name, &opts).await {
            Ok((last, _)) => deleted.push(last),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = json!({
        "kind": format!("{}List", ctx.info.kind),
        "apiVersion": ctx.info.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
        "items": deleted,
    });
    Ok(codec::respond(StatusCode::OK, ctx.output, &body))
}
