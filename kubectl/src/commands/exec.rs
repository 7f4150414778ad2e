//! `kubectl exec`: not available yet. The apiserver joins exec connections to the
//! kubelet, but the kubelet does not serve exec yet, and this client speaks neither
//! SPDY nor the websocket channel protocol yet.

use crate::cli::ExecArgs;
use crate::error::{Error, Result};
use crate::session::Session;

pub async fn run(_session: &Session, a: ExecArgs) -> Result<()> {
    if a.args.is_empty() {
        return Err(Error::msg("pod, type/name or --filename must be specified"));
    }
    Err(Error::msg(
        "exec is not supported by this kubectl yet (the kubelet does not serve exec)",
    ))
}
