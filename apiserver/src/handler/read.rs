//! GET of one object and LIST (with limit/continue).
//!
//! Where reads come from, as upstream: a GET or a paginated LIST without a
//! resourceVersion reads the store (consistent); resourceVersion="0" or a
//! "not older than" revision reads the watch cache; an unpaginated LIST
//! without resourceVersion reads the cache once it has caught up with the
//! store's current revision (a consistent read from cache).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use crate::codec::{self, Output};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::storage::{KeyValue, StoreError};
use crate::table;
use crate::watch_cache::CachedObject;

use super::filter::Filter;
use super::{object_response, Ctx};

/// Decode a stored object and stamp its resourceVersion.
pub(crate) fn decode_kv(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("undecodable object at {}: {e}", kv.key)))?;
    meta::set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// A stored object in the watch cache's form (for filters and raw lists).
pub(crate) fn cached_kv(kv: &KeyValue) -> ApiResult<CachedObject> {
    CachedObject::from_stored(&kv.value, kv.mod_revision)
        .map_err(|e| ApiError::internal(format!("undecodable object at {}: {e}", kv.key)))
}

/// The current object from the store, or 404.
pub(crate) async fn current(ctx: &Ctx<'_>, name: &str) -> ApiResult<(Value, i64)> {
    match ctx.api.store.get(&ctx.key(name)).await? {
        Some(kv) => Ok((decode_kv(&kv)?, kv.mod_revision)),
        None => Err(ApiError::not_found(ctx.info, name)),
    }
}

pub(crate) async fn get(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let obj = match ctx.query.resource_version()? {
        None => current(ctx, name).await?.0,
        Some(rv) => {
            ctx.api.cache.wait_for(rv).await?;
            ctx.api
                .cache
                .get(&ctx.key(name))
                .map(|o| o.value())
                .ok_or_else(|| ApiError::not_found(ctx.info, name))?
        }
    };
    Ok(object_response(ctx, StatusCode::OK, &obj))
}

/// The decoded continue token: the revision of the first page and the key
/// (relative to the list's prefix) to resume at.
struct Continue {
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, start: &str) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

