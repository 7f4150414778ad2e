//! What a kind may customise (upstream's "strategy" vocabulary): defaults,
//! validation, creation/update preparation, the fields a fieldSelector can use
//! and the table columns. Everything else (CAS, resourceVersion, uid,
//! timestamps, generateName, dryRun, finalizers, graceful deletion, watch) is
//! written once in the generic handler.
//!
//! Kinds implement the typed [`KindStrategy`]; the handler sees them through the
//! object-safe [`Strategy`], which works on JSON values and is implemented for
//! every `KindStrategy` by [`Typed`].

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Upstream's field.ErrorType, with the `reason` it has in a Status cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    Duplicate,
    NotFound,
    NotSupported,
    Forbidden,
    TooLong,
}

impl FieldErrorType {
    /// The `reason` of a `metav1.StatusCause`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::Duplicate => "FieldValueDuplicate",
            Self::NotFound => "FieldValueNotFound",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::Duplicate => "Duplicate value",
            Self::NotFound => "Not found",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
        }
    }
}

/// One validation failure, as upstream's field.Error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    /// JSON path in upstream's spelling, e.g. `spec.containers[0].name`.
    pub field: String,
    /// The offending value, rendered as upstream does (`"abc"`, `-1`), if any.
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn invalid(
        field: impl Into<String>,
        value: impl Serialize,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: FieldErrorType::Invalid,
            field: field.into(),
            value: Some(serde_json::to_string(&value).unwrap_or_default()),
            detail: detail.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl Serialize) -> Self {
        Self {
            kind: FieldErrorType::Duplicate,
            field: field.into(),
            value: Some(serde_json::to_string(&value).unwrap_or_default()),
            detail: String::new(),
        }
    }

    pub fn not_supported(
        field: impl Into<String>,
        value: impl Serialize,
        supported: &[&str],
    ) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Self {
            kind: FieldErrorType::NotSupported,
            field: field.into(),
            value: Some(serde_json::to_string(&value).unwrap_or_default()),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// The error's text without the field, as in a Status cause's `message`.
    pub fn message(&self) -> String {
        let mut s = self.kind.text().to_string();
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// A column of a `meta.k8s.io/v1` Table.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: &'static str,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: &'static str,
    /// "name" for the name column, else usually empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = always shown, 1 = only with `-o wide`.
    pub priority: i32,
}

impl Column {
    pub const fn new(name: &'static str, type_: &'static str, priority: i32) -> Self {
        Self {
            name,
            type_,
            format: "",
            description: "",
            priority,
        }
    }
    pub const fn name() -> Self {
        Self {
            name: "Name",
            type_: "string",
            format: "name",
            description: "Name must be unique within a namespace.",
            priority: 0,
        }
    }
    pub const fn age() -> Self {
        Self {
            name: "Age",
            type_: "string",
            format: "",
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
            priority: 0,
        }
    }
}

/// The typed per-kind strategy. Every method has a no-op default.
pub trait KindStrategy: Send + Sync + 'static {
    type Object: Serialize
        + DeserializeOwned
        + k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
        + Default
        + Clone
        + Send
        + Sync;

    /// Upstream's SetDefaults_* for this kind. Runs on create and update,
    /// before validation.
    fn default(&self, _obj: &mut Self::Object) {}

    /// Runs on create after defaulting. A kind whose status only its
    /// controllers write replaces the client's status here, as upstream.
    fn prepare_for_create(&self, _obj: &mut Self::Object) {}

    /// Runs on main-resource updates before defaulting: fields only a
    /// subresource may change are taken from `old`.
    fn prepare_for_update(&self, _new: &mut Self::Object, _old: &Self::Object) {}

    /// metadata.generation counts spec changes.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Seconds a delete lets the object live on (0 = removed now, unless
    /// finalizers hold it).
    fn deletion_grace(&self, _obj: &Self::Object, _requested: Option<i64>) -> i64 {
        0
    }

    /// Work besides metadata.finalizers that holds a deletion.
    fn has_pending_finalizers(&self, _obj: &Self::Object) -> bool {
        false
    }

    /// Marks set when a deletion starts.
    fn prepare_for_delete(&self, _obj: &mut Self::Object) {}

    /// DELETE answers with the object (else with a Status).
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// Validation on create.
    fn validate(&self, _obj: &Self::Object) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validation on update (defaults to create validation plus nothing else).
    fn validate_update(&self, new: &Self::Object, _old: &Self::Object) -> Vec<FieldError> {
        self.validate(new)
    }

    /// Kind-specific selectable fields beyond metadata.name/metadata.namespace,
    /// e.g. `("spec.nodeName", "node-1")` for pods.
    fn field_attrs(&self, _obj: &Self::Object) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Table columns. The default is Name and Age, as upstream's default
    /// table convertor.
    fn columns(&self) -> Vec<Column> {
        vec![Column::name(), Column::age()]
    }

    /// One table row's cells, matching `columns()`. `age` is the already
    /// formatted age (e.g. "5m") of the object.
    fn cells(&self, obj: &Self::Object, age: &str) -> Vec<Value> {
        vec![Value::from(name_of(obj)), Value::from(age)]
    }
}

