//! kube-dns's Prometheus metrics (on /metrics beside /healthz).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    r#type: String,
    rcode: String,
}

#[derive(Clone, Default)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    services: Gauge,
    endpoints: Gauge,
}

impl Metrics {
    /// `kubedns_dns_requests_total{type,rcode}`, `kubedns_services`,
    /// `kubedns_endpoints`.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("kubedns");
        registry.register(
            "dns_requests",
            "DNS requests answered, by query type and response code",
            self.requests.clone(),
        );
        registry.register(
            "services",
            "Services known from the API",
            self.services.clone(),
        );
        registry.register(
            "endpoints",
            "Endpoints objects known from the API",
            self.endpoints.clone(),
        );
        registry
    }

    pub fn answered(&self, qtype: RecordType, rcode: ResponseCode) {
        self.requests
            .get_or_create(&RequestLabels {
                r#type: qtype.to_string(),
                rcode: rcode_label(rcode),
            })
            .inc();
    }

    pub fn set_services(&self, n: usize) {
        self.services.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_endpoints(&self, n: usize) {
        self.endpoints.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// The mnemonic as dig and CoreDNS's metrics spell it.
fn rcode_label(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => u16::from(other).to_string(),
    }
}
