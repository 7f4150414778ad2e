//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`, and the selectors of
//! controllers), with upstream's syntax, matching rules and error messages.

mod field;
mod label;

pub use field::{escape_value, unescape_value, FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};

/// A selector that cannot be parsed or used. The texts are upstream's, complete (no
/// prefix needs adding) and meant for a 400 Bad Request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector's requirement is malformed or invalid.
    #[error("unable to parse requirement: {0}")]
    InvalidRequirementSyntax(String),
    /// A label selector is malformed between requirements.
    #[error("{0}")]
    Syntax(String),
    /// A requirement built from a `metav1.LabelSelector` (or by hand) is invalid.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `metav1.LabelSelector` expression with an unknown operator.
    #[error("{0:?} is not a valid label selector operator")]
    InvalidOperator(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A field selector value with a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A field selector value with a bare `,` or `=` (printed as a code point, as upstream).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// A field selector naming a field the resource does not support.
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
}
