//! The etcd backend of [`Store`], over etcd's v3 gRPC API (`etcd-client`).
//!
//! Every conditional write is one etcd transaction comparing the key's
//! `mod_revision`, so compare-and-swap is atomic on the server. Keys are the
//! full keys the apiserver builds (its `--etcd-prefix` is already in them).

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchOptions, WatchResponse, WatchStream,
};
use futures::stream::{self, BoxStream, StreamExt};

use super::{EventKind, KeyValue, ListResult, Result, Revision, Store, StoreError, WatchEvent};

/// How long one connection attempt to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a unary request may wait for its answer (a watch only for its
/// first answer: the timeout does not cover a stream's body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// HTTP/2 pings on open streams, so a watch on a dead etcd ends instead of
/// hanging. etcd refuses pings more often than every 5 s by default.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the extra round-trip that looks up the compacted revision.
const COMPACTED_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// gRPC status codes (wire values) that mean "etcd cannot be reached now".
const GRPC_CANCELLED: i32 = 1;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_UNAVAILABLE: i32 = 14;

/// A [`Store`] kept in an etcd v3 cluster (etcd 3.4 or later).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
}

impl EtcdStore {
    /// Connects to `endpoints` (e.g. `http://127.0.0.1:2379`) and checks with
    /// one read that etcd answers (`Unavailable` if it does not in time).
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        Self::connect_with_timeouts(endpoints, CONNECT_TIMEOUT, REQUEST_TIMEOUT).await
    }

    async fn connect_with_timeouts(
        endpoints: &[String],
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<EtcdStore> {
        if endpoints.is_empty() {
            return Err(StoreError::Unavailable("no etcd endpoints given".into()));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(connect_timeout)
            .with_timeout(request_timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(map_error)?;
        let store = EtcdStore { client };
        store.current_revision().await?;
        Ok(store)
    }

    /// The revision etcd has compacted to, learned from a watch at `requested`
    /// (a range error does not carry it; a refused watch does). 0 if unknown.
    async fn compacted_revision(&self, key: &[u8], requested: Revision) -> Revision {
        let lookup = async {
            let options = WatchOptions::new().with_start_revision(requested);
            let mut watcher = self
                .client
                .watch_client()
                .watch(key.to_vec(), Some(options))
                .await
                .ok()?;
            while let Ok(Some(response)) = watcher.message().await {
                if response.compact_revision() != 0 {
                    return Some(response.compact_revision());
                }
                if response.canceled() || !response.events().is_empty() {
                    return None;
                }
            }
            None
        };
        tokio::time::timeout(COMPACTED_LOOKUP_TIMEOUT, lookup)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Maps an error of a read at `revision`, filling in the compacted revision.
    async fn read_error(
        &self,
        err: etcd_client::Error,
        key: &[u8],
        revision: Option<Revision>,
    ) -> StoreError {
        let requested = revision.unwrap_or(0);
        match classify_error(&err) {
            Failure::Compacted => StoreError::Compacted {
                requested,
                compacted: self.compacted_revision(key, requested).await,
            },
            Failure::FutureRevision => StoreError::FutureRevision(requested),
            other => other.into_store_error(),
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.client.kv_client().txn(txn).await.map_err(map_error)
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut response = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(map_error)?;
        response
            .take_kvs()
            .into_iter()
            .next()
            .map(convert_kv)
            .transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_key: Option<&str>,
        revision: Option<Revision>,
        limit: Option<i64>,
    ) -> Result<ListResult> {
        let revision = revision.filter(|rev| *rev > 0);
        let start = range_start(prefix, start_key);
        let mut options = GetOptions::new().with_range(prefix_range_end(prefix.as_bytes()));
        if let Some(rev) = revision {
            options = options.with_revision(rev);
        }
        if let Some(limit) = limit.filter(|limit| *limit > 0) {
            options = options.with_limit(limit);
        }
        let mut response = match self
            .client
            .kv_client()
            .get(start.clone(), Some(options))
            .await
        {
            Ok(response) => response,
            Err(err) => return Err(self.read_error(err, &start, revision).await),
        };
        let served_at = match revision {
            Some(rev) => rev,
            None => header_revision(response.header())?,
        };
        let more = response.more();
        let count = response.count();
        let items = response
            .take_kvs()
            .into_iter()
            .map(convert_kv)
            .collect::<Result<Vec<_>>>()?;
        let returned = i64::try_from(items.len()).unwrap_or(i64::MAX);
        Ok(ListResult {
            items,
            revision: served_at,
            more,
            // `count` covers the whole range from `start`, not just this page.
            remaining: Some(count.saturating_sub(returned).max(0)),
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        header_revision(response.header())
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        // `version > 0` keeps an absent key (mod_revision 0) from matching expected == 0.
        let txn = Txn::new()
            .when([
                Compare::version(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(failed_compare(key, &response)?);
        }
        header_revision(response.header())
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(failed_compare(key, &response)?);
        }
        let revision = header_revision(response.header())?;
        let deleted = response
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(mut delete) => delete.take_prev_kvs().into_iter().next(),
                _ => None,
            })
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        Ok((revision, convert_kv(deleted)?))
    }

    async fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>> {
        let mut options = WatchOptions::new()
            .with_range(prefix_range_end(prefix.as_bytes()))
            .with_prev_key();
        // etcd reads start_revision 0 as "from now on".
        if from > 0 {
            options = options.with_start_revision(from);
        }
        let mut watcher = self
            .client
            .watch_client()
            .watch(range_start(prefix, None), Some(options))
            .await
            .map_err(map_error)?;
        let mut state = WatchState {
            watcher: None,
            pending: VecDeque::new(),
            next_revision: from,
            done: false,
        };
        // Wait for etcd's answer to the create request: once this returns, the
        // watch is registered, and a refusal surfaces here or as the first item.
        // The client's request timeout does not cover stream messages.
        let first = tokio::time::timeout(REQUEST_TIMEOUT, watcher.message())
            .await
            .map_err(|_| StoreError::Unavailable("etcd did not answer the watch".into()))?;
        match first.map_err(map_error)? {
            Some(response) => state.absorb(response),
            None => return Err(StoreError::Unavailable("etcd closed the watch".into())),
        }
        // The stream owns the watcher: dropping its request side would end the watch.
        state.watcher = Some(watcher);
        Ok(stream::unfold(state, WatchState::next).boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response = self
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(map_error)?;
        header_revision(response.header())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= 0 {
            return Ok(());
        }
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => Ok(()),
            Err(err) => match classify_error(&err) {
                // Already compacted at or past `revision`: nothing left to drop.
                Failure::Compacted => Ok(()),
                Failure::FutureRevision => Err(StoreError::FutureRevision(revision)),
                other => Err(other.into_store_error()),
            },
        }
    }
}

/// The consumer's side of one etcd watch.
struct WatchState {
    watcher: Option<WatchStream>,
    pending: VecDeque<Result<WatchEvent>>,
    /// The first revision not yet delivered (what a compaction cut off).
    next_revision: Revision,
    done: bool,
}

impl WatchState {
    async fn next(mut self) -> Option<(Result<WatchEvent>, WatchState)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            let watcher = self.watcher.as_mut()?;
            match watcher.message().await {
                Ok(Some(response)) => self.absorb(response),
                Ok(None) => self.fail(StoreError::Unavailable("etcd closed the watch".into())),
                Err(err) => self.fail(map_error(err)),
            }
        }
    }

    fn fail(&mut self, err: StoreError) {
        self.pending.push_back(Err(err));
        self.done = true;
        // Release the etcd watch now rather than when the consumer drops us.
        self.watcher = None;
    }

    fn absorb(&mut self, response: WatchResponse) {
        if response.compact_revision() != 0 {
            return self.fail(StoreError::Compacted {
                requested: self.next_revision,
                compacted: response.compact_revision(),
            });
        }
        if response.canceled() {
            let reason = response.cancel_reason();
            return self.fail(StoreError::Unavailable(format!(
                "etcd canceled the watch: {reason}"
            )));
        }
        for event in response.events() {
            match convert_event(event) {
                Ok(event) => {
                    self.next_revision = event.revision + 1;
                    self.pending.push_back(Ok(event));
                }
                Err(err) => return self.fail(err),
            }
        }
    }
}

fn convert_event(event: &etcd_client::Event) -> Result<WatchEvent> {
    let kv = event
        .kv()
        .ok_or_else(|| StoreError::Internal("etcd watch event without a key".into()))?;
    let is_put = event.event_type() == EventType::Put;
    let kind = event_kind(is_put, kv.create_revision(), kv.mod_revision());
    let prev_value = match kind {
        EventKind::Created => None,
        _ => event.prev_kv().map(|prev| prev.value().to_vec()),
    };
    Ok(WatchEvent {
        kind,
        key: utf8_key(kv.key())?,
        value: if is_put {
            kv.value().to_vec()
        } else {
            Vec::new()
        },
        prev_value,
        revision: kv.mod_revision(),
    })
}

/// A put whose key was created by that very write is a creation.
fn event_kind(is_put: bool, create_revision: Revision, mod_revision: Revision) -> EventKind {
    match (is_put, create_revision == mod_revision) {
        (false, _) => EventKind::Deleted,
        (true, true) => EventKind::Created,
        (true, false) => EventKind::Modified,
    }
}

/// The error for a transaction whose compares failed; its else-branch read the key.
fn failed_compare(key: &str, response: &TxnResponse) -> Result<StoreError> {
    let current = response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
        _ => None,
    });
    Ok(match current {
        None => StoreError::NotFound(key.to_string()),
        Some(kv) => StoreError::Conflict {
            key: key.to_string(),
            current: Some(Box::new(convert_kv(kv)?)),
        },
    })
}

fn convert_kv(kv: etcd_client::KeyValue) -> Result<KeyValue> {
    let create_revision = kv.create_revision();
    let mod_revision = kv.mod_revision();
    let (key, value) = kv.into_key_value();
    Ok(KeyValue {
        key: utf8_key(&key)?,
        value,
        create_revision,
        mod_revision,
    })
}

fn utf8_key(key: &[u8]) -> Result<String> {
    String::from_utf8(key.to_vec())
        .map_err(|_| StoreError::Internal(format!("etcd key is not UTF-8: {key:?}")))
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|header| header.revision())
        .ok_or_else(|| StoreError::Internal("etcd response without a header".into()))
}

