//! The controller's shared state and the one way to change it: `mutate`, which assigns the
//! next revision to each event and queues it for publishing in order.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::ControllerConfig;
use super::store::{Fault, Outgoing, Store};
use crate::bus::Bus;
use crate::plane::replies::ReplyCache;
use crate::protocol::clock::now_ms;
use crate::protocol::{Change, Envelope, Event, EventKind, Fleet, Instance, subjects};
use crate::repository::Repository;

/// One event before it has a revision.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub kind: EventKind,
    pub message: String,
    pub app: Option<String>,
    pub host: Option<String>,
    pub instance: Option<String>,
    pub operation_id: Option<String>,
    pub changes: Vec<Change>,
    /// Only on `AUDIT` drafts: the command record.
    pub audit: Option<Box<crate::protocol::AuditRecord>>,
}

impl Draft {
    pub fn new(kind: EventKind, message: impl Into<String>) -> Self {
        // Messages quote names, reasons and what agents and routers said: bounded here, once,
        // so every event fits the bus by construction.
        let message = crate::protocol::validate::cut_owned(message.into(), MAX_MESSAGE);
        Draft {
            kind,
            message,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            changes: Vec::new(),
            audit: None,
        }
    }
    /// `-` stands for "no app" (host-wide operations) and is not recorded.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        let app = app.into();
        self.app = (app != "-").then_some(app);
        self
    }
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }
    pub fn op(mut self, id: Option<&str>) -> Self {
        self.operation_id = id.map(str::to_string);
        self
    }
    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }
}

/// What the leader lease lets this controller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseHold {
    /// No lease (the sandbox): the only controller there is.
    NotUsed,
    /// Held: renewed so that nobody else can take it before this instant.
    Until(Instant),
    /// A renewal failed: it may expire, or have expired, before the next one works.
    Fenced,
}

impl LeaseHold {
    pub fn fenced(self, now: Instant) -> bool {
        match self {
            LeaseHold::NotUsed => false,
            LeaseHold::Until(until) => now >= until,
            LeaseHold::Fenced => true,
        }
    }
}

/// The longest event message, in bytes.
const MAX_MESSAGE: usize = 4 * 1024;

/// When a crashed instance may next be restarted, and how many crashes in a row it had.
#[derive(Debug, Clone)]
pub(crate) struct CrashRecord {
    pub consecutive: u32,
    pub next_attempt: Option<Instant>,
}

/// Everything behind the controller's lock.
pub(crate) struct Core {
    pub fleet: Fleet,
    /// When each host was last heard, and its heartbeat period.
    pub host_seen: HashMap<String, (Instant, Duration)>,
    pub crashes: HashMap<String, CrashRecord>,
    /// Per app: repairs (placing missing instances) that failed in a row, and when to try
    /// again.
    pub repairs: HashMap<String, CrashRecord>,
    /// The revision and time the apps were last checked for missing instances.
    pub repair_checked: Option<(u64, Instant)>,
    /// Instances an operation cut short by a restart had started but not yet routed: each
    /// gets its route once it runs (`repair::route_recovered`).
    pub route_when_running: std::collections::HashSet<String>,
    /// Containers this controller asked their host to remove, and when. Their fate is
    /// decided: a heartbeat sent before the removal still reports one, and adopting it
    /// back then would bring an instance whose container is about to go (it would then be
    /// restarted, redeployed and moved). Asked again after `intake::REMOVAL_GRACE`.
    pub removal_asked: HashMap<String, Instant>,
    /// Since when each route's backend has had no running instance.
    pub not_serving_since: HashMap<crate::protocol::RouteKey, Instant>,
    /// The last error each router reported, so that each new one is one event.
    pub router_errors: HashMap<String, Option<String>>,
    /// When each router was last heard, and the revision its load balancer has applied:
    /// a scale-down waits for the live ones to have applied its routes' removal.
    pub routers_applied: HashMap<String, (Instant, u64)>,
    /// Replies already given, by command id, so a repeated command gets the same answer.
    pub replies: ReplyCache,
    /// Instance ids by host: every heartbeat asks what is placed on its host, and a scan
    /// of the whole fleet per heartbeat does not scale (1,000 hosts, 20,000 instances).
    placed: HashMap<String, BTreeSet<String>>,
    /// What the instances take of each host, kept change by change for the scheduler.
    pub usage: crate::protocol::scheduler::Usage,
    /// What the alert rules need beyond the fleet: causing events, routers' traffic.
    pub alerts: super::alerts::Seen,
}