fn decode_continue(token: &str) -> ApiResult<Continue> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine
        .decode(token.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = doc["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = doc["start"].as_str().ok_or_else(bad)?.to_string();
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok(Continue { rv, start })
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

pub(crate) async fn list(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let filter = Filter::from_ctx(ctx, None)?;
    let limit = ctx.query.int("limit")?.filter(|l| *l > 0);
    let rv = ctx.query.resource_version()?;
    let exact = ctx.query.get("resourceVersionMatch") == Some("Exact");
    let prefix = ctx.key_prefix();

    let (items, rv, cont, remaining) = if let Some(token) = ctx.query.get("continue") {
        let c = decode_continue(token)?;
        let start = format!("{prefix}{}", c.start);
        store_page(ctx, &filter, &prefix, Some(start), Some(c.rv), limit).await?
    } else if (rv.is_none() && limit.is_some()) || (exact && rv.is_some_and(|r| r > 0)) {
        store_page(ctx, &filter, &prefix, None, rv, limit).await?
    } else {
        match cache_list(ctx, &filter, &prefix, rv).await {
            Ok((items, rv)) => (items, rv, None, None),
            Err(e) if e.code == 504 && rv.is_none() => {
                store_page(ctx, &filter, &prefix, None, None, None).await?
            }
            Err(e) => return Err(e),
        }
    };

    let mut list_meta = json!({ "resourceVersion": rv.to_string() });
    if let Some(c) = cont {
        list_meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        list_meta["remainingItemCount"] = json!(r);
    }
    if ctx.output == Output::Json {
        let bytes = list_json(ctx, &list_meta, &items)?;
        return Ok(([(http::header::CONTENT_TYPE, codec::JSON)], bytes).into_response());
    }
    let sources = items.iter().map(|o| table::Source::Json(o.json()));
    let body = match ctx.output {
        Output::Table { v1beta1 } => table::table(
            ctx.info,
            sources,
            list_meta,
            table::IncludeObject::parse(ctx.query.get("includeObject")),
            v1beta1,
            true,
        ),
        Output::Metadata { v1beta1 } => table::partial_metadata_list(sources, list_meta, v1beta1),
        _ => json!({
            "kind": format!("{}List", ctx.info.kind),
            "apiVersion": ctx.info.api_version(),
            "metadata": list_meta,
            "items": items.iter().map(|o| o.value()).collect::<Vec<_>>(),
        }),
    };
    Ok(codec::respond(StatusCode::OK, ctx.output, &body))
}

/// A JSON list: the objects' own bytes between a serialised head and tail,
/// with no tree built.
fn list_json(ctx: &Ctx<'_>, list_meta: &Value, items: &[Arc<CachedObject>]) -> ApiResult<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Head<'a> {
        kind: String,
        #[serde(rename = "apiVersion")]
        api_version: String,
        metadata: &'a Value,
    }
    let head = Head {
        kind: format!("{}List", ctx.info.kind),
        api_version: ctx.info.api_version(),
        metadata: list_meta,
    };
    let size: usize = items.iter().map(|o| o.json().len() + 1).sum();
    let mut out = Vec::with_capacity(size + 256);
    serde_json::to_writer(&mut out, &head).map_err(|e| ApiError::internal(e.to_string()))?;
    out.pop(); // the head's closing brace
    out.extend_from_slice(b",\"items\":[");
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(o.json());
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

type Page = (Vec<Arc<CachedObject>>, i64, Option<String>, Option<i64>);

async fn cache_list(
    ctx: &Ctx<'_>,
    filter: &Filter,
    prefix: &str,
    rv: Option<i64>,
) -> ApiResult<(Vec<Arc<CachedObject>>, i64)> {
    let wait_rv = match rv {
        Some(r) => r,
        None => ctx.api.store.current_revision().await?,
    };
    ctx.api.cache.wait_for(wait_rv).await?;
    let (items, rev) = ctx.api.cache.list(prefix);
    Ok((
        items.into_iter().filter(|o| filter.matches(o)).collect(),
        rev,
    ))
}

/// Read from the store page by page until `limit` objects pass the filter.
async fn store_page(
    ctx: &Ctx<'_>,
    filter: &Filter,
    prefix: &str,
    mut start: Option<String>,
    mut rv: Option<i64>,
    limit: Option<i64>,
) -> ApiResult<Page> {
    let mut out = Vec::new();
    loop {
        let page = ctx
            .api
            .store
            .list(prefix, start.as_deref(), rv.filter(|r| *r > 0), limit)
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if start.is_some() => ApiError::gone(EXPIRED_CONTINUE),
                other => ApiError::from(other),
            })?;
        rv = Some(page.revision);
        let n = page.items.len();
        for (i, kv) in page.items.iter().enumerate() {
            let obj = cached_kv(kv)?;
            if filter.matches(&obj) {
                out.push(Arc::new(obj));
            }
            let full = limit.is_some_and(|l| out.len() as i64 >= l);
            let more_after = i + 1 < n || page.more;
            if full && more_after {
                let next = format!("{}\u{0}", &kv.key[prefix.len()..]);
                let remaining = if filter.is_everything() {
                    page.remaining.map(|r| r + (n - i - 1) as i64)
                } else {
                    None
                };
                let rev = page.revision;
                return Ok((out, rev, Some(encode_continue(rev, &next)), remaining));
            }
        }
        match page.items.last() {
            Some(last) if page.more => start = Some(format!("{}\u{0}", last.key)),
            _ => return Ok((out, page.revision, None, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "nginx-1\u{0}");
        let c = decode_continue(&t).unwrap();
        assert_eq!((c.rv, c.start.as_str()), (42, "nginx-1\u{0}"));
        assert_eq!(decode_continue("%%%").err().unwrap().code, 400);
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"rv":3,"start":"../secrets/x"}"#);
        assert_eq!(decode_continue(&evil).err().unwrap().code, 400);
    }
}
