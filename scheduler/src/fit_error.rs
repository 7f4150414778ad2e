//! Why a pod fits nowhere, worded as upstream's FitError: "0/3 nodes are
//! available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node
//! affinity/selector. preemption: 0/3 nodes are available: 1 No preemption
//! victims found for incoming pod, 2 Preemption is not helpful for scheduling."

use std::borrow::Cow;
use std::collections::HashMap;

use crate::plugins::Rejection;

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The filter results of one failed scheduling attempt.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// How many nodes gave each reason.
    reasons: HashMap<Cow<'static, str>, usize>,
    /// Nodes rejected for reasons that evicting pods could fix (resources,
    /// ports) and for reasons it could not.
    resolvable_nodes: usize,
    unresolvable_nodes: usize,
    /// The pod has preemptionPolicy: Never.
    preemption_never: bool,
}

impl FitError {
    pub fn new(num_all_nodes: usize, preemption_never: bool) -> Self {
        FitError {
            num_all_nodes,
            preemption_never,
            ..Default::default()
        }
    }

    pub fn add(&mut self, rejection: Rejection) {
        if rejection.resolvable {
            self.resolvable_nodes += 1;
        } else {
            self.unresolvable_nodes += 1;
        }
        for r in rejection.reasons {
            *self.reasons.entry(r).or_insert(0) += 1;
        }
    }

    /// Upstream's FitError.Error() followed by the default preemption
    /// plugin's message. This scheduler does not preempt: every node that
    /// eviction could free is reported as having no victims.
    pub fn message(&self) -> String {
        let n = self.num_all_nodes;
        let mut msg = format!("0/{n} nodes are available:");
        let filter = histogram(self.reasons.iter().map(|(r, c)| (r.as_ref(), *c)));
        if !filter.is_empty() {
            msg.push_str(&format!(" {filter}."));
        }
        if self.preemption_never {
            msg.push_str(" preemption: not eligible due to preemptionPolicy=Never.");
            return msg;
        }
        // Nodes the filters did not reach count as "not helpful", as upstream's
        // absent-nodes status does.
        let not_helpful = n.saturating_sub(self.resolvable_nodes);
        let preemption = histogram(
            [
                (NOT_HELPFUL, not_helpful),
                (NO_VICTIMS, self.resolvable_nodes),
            ]
            .into_iter()
            .filter(|(_, c)| *c > 0),
        );
        msg.push_str(&format!(" preemption: 0/{n} nodes are available:"));
        if !preemption.is_empty() {
            msg.push_str(&format!(" {preemption}."));
        }
        msg
    }
}

/// "count reason" entries, sorted as strings (upstream sorts the formatted
/// entries, so "10 x" comes before "2 y"), joined by ", ".
fn histogram<'a>(counts: impl Iterator<Item = (&'a str, usize)>) -> String {
    let mut entries: Vec<String> = counts.map(|(r, c)| format!("{c} {r}")).collect();
    entries.sort();
    entries.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{node_affinity, node_ports};

    #[test]
    fn upstream_wording_and_order() {
        let mut e = FitError::new(3, false);
        e.add(Rejection::resolvable(vec!["Insufficient cpu".into()]));
        e.add(Rejection::unresolvable(node_affinity::REASON));
        e.add(Rejection::unresolvable(node_affinity::REASON));
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn one_node_many_reasons() {
        let mut e = FitError::new(1, false);
        e.add(Rejection::resolvable(vec![
            "Insufficient cpu".into(),
            "Insufficient memory".into(),
        ]));
        assert_eq!(
            e.message(),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn taints_and_never_preempting_pods() {
        let mut e = FitError::new(2, true);
        e.add(Rejection::unresolvable(
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
        ));
        e.add(Rejection::resolvable(vec![node_ports::REASON.into()]));
        assert_eq!(
            e.message(),
            "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, \
             1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. \
             preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
