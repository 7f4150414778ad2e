//! Prometheus metrics at /metrics: request counts and latencies by verb,
//! resource and code, as upstream's apiserver_request_* families.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
struct Series {
    count: u64,
    seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
        let verb = if METHODS.contains(&verb) {
            verb
        } else {
            "other"
        };
        let mut m = self.requests.lock().expect("metrics lock");
        let s = m
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default();
        s.count += 1;
        s.seconds += elapsed.as_secs_f64();
    }

    /// The text exposition format.
    pub fn render(&self, watch_cache_revision: i64) -> String {
        let m = self.requests.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out by verb, resource and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), s) in m.iter() {
            let _ = writeln!(out, "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {}", s.count);
        }
        out.push_str(
            "# HELP apiserver_request_duration_seconds_sum Total time spent serving requests.\n",
        );
        out.push_str("# TYPE apiserver_request_duration_seconds_sum counter\n");
        for ((verb, resource, code), s) in m.iter() {
            let _ = writeln!(out, "apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {:.6}", s.seconds);
        }
        out.push_str("# HELP apiserver_watch_cache_resource_version The revision the watch cache has reached.\n");
        out.push_str("# TYPE apiserver_watch_cache_resource_version gauge\n");
        let _ = writeln!(
            out,
            "apiserver_watch_cache_resource_version {watch_cache_revision}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.observe("GET", "pods", 200, Duration::from_millis(5));
        m.observe("GET", "pods", 200, Duration::from_millis(5));
        let text = m.render(7);
        assert!(
            text.contains("apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("apiserver_watch_cache_resource_version 7"));
    }
}