impl Core {
    /// The instances placed on `host`, in id order (what `Fleet::instances_on` gives, from
    /// the index).
    pub fn instances_on<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a Instance> + 'a {
        let ids = self.placed.get(host).into_iter().flatten();
        ids.filter_map(|id| self.fleet.instances.get(id))
    }

    /// Keeps `placed`, and the records kept per instance or app, in step with a change about
    /// to be applied to the fleet: what the fleet forgets is forgotten here too, so these
    /// follow the fleet's size, not its churn.
    fn index(&mut self, change: &Change) {
        let (id, new_host) = match change {
            Change::Instance(i) => (&i.id, Some(&i.host)),
            Change::InstanceRemoved { id } => {
                self.crashes.remove(id);
                self.route_when_running.remove(id);
                (id, None)
            }
            Change::AppRemoved { name } => {
                self.repairs.remove(name);
                return;
            }
            _ => return,
        };
        if let Some(old) = self.fleet.instances.get(id).map(|i| &i.host)
            && Some(old) != new_host
            && let Some(set) = self.placed.get_mut(old)
        {
            set.remove(id);
        }
        if let Some(host) = new_host {
            self.placed.entry(host.clone()).or_default().insert(id.clone());
        }
    }
}

fn placed_index(fleet: &Fleet) -> HashMap<String, BTreeSet<String>> {
    let mut placed: HashMap<String, BTreeSet<String>> = HashMap::new();
    for i in fleet.instances.values() {
        placed.entry(i.host.clone()).or_default().insert(i.id.clone());
    }
    placed
}

const REPLIES_KEPT: usize = 10_000;

struct Shared {
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    repository: Option<Arc<dyn Repository>>,
    /// Where `secret.set` writes values: set once, before any command is served.
    secrets: std::sync::OnceLock<crate::secrets::Secrets>,
    config: ControllerConfig,
    core: Mutex<Core>,
    rev: watch::Sender<u64>,
    /// The newest revision that is durable: in the stream and the state.
    committed: watch::Sender<u64>,
    /// The events to commit, in revision order. Unbounded on purpose: `mutate` queues
    /// them under the state's lock, where it cannot wait, and an event it could not queue
    /// would be a revision lost. The bound is applied before the lock instead, on what
    /// makes events: commands are refused past `MAX_BACKLOG` (commands.rs) and the other
    /// producers wait in `room` past `MAX_QUEUED`, so what waits here is at most about
    /// that many events (plus the drafts of one decision).
    events: mpsc::UnboundedSender<Event>,
    /// The kept encodings of the fleet that paged snapshots are cut from.
    pages: super::paging::Pages,
    /// How long this leader may act: see `lease.rs` and `fenced`.
    lease: watch::Sender<LeaseHold>,
    /// Every task this controller started, so a leader that lost its lease stops them all.
    tasks: super::tasks::Tasks,
    /// Set once another writer was found on the event stream: this controller no longer
    /// leads, and says why.
    deposed: watch::Sender<Option<String>>,
    /// Who waits on which instance (`wait_for_instance`): woken only by a change of that
    /// instance, not by every revision.
    instance_waits: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Agent commands in flight, at most: see `ask_agent`.
    agent_calls: Arc<tokio::sync::Semaphore>,
    /// The apps' releases (`releases.rs`).
    releases: super::releases::Book,
    /// Where alert transitions are POSTed (`alerts/webhook.rs`).
    webhooks: super::alerts::Webhooks,
}

#[derive(Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

impl Controller {
    pub(crate) fn new(
        bus: Arc<dyn Bus>,
        config: ControllerConfig,
        fleet: Fleet,
        store: Arc<dyn Store>,
        repository: Option<Arc<dyn Repository>>,
    ) -> (Controller, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        if let Some(m) = &config.metrics {
            m.load(&fleet);
        }
        let (rev, _) = watch::channel(fleet.revision);
        let (committed, _) = watch::channel(fleet.revision);
        let now = Instant::now();
        // A host in a loaded state gets a full grace period: silence before we started
        // proves nothing.
        let host_seen = fleet.hosts.keys().map(|h| (h.clone(), (now, config.heartbeat_period))).collect();
        let core = Core {
            placed: placed_index(&fleet),
            usage: crate::protocol::scheduler::Usage::of(&fleet),
            fleet,
            host_seen,
            crashes: HashMap::new(),
            repairs: HashMap::new(),
            repair_checked: None,
            route_when_running: std::collections::HashSet::new(),
            not_serving_since: HashMap::new(),
            removal_asked: HashMap::new(),
            router_errors: HashMap::new(),
            routers_applied: HashMap::new(),
            replies: ReplyCache::new(REPLIES_KEPT),
            alerts: Default::default(),
        };
        let releases = super::releases::Book::new(store.releases());
        let webhooks = super::alerts::Webhooks::new(&config.alerts.webhooks);
        let shared = Shared {
            webhooks,
            releases,
            bus,
            store,
            repository,
            secrets: std::sync::OnceLock::new(),
            config,
            core: Mutex::new(core),
            rev,
            committed,
            events,
            pages: Default::default(),
            lease: watch::channel(LeaseHold::NotUsed).0,
            tasks: Default::default(),
            deposed: watch::channel(None).0,
            instance_waits: Mutex::new(HashMap::new()),
            agent_calls: Arc::new(tokio::sync::Semaphore::new(MAX_AGENT_CALLS)),
        };
        (Controller { shared: Arc::new(shared) }, rx)
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.shared.config
    }

    pub(crate) fn bus(&self) -> &dyn Bus {
        self.shared.bus.as_ref()
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.shared.store.clone()
    }

