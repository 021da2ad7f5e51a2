//! Where the controller's state and event history live. In the sandbox: memory. On NATS:
//! every event goes into a JetStream stream (the history an on-call engineer scrolls back
//! through) and its changes into a JetStream KV bucket (the state), so a controller killed
//! with -9 and started again loses nothing and its revision never goes back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::bus::{Bus, NatsBus};
use crate::protocol::{Change, Envelope, Event, Fleet, decode};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError(format!("{what}: {e}"))
}

/// One event on its way into the store: the subject it is published on and its encoding.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub envelope: Envelope<Event>,
    pub bytes: Bytes,
}

/// Why a commit stopped short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The bus or the store did not answer: the same events may be committed again.
    Unreachable,
    /// The store refused the event itself (too large): no retry mends it.
    Refused,
    /// The stream's last sequence is not the one this controller wrote last: another writer
    /// (a superseded leader, a forger) published on it, so this controller's view of the
    /// history is no longer the history.
    Superseded,
}

/// A commit that made only the first `stored` events of its batch durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct CommitError {
    pub stored: usize,
    pub fault: Fault,
    pub error: StoreError,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The state as last saved, at its revision; an empty fleet the first time.
    async fn load(&self) -> Result<Fleet, StoreError>;
    /// Makes a batch of events durable and visible to subscribers, in revision order: all
    /// of them, or the first `CommitError::stored` and none after.
    async fn commit(&self, batch: &[Outgoing]) -> Result<(), CommitError>;
    /// Events stamped at or after `since_ts`, oldest first, the newest `limit` of them.
    async fn history(&self, since_ts: u64, limit: usize) -> Result<Vec<Event>, StoreError>;
    /// Where the apps' releases are kept: in memory only unless the store says otherwise.
    fn releases(&self) -> Arc<dyn super::releases::ReleaseLog> {
        Arc::new(super::releases::MemoryLog)
    }
}

/// The sandbox's store: events are published on the bus and the recent ones kept here.
pub struct MemoryStore {
    bus: Arc<dyn Bus>,
    recent: Mutex<VecDeque<Event>>,
}

/// How many events the memory store keeps for late joiners.
pub const MEMORY_HISTORY: usize = 10_000;

impl MemoryStore {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        MemoryStore { bus, recent: Mutex::new(VecDeque::new()) }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load(&self) -> Result<Fleet, StoreError> {
        Ok(Fleet::default())
    }

    async fn commit(&self, batch: &[Outgoing]) -> Result<(), CommitError> {
        for (stored, out) in batch.iter().enumerate() {
            if let Ok(mut recent) = self.recent.lock() {
                if recent.len() >= MEMORY_HISTORY {
                    recent.pop_front();
                }
                recent.push_back(out.envelope.body.clone());
            }
            if let Err(e) = self.bus.publish(&out.subject, out.bytes.clone()).await {
                return Err(CommitError {
                    stored,
                    fault: Fault::Unreachable,
                    error: StoreError(e.to_string()),
                });
            }
        }
        Ok(())
    }

    async fn history(&self, since_ts: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let recent = self.recent.lock().map_err(|_| StoreError("history lock poisoned".into()))?;
        let matching: Vec<&Event> = recent.iter().filter(|e| e.ts >= since_ts).collect();
        Ok(matching[matching.len().saturating_sub(limit)..].iter().map(|e| (*e).clone()).collect())
    }
}

/// Names and limits of the JetStream objects.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub stream: String,
    pub bucket: String,
    pub max_age: Duration,
    pub max_messages: i64,
    /// Copies of the stream and the bucket on a cluster; `None` leaves them as they are
    /// (one for a new one). Only the controller says.
    pub replicas: Option<usize>,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            stream: "QD_EVENTS".into(),
            bucket: "qd_state".into(),
            max_age: Duration::from_secs(24 * 3600),
            max_messages: 1_000_000,
            replicas: None,
        }
    }
}

/// Where the KV snapshot stands: its revision, and the stream sequence of that event.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Meta {
    revision: u64,
    stream_seq: u64,
}

const META_KEY: &str = "meta";

