//! Names outside the cluster domain go to the upstream nameservers
//! (`--upstream-nameservers`), tried in order; as CoreDNS's `forward`,
//! over UDP first and again over TCP when the answer comes back truncated.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsExchange, DnsHandle};
use hickory_net::NetError;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, Query};

/// How long one upstream may take to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("upstream {upstream}: {source}")]
    Upstream {
        upstream: SocketAddr,
        source: NetError,
    },
    #[error("upstream {0} closed without an answer")]
    NoAnswer(SocketAddr),
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
}

impl Forwarder {
    /// None without upstreams: names outside the domain are then REFUSED.
    pub fn new(upstreams: Vec<SocketAddr>) -> Option<Self> {
        (!upstreams.is_empty()).then_some(Forwarder { upstreams })
    }

    /// The first upstream's answer (whatever its response code); an error
    /// only when none answered.
    pub async fn resolve(&self, query: &Query) -> Result<Message, ForwardError> {
        let mut last = None;
        for &upstream in &self.upstreams {
            match ask(upstream, query).await {
                Ok(message) => return Ok(message),
                Err(e) => {
                    tracing::debug!(error = %e, "forward");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(ForwardError::NoAnswer(SocketAddr::from(([0, 0, 0, 0], 0)))))
    }
}

async fn ask(upstream: SocketAddr, query: &Query) -> Result<Message, ForwardError> {
    // The provider owns the tasks it spawns (each exchange's background
    // half); they are aborted when its last clone is dropped, so one clone
    // lives until the answer is in.
    let provider = TokioRuntimeProvider::default();
    let udp = UdpClientStream::builder(upstream, provider.clone())
        .with_timeout(Some(UPSTREAM_TIMEOUT))
        .exchange();
    let answer = first(&udp, query, upstream).await?;
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    let tcp = TcpClientStream::exchange(upstream, None, UPSTREAM_TIMEOUT, None, provider.clone())
        .await
        .map_err(|source| ForwardError::Upstream { upstream, source })?;
    let answer = first(&tcp, query, upstream).await;
    drop(provider);
    answer
}

async fn first(
    exchange: &DnsExchange<TokioRuntimeProvider>,
    query: &Query,
    upstream: SocketAddr,
) -> Result<Message, ForwardError> {
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    options.recursion_desired = true;
    let mut responses = exchange.send(DnsRequest::from_query(query.clone(), options));
    match responses.next().await {
        Some(Ok(response)) => Ok(response.into_message()),
        Some(Err(source)) => Err(ForwardError::Upstream { upstream, source }),
        None => Err(ForwardError::NoAnswer(upstream)),
    }
}
