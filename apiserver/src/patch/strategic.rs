//! Strategic merge patch, applied the way upstream's apiserver applies it
//! (`strategicpatch.StrategicMergeMapPatch` with parallel lists merged and unmatched
//! nulls ignored).
//!
//! Like JSON merge patch, except that lists tagged `patchStrategy:"merge"` merge element
//! by element (by their merge key, or as sets of scalars), and these directives:
//! - `"$patch": "replace"` in an object: the object replaces the original one;
//!   `"$patch": "delete"` in an object: it becomes empty;
//! - a list element `{"<mergeKey>": v, "$patch": "delete"}` deletes the elements with
//!   that key; an element `{"$patch": "replace"}` makes the list replace the original;
//! - `"$deleteFromPrimitiveList/<field>": [...]` removes scalars from a merging list;
//! - `"$setElementOrder/<field>": [...]` orders the merged list;
//! - `"$retainKeys": [...]` drops the original's fields missing from the list.
//!
//! List order follows upstream, down to an effect of Go slice aliasing in the
//! `$setElementOrder` path (see [`OriginalView`]).

use serde_json::{Map, Value};

use super::merge_keys::{PatchMeta, Schema};
use super::PatchError;

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

type Result<T> = std::result::Result<T, PatchError>;

/// Applies `patch` (which must be a JSON object) to `original`, an object of `kind`.
pub(crate) fn apply(kind: &str, original: &Value, patch: &Value) -> Result<Value> {
    let Value::Object(patch) = patch else {
        return Err(bad_request(format!(
            "a strategic merge patch must be a JSON object, not {}",
            type_name(patch)
        )));
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut merged = Value::Object(merge_map(original, patch.clone(), Schema::for_kind(kind))?);
    // Upstream decodes the result into the typed object, which drops these; do the same.
    strip_leftovers(&mut merged);
    Ok(merged)
}

fn bad_request(message: impl Into<String>) -> PatchError {
    PatchError::StrategicMerge(message.into())
}

fn no_merge_key(element: &Value, merge_key: &str) -> PatchError {
    bad_request(format!(
        "map: {element} does not contain declared merge key: {merge_key}"
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    bad_request(format!(
        "expected a {expected}, but received a {}",
        type_name(actual)
    ))
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    let directive = match directive {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    bad_request(format!(
        "unknown patch type: {directive} in map: {}",
        Value::Object(map.clone())
    ))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// The Go type a JSON value decodes to; upstream compares these, so 1 and 1.5 differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoKind {
    Null,
    Bool,
    Int,
    Float,
    String,
    List,
    Map,
}

fn go_kind(value: &Value) -> GoKind {
    match value {
        Value::Null => GoKind::Null,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) if n.is_f64() => GoKind::Float,
        Value::Number(_) => GoKind::Int,
        Value::String(_) => GoKind::String,
        Value::Array(_) => GoKind::List,
        Value::Object(_) => GoKind::Map,
    }
}

/// The common element kind of some lists; lists of lists and mixed lists are refused.
fn element_kind(lists: &[&[Value]]) -> Result<GoKind> {
    let mut kind = None;
    for value in lists.iter().flat_map(|list| list.iter()) {
        let this = go_kind(value);
        match kind {
            None if this == GoKind::List => {
                return Err(PatchError::Unprocessable(
                    "lists of lists are not supported".into(),
                ))
            }
            None => kind = Some(this),
            Some(k) if k != this => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(bad_request(format!(
                    "list element types are not identical: {}",
                    Value::Array(all)
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| bad_request("no elements in any of the given slices"))
}

/// The field a `$deleteFromPrimitiveList/<field>` or `$setElementOrder/<field>` key names.
fn extract_key(key: &str, prefix: &str) -> Result<String> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => {
            Err(bad_request("invalid patch format of primitive list"))
        }
        _ => Err(bad_request("invalid patch format of setElementOrder list")),
    }
}

/// Merges `patch` into `original`, objects of the type `schema` describes.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.shift_remove(DIRECTIVE);
                Ok(patch)
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, schema)?;
    for (key, value) in patch {
        merge_field(&mut original, key, value, schema)?;
    }
    Ok(original)
}

/// `$retainKeys`: every field the patch sets must be listed; unlisted original fields go.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad_request("invalid patch format of retainKeys"));
    };
    let listed = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    let unlisted_in_patch = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !key.starts_with(SET_ELEMENT_ORDER)
            && !listed(key)
    });
    if unlisted_in_patch {
        return Err(bad_request("invalid patch format of retainKeys"));
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// Merges one patch field into `original`.
fn merge_field(
    original: &mut Map<String, Value>,
    key: String,
    value: Value,
    schema: Schema,
) -> Result<()> {
    let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
        (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
    } else {
        (key, false)
    };
    if value.is_null() {
        original.shift_remove(&key);
        return Ok(());
    }
    // Take the current value out (leaving its slot) so the new one keeps the key's place.
    let Some(current) = original.get_mut(&key).map(std::mem::take) else {
        if !delete_list {
            insert_patch_value(original, key, value);
        }
        return Ok(());
    };
    let merged = match (current, value) {
        (Value::Object(current), Value::Object(value)) => {
            let (_, child) = schema.field(&key);
            Some(Value::Object(merge_map(current, value, child)?))
        }
        (Value::Array(current), Value::Array(value)) => {
            let (meta, child) = schema.field(&key);
            if meta.merge || delete_list {
                let list = merge_list(current, value, &key, meta, child, delete_list)?;
                Some(Value::Array(list.items))
            } else {
                Some(Value::Array(value))
            }
        }
        (current, mut value) => {
            let same_kind = go_kind(&current) == go_kind(&value);
            if delete_list && !same_kind {
                Some(current)
            } else {
                if !same_kind {
                    discard_nulls(&mut value);
                }
                remove_directives(value)
            }
        }
    };
    match merged {
        Some(merged) => {
            original.insert(key, merged);
        }
        None => {
            original.shift_remove(&key);
        }
    }
    Ok(())
}

/// A patch value for a field the original lacks: taken as is, less nulls and directives.
fn insert_patch_value(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    if let Some(value) = remove_directives(value) {
        original.insert(key, value);
    }
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(list) => list.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops objects carrying `$patch` (returns `None` when `value` itself is one).
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            let kept = map
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(kept))
        }
        Value::Array(list) => Some(Value::Array(
            list.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with("$setElementOrder/")
        || key.starts_with("$deleteFromPrimitiveList/")
}

/// Removes what a typed decode would drop: directive keys and null fields left over
/// inside values that upstream copies from the patch verbatim (replaced lists, new
/// list elements).
fn strip_leftovers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, v| !v.is_null() && !is_directive_key(k));
            map.values_mut().for_each(strip_leftovers);
        }
        Value::Array(list) => list.iter_mut().for_each(strip_leftovers),
        _ => {}
    }
}

