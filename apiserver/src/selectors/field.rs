//! Field selectors, as upstream's k8s.io/apimachinery/pkg/fields: `f=v`, `f==v`, `f!=v`,
//! joined by commas (AND). In values, `\,`, `\=` and `\\` stand for `,`, `=` and `\`.

use std::fmt;

use super::SelectorError;

/// One `field=value` (or `field!=value`) term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    /// `!=` instead of `=`/`==`.
    pub not_equal: bool,
}

impl FieldRequirement {
    fn matches(&self, actual: &str) -> bool {
        (actual == self.value) != self.not_equal
    }
}

/// Terms that must all hold. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a field selector; the empty string is everything.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(selector);
        // Upstream sorts the raw terms, which fixes the order of requirements.
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let (field, op, raw_value) =
                split_term(term).ok_or_else(|| SelectorError::FieldTerm {
                    selector: selector.to_string(),
                    term: term.to_string(),
                })?;
            let value = unescape_value(raw_value)?;
            // A bare `=` says nothing; upstream drops it.
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                value,
                not_equal: op == "!=",
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// A selector of `field=value` terms (upstream's `fields.SelectorFromSet`).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let requirements = pairs
            .into_iter()
            .map(|(field, value)| FieldRequirement {
                field: field.to_string(),
                value: value.to_string(),
                not_equal: false,
            })
            .collect();
        FieldSelector { requirements }
    }

    /// Whether an object is selected; `get` returns a field's value, and a missing field
    /// compares as the empty string (as upstream's `Fields.Get`).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(get(&r.field).as_deref().unwrap_or("")))
    }

    /// The field names the selector uses, in order (a name may repeat).
    pub fn fields(&self) -> Vec<&str> {
        self.requirements.iter().map(|r| r.field.as_str()).collect()
    }

    /// Fails with upstream's "field label not supported: X" for the first field name
    /// that `supported` refuses.
    pub fn check_fields(&self, supported: impl Fn(&str) -> bool) -> Result<(), SelectorError> {
        match self.fields().into_iter().find(|f| !supported(f)) {
            Some(field) => Err(SelectorError::FieldLabelNotSupported(field.to_string())),
            None => Ok(()),
        }
    }

    /// The value `field` must equal, if a `=`/`==` term pins it: usable for index lookups.
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.not_equal)
            .map(|r| r.value.as_str())
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if r.not_equal { "!=" } else { "=" };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` so a literal value can be put in a field selector.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The literal value of an escaped field selector value.
pub fn unescape_value(value: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => {
                    return Err(SelectorError::InvalidEscape(format!("\\{other}")));
                }
                None => return Err(SelectorError::InvalidEscape("\\".into())),
            },
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits at commas that are not escaped; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits `lhs op rhs` at the first operator; the field name has no escaping.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn matches(selector: &str, object: &BTreeMap<String, String>) -> bool {
        FieldSelector::parse(selector)
            .unwrap()
            .matches(|f| object.get(f).cloned())
    }

    #[test]
    fn parses_operators_and_sorts_terms() {
        let s = FieldSelector::parse("spec.nodeName=n1,metadata.name==web,status.phase!=Failed")
            .unwrap();
        assert_eq!(
            s.to_string(),
            "metadata.name=web,spec.nodeName=n1,status.phase!=Failed"
        );
        assert_eq!(
            s.fields(),
            vec!["metadata.name", "spec.nodeName", "status.phase"]
        );
        assert_eq!(s.exact_value("spec.nodeName"), Some("n1"));
        assert_eq!(s.exact_value("status.phase"), None);
        assert_eq!(s.exact_value("other"), None);
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert!(FieldSelector::parse(",").unwrap().is_empty());
        assert!(FieldSelector::parse("=").unwrap().is_empty());
        assert_eq!(
            FieldSelector::parse("a=").unwrap().exact_value("a"),
            Some("")
        );
    }

    #[test]
    fn matching_treats_missing_fields_as_empty() {
        let pod = fields(&[("metadata.name", "web"), ("spec.nodeName", "n1")]);
        assert!(matches("", &pod));
        assert!(matches("metadata.name=web", &pod));
        assert!(matches("metadata.name=web,spec.nodeName=n1", &pod));
        assert!(!matches("metadata.name=web,spec.nodeName=n2", &pod));
        assert!(matches("spec.nodeName!=n2", &pod));
        assert!(matches("status.phase=", &pod));
        assert!(!matches("status.phase!=", &pod));
        assert!(matches("status.phase!=Running", &pod));
        assert!(!matches("status.phase=Running", &pod));
    }

    #[test]
    fn escaping() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,x=y").unwrap();
        assert_eq!(s.exact_value("metadata.name"), Some(r"a,b=c\d"));
        assert_eq!(s.exact_value("x"), Some("y"));
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d,x=y");
        assert_eq!(escape_value(r"a,b=c\d"), r"a\,b\=c\\d");
        assert_eq!(unescape_value(&escape_value("=,\\x")).unwrap(), "=,\\x");
    }

    #[test]
    fn errors() {
        assert_eq!(
            FieldSelector::parse("a=b,c").unwrap_err().to_string(),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\x").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        let s = FieldSelector::parse("metadata.name=a,spec.foo=b").unwrap();
        assert_eq!(
            s.check_fields(|f| f == "metadata.name")
                .unwrap_err()
                .to_string(),
            "field label not supported: spec.foo"
        );
        assert!(s.check_fields(|_| true).is_ok());
    }

    #[test]
    fn from_pairs() {
        let s = FieldSelector::from_pairs([("metadata.name", "x")]);
        assert!(s.matches(|f| (f == "metadata.name").then(|| "x".to_string())));
        assert!(!s.matches(|_| None));
    }
}