pub struct JetStreamStore {
    js: async_nats::jetstream::Context,
    kv: async_nats::jetstream::kv::Store,
    stream_name: String,
    /// The stream's last sequence as this controller wrote it: read at `load`, then moved
    /// by each ack. Every publish expects it, so a write by anyone else is seen at once.
    last_seq: Mutex<Option<u64>>,
    /// The bucket `qd_releases`; a reader's store keeps none.
    releases: Arc<dyn super::releases::ReleaseLog>,
}

/// KV writes in flight at once while a batch's state is written.
const KV_WINDOW: usize = 64;

impl JetStreamStore {
    /// Opens (creating if needed) the event stream and the state bucket.
    pub async fn open(bus: &NatsBus, config: &JetStreamConfig) -> Result<JetStreamStore, StoreError> {
        use async_nats::jetstream::{kv, stream};
        let js = bus.jetstream();
        let stream_config = stream::Config {
            name: config.stream.clone(),
            subjects: vec![crate::protocol::subjects::EVT_ALL.to_string()],
            max_age: config.max_age,
            max_messages: config.max_messages,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            num_replicas: config.replicas.unwrap_or(1),
            ..Default::default()
        };
        let mut stream = js.get_or_create_stream(stream_config).await.map_err(err("event stream"))?;
        // Limits given on the command line win over the ones the stream was made with. The
        // rest of its config stays as it is: above all its replicas, which only the
        // controller's --replicas changes (`ctl events` opens the stream with defaults).
        let info = stream.info().await.map_err(err("event stream info"))?;
        if info.config.max_age != config.max_age || info.config.max_messages != config.max_messages {
            let mut limits = info.config.clone();
            limits.max_age = config.max_age;
            limits.max_messages = config.max_messages;
            js.update_stream(limits).await.map_err(err("event stream limits"))?;
        }
        let kv = match js.get_key_value(&config.bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: config.bucket.clone(),
                    history: 1,
                    storage: stream::StorageType::File,
                    num_replicas: config.replicas.unwrap_or(1),
                    ..Default::default()
                })
                .await
                .map_err(err("state bucket"))?,
        };
        if let Some(n) = config.replicas {
            crate::bus::replicas::ensure(&js, &config.stream, n).await.map_err(StoreError)?;
            crate::bus::replicas::ensure(&js, &format!("KV_{}", config.bucket), n)
                .await
                .map_err(StoreError)?;
        }
        let releases = Arc::new(super::releases::KvLog::open(&js, config.replicas).await?);
        Ok(JetStreamStore {
            js,
            kv,
            stream_name: config.stream.clone(),
            last_seq: Mutex::new(None),
            releases,
        })
    }

    /// The event stream and state bucket as they are, for a reader (`ctl events`): looked
    /// up, never created or changed. With roles on an operator may not change them, and a
    /// reader has no business setting the history's limits to its own defaults.
    pub async fn open_reader(bus: &NatsBus, config: &JetStreamConfig) -> Result<JetStreamStore, StoreError> {
        let js = bus.jetstream();
        js.get_stream(&config.stream).await.map_err(err("event stream"))?;
        let kv = js.get_key_value(&config.bucket).await.map_err(err("state bucket"))?;
        let releases = Arc::new(super::releases::MemoryLog);
        Ok(JetStreamStore {
            js,
            kv,
            stream_name: config.stream.clone(),
            last_seq: Mutex::new(None),
            releases,
        })
    }

    pub fn key_value(&self) -> &async_nats::jetstream::kv::Store {
        &self.kv
    }

    async fn meta(&self) -> Result<Meta, StoreError> {
        match self.kv.get(META_KEY).await.map_err(err("state meta"))? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(err("state meta")),
            None => Ok(Meta::default()),
        }
    }

    /// Every key's current value, in one read of the bucket's stream (the last message per
    /// key). A get per key would be a round trip each: seconds at 20,000 instances, all of
    /// them before the controller answers a command. A read cut short is an error, never a
    /// state with keys missing.
    async fn entries(&self) -> Result<Vec<(String, Bytes)>, StoreError> {
        use async_nats::jetstream::kv::Operation;
        let mut stream = self.kv.stream.clone();
        let info = stream.info().await.map_err(err("state bucket info"))?;
        if info.state.messages == 0 {
            return Ok(Vec::new());
        }
        let mut watch = self.kv.watch_with_history(">").await.map_err(err("state read"))?;
        let mut out = Vec::new();
        loop {
            let entry = match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
                Ok(Some(entry)) => entry.map_err(err("state read"))?,
                Ok(None) => return Err(StoreError(format!("state read ended after {} keys", out.len()))),
                Err(_) => {
                    return Err(StoreError(format!("state read stalled for 10 s after {} keys", out.len())));
                }
            };
            let last = entry.delta == 0;
            if entry.operation == Operation::Put {
                out.push((entry.key, entry.value));
            }
            if last {
                return Ok(out);
            }
        }
    }

    /// Writes changes into the state bucket, then `meta`: the revision and stream sequence
    /// they bring the state to. One write per key (the last change of a key wins, removals
    /// included), several in flight at once: until `meta` is written a load replays all of
    /// these changes from the stream anyway, so their order among keys does not matter.
    async fn write_state(&self, changes: &[Change], meta: Meta) -> Result<(), StoreError> {
        // Only the last change of each key is encoded.
        let mut last: std::collections::BTreeMap<String, &Change> = std::collections::BTreeMap::new();
        // Purged once every write of the batch is done, so none lands after its purge:
        // an end's steps (compaction), a removed operation and everything under it. The
        // end itself is written first, so a start that finds the steps still there (cut
        // here) drops them again when it applies the end.
        let mut purges = Vec::new();
        for change in changes {
            match change {
                Change::OperationEnded(end) => purges.push(format!("{}.>", step_prefix(&end.id))),
                Change::OperationRemoved { id } => {
                    purges.push(format!("op.{id}"));
                    purges.push(format!("op.{id}.>"));
                }
                _ => {}
            }
            last.insert(key_of(change), change);
        }
        let writes = last
            .into_iter()
            .map(|(key, change)| state_value(change).map(|value| (key, value)))
            .collect::<Result<Vec<_>, _>>()?;
        let kv = &self.kv;
        let mut done = futures_util::stream::iter(writes)
            .map(|(key, value)| async move {
                match value {
                    Some(v) => kv.put(&key, v).await.map(|_| ()).map_err(err("state put")),
                    None => kv.delete(&key).await.map_err(err("state delete")),
                }
            })
            .buffer_unordered(KV_WINDOW);
        while let Some(written) = done.next().await {
            written?;
        }
        drop(done);
        for pattern in &purges {
            self.forget(pattern).await?;
        }
        let value = serde_json::to_vec(&meta).map_err(err("state meta"))?;
        self.kv.put(META_KEY, Bytes::from(value)).await.map_err(err("state meta"))?;
        Ok(())
    }

    /// Removes the keys `pattern` matches (`>` for any rest) from the bucket's stream: a
    /// purge leaves no marker behind, where a delete would leave one per key for good.
    async fn forget(&self, pattern: &str) -> Result<(), StoreError> {
        let subject = format!("{}{pattern}", self.kv.prefix);
        self.kv.stream.purge().filter(subject).await.map_err(err("state purge"))?;
        Ok(())
    }

    /// The stream's last sequence as this controller knows it; asked of the server only
    /// when nothing was loaded or committed yet.
    async fn last_seq(&self) -> Result<u64, StoreError> {
        let known = *self.last_seq.lock().unwrap_or_else(|p| p.into_inner());
        match known {
            Some(seq) => Ok(seq),
            None => {
                let seq = self.stream_last_seq().await?;
                self.set_last_seq(seq);
                Ok(seq)
            }
        }
    }

    fn set_last_seq(&self, seq: u64) {
        *self.last_seq.lock().unwrap_or_else(|p| p.into_inner()) = Some(seq);
    }

    async fn stream_last_seq(&self) -> Result<u64, StoreError> {
        let mut stream = self.js.get_stream(&self.stream_name).await.map_err(err("event stream"))?;
        Ok(stream.info().await.map_err(err("event stream info"))?.state.last_sequence)
    }

    /// After a wrong last sequence: how many of `rest` the stream already holds right after
    /// `last`, as copies with their message ids (published before, their acks lost), and
    /// the sequence of the last of them; `None` when anything else follows `last`: another
    /// writer's events.
    async fn own_copies(&self, rest: &[Outgoing], last: u64) -> Result<Option<(usize, u64)>, StoreError> {
        let mut stream = self.js.get_stream(&self.stream_name).await.map_err(err("event stream"))?;
        let end = stream.info().await.map_err(err("event stream info"))?.state.last_sequence;
        if end < last {
            return Ok(None);
        }
        let mut n = 0;
        while last + (n as u64) < end {
            let Some(out) = rest.get(n) else { return Ok(None) };
            let message = stream.get_raw_message(last + n as u64 + 1).await.map_err(err("event read"))?;
            let id = message.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str());
            if id != Some(out.envelope.id.as_str()) {
                return Ok(None);
            }
            n += 1;
        }
        Ok(Some((n, end)))
    }

    /// Publishes the batch, each event expecting the sequence of the one before, and
    /// awaits the acks in order. Returns the sequence of the last event stored and, if
    /// not all were, why the next one was not.
    async fn publish(
        &self,
        batch: &[Outgoing],
        base: u64,
    ) -> (usize, u64, Option<async_nats::jetstream::context::PublishError>) {
        use async_nats::jetstream::message::PublishMessage;
        let mut acks = Vec::with_capacity(batch.len());
        let mut failed = None;
        let mut previous: Option<&str> = None;
        for (i, out) in (0u64..).zip(batch) {
            // A retried event keeps its message id, so its copy in the stream is known as ours.
            let mut message = PublishMessage::build()
                .payload(out.bytes.clone())
                .message_id(&out.envelope.id)
                .expected_last_sequence(base + i);
            // The sequence alone would let an event through after one that failed if another
            // writer's event took that one's place: each also expects the one before it.
            if let Some(previous) = previous {
                message = message.expected_last_message_id(previous);
            }
            previous = Some(&out.envelope.id);
            match self.js.send_publish(out.subject.clone(), message).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let (mut stored, mut last) = (0, base);
        for ack in acks {
            match ack.await {
                Ok(ack) => {
                    stored += 1;
                    last = ack.sequence;
                }
                // The events after the first that failed fail too (their expected sequence
                // is not there): the first says why.
                Err(e) => return (stored, last, Some(e)),
            }
        }
        (stored, last, failed)
    }
    /// Events of the stream from `start` (a sequence), as long as `keep` says go on.
    async fn read_stream(
        &self,
        start: async_nats::jetstream::consumer::DeliverPolicy,
        mut keep: impl FnMut(u64, Event) -> bool,
    ) -> Result<(), StoreError> {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        let mut stream = self.js.get_stream(&self.stream_name).await.map_err(err("event stream"))?;
        let info = stream.info().await.map_err(err("event stream info"))?;
        if info.state.messages == 0 {
            return Ok(());
        }
        let last = info.state.last_sequence;
        if let async_nats::jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence } = start
            && start_sequence > last
        {
            return Ok(());
        }
        let consumer = stream
            .create_consumer(OrderedConfig { deliver_policy: start, ..Default::default() })
            .await
            .map_err(err("history reader"))?;
        let mut messages = consumer.messages().await.map_err(err("history reader"))?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            let Ok(Some(Ok(msg))) = next else { break };
            let (seq, pending) = match msg.info() {
                Ok(i) => (i.stream_sequence, i.pending),
                Err(_) => break,
            };
            match decode::<Event>(&msg.payload) {
                Ok(env) => {
                    if !keep(seq, env.body) {
                        break;
                    }
                }
                Err(e) => log::warn!("skipping undecodable event at stream sequence {seq}: {e}"),
            }
            if pending == 0 || seq >= last {
                break;
            }
        }
        Ok(())
    }
}