/// The object's metadata.name.
pub fn name_of<
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    obj: &K,
) -> String {
    obj.metadata().name.clone().unwrap_or_default()
}

/// What [`Strategy::decode_for_create`] made of a body.
pub struct Decoded {
    /// The object, defaulted and prepared.
    pub object: Value,
    /// Paths of the fields the kind does not know (dropped).
    pub unknown: Vec<String>,
    pub errors: Vec<FieldError>,
}

/// Object-safe strategy over JSON values, used by the generic handler.
pub trait Strategy: Send + Sync + 'static {
    /// Decode into the kind's type and back: fills nothing in, but drops fields
    /// the type does not know. Returns the normalised object and the JSON paths
    /// of the dropped (unknown) fields, or a decode error message.
    fn normalize(&self, obj: &Value) -> Result<(Value, Vec<String>), String>;
    fn default(&self, obj: &mut Value) -> Result<(), String>;
    fn prepare_for_create(&self, obj: &mut Value) -> Result<(), String>;
    fn validate(&self, obj: &Value) -> Vec<FieldError>;
    /// The create path in one typed round trip: decode (noting unknown
    /// fields), `edit_meta` (the server's metadata), `default`,
    /// `prepare_for_create`, `validate`, encode. Err: the decode error.
    fn decode_for_create(
        &self,
        obj: &Value,
        edit_meta: &mut dyn FnMut(&mut ObjectMeta),
    ) -> Result<Decoded, String>;
    /// `prepare_for_update` then `default`, in one typed round trip.
    fn prepare_update(&self, new: &mut Value, old: &Value) -> Result<(), String>;
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError>;
    fn tracks_generation(&self) -> bool;
    fn deletion_grace(&self, obj: &Value, requested: Option<i64>) -> i64;
    fn has_pending_finalizers(&self, obj: &Value) -> bool;
    fn prepare_for_delete(&self, obj: &mut Value) -> Result<(), String>;
    fn returns_deleted_object(&self) -> bool;
    /// metadata.name, metadata.namespace and the kind's selectable fields,
    /// decoded from JSON straight into the kind's type (no tree); None if it
    /// does not decode.
    fn field_attrs(&self, json: &[u8]) -> Option<Vec<(&'static str, String)>>;
    /// The kind-specific field names a fieldSelector may use.
    fn field_names(&self) -> Vec<&'static str>;
    fn columns(&self) -> Vec<Column>;
    fn cells(&self, obj: &Value, age: &str) -> Vec<Value>;
    /// A table row's cells and the object's metadata, decoded from JSON
    /// straight into the kind's type (no tree); None if it does not decode.
    fn cells_and_metadata(&self, json: &[u8]) -> Option<(Vec<Value>, Value)>;
}

/// Adapts a [`KindStrategy`] to [`Strategy`].
pub struct Typed<S>(pub S);

/// `&Value` is itself a deserializer: no deep copy of the tree first.
fn decode<T: DeserializeOwned>(obj: &Value) -> Result<T, String> {
    T::deserialize(obj).map_err(|e| e.to_string())
}

fn encode<T: Serialize>(obj: &T) -> Result<Value, String> {
    serde_json::to_value(obj).map_err(|e| e.to_string())
}

impl<S: KindStrategy> Typed<S> {
    fn edit(&self, obj: &mut Value, f: impl FnOnce(&mut S::Object)) -> Result<(), String> {
        let mut typed: S::Object = decode(obj)?;
        f(&mut typed);
        *obj = encode(&typed)?;
        Ok(())
    }
}

impl<S: KindStrategy> Strategy for Typed<S> {
    fn normalize(&self, obj: &Value) -> Result<(Value, Vec<String>), String> {
        let (typed, unknown) = decode_noting_unknown::<S::Object>(obj)?;
        Ok((encode(&typed)?, unknown))
    }