    pub(crate) fn releases(&self) -> &super::releases::Book {
        &self.shared.releases
    }

    pub(crate) fn webhooks(&self) -> &super::alerts::Webhooks {
        &self.shared.webhooks
    }

    /// The artifact repository, when this controller has one (on NATS).
    pub(crate) fn repository(&self) -> Option<Arc<dyn Repository>> {
        self.shared.repository.clone()
    }

    /// The secret store, when this controller has one.
    pub(crate) fn secrets(&self) -> Option<crate::secrets::Secrets> {
        self.shared.secrets.get().cloned()
    }

    pub(crate) fn set_secrets(&self, secrets: crate::secrets::Secrets) {
        // Set once at the start; a second store would be a wiring mistake, and the first wins.
        if self.shared.secrets.set(secrets).is_err() {
            log::warn!("the controller's secret store was set twice; the first is kept");
        }
    }

    /// What the leader lease allows, as its keeper learns it.
    pub fn set_lease(&self, hold: LeaseHold) {
        self.shared.lease.send_replace(hold);
        if let Some(m) = &self.shared.config.metrics {
            m.set_leader(!hold.fenced(Instant::now()));
        }
    }

    /// Whether the controller must not act: its lease renewal failed, or the time its last
    /// renewal holds for has passed (a process paused past its lease wakes up fenced).
    /// Fenced, it carries out no command, makes no health judgement, starts no operation
    /// and commits no event: another controller may hold the lease.
    pub fn fenced(&self) -> bool {
        // Each guard is let go before the next is taken.
        let deposed = self.shared.deposed.borrow().is_some();
        deposed || self.shared.lease.borrow().fenced(Instant::now())
    }

    /// Stops this controller from acting: another writer published on the event stream, so
    /// its history and state are no longer the truth. `lead_once` then stops leading and
    /// loads the state afresh before it leads again.
    pub(crate) fn depose(&self, reason: String) {
        log::error!("{reason}; this controller stops leading and reloads its state");
        self.shared.deposed.send_replace(Some(reason));
    }

