//! kubectl's JSONPath templates (k8s.io/client-go/util/jsonpath): text with `{...}`
//! actions: `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `..name`, `[?(@.x=="y")]`,
//! `{range ...}...{end}`, `{"\n"}` literals, `$` and `@`. Missing keys print nothing
//! (kubectl allows them); maps and lists print as compact JSON, several results of one
//! action are separated by spaces.

use serde_json::Value;

use super::json::to_json_compact;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Action(Vec<Node>),
    Range(Vec<Node>, Vec<Segment>),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Root,
    Current,
    Field(String),
    AllFields,
    Recursive,
    Index(Vec<IndexSpec>),
    Filter(Box<Filter>),
    Literal(String),
}

#[derive(Debug, Clone, PartialEq)]
enum IndexSpec {
    One(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    All,
    Key(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    op: Option<(String, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Node>),
    Literal(Value),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct JsonPath {
    segments: Vec<Segment>,
    as_json: bool,
}

impl JsonPath {
    /// Parse `template`; `as_json` prints results as indented JSON (`jsonpath-as-json`).
    pub fn parse(template: &str, as_json: bool) -> Result<Self, String> {
        let mut pos = 0;
        let segments = parse_segments(template, &mut pos, false)?;
        Ok(Self { segments, as_json })
    }

    /// The template applied to `data`.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        run_segments(&self.segments, data, data, self.as_json, &mut out)?;
        Ok(out)
    }
}

fn parse_segments(t: &str, pos: &mut usize, in_range: bool) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut text = String::new();
    while *pos < t.len() {
        let rest = &t[*pos..];
        if let Some(stripped) = rest.strip_prefix('{') {
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            let end = find_action_end(stripped)
                .ok_or_else(|| format!("unclosed action in template {t:?}"))?;
            let inner = stripped[..end].trim();
            *pos += 1 + end + 1;
            if inner == "end" {
                if in_range {
                    return Ok(segments);
                }
                return Err("not in range, nothing to end".into());
            }
            let range_expr = inner
                .strip_prefix("range")
                .filter(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'));
            if let Some(expr) = range_expr {
                let nodes = parse_expression(expr.trim())?;
                let body = parse_segments(t, pos, true)?;
                segments.push(Segment::Range(nodes, body));
                continue;
            }
            segments.push(Segment::Action(parse_expression(inner)?));
        } else {
            let c = rest.chars().next().unwrap_or_default();
            text.push(c);
            *pos += c.len_utf8();
        }
    }
    if in_range {
        return Err("unclosed range".into());
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

/// Where the action that starts after `{` ends: the first `}` outside quotes.
fn find_action_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '}' => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_expression(expr: &str) -> Result<Vec<Node>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut nodes = Vec::new();
    while i < chars.len() {
        match chars[i] {
            ' ' => i += 1,
            '"' | '\'' => {
                let (s, next) = parse_quoted(&chars, i)?;
                nodes.push(Node::Literal(s));
                i = next;
            }
            '$' => {
                nodes.push(Node::Root);
                i += 1;
            }
            '@' => {
                nodes.push(Node::Current);
                i += 1;
            }
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'.') {
                    nodes.push(Node::Recursive);
                    i += 1;
                }
                let mut name = String::new();
                while i < chars.len()
                    && !matches!(chars[i], '.' | '[' | ' ' | ')' | '=' | '!' | '<' | '>')
                {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                match name.as_str() {
                    "" => {}
                    "*" => nodes.push(Node::AllFields),
                    _ => nodes.push(Node::Field(name)),
                }
            }
            '[' => {
                let end = matching_bracket(&chars, i)?;
                let inner: String = chars[i + 1..end].iter().collect();
                nodes.push(parse_bracket(inner.trim())?);
                i = end + 1;
            }
            c if c.is_alphanumeric() || c == '-' => {
                // A bare number or word: a literal (as in filters' right-hand side).
                let mut word = String::new();
                while i < chars.len() && !matches!(chars[i], ' ' | '.' | '[') {
                    word.push(chars[i]);
                    i += 1;
                }
                nodes.push(Node::Literal(word));
            }
            c => return Err(format!("unrecognized character in action: {c:?}")),
        }
    }
    Ok(nodes)
}

fn parse_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            i += 1;
            out.push(match chars[i] {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                other => other,
            });
        } else if c == quote {
            return Ok((out, i + 1));
        } else {
            out.push(c);
        }
        i += 1;
    }
    Err("unterminated quoted string".into())
}

fn matching_bracket(chars: &[char], open: usize) -> Result<usize, String> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err("unterminated array".into())
}

