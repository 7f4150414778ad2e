//! NodeAffinity: spec.nodeSelector and required node affinity decide where a
//! pod may go; preferred terms add their weights to a node's score.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};

use super::Rejection;
use crate::node_info::NodeView;
use crate::pod_info::PodInfo;

pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub fn filter(pod: &PodInfo, node: &NodeView) -> Result<(), Rejection> {
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let affinity_ok = match &pod.required_terms {
        None => true,
        Some(terms) => terms.iter().any(|t| term_matches(t, node)),
    };
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Rejection::unresolvable(REASON))
    }
}

/// Raw score: the summed weights of the preferred terms the node matches.
pub fn score(pod: &PodInfo, node: &NodeView) -> i64 {
    pod.preferred_terms
        .iter()
        .filter(|p| p.weight != 0 && term_matches(&p.preference, node))
        .map(|p| i64::from(p.weight))
        .sum()
}

/// A term matches when all its expressions (on labels) and fields (only
/// metadata.name) hold; a term with neither matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeView) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| requirement_matches(r, &node.labels))
        && fields.iter().all(|r| {
            r.key == "metadata.name" && {
                let name: BTreeMap<String, String> =
                    [("metadata.name".to_string(), node.name.clone())].into();
                matches!(r.operator.as_str(), "In" | "NotIn") && requirement_matches(r, &name)
            }
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let actual = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => actual.is_some_and(|v| values.contains(v)),
        "NotIn" => actual.is_none_or(|v| !values.contains(v)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        "Gt" | "Lt" => {
            let (Some(actual), [bound]) = (actual, values) else {
                return false;
            };
            match (actual.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(a), Ok(b)) if r.operator == "Gt" => a > b,
                (Ok(a), Ok(b)) => a < b,
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: "n1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            unschedulable: false,
            taints: vec![],
            allocatable: Default::default(),
            allowed_pods: 110,
        }
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn term(exprs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(exprs),
            match_fields: None,
        }
    }

    #[test]
    fn operators() {
        let n = node(&[("disk", "ssd"), ("cores", "8")]);
        assert!(term_matches(
            &term(vec![req("disk", "In", &["ssd", "nvme"])]),
            &n
        ));
        assert!(!term_matches(
            &term(vec![req("disk", "NotIn", &["ssd"])]),
            &n
        ));
        assert!(term_matches(&term(vec![req("gpu", "NotIn", &["x"])]), &n));
        assert!(term_matches(&term(vec![req("disk", "Exists", &[])]), &n));
        assert!(term_matches(
            &term(vec![req("gpu", "DoesNotExist", &[])]),
            &n
        ));
        assert!(term_matches(&term(vec![req("cores", "Gt", &["4"])]), &n));
        assert!(!term_matches(&term(vec![req("cores", "Lt", &["4"])]), &n));
        assert!(!term_matches(&term(vec![]), &n));
    }

    #[test]
    fn match_fields_on_the_node_name() {
        let n = node(&[]);
        let t = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        assert!(term_matches(&t, &n));
    }
}
