//! YAML as kubectl prints it: JSON turned into YAML by go-yaml v2 (sigs.k8s.io/yaml).
//!
//! Keys sorted in go-yaml's order (numbers inside keys compare as numbers), sequences
//! not indented under their key, strings plain when they read back as strings and
//! quoted otherwise (`"12"`, `"true"`, `'- x'`), multi-line strings as `|` blocks, and
//! long plain or quoted strings folded at spaces past column 80.

use std::cmp::Ordering;

use serde_json::Value;

const BEST_WIDTH: usize = 80;

/// The YAML document for `value`, ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut e = Emitter::default();
    match value {
        Value::Object(m) if !m.is_empty() => e.mapping(m, 0, false),
        Value::Array(a) if !a.is_empty() => e.sequence(a, 0, false),
        other => {
            e.inline(other, 2);
            e.newline();
        }
    }
    e.out
}

#[derive(Default)]
struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            self.out.push(c);
            if c == '\n' {
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
    }

    fn newline(&mut self) {
        self.push("\n");
    }

    fn indent(&mut self, n: usize) {
        self.push(&" ".repeat(n));
    }

    /// A block mapping whose keys sit at column `indent`; `inline_first`: the first key
    /// follows a `- ` already written.
    fn mapping(&mut self, map: &serde_json::Map<String, Value>, indent: usize, inline_first: bool) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| go_yaml_key_order(a, b));
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 || !inline_first {
                self.indent(indent);
            }
            self.scalar(key, indent + 2, true);
            self.push(":");
            self.value_after_key(&map[key.as_str()], indent);
        }
    }

    fn value_after_key(&mut self, value: &Value, indent: usize) {
        match value {
            Value::Object(m) if !m.is_empty() => {
                self.newline();
                self.mapping(m, indent + 2, false);
            }
            Value::Array(a) if !a.is_empty() => {
                self.newline();
                self.sequence(a, indent, false);
            }
            other => {
                self.push(" ");
                self.inline(other, indent + 2);
                self.newline();
            }
        }
    }

    /// A block sequence whose dashes sit at column `indent`.
    fn sequence(&mut self, items: &[Value], indent: usize, inline_first: bool) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline_first {
                self.indent(indent);
            }
            self.push("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(m, indent + 2, true),
                Value::Array(a) if !a.is_empty() => self.sequence(a, indent + 2, true),
                other => {
                    self.inline(other, indent + 2);
                    self.newline();
                }
            }
        }
    }

    /// A scalar or an empty collection on the current line; `indent` is where folded or
    /// block-literal lines continue.
    fn inline(&mut self, value: &Value, indent: usize) {
        match value {
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => self.push(&n.to_string()),
            Value::String(s) => self.scalar(s, indent, false),
            Value::Object(_) => self.push("{}"),
            Value::Array(_) => self.push("[]"),
        }
    }

    fn scalar(&mut self, s: &str, indent: usize, simple_key: bool) {
        match choose_style(s, simple_key) {
            Style::Plain => self.plain(s, indent, !simple_key),
            Style::Single => self.single_quoted(s, indent, !simple_key),
            Style::Double => self.double_quoted(s, indent, !simple_key),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn fold_here(&self, allow_breaks: bool) -> bool {
        allow_breaks && self.column > BEST_WIDTH
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if !spaces && self.fold_here(allow_breaks) && chars.get(i + 1) != Some(&' ') {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                self.push(c.encode_utf8(&mut [0; 4]));
                spaces = false;
            }
        }
    }

    fn single_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push("'");
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if !spaces
                    && self.fold_here(allow_breaks)
                    && i != 0
                    && i != chars.len() - 1
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push("'");
                }
                self.push(c.encode_utf8(&mut [0; 4]));
                spaces = false;
            }
        }
        self.push("'");
    }

    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push("\"");
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let escaped = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".to_string(),
                    '\u{8}' => "\\b".to_string(),
                    '\t' => "\\t".to_string(),
                    '\n' => "\\n".to_string(),
                    '\u{b}' => "\\v".to_string(),
                    '\u{c}' => "\\f".to_string(),
                    '\r' => "\\r".to_string(),
                    '\u{1b}' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{a0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.push(&escaped);
                spaces = false;
            } else if c == ' ' {
                if !spaces && self.fold_here(allow_breaks) && i != 0 && i != chars.len() - 1 {
                    self.newline();
                    self.indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push("\\");
                    }
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                self.push(c.encode_utf8(&mut [0; 4]));
                spaces = false;
            }
        }
        self.push("\"");
    }

    /// `|` block: `|-` without a final newline, `|+` with several, an indentation
    /// hint when the text starts with a space or a newline.
    fn literal(&mut self, s: &str, indent: usize) {
        self.push("|");
        if s.starts_with(' ') || s.starts_with('\n') {
            self.push("2");
        }
        if !s.ends_with('\n') {
            self.push("-");
        } else if s == "\n" || s.ends_with("\n\n") {
            self.push("+");
        }
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            self.newline();
            if !line.is_empty() {
                self.indent(indent);
                self.push(line);
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's choice: `encoder.stringv` then `yaml_emitter_select_scalar_style`.
fn choose_style(s: &str, simple_key: bool) -> Style {
    let a = analyze(s);
    let wanted = if s.contains('\n') {
        Style::Literal
    } else if resolves_as_string(s) {
        Style::Plain
    } else {
        Style::Double
    };
    match wanted {
        Style::Plain => {
            if !a.block_plain_allowed || (s.is_empty() && simple_key) {
                if a.single_quoted_allowed {
                    Style::Single
                } else {
                    Style::Double
                }
            } else {
                Style::Plain
            }
        }
        Style::Literal => {
            if !a.block_allowed || simple_key {
                Style::Double
            } else {
                Style::Literal
            }
        }
        other => other,
    }
}

struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// `yaml_emitter_analyze_scalar`, for block context.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut line_breaks) = (false, false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = i + 1 >= n || is_blank(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c);
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || is_break(c)
}

/// libyaml's `is_printable` (with unicode output on).
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0a
        || (0x20..=0x7e).contains(&v)
        || v == 0x85
        || (0xa0..=0xd7ff).contains(&v)
        || ((0xe000..=0xfffd).contains(&v) && v != 0xfeff)
        || (0x10000..=0x10ffff).contains(&v)
}

