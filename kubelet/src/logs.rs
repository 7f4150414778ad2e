//! Container logs in the CRI format (`<RFC3339Nano> <stream> <P|F> <msg>`),
//! read with kubectl's options: tailLines, timestamps, limitBytes,
//! sinceSeconds/sinceTime and follow (upstream's pkg/kubelet/kuberuntime/logs).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use crate::cri::Cri;

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct LogOptions {
    #[serde(default, deserialize_with = "bool_flag")]
    pub follow: bool,
    pub tail_lines: Option<i64>,
    #[serde(default, deserialize_with = "bool_flag")]
    pub previous: bool,
    #[serde(default, deserialize_with = "bool_flag")]
    pub timestamps: bool,
    pub limit_bytes: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<String>,
}

/// "true"/"1" are true, anything else false (kubectl sends "true").
fn bool_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    Ok(matches!(s.as_str(), "true" | "1" | "True"))
}

/// One parsed log record.
#[derive(Debug, PartialEq)]
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub msg: &'a [u8],
}

pub fn parse_line(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let msg = parts.next().unwrap_or_default();
    Some(Record {
        time,
        stream,
        partial: tag.first() == Some(&b'P'),
        msg,
    })
}

impl LogOptions {
    fn since(&self) -> Option<Timestamp> {
        if let Some(t) = self.since_time.as_deref().and_then(|t| t.parse().ok()) {
            return Some(t);
        }
        self.since_seconds
            .map(|s| Timestamp::now() - jiff::SignedDuration::from_secs(s))
    }
}

/// Formats records as the client wants them, counting the byte limit.
struct Formatter {
    timestamps: bool,
    since: Option<Timestamp>,
    remaining: Option<i64>,
}

impl Formatter {
    fn new(o: &LogOptions) -> Self {
        Self {
            timestamps: o.timestamps,
            since: o.since(),
            remaining: o.limit_bytes.filter(|l| *l > 0),
        }
    }

    fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Append a record; false once the byte limit is reached.
    fn push(&mut self, out: &mut Vec<u8>, r: &Record) -> bool {
        if let Some(since) = self.since {
            if r.time.parse::<Timestamp>().is_ok_and(|t| t < since) {
                return true;
            }
        }
        let mut buf = Vec::with_capacity(r.msg.len() + 40);
        if self.timestamps {
            buf.extend_from_slice(r.time.as_bytes());
            buf.push(b' ');
        }
        buf.extend_from_slice(r.msg);
        if !r.partial {
            buf.push(b'\n');
        }
        if let Some(rem) = self.remaining.as_mut() {
            let take = (*rem as usize).min(buf.len());
            out.extend_from_slice(&buf[..take]);
            *rem -= take as i64;
            return *rem > 0;
        }
        out.extend_from_slice(&buf);
        true
    }
}

/// The formatted content of a whole log file (no follow).
pub fn format_all(content: &[u8], o: &LogOptions) -> Vec<u8> {
    let lines: Vec<&[u8]> = content
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let start = match o.tail_lines {
        Some(n) if n >= 0 => lines.len().saturating_sub(n as usize),
        _ => 0,
    };
    let mut f = Formatter::new(o);
    let mut out = Vec::new();
    for line in &lines[start..] {
        if let Some(r) = parse_line(line) {
            if !f.push(&mut out, &r) {
                break;
            }
        }
    }
    out
}

/// Stream a log file: what is there, then (with follow) what is appended
/// until the container has exited. Stops when the receiver goes away.
pub async fn stream(
    path: PathBuf,
    o: LogOptions,
    cri: Cri,
    container_id: String,
    tx: mpsc::Sender<Bytes>,
) {
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return;
    };
    let mut content = Vec::new();
    if file.read_to_end(&mut content).await.is_err() {
        return;
    }
    // Only whole lines now; a trailing half line is read again later.
    let whole = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let first = format_all(&content[..whole], &o);
    let mut f = Formatter::new(&o);
    if let Some(rem) = f.remaining.as_mut() {
        *rem -= first.len() as i64;
    }
    if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
        return;
    }
    if !o.follow || f.done() {
        return;
    }
    let mut offset = whole as u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut idle = Duration::ZERO;
    loop {
        if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
            return;
        }
        let mut chunk = Vec::new();
        if file.read_to_end(&mut chunk).await.is_err() {
            return;
        }
        if chunk.is_empty() {
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            idle += Duration::from_millis(200);
            if idle >= Duration::from_secs(1) {
                idle = Duration::ZERO;
                let running = cri
                    .container_status(&container_id)
                    .await
                    .map(|s| s.state == k8s_cri::v1::ContainerState::ContainerRunning as i32)
                    .unwrap_or(false);
                if !running {
                    return;
                }
            }
            continue;
        }
        idle = Duration::ZERO;
        offset += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let mut out = Vec::new();
        let mut more = true;
        for line in pending[..end]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            if let Some(r) = parse_line(line) {
                if !f.push(&mut out, &r) {
                    more = false;
                    break;
                }
            }
        }
        pending.drain(..=end);
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
        if !more {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-05-01T10:00:00.000000001Z stdout F one\n\
2024-05-01T10:00:01.000000000Z stderr P tw\n\
2024-05-01T10:00:01.000000002Z stderr F o\n\
2024-05-01T10:00:02.000000000Z stdout F three\n";

    #[test]
    fn parses_cri_lines() {
        let r = parse_line(b"2024-05-01T10:00:00Z stdout F hello world").unwrap();
        assert_eq!(r.stream, "stdout");
        assert!(!r.partial);
        assert_eq!(r.msg, b"hello world");
        assert_eq!(
            parse_line(b"2024-05-01T10:00:00Z stdout F").unwrap().msg,
            b""
        );
    }

    #[test]
    fn formats_with_options() {
        let o = LogOptions::default();
        assert_eq!(format_all(LOG.as_bytes(), &o), b"one\ntwo\nthree\n");
        let o = LogOptions {
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(format_all(LOG.as_bytes(), &o), b"three\n");
        let o = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            format_all(LOG.as_bytes(), &o),
            b"2024-05-01T10:00:02.000000000Z three\n"
        );
        let o = LogOptions {
            limit_bytes: Some(5),
            ..Default::default()
        };
        assert_eq!(format_all(LOG.as_bytes(), &o), b"one\nt");
        let o = LogOptions {
            since_time: Some("2024-05-01T10:00:01.000000001Z".into()),
            ..Default::default()
        };
        assert_eq!(format_all(LOG.as_bytes(), &o), b"o\nthree\n");
    }

    #[test]
    fn query_flags() {
        let o: LogOptions = serde_json::from_value(
            serde_json::json!({"follow": "true", "tailLines": 3, "previous": "false"}),
        )
        .unwrap();
        assert!(o.follow);
        assert!(!o.previous);
        assert_eq!(o.tail_lines, Some(3));
    }
}