fn key_of(change: &Change) -> String {
    match change {
        Change::Host(h) => format!("host.{}", h.info.id),
        Change::App(a) => format!("app.{}", a.name),
        Change::AppRemoved { name } => format!("app.{name}"),
        Change::Instance(i) => format!("inst.{}", i.id),
        Change::InstanceRemoved { id } => format!("inst.{id}"),
        Change::Route(r) => route_key(&r.app, &r.backend),
        Change::RouteRemoved { app, backend } => route_key(app, backend),
        Change::Operation(o) => format!("op.{}", o.id),
        Change::OperationRemoved { id } => format!("op.{id}"),
        Change::OperationStep(d) => format!("{}.{}", step_prefix(&d.op), d.index),
        Change::OperationEnded(e) => format!("op.{}.end", e.id),
        Change::Alert(a) => kv_token("alert", &a.id),
        Change::AlertRemoved { id } => kv_token("alert", id),
        Change::Silence(x) => kv_token("silence", &x.subject.to_string()),
        Change::SilenceRemoved { subject } => kv_token("silence", subject),
    }
}

/// A KV key for an alert's id or a silence's subject: the bucket takes no `:`, which a
/// backend's `ip:port` brings.
fn kv_token(kind: &str, text: &str) -> String {
    format!("{kind}.{}", text.replace(':', "_"))
}