    /// Waits until the controller is deposed (`depose`); why.
    pub async fn deposed(&self) -> String {
        let mut rx = self.shared.deposed.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The sender lives as long as the controller: never reached while it runs.
            Err(_) => std::future::pending().await,
        }
    }

    /// Waits while more than [`MAX_QUEUED`] events are not yet durable: the producers of new
    /// work (heartbeats, the health manager, operations) slow down to the store's pace
    /// instead of growing the commit queue without bound. Commands are refused instead
    /// (`commands.rs`), as their clients retry.
    pub(crate) async fn room(&self) {
        let mut committed = self.shared.committed.subscribe();
        while self.backlog() > MAX_QUEUED {
            // Woken by each commit; looked at again now and then in case none comes.
            let _ = tokio::time::timeout(Duration::from_millis(200), committed.changed()).await;
        }
    }

    /// Every event up to `rev` is durable: in the stream and the state.
    fn set_committed(&self, rev: u64) {
        self.shared.committed.send_replace(rev);
        if let Some(m) = &self.shared.config.metrics {
            m.durable(rev);
        }
    }

    /// Events decided but not yet durable.
    pub(crate) fn backlog(&self) -> u64 {
        self.revision().saturating_sub(*self.shared.committed.borrow())
    }

    /// Waits until revision `rev` is durable, at most `within`; whether it is.
    pub(crate) async fn durable(&self, rev: u64, within: Duration) -> bool {
        let mut committed = self.shared.committed.subscribe();
        let reached = committed.wait_for(|c| *c >= rev);
        matches!(tokio::time::timeout(within, reached).await, Ok(Ok(_)))
    }

    /// Waits until the controller is not fenced.
    pub(crate) async fn unfenced(&self) {
        let mut rx = self.shared.lease.subscribe();
        while self.fenced() {
            // The time bound passes without a change: look again now and then.
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
    }

    /// Spawns a task that `stop` ends; after `stop`, starts nothing.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.shared.tasks.spawn(task);
    }

    /// Ends every task of this controller, and returns once they have ended: its loops,
    /// its operations and its queue of uncommitted events. For a leader that lost its
    /// lease: another one writes now. Fenced first, so nothing acts while they end.
    pub async fn stop(&self) {
        self.set_lease(LeaseHold::Fenced);
        self.shared.tasks.stop().await;
    }

    /// `stop` without the wait (a handle dropped).
    pub(crate) fn abort(&self) {
        self.set_lease(LeaseHold::Fenced);
        self.shared.tasks.abort();
    }

    /// The controller's tasks that have not ended yet.
    pub fn live_tasks(&self) -> usize {
        self.shared.tasks.live()
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves the state as consistent as the last
        // completed mutate, so carry on with it rather than wedge the controller.
        self.shared.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn pages(&self) -> &super::paging::Pages {
        &self.shared.pages
    }

    /// A copy of the fleet at its current revision: the snapshot body.
    pub fn snapshot(&self) -> Fleet {
        self.lock().fleet.clone()
    }

    pub fn revision(&self) -> u64 {
        self.lock().fleet.revision
    }

    /// Reads the state under the lock without changing it.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Core) -> R) -> R {
        f(&self.lock())
    }

    /// The one way to change state. `f` sees the whole core and returns the events to
    /// commit; each gets the next revision, is applied, and is queued for publishing, all
    /// under one lock, so the decision and its events can't be interleaved with another's.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut Core) -> (Vec<Draft>, R)) -> R {
        let mut core = self.lock();
        let (drafts, result) = f(&mut core);
        for draft in drafts {
            let event = Event {
                rev: core.fleet.revision + 1,
                ts: now_ms(),
                kind: draft.kind,
                app: draft.app,
                host: draft.host,
                instance: draft.instance,
                operation_id: draft.operation_id,
                message: draft.message,
                changes: draft.changes,
                audit: draft.audit,
            };
            for change in &event.changes {
                core.index(change);
            }
            // The placement usage follows each instance the event touches, from what it was
            // to what it is once the event is applied (an event may touch one twice).
            let mut touched: Vec<(&str, Option<Instance>)> = Vec::new();
            for change in &event.changes {
                let id = match change {
                    Change::Instance(i) => i.id.as_str(),
                    Change::InstanceRemoved { id } => id.as_str(),
                    _ => continue,
                };
                if !touched.iter().any(|(t, _)| *t == id) {
                    touched.push((id, core.fleet.instances.get(id).cloned()));
                }
            }
            let metrics = self.shared.config.metrics.as_deref();
            let counted = metrics.map(|m| m.before(&core.fleet, &event.changes));
            let applied = core.fleet.apply(&event);
            if let (Some(m), Some(counted)) = (metrics, counted) {
                m.after(&core.fleet, counted);
            }
            if let Err(gap) = applied {
                // Unreachable: the revision was computed from the same fleet just above.
                log::error!("controller produced a revision gap: {gap}");
                continue;
            }
            if let Some(m) = metrics {
                m.queued(event.rev);
            }
            let core = &mut *core;
            let waits = self.shared.instance_waits.lock().unwrap_or_else(|p| p.into_inner());
            for (id, before) in touched {
                if let Some(before) = before {
                    core.usage.remove(&before);
                }
                if let Some(now) = core.fleet.instances.get(id) {
                    core.usage.add(now);
                }
                if let Some(wait) = waits.get(id) {
                    wait.notify_waiters();
                }
            }
            drop(waits);
            core.alerts.observe(&event);
            let _ = self.shared.events.send(event);
        }
        let rev = core.fleet.revision;
        drop(core);
        self.shared.rev.send_replace(rev);
        result
    }

    /// Commits drafts that need no decision.
    pub(crate) fn commit(&self, drafts: Vec<Draft>) {
        self.mutate(|_| (drafts, ()))
    }

    /// Waits until `pred` returns something, re-checking after every revision, or gives up
    /// after `timeout`.
    pub(crate) async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Fleet) -> Option<T>,
    ) -> Option<T> {
        let mut rev = self.shared.rev.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = pred(&self.lock().fleet) {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, rev.changed()).await {
                Ok(Ok(())) => {}
                _ => return pred(&self.lock().fleet),
            }
        }
    }
}

impl Controller {
    /// `wait_for` with a condition on one instance only: re-checked when that instance
    /// changes (or is removed), not after every revision. Thousands of deploy steps wait at
    /// once; woken by every revision, each would take the lock once per event of the fleet.
    pub(crate) async fn wait_for_instance<T>(
        &self,
        id: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Fleet) -> Option<T>,
    ) -> Option<T> {
        let wait = {
            let mut waits = self.shared.instance_waits.lock().unwrap_or_else(|p| p.into_inner());
            waits.entry(id.to_string()).or_default().clone()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let found = loop {
            // Registered before the check, so a change between the two is not missed.
            let notified = wait.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = pred(&self.lock().fleet) {
                break Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break pred(&self.lock().fleet);
            }
        };
        let mut waits = self.shared.instance_waits.lock().unwrap_or_else(|p| p.into_inner());
        // The last waiter on this instance takes its entry away.
        if Arc::strong_count(&wait) <= 2 {
            waits.remove(id);
        }
        found
    }
}

/// Agent commands the controller has in flight at once. A deploy of 100,000 instances
/// would otherwise send 100,000 requests in one burst, and the agents' answers would come
/// after their timeout; past this, a command waits its turn before its timeout starts.
const MAX_AGENT_CALLS: usize = 512;

impl Controller {
    /// Sends `verb` to the agent of `host` and waits for its answer (the agent timeout),
    /// once one of the `MAX_AGENT_CALLS` is free.
    pub(crate) async fn ask_agent<Req: serde::Serialize + Sync, Resp: serde::de::DeserializeOwned>(
        &self,
        host: &str,
        verb: subjects::AgentVerb,
        body: Req,
    ) -> Result<Resp, crate::bus::RequestError> {
        self.ask_agent_within(host, verb, body, self.config().agent_timeout).await
    }