/// How list elements are compared when ordering: whole values, or one key of objects.
#[derive(Clone, Copy)]
enum OrderBy<'a> {
    Value,
    Key(&'a str),
}

impl<'a> OrderBy<'a> {
    fn new(kind: GoKind, merge_key: Option<&'a str>) -> Self {
        match kind {
            GoKind::Map => OrderBy::Key(merge_key.unwrap_or("")),
            _ => OrderBy::Value,
        }
    }

    fn identity<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        match self {
            OrderBy::Value => Some(value),
            OrderBy::Key(key) => value.as_object().and_then(|m| m.get(*key)),
        }
    }

    fn index(&self, list: &[Value], value: &Value) -> Option<usize> {
        let wanted = self.identity(value);
        list.iter().position(|v| self.identity(v) == wanted)
    }
}

/// What the caller's Go slice of the original list holds after a merge. Upstream merges
/// in place: deletions shift elements left inside the same array and appends reuse the
/// freed capacity (its original lists are built with capacity == length). The
/// `$setElementOrder` path later orders server-only elements by that slice, so the
/// effect is visible (e.g. a new element lands after a server-only one when another
/// element was deleted). This replays it.
struct OriginalView {
    slots: Vec<Value>,
    len: usize,
    detached: bool,
}

impl OriginalView {
    fn new(original: &[Value]) -> Self {
        OriginalView {
            slots: original.to_vec(),
            len: original.len(),
            detached: false,
        }
    }