fn parse_bracket(inner: &str) -> Result<Node, String> {
    if let Some(filter) = inner.strip_prefix('?') {
        let filter = filter.trim();
        let body = filter
            .strip_prefix('(')
            .and_then(|f| f.strip_suffix(')'))
            .ok_or_else(|| format!("invalid filter {inner:?}"))?;
        return Ok(Node::Filter(Box::new(parse_filter(body.trim())?)));
    }
    let mut specs = Vec::new();
    for part in split_outside_quotes(inner, ',') {
        let part = part.trim();
        if part == "*" {
            specs.push(IndexSpec::All);
        } else if part.starts_with('\'') || part.starts_with('"') {
            let chars: Vec<char> = part.chars().collect();
            specs.push(IndexSpec::Key(parse_quoted(&chars, 0)?.0));
        } else if part.contains(':') {
            let bits: Vec<&str> = part.split(':').collect();
            let num = |s: &str| -> Result<Option<i64>, String> {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse()
                        .map(Some)
                        .map_err(|_| format!("invalid array index {s:?}"))
                }
            };
            specs.push(IndexSpec::Slice(
                num(bits[0])?,
                num(bits.get(1).copied().unwrap_or(""))?,
                num(bits.get(2).copied().unwrap_or(""))?,
            ));
        } else {
            specs.push(IndexSpec::One(
                part.parse()
                    .map_err(|_| format!("invalid array index {part:?}"))?,
            ));
        }
    }
    Ok(Node::Index(specs))
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == sep => {
                parts.push(String::new());
                continue;
            }
            None => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn parse_filter(body: &str) -> Result<Filter, String> {
    for op in ["==", "!=", "<=", ">=", "<", ">", "=~"] {
        if let Some((l, r)) = split_op(body, op) {
            return Ok(Filter {
                left: parse_operand(l.trim())?,
                op: Some((op.to_string(), parse_operand(r.trim())?)),
            });
        }
    }
    Ok(Filter {
        left: parse_operand(body)?,
        op: None,
    })
}

fn split_op<'a>(body: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let mut quote: Option<char> = None;
    for (i, c) in body.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if body[i..].starts_with(op) => return Some((&body[..i], &body[i + op.len()..])),
            None => {}
        }
    }
    None
}

fn parse_operand(s: &str) -> Result<Operand, String> {
    if s.starts_with('@') || s.starts_with('$') || s.starts_with('.') {
        return Ok(Operand::Path(parse_expression(s)?));
    }
    if s.starts_with('"') || s.starts_with('\'') {
        let chars: Vec<char> = s.chars().collect();
        return Ok(Operand::Literal(Value::String(parse_quoted(&chars, 0)?.0)));
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(Operand::Literal(Value::from(n)));
    }
    if let Ok(f) = s.parse::<f64>() {
        return Ok(Operand::Literal(Value::from(f)));
    }
    match s {
        "true" => Ok(Operand::Literal(Value::Bool(true))),
        "false" => Ok(Operand::Literal(Value::Bool(false))),
        _ => Err(format!("unrecognized filter operand {s:?}")),
    }
}