/// The keys of a running operation's steps: `op.<id>.step.<index>`, so that the ones an
/// end compacts are one pattern, apart from the operation and its end.
fn step_prefix(op: &str) -> String {
    format!("op.{op}.step")
}

/// The order stored changes are applied in at load: the objects first, then each
/// operation's steps by index (each must come next or replace one), then the ends, which
/// drop the steps. The bucket lists its keys in no useful order.
fn load_order(change: &Change) -> (u8, &str, u32) {
    match change {
        Change::OperationStep(d) => (1, d.op.as_str(), d.index),
        Change::OperationEnded(e) => (2, e.id.as_str(), 0),
        _ => (0, "", 0),
    }
}

/// The KV value a change leaves under its key (`key_of`); `None`: the key is deleted.
fn state_value(change: &Change) -> Result<Option<Bytes>, StoreError> {
    Ok(match change {
        Change::AppRemoved { .. }
        | Change::InstanceRemoved { .. }
        | Change::RouteRemoved { .. }
        | Change::OperationRemoved { .. }
        | Change::AlertRemoved { .. }
        | Change::SilenceRemoved { .. } => None,
        _ => Some(Bytes::from(serde_json::to_vec(change).map_err(err("state encode"))?)),
    })
}

/// What a failed publish means for the commit.
fn fault_of(e: &async_nats::jetstream::context::PublishError) -> Fault {
    use async_nats::jetstream::context::PublishErrorKind as K;
    match e.kind() {
        K::WrongLastSequence | K::WrongLastMessageId => Fault::Superseded,
        K::MaxPayloadExceeded => Fault::Refused,
        _ if is_too_large(&e.to_string()) => Fault::Refused,
        _ => Fault::Unreachable,
    }
}

