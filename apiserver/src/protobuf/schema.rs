//! The shape of the generated wire schema (table.rs): for each protobuf
//! message, its fields by number with their JSON names and value types.

/// A protobuf message of the Kubernetes API, named by its OpenAPI definition.
#[derive(Debug)]
pub(super) struct Message {
    /// Read by the tests, which check the schema against k8s-openapi.
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// Sorted by number (the generator emits them so).
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .and_then(|i| self.fields.get(i))
    }
}

#[derive(Debug)]
pub(super) struct Field {
    pub number: u32,
    /// The JSON key; empty for `Label::Inline`.
    pub json: &'static str,
    pub label: Label,
    pub ty: Type,
    pub zero: Zero,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Single,
    Repeated,
    /// `map<string, ty>`: repeated entries {1: key, 2: value}.
    Map,
    /// A Go struct embedded with `json:",inline"`: a nested message on the
    /// wire whose fields belong to the enclosing JSON object.
    Inline,
}

/// Whether a zero scalar ("", 0, false) stays in JSON. Go writes every
/// non-pointer field to protobuf but leaves omitempty zeros out of JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Zero {
    Keep,
    Omit,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Type {
    String,
    /// base64 in JSON.
    Bytes,
    Bool,
    Int32,
    Int64,
    Message(&'static Message),
    /// meta/v1 Time {seconds, nanos}: RFC 3339 in whole seconds.
    Time,
    /// meta/v1 MicroTime: RFC 3339 with microseconds.
    MicroTime,
    /// resource.Quantity {string}: the string.
    Quantity,
    /// intstr.IntOrString {type, intVal, strVal}: a number or a string.
    IntOrString,
    /// A message holding JSON bytes in field 1 (meta/v1 FieldsV1, RawExtension).
    RawJson,
}

impl Field {
    pub const fn single(number: u32, json: &'static str, ty: Type) -> Self {
        Self::new(number, json, Label::Single, ty, Zero::Keep)
    }

    pub const fn omit_zero(number: u32, json: &'static str, ty: Type) -> Self {
        Self::new(number, json, Label::Single, ty, Zero::Omit)
    }

    pub const fn repeated(number: u32, json: &'static str, ty: Type) -> Self {
        Self::new(number, json, Label::Repeated, ty, Zero::Keep)
    }

    pub const fn map(number: u32, json: &'static str, ty: Type) -> Self {
        Self::new(number, json, Label::Map, ty, Zero::Keep)
    }

    pub const fn inline(number: u32, ty: Type) -> Self {
        Self::new(number, "", Label::Inline, ty, Zero::Keep)
    }

    const fn new(number: u32, json: &'static str, label: Label, ty: Type, zero: Zero) -> Self {
        Self {
            number,
            json,
            label,
            ty,
            zero,
        }
    }
}