/// The first key of a range over `prefix`, from `start_key` when that lies inside it.
fn range_start(prefix: &str, start_key: Option<&str>) -> Vec<u8> {
    let start = match start_key {
        Some(key) if key > prefix => key,
        _ => prefix,
    };
    if start.is_empty() {
        // etcd rejects an empty key; "\0" is the smallest non-empty one.
        vec![0]
    } else {
        start.as_bytes().to_vec()
    }
}

/// The exclusive end of the key range holding every key that starts with `prefix`:
/// the prefix with its last byte below 0xff incremented and the rest dropped.
/// "\0" (etcd's "to the end") when there is no such byte.
fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// What an etcd failure means to the store.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Compacted,
    FutureRevision,
    Unavailable(String),
    Other(String),
}

impl Failure {
    /// The error when no revision context is needed (see [`EtcdStore::read_error`]).
    fn into_store_error(self) -> StoreError {
        match self {
            Failure::Compacted => StoreError::Compacted {
                requested: 0,
                compacted: 0,
            },
            Failure::FutureRevision => StoreError::FutureRevision(0),
            Failure::Unavailable(message) => StoreError::Unavailable(message),
            Failure::Other(message) => StoreError::Internal(message),
        }
    }
}

fn map_error(err: etcd_client::Error) -> StoreError {
    classify_error(&err).into_store_error()
}