fn run_segments(
    segments: &[Segment],
    root: &Value,
    current: &Value,
    as_json: bool,
    out: &mut String,
) -> Result<(), String> {
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Action(nodes) => {
                let results = eval(nodes, root, current);
                print_results(&results, as_json, out);
            }
            Segment::Range(nodes, body) => {
                let results = eval(nodes, root, current);
                for item in results {
                    // A range over one list walks its elements.
                    match &item {
                        Value::Array(items) if nodes_select_whole(nodes) => {
                            for element in items {
                                run_segments(body, root, element, as_json, out)?;
                            }
                        }
                        _ => run_segments(body, root, &item, as_json, out)?,
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether the expression names a value itself (`.items`) rather than its elements
/// (`.items[*]`): ranging over the former walks the list.
fn nodes_select_whole(nodes: &[Node]) -> bool {
    !matches!(nodes.last(), Some(Node::Index(_)) | Some(Node::AllFields))
}

fn print_results(results: &[Value], as_json: bool, out: &mut String) {
    if as_json {
        out.push_str(&super::json::to_json_pretty(&Value::Array(
            results.to_vec(),
        )));
        return;
    }
    for (i, r) in results.iter().enumerate() {
        match r {
            Value::String(s) => out.push_str(s),
            Value::Object(_) | Value::Array(_) => out.push_str(&to_json_compact(r)),
            Value::Null => {}
            other => out.push_str(&other.to_string()),
        }
        if i + 1 != results.len() {
            out.push(' ');
        }
    }
}

fn eval(nodes: &[Node], root: &Value, current: &Value) -> Vec<Value> {
    let mut values = vec![current.clone()];
    let mut recursive = false;
    for node in nodes {
        let mut next = Vec::new();
        match node {
            Node::Root => next.push(root.clone()),
            Node::Current => next.push(current.clone()),
            Node::Literal(s) => next.push(Value::String(s.clone())),
            Node::Recursive => {
                recursive = true;
                continue;
            }
            Node::Field(name) => {
                for v in &values {
                    if recursive {
                        collect_field(v, name, &mut next);
                    } else if let Some(f) = v.get(name) {
                        next.push(f.clone());
                    }
                }
            }
            Node::AllFields => {
                for v in &values {
                    match v {
                        Value::Object(m) => next.extend(m.values().cloned()),
                        Value::Array(a) => next.extend(a.iter().cloned()),
                        _ => {}
                    }
                }
            }
            Node::Index(specs) => {
                for v in &values {
                    for spec in specs {
                        index(v, spec, &mut next);
                    }
                }
            }
            Node::Filter(filter) => {
                for v in &values {
                    let candidates: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    for c in candidates {
                        if filter_matches(filter, root, c) {
                            next.push(c.clone());
                        }
                    }
                }
            }
        }
        recursive = false;
        values = next;
    }
    values
}

fn collect_field(v: &Value, name: &str, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if let Some(f) = m.get(name) {
                out.push(f.clone());
            }
            for child in m.values() {
                collect_field(child, name, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                collect_field(child, name, out);
            }
        }
        _ => {}
    }
}

fn index(v: &Value, spec: &IndexSpec, out: &mut Vec<Value>) {
    if let IndexSpec::Key(k) = spec {
        if let Some(f) = v.get(k) {
            out.push(f.clone());
        }
        return;
    }
    let items: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::Object(m) if *spec == IndexSpec::All => m.values().cloned().collect(),
        _ => return,
    };
    let len = items.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    match spec {
        IndexSpec::All => out.extend(items),
        IndexSpec::One(i) => {
            let i = if *i < 0 { len + i } else { *i };
            if (0..len).contains(&i) {
                out.push(items[i as usize].clone());
            }
        }
        IndexSpec::Slice(start, end, step) => {
            let start = norm(start.unwrap_or(0));
            let end = norm(end.unwrap_or(len));
            let step = step.unwrap_or(1).max(1) as usize;
            if start < end {
                out.extend(
                    items[start as usize..end as usize]
                        .iter()
                        .step_by(step)
                        .cloned(),
                );
            }
        }
        IndexSpec::Key(_) => {}
    }
}

fn operand_values(op: &Operand, root: &Value, current: &Value) -> Vec<Value> {
    match op {
        Operand::Literal(v) => vec![v.clone()],
        Operand::Path(nodes) => eval(nodes, root, current),
    }
}

fn filter_matches(filter: &Filter, root: &Value, current: &Value) -> bool {
    let left = operand_values(&filter.left, root, current);
    let Some((op, right)) = &filter.op else {
        return left.iter().any(|v| !v.is_null());
    };
    let right = operand_values(right, root, current);
    let (Some(l), Some(r)) = (left.first(), right.first()) else {
        return false;
    };
    match op.as_str() {
        "==" => loosely_equal(l, r),
        "!=" => !loosely_equal(l, r),
        "<" | ">" | "<=" | ">=" => match (as_number(l), as_number(r)) {
            (Some(a), Some(b)) => match op.as_str() {
                "<" => a < b,
                ">" => a > b,
                "<=" => a <= b,
                _ => a >= b,
            },
            _ => false,
        },
        _ => false,
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    v.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        JsonPath::parse(t, false).unwrap().execute(v).unwrap()
    }

    #[test]
    fn templates_like_kubectl() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"replicas": 3}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]});
        assert_eq!(run("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(
            run(
                "{range .items[*]}{.metadata.name}:{.spec.replicas}{\"\\n\"}{end}",
                &list
            ),
            "a:3\nb:\n"
        );
        assert_eq!(
            run("{.items[0].metadata.labels}", &list),
            "{\"app.kubernetes.io/name\":\"x\"}"
        );
        assert_eq!(
            run(
                "{.items[0].metadata.labels.app\\.kubernetes\\.io/name}",
                &list
            ),
            "x"
        );
        assert_eq!(run("{.items[-1].metadata.name}", &list), "b");
        assert_eq!(
            run(
                "{.items[?(@.metadata.name==\"a\")].status.conditions[?(@.type=='Ready')].status}",
                &list
            ),
            "True"
        );
        assert_eq!(run("{..name}", &list), "a b");
        assert_eq!(run("n={.items[0].spec.replicas} done", &list), "n=3 done");
        assert_eq!(run("{.missing}", &list), "");
        assert_eq!(run("{range .items}{.metadata.name},{end}", &list), "a,b,");
        assert_eq!(run("{range.items[*]}{.metadata.name};{end}", &list), "a;b;");
    }
}