    /// `ask_agent` with its own timeout, for a command whose agent asks someone else.
    pub(crate) async fn ask_agent_within<Req: serde::Serialize + Sync, Resp: serde::de::DeserializeOwned>(
        &self,
        host: &str,
        verb: subjects::AgentVerb,
        body: Req,
        timeout: std::time::Duration,
    ) -> Result<Resp, crate::bus::RequestError> {
        let _turn = self.shared.agent_calls.clone().acquire_owned().await;
        crate::bus::request(
            self.bus(),
            &subjects::agent_cmd(host, verb),
            &Envelope::new(self.config().source.clone(), body),
            timeout,
        )
        .await
    }
}

/// Events not yet durable past which the producers of new work wait (`Controller::room`).
pub(crate) const MAX_QUEUED: u64 = 4_096;

/// The most events committed in one batch, and about the most bytes.
const BATCH_EVENTS: usize = 256;
const BATCH_BYTES: usize = 1 << 20;

/// Makes events durable and visible in revision order, in batches: every event queued (up
/// to a batch) is published at once, acks awaited together, and the state written once per
/// key. A failed commit (the bus is down) is retried until it succeeds, so no event is
/// skipped, or replicas would see a gap and the stored state would fall behind.
///
/// Nothing is committed while the controller is fenced: if its lease was taken meanwhile,
/// `stop` drops this queue, so there are never two writers. If another writer is found on
/// the stream anyway, the controller is deposed and this task ends.
pub(crate) async fn publish_events(ctl: Controller, mut events: mpsc::UnboundedReceiver<Event>) {
    let store = ctl.store();
    let source = ctl.config().source.clone();
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH_EVENTS);
    while let Some(first) = events.recv().await {
        batch.clear();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(event) = next {
            let out = outgoing(&source, event);
            bytes += out.bytes.len();
            batch.push(out);
            if batch.len() >= BATCH_EVENTS || bytes >= BATCH_BYTES {
                break;
            }
            next = events.try_recv().ok();
        }
        if let Err(reason) = commit_batch(&ctl, store.as_ref(), &source, &mut batch).await {
            ctl.depose(reason);
            return;
        }
    }
}