/// Whether go-yaml v2's `resolve` reads this plain scalar back as a string (not null,
/// bool, number, timestamp, merge key or base-60 float).
fn resolves_as_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || first == '+' || first == '-' || first == '.') {
        return true;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if parses_as_go_int(&plain) || parses_as_go_float(&plain) || is_base60_float(s) {
        return false;
    }
    if first.is_ascii_digit() && is_timestamp(s) {
        return false;
    }
    true
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint` would accept it.
fn parses_as_go_int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (radix, body) = if let Some(b) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, b)
    } else if let Some(b) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, b)
    } else if let Some(b) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, b)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    !body.is_empty() && u128::from_str_radix(body, radix).is_ok_and(|v| v <= u64::MAX as u128)
}

/// Go's `strconv.ParseFloat(s, 64)` would accept it (decimal forms and inf/nan).
fn parses_as_go_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return true;
    }
    if lower.starts_with("0x") {
        return false;
    }
    // Rust accepts what Go accepts for decimal floats, except "inf"/"nan" handled above.
    !lower.is_empty()
        && lower
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        && lower.parse::<f64>().is_ok()
}

/// `[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?`
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, _frac) = match body.split_once('.') {
        Some((m, f)) if f.chars().all(|c| c.is_ascii_digit() || c == '_') => (m, Some(f)),
        Some(_) => return false,
        None => (body, None),
    };
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        })
}

/// go-yaml v2's timestamp forms: `2006-1-2`, with `T`/`t`/` ` and a time of day.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let ok_date = d.next().is_some_and(|y| y.len() == 4)
        && d.next().is_some_and(|m| is_num(m, 1, 2))
        && d.next().is_some_and(|day| is_num(day, 1, 2))
        && d.next().is_none();
    if !ok_date {
        return false;
    }
    let Some(time) = time else { return true };
    // h:m:s[.frac][Z|±hh:mm]
    let zone_at = time
        .find(['Z', '+'])
        .or_else(|| time.rfind('-'))
        .unwrap_or(time.len());
    let (clock, _zone) = time.split_at(zone_at);
    let clock = clock.split('.').next().unwrap_or("");
    let parts: Vec<&str> = clock.split(':').collect();
    parts.len() == 3 && parts.iter().all(|p| is_num(p, 1, 2))
}

fn is_num(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit())
}

/// go-yaml v2's `keyList.Less`: letters after other characters, runs of digits
/// compared as numbers.
pub fn go_yaml_key_order(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configmap_like_kubectl() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"a": "1", "dash": "- x", "empty": "", "json": "{\"x\": 1}",
                      "multi": "line1\nline3\n", "true": "yes"},
            "metadata": {"annotations": {"k": "{\"a\":1}\n"}, "creationTimestamp": "2026-11-22T08:27:45Z",
                          "name": "cm1", "resourceVersion": "22", "labels": {}},
            "list": [{"a": 1, "b": [1, 2]}, [], "x"],
        });
        assert_eq!(
            to_yaml(&v),
            r#"apiVersion: v1
data:
  a: "1"
  dash: '- x'
  empty: ""
  json: '{"x": 1}'
  multi: |
    line1
    line3
  "true": "yes"
kind: ConfigMap
list:
- a: 1
  b:
  - 1
  - 2
- []
- x
metadata:
  annotations:
    k: |
      {"a":1}
  creationTimestamp: "2026-11-22T08:27:45Z"
  labels: {}
  name: cm1
  resourceVersion: "22"
"#
        );
    }

    #[test]
    fn quoting_rules() {
        for (s, want) in [
            ("abc", "abc"),
            ("12", "\"12\""),
            ("1.5", "\"1.5\""),
            ("0x1F", "\"0x1F\""),
            ("12:30", "\"12:30\""),
            ("2026-01-02", "\"2026-01-02\""),
            ("on", "\"on\""),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            (" lead", "' lead'"),
            ("tab\there", "\"tab\\there\""),
            ("-x", "-x"),
            ("10.244.0.0/16", "10.244.0.0/16"),
            ("v1.33.1", "v1.33.1"),
            ("*", "'*'"),
            ("nginx:1.25", "nginx:1.25"),
        ] {
            assert_eq!(to_yaml(&json!(s)), format!("{want}\n"), "{s:?}");
        }
        assert_eq!(
            to_yaml(&json!("no newline\nat end")),
            "|-\n  no newline\n  at end\n"
        );
        assert_eq!(to_yaml(&json!(" x\ny\n")), "|2\n   x\n  y\n");
    }

    #[test]
    fn long_strings_fold_past_column_80() {
        let msg =
            "container with ID starting with 0123456789abcdef not found: ID does not exist anymore";
        let out = to_yaml(&json!({"status": {"message": msg}}));
        assert_eq!(
            out,
            "status:\n  message: 'container with ID starting with 0123456789abcdef not found: ID does not\n    exist anymore'\n"
        );
    }

    #[test]
    fn key_order_is_go_yamls() {
        let mut keys = vec!["a10", "a9", "b", "A", "a-b", "ab"];
        keys.sort_by(|a, b| go_yaml_key_order(a, b));
        assert_eq!(keys, ["A", "a-b", "a9", "a10", "ab", "b"]);
    }
}