    fn delete_at(&mut self, index: usize) {
        if self.detached || index >= self.len {
            return;
        }
        // Go's `append(s[:i], s[i+1:]...)` shifts the tail left and leaves the old last
        // element in the freed slot.
        let last = self.slots[self.len - 1].clone();
        self.slots[index..self.len].rotate_left(1);
        self.slots[self.len - 1] = last;
        self.len -= 1;
    }

    fn append(&mut self, value: &Value) {
        if !self.detached && self.len < self.slots.len() {
            self.slots[self.len] = value.clone();
            self.len += 1;
        } else {
            self.detached = true;
        }
    }
}

struct MergedList {
    items: Vec<Value>,
    /// The original list as upstream's caller sees it afterwards.
    original_view: Vec<Value>,
}

/// Merges a patch list into an original list of a field tagged `merge` (or a
/// `$deleteFromPrimitiveList`).
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: &str,
    meta: PatchMeta,
    element: Schema,
    delete_list: bool,
) -> Result<MergedList> {
    if original.is_empty() && patch.is_empty() {
        return Ok(MergedList {
            items: original,
            original_view: Vec::new(),
        });
    }
    let kind = element_kind(&[&original, &patch])?;
    if kind != GoKind::Map {
        return Ok(merge_scalar_list(original, patch, delete_list));
    }
    let Some(merge_key) = meta.merge_key else {
        return Err(bad_request(format!(
            "cannot merge lists without merge key for {field}"
        )));
    };
    let mut view = OriginalView::new(&original);
    let (original, patch) = apply_list_directives(original, patch, merge_key, &mut view)?;
    let merged = merge_by_key(original.clone(), &patch, merge_key, element, &mut view)?;
    let (patch_items, server_only) = partition_by_key(merged, &patch, merge_key)?;
    let order = OrderBy::Key(merge_key);
    let items = normalize_order(patch_items, server_only, &patch, &original, order, kind)?;
    Ok(MergedList {
        items,
        original_view: view.slots,
    })
}

fn merge_scalar_list(original: Vec<Value>, patch: Vec<Value>, delete_list: bool) -> MergedList {
    if delete_list {
        let items = original
            .iter()
            .filter(|v| !patch.contains(v))
            .cloned()
            .collect();
        return MergedList {
            items,
            original_view: original,
        };
    }
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.iter().chain(patch.iter()) {
        if !merged.contains(value) {
            merged.push(value.clone());
        }
    }
    let (patch_items, server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|v| patch.contains(v));
    let sorted_patch = sort_by_order(patch_items, &patch, OrderBy::Value);
    let sorted_server = sort_by_order(server_only, &original, OrderBy::Value);
    MergedList {
        items: merge_sorted(sorted_server, sorted_patch, &original, OrderBy::Value),
        original_view: original,
    }
}