/// Whether a server's refusal says the message is too large (the stream's own limit).
fn is_too_large(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    (r.contains("payload") || r.contains("size")) && (r.contains("max") || r.contains("exceed"))
}

/// KV keys allow `[-/_=.a-zA-Z0-9]`: the backend's `:` becomes `_`.
fn route_key(app: &str, backend: &str) -> String {
    format!("route.{app}.{}", backend.replace(':', "_"))
}

#[async_trait]
impl Store for JetStreamStore {
    async fn load(&self) -> Result<Fleet, StoreError> {
        // Read before anything else: an event another writer adds after this is then seen
        // by the first commit (a wrong last sequence), never skipped.
        let stream_last = self.stream_last_seq().await?;
        let meta = self.meta().await?;
        let mut fleet = Fleet::default();
        let entries = self.entries().await?;
        let mut stored = Vec::with_capacity(entries.len());
        for (key, value) in entries.iter().filter(|(k, _)| k.as_str() != META_KEY) {
            let change: Result<Change, _> = serde_json::from_slice(value);
            match change {
                Ok(c) => stored.push(c),
                Err(e) => log::warn!("ignoring state key {key}: {e}"),
            }
        }
        stored.sort_by(|a, b| load_order(a).cmp(&load_order(b)));
        for change in &stored {
            fleet.apply_change(change);
        }
        drop(stored);
        fleet.revision = meta.revision;
        // Events published after the last saved snapshot are replayed from the stream.
        let mut replayed = 0u64;
        let mut changes = Vec::new();
        let mut last = meta;
        let policy = async_nats::jetstream::consumer::DeliverPolicy::ByStartSequence {
            start_sequence: meta.stream_seq + 1,
        };
        self.read_stream(policy, |seq, event| {
            if event.rev == fleet.revision + 1 {
                let _ = fleet.apply(&event);
                replayed += 1;
                last = Meta { revision: event.rev, stream_seq: seq };
                changes.extend(event.changes);
            }
            true
        })
        .await?;
        // What was replayed goes into the state before anything else is committed: the next
        // event's `meta` would otherwise say these are stored, and a later start would skip
        // them (they were in the stream, never in the state).
        if replayed > 0 {
            self.write_state(&changes, last).await?;
        }
        self.set_last_seq(stream_last);
        log::info!(
            "loaded state at revision {} ({} hosts, {} apps, {} instances, {} routes; {replayed} events replayed)",
            fleet.revision,
            fleet.hosts.len(),
            fleet.apps.len(),
            fleet.instances.len(),
            fleet.routes.len()
        );
        Ok(fleet)
    }

