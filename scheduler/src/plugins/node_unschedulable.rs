//! NodeUnschedulable: a cordoned node (spec.unschedulable) takes only pods
//! that tolerate node.kubernetes.io/unschedulable:NoSchedule.

use k8s_openapi::api::core::v1::Taint;

use super::taint_toleration::tolerated;
use super::Rejection;
use crate::node_info::{NodeView, TAINT_UNSCHEDULABLE};
use crate::pod_info::PodInfo;

pub const REASON: &str = "node(s) were unschedulable";

pub fn filter(pod: &PodInfo, node: &NodeView) -> Result<(), Rejection> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        ..Default::default()
    };
    if tolerated(&pod.tolerations, &taint) {
        return Ok(());
    }
    Err(Rejection::unresolvable(REASON))
}