/// Handles list elements carrying `$patch`: deletions by merge key, and `replace`.
/// Returns the original without deleted elements and the patch without special elements.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
    view: &mut OriginalView,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for element in patch {
        let Some(directive) = element.get(DIRECTIVE) else {
            plain.push(element);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let key = element
                    .get(merge_key)
                    .ok_or_else(|| no_merge_key(&element, merge_key))?;
                while let Some(i) = find_by_key(&original, merge_key, key)? {
                    original.remove(i);
                    view.delete_at(i);
                }
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => {
                return Err(bad_request(
                    "merging lists cannot yet be specified in the patch",
                ))
            }
            _ => {
                let map = element.as_object().cloned().unwrap_or_default();
                return Err(bad_patch_type(directive, &map));
            }
        }
    }
    if replace {
        view.detached = true;
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

/// The first element of `list` whose `merge_key` equals `key`.
fn find_by_key(list: &[Value], merge_key: &str, key: &Value) -> Result<Option<usize>> {
    for (i, element) in list.iter().enumerate() {
        let Value::Object(map) = element else {
            return Err(bad_request(format!("value for key {i} is not a map")));
        };
        if map.get(merge_key) == Some(key) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Merges each patch element into the original element with the same key, or appends it.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    element: Schema,
    view: &mut OriginalView,
) -> Result<Vec<Value>> {
    for patch_element in patch {
        let key = patch_element
            .get(merge_key)
            .ok_or_else(|| no_merge_key(patch_element, merge_key))?;
        match find_by_key(&original, merge_key, key)? {
            Some(i) => {
                let current = std::mem::take(&mut original[i]);
                let (Value::Object(current), Value::Object(patch_map)) =
                    (current, patch_element.clone())
                else {
                    return Err(bad_arg_type("map", patch_element));
                };
                original[i] = Value::Object(merge_map(current, patch_map, element)?);
            }
            None => {
                original.push(patch_element.clone());
                view.append(patch_element);
            }
        }
    }
    Ok(original)
}

/// Splits objects into those whose merge key appears in `by` and the rest.
fn partition_by_key(
    items: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for item in items {
        let Value::Object(map) = &item else {
            return Err(bad_arg_type("map", &item));
        };
        let key = map
            .get(merge_key)
            .ok_or_else(|| no_merge_key(&item, merge_key))?;
        if find_by_key(by, merge_key, key)?.is_some() {
            inside.push(item);
        } else {
            outside.push(item);
        }
    }
    Ok((inside, outside))
}

/// Orders patch items by the patch order and server-only items by the server order, then
/// interleaves them, keeping both relative orders.
fn normalize_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    order: OrderBy<'_>,
    kind: GoKind,
) -> Result<Vec<Value>> {
    let patch_items = sort_checked(patch_items, patch_order, order, kind)?;
    let server_only = sort_checked(server_only, server_order, order, kind)?;
    Ok(merge_sorted(server_only, patch_items, server_order, order))
}

/// `sort_by_order` for lists of objects also checks merge keys and moves elements marked
/// `$patch: delete` to the end, as upstream does.
fn sort_checked(
    items: Vec<Value>,
    order: &[Value],
    by: OrderBy<'_>,
    kind: GoKind,
) -> Result<Vec<Value>> {
    if kind != GoKind::Map {
        return Ok(sort_by_order(items, order, by));
    }
    let OrderBy::Key(merge_key) = by else {
        return Ok(sort_by_order(items, order, by));
    };
    for element in items.iter().chain(order.iter()) {
        let Value::Object(map) = element else {
            return Err(bad_arg_type("map", element));
        };
        if !map.contains_key(merge_key) {
            return Err(no_merge_key(element, merge_key));
        }
    }
    let (deletions, kept): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|v| v.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE));
    let mut sorted = sort_by_order(kept, order, by);
    sorted.extend(deletions);
    Ok(sorted)
}

/// Stable sort by position in `order`; elements not found keep their order at the end.
fn sort_by_order(mut items: Vec<Value>, order: &[Value], by: OrderBy<'_>) -> Vec<Value> {
    items.sort_by_key(|item| by.index(order, item).unwrap_or(usize::MAX));
    items
}

/// Inserts each of `left` (server-only) into `right` (patch items) before the first patch
/// item that comes later in `server_order`; a patch item unknown to the server wins.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    by: OrderBy<'_>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let left_first = match (by.index(server_order, l), by.index(server_order, r)) {
            (Some(li), Some(ri)) => li < ri,
            _ => false,
        };
        let next = if left_first {
            left.next()
        } else {
            right.next()
        };
        out.extend(next);
    }
    out.extend(left);
    out.extend(right);
    out
}

