//! NodePorts: two pods asking for the same host port (and protocol, on
//! overlapping addresses) never share a node.

use super::Rejection;
use crate::node_info::NodeState;
use crate::pod_info::PodInfo;

pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub fn filter(pod: &PodInfo, node: &NodeState) -> Result<(), Rejection> {
    if pod.host_ports.is_empty() || !node.ports_conflict(&pod.host_ports) {
        Ok(())
    } else {
        Err(Rejection::resolvable(vec![REASON.into()]))
    }
}