    async fn commit(&self, batch: &[Outgoing]) -> Result<(), CommitError> {
        use async_nats::jetstream::context::PublishErrorKind;
        let unreachable = |error| CommitError { stored: 0, fault: Fault::Unreachable, error };
        let base = self.last_seq().await.map_err(unreachable)?;
        let (mut stored, mut last, mut failure) = (0, base, None);
        while stored < batch.len() {
            let (n, seq, failed) = self.publish(&batch[stored..], last).await;
            (stored, last) = (stored + n, seq);
            let Some(e) = failed else { break };
            let why = format!("event publish: {e}");
            if !matches!(e.kind(), PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId)
            {
                failure = Some((fault_of(&e), why));
                break;
            }
            // nats-server checks the expected sequence before its duplicate window: a
            // retried event whose first copy landed (its ack was lost) is refused as a wrong
            // sequence. Those copies are ours, not another writer's.
            match self.own_copies(&batch[stored..], last).await {
                Ok(Some((n, seq))) if n > 0 => (stored, last) = (stored + n, seq),
                Ok(_) => {
                    failure = Some((Fault::Superseded, why));
                    break;
                }
                Err(read) => {
                    failure = Some((Fault::Unreachable, format!("{why}; {read}")));
                    break;
                }
            }
        }
        if stored > 0 {
            let changes: Vec<Change> =
                batch[..stored].iter().flat_map(|o| o.envelope.body.changes.iter().cloned()).collect();
            let rev = batch[stored - 1].envelope.body.rev;
            // Cut here, the batch is in the stream but not the state: it is committed again
            // (its copies in the stream are recognised by their message ids) or replayed at
            // the next load.
            self.write_state(&changes, Meta { revision: rev, stream_seq: last })
                .await
                .map_err(unreachable)?;
        }
        // Moved only once the state is written: a batch retried after a failed write
        // expects its old place, and finds its own copies after it (`own_copies`).
        self.set_last_seq(last);
        match failure {
            None => Ok(()),
            Some((fault, why)) => Err(CommitError { stored, fault, error: StoreError(why) }),
        }
    }