/// `$setElementOrder/<field>`: merges that field's list now and orders it by the directive
/// (directive order, then patch order, then the live order).
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type("list", &order));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = list_field(original, &field)?;
        let patch_list = list_field(patch, &field)?;
        let (meta, element) = schema.field(&field);
        if let Some(patch_list) = &patch_list {
            validate_order(patch_list, &order, meta.merge_key)?;
        }
        let kind_lists = [
            original_list.as_deref().unwrap_or_default(),
            patch_list.as_deref().unwrap_or_default(),
        ];
        let (merged, server_order) = match (&original_list, &patch_list) {
            (Some(o), None) => (o.clone(), o.clone()),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                Some(Value::Array(list)) => (list, Vec::new()),
                _ => continue,
            },
            (Some(o), Some(p)) if meta.merge => {
                let list = merge_list(o.clone(), p.clone(), &field, meta, element, false)?;
                (list.items, list.original_view)
            }
            (Some(o), Some(p)) => (p.clone(), o.clone()),
            (None, None) => continue,
        };
        let (patch_items, server_only) = match meta.merge_key {
            None => merged.into_iter().partition(|v| order.contains(v)),
            Some(merge_key) => partition_by_key(merged, &order, merge_key)?,
        };
        let kind = element_kind(&kind_lists)?;
        let by = OrderBy::new(kind, meta.merge_key);
        let ordered = normalize_order(patch_items, server_only, &order, &server_order, by, kind)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

fn list_field(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list.clone())),
        Some(other) => Err(bad_arg_type("list", other)),
    }
}