fn classify_error(err: &etcd_client::Error) -> Failure {
    use etcd_client::Error;
    match err {
        Error::GRpcStatus(status) => {
            // A status with a source was made on our side from a broken
            // connection (e.g. an h2 read error), not sent by etcd.
            let from_transport = std::error::Error::source(status).is_some();
            classify_status(status.code() as i32, status.message(), from_transport)
        }
        Error::TransportError(_) | Error::IoError(_) | Error::EndpointError(_) => {
            Failure::Unavailable(err.to_string())
        }
        Error::WatchError(_) => Failure::Unavailable(err.to_string()),
        _ => Failure::Other(err.to_string()),
    }
}

/// Classifies a gRPC status by etcd's error texts (mvcc's ErrCompacted and
/// ErrFutureRev carry no code of their own), by its code, and by whether the
/// client's transport made it.
fn classify_status(code: i32, message: &str, from_transport: bool) -> Failure {
    if message.contains("required revision has been compacted") {
        Failure::Compacted
    } else if message.contains("required revision is a future revision") {
        Failure::FutureRevision
    } else if from_transport
        || matches!(
            code,
            GRPC_CANCELLED | GRPC_DEADLINE_EXCEEDED | GRPC_UNAVAILABLE
        )
    {
        Failure::Unavailable(format!("etcd: {message}"))
    } else {
        Failure::Other(format!("etcd: {message} (gRPC code {code})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_increments_last_byte() {
        assert_eq!(prefix_range_end(b"/registry/pods/"), b"/registry/pods0");
        assert_eq!(prefix_range_end(b"a"), b"b");
    }

    #[test]
    fn prefix_range_end_drops_trailing_ff_bytes() {
        assert_eq!(prefix_range_end(&[b'a', 0xff, 0xff]), b"b");
        assert_eq!(prefix_range_end(&[0xff]), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }

    #[test]
    fn range_start_uses_start_key_only_inside_the_prefix() {
        assert_eq!(range_start("/p/", None), b"/p/");
        assert_eq!(range_start("/p/", Some("/p/b")), b"/p/b");
        // A start key before the prefix must not widen the range.
        assert_eq!(range_start("/p/", Some("/a")), b"/p/");
        assert_eq!(range_start("", None), vec![0]);
    }

    #[test]
    fn event_kind_follows_revisions() {
        assert_eq!(event_kind(true, 5, 5), EventKind::Created);
        assert_eq!(event_kind(true, 5, 7), EventKind::Modified);
        assert_eq!(event_kind(false, 5, 9), EventKind::Deleted);
    }

    #[test]
    fn classify_status_recognises_etcd_mvcc_errors() {
        assert_eq!(
            classify_status(
                11,
                "etcdserver: mvcc: required revision has been compacted",
                false
            ),
            Failure::Compacted
        );
        assert_eq!(
            classify_status(
                11,
                "etcdserver: mvcc: required revision is a future revision",
                false
            ),
            Failure::FutureRevision
        );
    }

    #[test]
    fn classify_status_maps_connection_codes_to_unavailable() {
        for code in [GRPC_CANCELLED, GRPC_DEADLINE_EXCEEDED, GRPC_UNAVAILABLE] {
            assert!(matches!(
                classify_status(code, "etcdserver: request timed out", false),
                Failure::Unavailable(_)
            ));
        }
        assert!(matches!(
            classify_status(2, "h2 protocol error: error reading a body", true),
            Failure::Unavailable(_)
        ));
        assert!(matches!(
            classify_status(3, "etcdserver: key is not provided", false),
            Failure::Other(_)
        ));
    }

    #[test]
    fn utf8_key_rejects_invalid_bytes() {
        assert_eq!(utf8_key(b"/a").as_deref(), Ok("/a"));
        assert!(matches!(
            utf8_key(&[0xff, 0xfe]),
            Err(StoreError::Internal(_))
        ));
    }

    #[tokio::test]
    async fn connect_to_a_dead_endpoint_is_unavailable() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("bind a loopback port");
        let endpoints = vec![format!("http://127.0.0.1:{port}")];
        let result = EtcdStore::connect_with_timeouts(
            &endpoints,
            Duration::from_millis(200),
            Duration::from_millis(500),
        )
        .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "got {:?}",
            result.err()
        );
    }

    #[tokio::test]
    async fn connect_without_endpoints_is_unavailable() {
        let result = EtcdStore::connect(&[]).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
    }
}