    async fn history(&self, since_ts: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut stream = self.js.get_stream(&self.stream_name).await.map_err(err("event stream"))?;
        let info = stream.info().await.map_err(err("event stream info"))?;
        let state = &info.state;
        if state.messages == 0 {
            return Ok(Vec::new());
        }
        // Only the last `limit` messages are read, never the whole stream: `ts` grows with
        // the sequence, so the newest `limit` events at or after `since_ts` are among them.
        let start_sequence = history_start(state.first_sequence, state.last_sequence, limit);
        let mut out: VecDeque<Event> = VecDeque::with_capacity(limit.min(1024));
        let policy = async_nats::jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence };
        self.read_stream(policy, |_, event| {
            if event.ts >= since_ts {
                if out.len() >= limit {
                    out.pop_front();
                }
                out.push_back(event);
            }
            true
        })
        .await?;
        Ok(out.into())
    }

    fn releases(&self) -> Arc<dyn super::releases::ReleaseLog> {
        self.releases.clone()
    }
}

/// The first sequence a read of the newest `limit` messages of a stream that holds
/// `first..=last` starts from.
fn history_start(first: u64, last: u64, limit: usize) -> u64 {
    let back = u64::try_from(limit).unwrap_or(u64::MAX).saturating_sub(1);
    last.saturating_sub(back).max(first).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox's history keeps the newest `MEMORY_HISTORY` events, no more.
    #[tokio::test]
    async fn the_memory_history_is_bounded() {
        let bus: Arc<dyn Bus> = Arc::new(crate::bus::LocalBus::new());
        let store = MemoryStore::new(bus);
        let total = MEMORY_HISTORY as u64 + 5;
        let batch: Vec<Outgoing> = (1..=total)
            .map(|rev| {
                let event = Event {
                    rev,
                    ts: rev,
                    kind: crate::protocol::EventKind::RouterError,
                    app: None,
                    host: None,
                    instance: None,
                    operation_id: None,
                    message: "n".into(),
                    changes: vec![],
                    audit: None,
                };
                let envelope = Envelope::new("controller", event);
                Outgoing { subject: "qd.v1.evt.x".into(), envelope, bytes: Bytes::new() }
            })
            .collect();
        store.commit(&batch).await.expect("commit");
        let kept = store.history(0, usize::MAX).await.expect("history");
        assert_eq!(kept.len(), MEMORY_HISTORY);
        assert_eq!(kept.first().map(|e| e.rev), Some(6));
        assert_eq!(kept.last().map(|e| e.rev), Some(total));
    }

    #[test]
    fn stored_steps_load_after_their_operation_in_index_order_and_ends_last() {
        use crate::protocol::{
            OperationEnded, OperationState, OperationStep, StepCounts, StepDelta, StepName, StepState,
        };
        let step = |op: &str, index| {
            Change::OperationStep(StepDelta {
                op: op.into(),
                index,
                step: OperationStep {
                    name: StepName::Download,
                    instance: None,
                    state: StepState::Done,
                    started_at: 1,
                    finished_at: Some(2),
                    detail: String::new(),
                },
            })
        };
        let end = Change::OperationEnded(OperationEnded {
            id: "op-a".into(),
            state: OperationState::Succeeded,
            error: None,
            finished_at: 3,
            steps: StepCounts::default(),
        });
        let app = Change::AppRemoved { name: "shop-web".into() };
        // As a bucket may list them: a step written again after later ones, keys sorted
        // as text (10 before 2).
        let mut stored = vec![end.clone(), step("op-a", 10), step("op-a", 2), app.clone(), step("op-a", 0)];
        stored.sort_by(|a, b| load_order(a).cmp(&load_order(b)));
        assert_eq!(stored, vec![app, step("op-a", 0), step("op-a", 2), step("op-a", 10), end]);
        assert_eq!(key_of(&step("op-a", 7)), "op.op-a.step.7");
        assert_eq!(key_of(&Change::OperationRemoved { id: "op-a".into() }), "op.op-a");
    }

    #[test]
    fn a_history_read_starts_at_most_limit_messages_from_the_end() {
        assert_eq!(history_start(1, 200_000, 5_000), 195_001);
        assert_eq!(history_start(1, 100, 5_000), 1, "a short stream is read whole");
        assert_eq!(history_start(150, 200, 10), 191);
        assert_eq!(history_start(150, 200, 100), 150, "not before the first kept message");
        assert_eq!(history_start(1, 200, usize::MAX), 1);
        assert_eq!(history_start(0, 0, 1), 1);
    }
}