/// Commits `batch` in order, retrying what was not stored; moves `committed` as each part
/// is durable. An error says another writer published on the stream.
async fn commit_batch(
    ctl: &Controller,
    store: &dyn Store,
    source: &str,
    batch: &mut [Outgoing],
) -> Result<(), String> {
    let mut done = 0;
    let mut wait = Duration::from_millis(100);
    let mut refused = 0;
    while done < batch.len() {
        ctl.unfenced().await;
        let err = match store.commit(&batch[done..]).await {
            Ok(()) => break,
            Err(err) => err,
        };
        if err.stored > 0 {
            done += err.stored;
            ctl.set_committed(batch[done - 1].envelope.body.rev);
            (refused, wait) = (0, Duration::from_millis(100));
        }
        let Some(failed) = batch.get(done) else { break };
        let rev = failed.envelope.body.rev;
        let connected = ctl.bus().connection().borrow().is_connected();
        refused = match err.fault {
            Fault::Superseded => {
                return Err(format!(
                    "another writer published on the event stream before event rev {rev} ({})",
                    err.error
                ));
            }
            Fault::Refused if connected => refused + 1,
            Fault::Refused | Fault::Unreachable => 0,
        };
        if refused >= SKIP_AFTER && !failed.envelope.body.changes.is_empty() {
            // Retried forever, this one event would hold up every event after it: it is
            // replaced by a notice at the same revision, so no replica sees a gap.
            log::error!("event rev {rev} cannot be stored ({err}); skipped");
            let notice = skipped(&failed.envelope.body, &err.error.0);
            batch[done] = outgoing(source, notice);
            continue;
        }
        log::warn!("could not commit event rev {rev}: {err}; retrying in {wait:?}");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    if let Some(last) = batch.last() {
        ctl.set_committed(last.envelope.body.rev);
    }
    Ok(())
}

/// An event ready for the store. One that cannot be encoded (never seen: events are plain
/// data) goes as a notice at its revision, like an event the store refuses.
fn outgoing(source: &str, event: Event) -> Outgoing {
    let subject = subjects::event(&event.kind.subject_token(), event.app.as_deref());
    let mut envelope = Envelope::new(source.to_string(), event);
    let bytes = match crate::protocol::encode(&envelope) {
        Ok(bytes) => bytes,
        Err(e) => {
            envelope = Envelope::new(source.to_string(), skipped(&envelope.body, &e.to_string()));
            crate::protocol::encode(&envelope).unwrap_or_default()
        }
    };
    Outgoing { subject, envelope, bytes: bytes.into() }
}

/// Refusals of an event in a row, with the bus up, before it is skipped.
const SKIP_AFTER: u32 = 3;

/// What is stored in place of an event that cannot be: the same revision, kind and
/// subject, no changes, and a message that says why.
fn skipped(event: &Event, reason: &str) -> Event {
    let reason = crate::protocol::validate::cut(reason, crate::protocol::audit::MAX_REASON);
    Event {
        rev: event.rev,
        ts: event.ts,
        kind: event.kind,
        app: event.app.clone(),
        host: event.host.clone(),
        instance: event.instance.clone(),
        operation_id: event.operation_id.clone(),
        message: format!(
            "event rev {} ({}) could not be stored and was skipped: {reason}; its changes are not in the history",
            event.rev,
            event.kind.as_str()
        ),
        changes: Vec::new(),
        audit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use crate::plane::controller::store::MemoryStore;

    use crate::plane::controller::store::{CommitError, StoreError};

    /// A store that refuses one revision as too large, whatever is retried, and keeps the
    /// rest.
    struct RefusesOne {
        inner: MemoryStore,
        refuse: u64,
        stored: Mutex<Vec<Event>>,
    }

    #[async_trait::async_trait]
    impl Store for RefusesOne {
        async fn load(&self) -> Result<Fleet, StoreError> {
            self.inner.load().await
        }
        async fn commit(&self, batch: &[Outgoing]) -> Result<(), CommitError> {
            for (stored, out) in batch.iter().enumerate() {
                let e = &out.envelope.body;
                if e.rev == self.refuse && !e.changes.is_empty() {
                    let error = StoreError("event publish: maximum payload exceeded".into());
                    return Err(CommitError { stored, fault: Fault::Refused, error });
                }
                self.stored.lock().unwrap().push(e.clone());
            }
            self.inner.commit(batch).await
        }
        async fn history(&self, since: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
            self.inner.history(since, limit).await
        }
    }

    /// A store that takes at most `take` events of each batch and then fails as if the bus
    /// were down, and, every other call, takes none: what a flaky bus does to a batch.
    struct Flaky {
        take: usize,
        calls: Mutex<usize>,
        batches: Mutex<Vec<usize>>,
        stored: Mutex<Vec<u64>>,
        fault: Fault,
    }

    #[async_trait::async_trait]
    impl Store for Flaky {
        async fn load(&self) -> Result<Fleet, StoreError> {
            Ok(Fleet::default())
        }
        async fn commit(&self, batch: &[Outgoing]) -> Result<(), CommitError> {
            self.batches.lock().unwrap().push(batch.len());
            let call = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            let take = if call % 2 == 0 { 0 } else { self.take.min(batch.len()) };
            self.stored.lock().unwrap().extend(batch[..take].iter().map(|o| o.envelope.body.rev));
            if take == batch.len() {
                return Ok(());
            }
            Err(CommitError { stored: take, fault: self.fault, error: StoreError("bus down".into()) })
        }
        async fn history(&self, _: u64, _: usize) -> Result<Vec<Event>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn flaky(take: usize, fault: Fault) -> Arc<Flaky> {
        Arc::new(Flaky {
            take,
            calls: Mutex::new(0),
            batches: Mutex::new(vec![]),
            stored: Mutex::new(vec![]),
            fault,
        })
    }

    fn notices(n: usize) -> Vec<Draft> {
        (0..n).map(|i| Draft::new(EventKind::RouterError, format!("notice {i}"))).collect()
    }

    /// Events queued together are committed together, and a batch cut short (the bus went
    /// down after some of it) goes on from where it stopped: every event once, in order.
    #[tokio::test]
    async fn batches_cut_short_go_on_where_they_stopped_every_event_once_in_order() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = flaky(50, Fault::Unreachable);
        let (ctl, events) =
            Controller::new(bus, ControllerConfig::default(), Fleet::default(), store.clone(), None);
        // Queued before the publisher runs: they are there to be taken as one batch.
        ctl.commit(notices(600));
        ctl.spawn(publish_events(ctl.clone(), events));
        assert!(ctl.durable(600, Duration::from_secs(60)).await, "every event is committed");
        let stored = store.stored.lock().unwrap().clone();
        assert_eq!(stored, (1..=600).collect::<Vec<u64>>(), "each once, in order");
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(batches[0], BATCH_EVENTS, "the first batch is a full window: {batches:?}");
        assert!(batches.iter().all(|b| *b <= BATCH_EVENTS), "{batches:?}");
        assert_eq!(ctl.backlog(), 0);
    }

    /// Another writer on the stream deposes the controller: it stops committing and acting,
    /// and says why, instead of skipping the event or retrying forever.
    #[tokio::test]
    async fn another_writer_on_the_stream_deposes_the_controller() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = flaky(2, Fault::Superseded);
        let (ctl, events) =
            Controller::new(bus, ControllerConfig::default(), Fleet::default(), store.clone(), None);
        ctl.commit(notices(5));
        ctl.spawn(publish_events(ctl.clone(), events));
        let reason = tokio::time::timeout(Duration::from_secs(10), ctl.deposed()).await.expect("deposed");
        assert!(reason.contains("another writer") && reason.contains("rev 3"), "{reason}");
        assert!(ctl.fenced(), "a deposed controller acts no more");
        assert_eq!(*ctl.shared.committed.borrow(), 2, "what was stored before it is durable");
        assert_eq!(store.stored.lock().unwrap().clone(), vec![1, 2], "nothing after it is stored");
    }

    /// Producers wait while the queue is over its bound, and go on once it drains.
    #[tokio::test]
    async fn producers_wait_for_room_while_the_queue_is_over_its_bound() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, events) = Controller::new(bus, ControllerConfig::default(), Fleet::default(), store, None);
        ctl.commit(notices(MAX_QUEUED as usize + 10));
        let waited = tokio::time::timeout(Duration::from_millis(300), ctl.room()).await;
        assert!(waited.is_err(), "no room while {} events wait", ctl.backlog());
        ctl.spawn(publish_events(ctl.clone(), events));
        tokio::time::timeout(Duration::from_secs(30), ctl.room()).await.expect("room once committed");
        assert!(ctl.backlog() <= MAX_QUEUED);
    }

    #[test]
    fn an_event_message_is_bounded_whatever_it_quotes() {
        let agent_said = "x".repeat(1 << 20);
        let draft = Draft::new(EventKind::InstanceCrashed, format!("web-0 crashed: {agent_said}"));
        assert!(draft.message.len() < MAX_MESSAGE + 64, "{}", draft.message.len());
        assert!(draft.message.contains("[cut: "), "the cut says so");
        assert_eq!(Draft::new(EventKind::InstanceCrashed, "short").message, "short");
    }

    /// An event the store refuses for itself is not retried forever: a notice takes its
    /// revision, and the events after it are stored.
    #[tokio::test]
    async fn an_event_the_store_refuses_is_skipped_with_a_notice_and_the_rest_go_on() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(RefusesOne {
            inner: MemoryStore::new(bus.clone()),
            refuse: 2,
            stored: Mutex::new(vec![]),
        });
        let ctl = Controller::start(
            bus.clone(),
            ControllerConfig::default(),
            Fleet::default(),
            store.clone(),
            None,
        )
        .await
        .expect("controller");
        let app = |name: &str| {
            Draft::new(EventKind::AppUpdated, name).change(Change::AppRemoved { name: name.to_string() })
        };
        ctl.commit(vec![app("one"), app("two"), app("three")]);
        assert!(ctl.durable(3, Duration::from_secs(10)).await, "the events after the refused one are stored");
        let stored = store.stored.lock().unwrap().clone();
        let revs: Vec<u64> = stored.iter().map(|e| e.rev).collect();
        assert_eq!(revs, vec![1, 2, 3], "no gap: {stored:?}");
        assert!(
            stored[1].changes.is_empty() && stored[1].message.contains("could not be stored"),
            "{:?}",
            stored[1]
        );
        assert_eq!(stored[2].changes.len(), 1);
    }

    #[test]
    fn a_lease_fences_when_renewal_failed_or_its_time_ran_out() {
        let now = Instant::now();
        assert!(!LeaseHold::NotUsed.fenced(now));
        assert!(LeaseHold::Fenced.fenced(now));
        assert!(!LeaseHold::Until(now + Duration::from_secs(1)).fenced(now));
        assert!(LeaseHold::Until(now).fenced(now));
        assert!(LeaseHold::Until(now).fenced(now + Duration::from_millis(1)));
    }

    /// Fenced, the controller refuses commands with `not_ready` and commits nothing; once
    /// its lease holds again it carries out the same command and commits what waited.
    #[tokio::test]
    async fn a_fenced_controller_refuses_commands_and_commits_nothing_until_unfenced() {
        use crate::protocol::{Accepted, DeployRequest, ErrorCode};
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let ctl = Controller::start(
            bus.clone(),
            ControllerConfig::default(),
            Fleet::default(),
            store.clone(),
            None,
        )
        .await
        .expect("controller");
        let mut events = bus.subscribe(subjects::EVT_ALL).await.expect("subscribe");
        ctl.set_lease(LeaseHold::Fenced);
        let req = DeployRequest {
            app: "web".into(),
            version: "1".into(),
            instances: 1,
            image: Some("nginx:1".into()),
            port: Some(80),
            ..DeployRequest::default()
        };
        let envelope = Envelope::new("test", req);
        let send = || {
            crate::bus::command::<_, Accepted>(
                bus.as_ref(),
                crate::protocol::subjects::CtlVerb::Deploy,
                &envelope,
                Duration::from_secs(5),
            )
        };
        match send().await {
            Err(crate::bus::RequestError::Refused(e)) => {
                assert_eq!(e.code, ErrorCode::NotReady);
                assert!(e.reason.contains("fenced"), "{}", e.reason);
            }
            other => panic!("a fenced controller answered {other:?}"),
        }
        assert_eq!(ctl.revision(), 0, "nothing changed");

        // Something queued while fenced waits, and is committed once unfenced.
        ctl.commit(vec![Draft::new(EventKind::RouterError, "queued while fenced")]);
        let early = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
        assert!(early.is_err(), "an event was committed while fenced: {early:?}");
        ctl.set_lease(LeaseHold::Until(Instant::now() + Duration::from_secs(60)));
        let committed = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        assert!(matches!(committed, Ok(Some(_))), "the queued event was committed once unfenced");
        let accepted = send().await.expect("the same command, carried out once unfenced");
        assert!(accepted.operation_id.is_some());
    }

    /// A removed instance's crash record and a removed app's repair record go with them.
    #[tokio::test]
    async fn records_of_removed_instances_and_apps_are_forgotten() {
        let (fleet, _) = crate::plane::fixture::fixture(2, 4, 10);
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let (id, app) = ctl.read(|c| {
            let i = c.fleet.instances.values().next().expect("an instance");
            (i.id.clone(), i.app.clone())
        });
        ctl.mutate(|core| {
            let record = || CrashRecord { consecutive: 3, next_attempt: None };
            core.crashes.insert(id.clone(), record());
            core.repairs.insert(app.clone(), record());
            core.route_when_running.insert(id.clone());
            let drafts = vec![
                Draft::new(EventKind::InstanceState, "gone")
                    .change(Change::InstanceRemoved { id: id.clone() }),
                Draft::new(EventKind::AppUpdated, "gone").change(Change::AppRemoved { name: app.clone() }),
            ];
            (drafts, ())
        });
        ctl.read(|core| {
            assert!(!core.crashes.contains_key(&id));
            assert!(!core.route_when_running.contains(&id));
            assert!(!core.repairs.contains_key(&app));
        });
    }

    /// The index answers what a scan of the fleet answers, after moves and removals.
    #[tokio::test]
    async fn the_host_index_follows_every_change() {
        let (fleet, _) = crate::plane::fixture::fixture(3, 8, 60);
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let same = |core: &Core| {
            for host in core.fleet.hosts.keys() {
                let scanned: Vec<&str> = core.fleet.instances_on(host).map(|i| i.id.as_str()).collect();
                let indexed: Vec<&str> = core.instances_on(host).map(|i| i.id.as_str()).collect();
                assert_eq!(indexed, scanned, "{host}");
            }
        };
        same(&ctl.lock());
        ctl.mutate(|core| {
            let mut ids = core.fleet.instances.values().map(|i| (i.id.clone(), i.host.clone()));
            let (moved, from) = ids.next().expect("an instance");
            let (removed, _) = ids.next().expect("another");
            let to = core.fleet.hosts.keys().find(|h| **h != from).cloned().expect("another host");
            let mut i = core.fleet.instances[&moved].clone();
            i.host = to;
            let drafts = vec![
                Draft::new(EventKind::InstanceState, "moved").change(Change::Instance(i)),
                Draft::new(EventKind::InstanceState, "gone").change(Change::InstanceRemoved { id: removed }),
            ];
            (drafts, ())
        });
        same(&ctl.lock());
    }

    async fn started(bus: &Arc<dyn Bus>) -> super::super::ControllerHandle {
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let config = ControllerConfig::default();
        Controller::start(bus.clone(), config, Fleet::default(), store, None).await.expect("controller")
    }

    /// Dropped with its task, so a test sees the task end.
    struct Dropped(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// `stop` ends the loops and every operation, and returns only once they have ended:
    /// the controller then answers nothing, and starts nothing more.
    #[tokio::test]
    async fn stop_ends_every_task_of_the_controller_before_it_returns() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let ctl = started(&bus).await;
        let whoami = || {
            let env = Envelope::new("test", ());
            let verb = crate::protocol::subjects::CtlVerb::Whoami;
            let bus = bus.clone();
            async move {
                crate::bus::command::<_, crate::protocol::WhoAmI>(
                    bus.as_ref(),
                    verb,
                    &env,
                    Duration::from_secs(2),
                )
                .await
            }
        };
        whoami().await.expect("a running controller answers");
        let operation_ended = Arc::new(AtomicBool::new(false));
        let guard = Dropped(operation_ended.clone());
        ctl.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        // The publisher, the request loop, three intakes, the health manager, the operation.
        assert!(ctl.live_tasks() >= 7, "{} tasks", ctl.live_tasks());
        ctl.stop().await;
        assert_eq!(ctl.live_tasks(), 0, "every task ended before stop returned");
        assert!(operation_ended.load(Ordering::SeqCst), "the operation was dropped");
        assert!(whoami().await.is_err(), "a stopped controller answers nothing");
        let late = Arc::new(AtomicBool::new(false));
        let flag = late.clone();
        ctl.spawn(async move { flag.store(true, Ordering::SeqCst) });
        tokio::task::yield_now().await;
        assert!(!late.load(Ordering::SeqCst) && ctl.live_tasks() == 0, "nothing starts after stop");
        assert!(ctl.fenced(), "a stopped controller is fenced");
    }

    /// The handle owns the tasks: dropped without `stop`, it takes them with it.
    #[tokio::test]
    async fn a_dropped_handle_ends_the_tasks_it_owned() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let handle = started(&bus).await;
        let ctl: Controller = (*handle).clone();
        assert!(ctl.live_tasks() >= 6, "{} tasks", ctl.live_tasks());
        drop(handle);
        let ended = async {
            while ctl.live_tasks() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ended).await.expect("the tasks end");
    }
}
