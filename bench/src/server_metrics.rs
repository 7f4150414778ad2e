//! The apiserver's own view of request time (/metrics), to tell time spent
//! inside the server from time spent on the wire and in queues.

use anyhow::Result;

const COUNT: &str = "apiserver_request_total";
const SECONDS: &str = "apiserver_request_duration_seconds_sum";

/// Request count and summed seconds for one verb and resource.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Served {
    pub count: f64,
    pub seconds: f64,
}

impl Served {
    /// Mean server-side milliseconds per request since `before`.
    pub fn mean_ms_since(&self, before: &Served) -> Option<f64> {
        let n = self.count - before.count;
        (n > 0.0).then(|| (self.seconds - before.seconds) * 1000.0 / n)
    }
}

pub async fn scrape(client: &kube::Client, verb: &str, resource: &str) -> Result<Served> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(Served {
        count: sum(&text, COUNT, verb, resource),
        seconds: sum(&text, SECONDS, verb, resource),
    })
}

/// Sums a family's samples whose labels hold `verb` and `resource` (any code).
fn sum(text: &str, family: &str, verb: &str, resource: &str) -> f64 {
    let verb_label = format!("verb=\"{verb}\"");
    let resource_label = format!("resource=\"{resource}\"");
    text.lines()
        .filter_map(|line| {
            let labels_and_value = line.strip_prefix(family)?.strip_prefix('{')?;
            let (labels, value) = labels_and_value.rsplit_once('}')?;
            let wanted = labels.split(',').any(|l| l == verb_label)
                && labels.split(',').any(|l| l == resource_label);
            wanted.then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_samples() {
        let text = "# HELP x\n\
            apiserver_request_total{verb=\"POST\",resource=\"pods\",code=\"201\"} 10\n\
            apiserver_request_total{verb=\"POST\",resource=\"pods\",code=\"409\"} 2\n\
            apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 7\n\
            apiserver_request_total{verb=\"POST\",resource=\"podsx\",code=\"201\"} 100\n\
            apiserver_request_duration_seconds_sum{verb=\"POST\",resource=\"pods\",code=\"201\"} 0.5\n";
        assert_eq!(sum(text, COUNT, "POST", "pods"), 12.0);
        assert_eq!(sum(text, SECONDS, "POST", "pods"), 0.5);
        assert_eq!(sum(text, COUNT, "DELETE", "pods"), 0.0);
    }

    #[test]
    fn mean_per_request() {
        let before = Served {
            count: 10.0,
            seconds: 1.0,
        };
        let after = Served {
            count: 110.0,
            seconds: 3.0,
        };
        assert_eq!(after.mean_ms_since(&before), Some(20.0));
        assert_eq!(before.mean_ms_since(&before), None);
    }
}