    fn default(&self, obj: &mut Value) -> Result<(), String> {
        self.edit(obj, |o| self.0.default(o))
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Result<(), String> {
        self.edit(obj, |o| self.0.prepare_for_create(o))
    }

    fn decode_for_create(
        &self,
        obj: &Value,
        edit_meta: &mut dyn FnMut(&mut ObjectMeta),
    ) -> Result<Decoded, String> {
        let (mut typed, unknown) = decode_noting_unknown::<S::Object>(obj)?;
        edit_meta(k8s_openapi::Metadata::metadata_mut(&mut typed));
        self.0.default(&mut typed);
        self.0.prepare_for_create(&mut typed);
        let errors = self.0.validate(&typed);
        Ok(Decoded {
            object: encode(&typed)?,
            unknown,
            errors,
        })
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match decode::<S::Object>(obj) {
            Ok(o) => self.0.validate(&o),
            Err(e) => vec![FieldError::invalid("", Value::Null, e)],
        }
    }

    fn prepare_update(&self, new: &mut Value, old: &Value) -> Result<(), String> {
        let old: S::Object = decode(old)?;
        self.edit(new, |n| {
            self.0.prepare_for_update(n, &old);
            self.0.default(n);
        })
    }

    fn tracks_generation(&self) -> bool {
        self.0.tracks_generation()
    }

    fn deletion_grace(&self, obj: &Value, requested: Option<i64>) -> i64 {
        decode::<S::Object>(obj)
            .map(|o| self.0.deletion_grace(&o, requested))
            .unwrap_or(0)
    }

    fn has_pending_finalizers(&self, obj: &Value) -> bool {
        decode::<S::Object>(obj)
            .map(|o| self.0.has_pending_finalizers(&o))
            .unwrap_or(false)
    }

    fn prepare_for_delete(&self, obj: &mut Value) -> Result<(), String> {
        self.edit(obj, |o| self.0.prepare_for_delete(o))
    }

    fn returns_deleted_object(&self) -> bool {
        self.0.returns_deleted_object()
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        match (decode::<S::Object>(new), decode::<S::Object>(old)) {
            (Ok(n), Ok(o)) => self.0.validate_update(&n, &o),
            (Err(e), _) | (_, Err(e)) => vec![FieldError::invalid("", Value::Null, e)],
        }
    }

    fn field_attrs(&self, json: &[u8]) -> Option<Vec<(&'static str, String)>> {
        let o: S::Object = serde_json::from_slice(json).ok()?;
        let meta = k8s_openapi::Metadata::metadata(&o);
        let mut fields = vec![
            ("metadata.name", meta.name.clone().unwrap_or_default()),
            (
                "metadata.namespace",
                meta.namespace.clone().unwrap_or_default(),
            ),
        ];
        fields.extend(self.0.field_attrs(&o));
        Some(fields)
    }

    fn field_names(&self) -> Vec<&'static str> {
        self.0
            .field_attrs(&S::Object::default())
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn columns(&self) -> Vec<Column> {
        self.0.columns()
    }

    fn cells(&self, obj: &Value, age: &str) -> Vec<Value> {
        match decode::<S::Object>(obj) {
            Ok(o) => self.0.cells(&o, age),
            Err(_) => Vec::new(),
        }
    }

    fn cells_and_metadata(&self, json: &[u8]) -> Option<(Vec<Value>, Value)> {
        let o: S::Object = serde_json::from_slice(json).ok()?;
        let meta = k8s_openapi::Metadata::metadata(&o);
        let age = crate::table::age_since(meta.creation_timestamp.as_ref().map(|t| t.0));
        let metadata = serde_json::to_value(meta).ok()?;
        Some((self.0.cells(&o, &age), metadata))
    }
}

/// Decode into `T`, noting the JSON paths ("spec.containers[0].x") of the
/// fields `T` does not know, which upstream's strict decoding reports. A null
/// value counts as absent, as upstream's decoder treats it.
fn decode_noting_unknown<T: DeserializeOwned>(obj: &Value) -> Result<(T, Vec<String>), String> {
    let mut unknown = Vec::new();
    let typed = serde_ignored::deserialize(obj, |path| {
        let mut segments = Vec::new();
        path_segments(&path, &mut segments);
        let mut at = Some(obj);
        let mut text = String::new();
        for seg in &segments {
            match seg {
                Segment::Key(k) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(k);
                    at = at.and_then(|v| v.get(k.as_str()));
                }
                Segment::Index(i) => {
                    text.push_str(&format!("[{i}]"));
                    at = at.and_then(|v| v.get(*i));
                }
            }
        }
        if !at.is_some_and(Value::is_null) {
            unknown.push(text);
        }
    })
    .map_err(|e| e.to_string())?;
    Ok((typed, unknown))
}

enum Segment {
    Key(String),
    Index(usize),
}

fn path_segments(path: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            path_segments(parent, out);
            out.push(Segment::Index(*index));
        }
        Path::Map { parent, key } => {
            path_segments(parent, out);
            out.push(Segment::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_segments(parent, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_with_paths() {
        use k8s_openapi::api::core::v1::Pod;
        let input = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "zz": 3, "nothing": null},
            "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d", "imagee": "x"}]},
            "extra": {"deep": 1},
        });
        let (pod, unknown) = decode_noting_unknown::<Pod>(&input).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        assert_eq!(
            unknown,
            vec!["metadata.zz", "spec.containers[1].imagee", "extra"]
        );
        assert!(decode_noting_unknown::<Pod>(&json!({"spec": 5})).is_err());
    }

    #[test]
    fn field_error_messages_match_upstream() {
        let e = FieldError::invalid("metadata.name", "A_b", "a lowercase RFC 1123 subdomain");
        assert_eq!(
            e.to_string(),
            "metadata.name: Invalid value: \"A_b\": a lowercase RFC 1123 subdomain"
        );
        let r = FieldError::required("spec.containers", "");
        assert_eq!(r.to_string(), "spec.containers: Required value");
    }
}
