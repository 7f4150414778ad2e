//! The request handler hickory-server calls for each DNS message (UDP or
//! TCP): names in the cluster domain from the [`Zone`], the rest forwarded
//! or refused. hickory-server reads and writes the messages and truncates
//! UDP answers that do not fit (512 bytes, or the asker's EDNS size).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hickory_net::runtime::Time;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::records::{dangling_cname, Answer, Zone};

pub struct Handler {
    pub zone: Arc<Zone>,
    pub forwarder: Option<Forwarder>,
    pub metrics: Metrics,
    /// Set once the reflectors have listed Services and Endpoints; until
    /// then names in the domain get SERVFAIL, not a wrong NXDOMAIN.
    pub synced: Arc<AtomicBool>,
}

/// What goes into the response.
#[derive(Debug, Default)]
struct Reply {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn code(code: ResponseCode) -> Self {
        Reply {
            code,
            ..Reply::default()
        }
    }
}

impl Handler {
    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::code(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            return Reply::code(ResponseCode::FormErr);
        };
        let query = info.query.original();
        let qtype = query.query_type();
        let in_zone = self.zone.contains(query.name());
        if query.query_class() != DNSClass::IN {
            return Reply::code(if in_zone {
                ResponseCode::NotImp
            } else {
                ResponseCode::Refused
            });
        }
        if in_zone && !self.synced.load(Ordering::Acquire) {
            return Reply::code(ResponseCode::ServFail);
        }
        match self.zone.answer(query.name(), qtype) {
            Answer::NotOurs => self.forward(query).await,
            Answer::NxDomain => Reply {
                code: ResponseCode::NXDomain,
                authoritative: true,
                authorities: vec![self.zone.soa()],
                ..Reply::default()
            },
            Answer::Found {
                mut answers,
                additionals,
            } => {
                // An ExternalName leading out of the domain: resolve its
                // target upstream, so stub resolvers get the whole chain.
                if let (Some(target), Some(forwarder)) =
                    (dangling_cname(&answers, qtype), &self.forwarder)
                {
                    if !self.zone.contains(&target) {
                        match forwarder.resolve(&Query::query(target, qtype)).await {
                            Ok(upstream) => answers.extend(upstream.answers),
                            Err(e) => tracing::debug!(error = %e, "resolving an ExternalName"),
                        }
                    }
                }
                let authorities = if answers.is_empty() {
                    // NODATA: the SOA lets resolvers cache the negative answer.
                    vec![self.zone.soa()]
                } else {
                    Vec::new()
                };
                Reply {
                    code: ResponseCode::NoError,
                    authoritative: true,
                    answers,
                    authorities,
                    additionals,
                }
            }
        }
    }

    async fn forward(&self, query: &Query) -> Reply {
        let Some(forwarder) = &self.forwarder else {
            return Reply::code(ResponseCode::Refused);
        };
        match forwarder.resolve(query).await {
            Ok(upstream) => Reply {
                code: upstream.metadata.response_code,
                authoritative: false,
                answers: upstream.answers,
                authorities: upstream.authorities,
                additionals: upstream.additionals,
            },
            Err(e) => {
                tracing::warn!(error = %e, name = %query.name(), "forwarding failed");
                Reply::code(ResponseCode::ServFail)
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request).await;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = reply.code;
        metadata.authoritative = reply.authoritative;
        metadata.recursion_available = self.forwarder.is_some();
        // Answer EDNS with EDNS: the asker's buffer size (at least 512) then
        // bounds the UDP answer before it is truncated.
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| q.query_type())
            .unwrap_or(RecordType::NULL);
        match response_handle.send_response(response).await {
            Ok(info) => {
                self.metrics.answered(qtype, info.response_code);
                info
            }
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS response");
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