/// The patch list's elements (deletions aside) must appear in the `$setElementOrder` list,
/// in the same relative order.
fn validate_order(patch_list: &[Value], order: &[Value], merge_key: Option<&str>) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let kept: Vec<&Value> = match merge_key {
        Some(_) => {
            let mut kept = Vec::new();
            for element in patch_list {
                let Value::Object(map) = element else {
                    return Err(bad_arg_type("map", element));
                };
                if map.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE) {
                    kept.push(element);
                }
            }
            kept
        }
        None => patch_list.iter().collect(),
    };
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if same_element(kept[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() {
        return Err(bad_request(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn same_element(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool> {
    let Some(merge_key) = merge_key else {
        return Ok(left == right);
    };
    let key_of = |v: &Value| -> Result<Value> {
        let Value::Object(map) = v else {
            return Err(bad_arg_type("map", v));
        };
        map.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(v, merge_key))
    };
    Ok(key_of(left)? == key_of(right)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(original: Value, patch: Value) -> Value {
        apply("Pod", &original, &patch).unwrap()
    }

    #[test]
    fn merges_containers_by_name() {
        let original = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:1"},
                {"name": "b", "image": "b:2"}
            ]}})
        );
    }

    #[test]
    fn new_element_without_order_directive_goes_first() {
        let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}})
        );
    }

    #[test]
    fn set_element_order_orders_the_merged_list() {
        let original = json!({"spec": {"containers": [{"name": "1"}, {"name": "2", "v": 2}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "4", "v": 4}, {"name": "3", "v": 3}]
        }});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"containers": [
                {"name": "4", "v": 4}, {"name": "1"}, {"name": "2", "v": 2}, {"name": "3", "v": 3}
            ]}})
        );
    }

    #[test]
    fn set_element_order_with_deletion_replays_in_place_merge() {
        // Upstream's fixture "add map and delete map from merging list".
        let original = json!({"spec": {"containers": [
            {"name": "1"}, {"name": "2", "other": "b"}, {"name": "4", "other": "c"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}]
        }});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"containers": [
                {"name": "2", "other": "b"}, {"name": "4", "other": "c"}, {"name": "3"}
            ]}})
        );
        // Upstream's fixture "delete missing map from merging list with conflict".
        let original = json!({"spec": {"containers": [{"name": "3", "other": "a"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "2"}],
            "containers": [{"name": "2"}, {"name": "1", "$patch": "delete"}]
        }});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"containers": [{"name": "2"}, {"name": "3", "other": "a"}]}})
        );
    }

    #[test]
    fn scalar_merge_lists_are_sets() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patch = json!({"metadata": {"finalizers": ["b", "c"]}});
        assert_eq!(
            pod(original, patch),
            json!({"metadata": {"finalizers": ["a", "b", "c"]}})
        );
    }

    #[test]
    fn delete_from_primitive_list_with_order() {
        let original = json!({"spec": {"podCIDRs": [1, 2, 3]}});
        let patch = json!({"spec": {
            "$setElementOrder/podCIDRs": [1, 2, 4],
            "$deleteFromPrimitiveList/podCIDRs": [3],
            "podCIDRs": [4]
        }});
        assert_eq!(
            apply("Node", &original, &patch).unwrap(),
            json!({"spec": {"podCIDRs": [1, 2, 4]}})
        );
    }

    #[test]
    fn delete_from_primitive_list_for_missing_field_is_ignored() {
        let original = json!({"metadata": {"name": "x"}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        assert_eq!(pod(original.clone(), patch), original);
    }

    #[test]
    fn retain_keys_clears_unlisted_fields() {
        let original = json!({"spec": {"volumes": [
            {"name": "v", "emptyDir": {}},
            {"name": "w", "emptyDir": {}}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
            "volumes": [{"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]
        }});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"volumes": [
                {"name": "v", "configMap": {"name": "cm"}},
                {"name": "w", "emptyDir": {}}
            ]}})
        );
    }

    #[test]
    fn retain_keys_must_list_patched_fields() {
        let original = json!({"spec": {"a": 1}});
        let patch = json!({"spec": {"$retainKeys": ["a"], "b": 2}});
        let err = apply("Pod", &original, &patch).unwrap_err();
        assert_eq!(err.to_string(), "invalid patch format of retainKeys");
    }

    #[test]
    fn map_directives() {
        let original = json!({"spec": {"nodeSelector": {"a": "1", "b": "2"}}});
        let replace = json!({"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}});
        assert_eq!(
            pod(original.clone(), replace),
            json!({"spec": {"nodeSelector": {"c": "3"}}})
        );
        let delete = json!({"spec": {"nodeSelector": {"$patch": "delete"}}});
        assert_eq!(
            pod(original.clone(), delete),
            json!({"spec": {"nodeSelector": {}}})
        );
        let bad = json!({"spec": {"nodeSelector": {"$patch": "merge"}}});
        assert!(apply("Pod", &original, &bad).is_err());
    }

    #[test]
    fn list_replace_directive() {
        let original =
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"containers": [{"name": "c"}]}})
        );
    }

    #[test]
    fn new_fields_lose_nulls_and_directive_objects() {
        let original = json!({"metadata": {"name": "p"}});
        let patch = json!({"spec": {"a": null, "b": {"$patch": "delete"}, "c": 1}});
        assert_eq!(
            pod(original, patch),
            json!({"metadata": {"name": "p"}, "spec": {"c": 1}})
        );
    }

    #[test]
    fn errors_instead_of_panics() {
        let original = json!({"spec": {"containers": [{"name": "a"}]}});
        for patch in [
            json!({"spec": {"containers": [{"image": "no-name"}]}}),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
            json!({"spec": {"containers": ["scalar"]}}),
            json!({"spec": {"containers": [[1]]}}),
            json!({"spec": {"$setElementOrder/containers": "x"}}),
            json!({"spec": {"$setElementOrder": []}}),
            json!({"spec": {"$deleteFromPrimitiveList": []}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}], "containers": [{"name": "a"}]}}),
            json!({"$patch": 7}),
            json!([1, 2]),
        ] {
            assert!(apply("Pod", &original, &patch).is_err(), "{patch}");
        }
        let lists = apply(
            "Pod",
            &json!({"spec": {"containers": [[1]]}}),
            &json!({"spec": {"containers": [[2]]}}),
        );
        assert!(matches!(lists, Err(PatchError::Unprocessable(_))));
    }

    #[test]
    fn unknown_lists_are_replaced() {
        let original = json!({"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "c", "args": ["1", "2"]}]}});
        let patch = json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["3"]}]}});
        assert_eq!(
            pod(original, patch),
            json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["3"]}]}})
        );
    }
}
