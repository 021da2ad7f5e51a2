//! The model replica: snapshot, then events above its revision. A gap means a fresh
//! snapshot; until it arrives the replica says it is out of date.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::protocol::{Change, Event, Fleet, Gap, Heartbeat, Host, HostState};

/// Heartbeat periods a source may miss before what it said is shown as unknown: the
/// controller's threshold for a stale host, applied by the cockpit to every source (the
/// controller's beacon and each host's heartbeat), so that a silent source is never shown
/// in its last good state, whether or not a controller is left to say so.
pub const SILENT_AFTER_PERIODS: u64 = 3;

/// The period assumed for a source until its own is known: the protocol's default.
pub const DEFAULT_PERIOD_MS: u64 = 2_000;

/// How many beacon intervals the controller's period is estimated from. The beacon does
/// not carry its period; the median of the last few intervals does not move when a burst
/// of beacons is flushed after a reconnect, or when one is late.
const BEACON_INTERVALS_KEPT: usize = 7;

/// Periods are clamped as the controller clamps a host's (100 ms to 600 s).
fn clamp_period(ms: u64) -> u64 {
    ms.clamp(100, 600_000)
}

/// The freshness rule, in one place: a source last heard at `heard`, judged from `since`
/// (the later of `heard` and the start of a grace period), with period `period_ms`, is
/// silent at `now` once more than `SILENT_AFTER_PERIODS` periods have passed. Returns how
/// long ago it was last heard, which is what the cockpit shows beside it.
pub fn silent_for(heard: u64, since: u64, period_ms: u64, now: u64) -> Option<u64> {
    let judged_from = heard.max(since);
    (now.saturating_sub(judged_from) > SILENT_AFTER_PERIODS * clamp_period(period_ms))
        .then(|| now.saturating_sub(heard))
}

/// Which sources were silent at the last tick: what the cached rows of a filtered or
/// sorted table were built with. Visible cells and the header judge at each frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Silence {
    pub controller: bool,
    pub hosts: BTreeSet<String>,
}

/// How many events the cockpit keeps for the Events panel; memory follows the fleet, not
/// the history.
pub const EVENTS_KEPT: usize = 5_000;

/// How many audit records the cockpit keeps for the Audit panel, apart from the events so
/// that a busy fleet's events never push the operators' commands out.
pub const AUDIT_KEPT: usize = 2_000;

/// How many metric samples are kept per host and per instance: at a 2 s heartbeat, the
/// last 4 minutes.
pub const METRICS_KEPT: usize = 120;

/// Counters of the rows coming and going in each table, apart from rows that change:
/// a cache of rows built from a table needs rebuilding whole only when its counter moves,
/// and otherwise only for the rows an event or heartbeat touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Membership {
    pub hosts: u64,
    pub instances: u64,
    pub routes: u64,
    pub apps: u64,
    pub events: u64,
    pub audit: u64,
    /// Bumped by any alert change, not only one that adds or removes: an alert's state
    /// moves it between the panel's groups (firing, acknowledged, resolved).
    pub alerts: u64,
}

impl Membership {
    fn bump_fleet(&mut self) {
        self.hosts += 1;
        self.instances += 1;
        self.routes += 1;
        self.apps += 1;
        self.alerts += 1;
    }

    /// Notes the tables whose keys an event added or removed: a table whose size changed,
    /// or that a removal named (an add and a removal together keep the size). Sizes are
    /// free to read; looking each key up would cost ingest a tenth of its rate.
    fn note(&mut self, before: Sizes, fleet: &Fleet, changes: &[Change]) {
        let after = Sizes::of(fleet);
        let removes = |is: fn(&Change) -> bool| changes.iter().any(is);
        self.hosts += u64::from(before.hosts != after.hosts);
        self.apps +=
            u64::from(before.apps != after.apps || removes(|c| matches!(c, Change::AppRemoved { .. })));
        self.instances += u64::from(
            before.instances != after.instances || removes(|c| matches!(c, Change::InstanceRemoved { .. })),
        );
        self.routes +=
            u64::from(before.routes != after.routes || removes(|c| matches!(c, Change::RouteRemoved { .. })));
        self.alerts += u64::from(removes(|c| matches!(c, Change::Alert(_) | Change::AlertRemoved { .. })));
    }
}

/// How many rows each fleet table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    hosts: usize,
    apps: usize,
    instances: usize,
    routes: usize,
}

impl Sizes {
    fn of(fleet: &Fleet) -> Sizes {
        Sizes {
            hosts: fleet.hosts.len(),
            apps: fleet.apps.len(),
            instances: fleet.instances.len(),
            routes: fleet.routes.len(),
        }
    }
}

/// One heartbeat's metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When the heartbeat reached us (ms since epoch).
    pub ts: u64,
    pub cpu_pct: f32,
    pub mem_pct: f32,
}

/// The last `METRICS_KEPT` samples, oldest first, for the detail panes' sparklines.
pub type History = VecDeque<Sample>;

fn remember(history: &mut History, sample: Sample) {
    if history.len() >= METRICS_KEPT {
        history.pop_front();
    }
    history.push_back(sample);
}

/// Whether the replica can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// No snapshot yet.
    Loading,
    /// Following the controller event by event.
    Live,
    /// A gap or a reconnect: a fresh snapshot has been asked for.
    Resyncing,
}

#[derive(Debug, Clone)]
pub struct Replica {
    pub fleet: Fleet,
    /// Newest last.
    pub events: VecDeque<Event>,
    /// `AUDIT` events, newest last.
    pub audit: VecDeque<Event>,
    /// When each host's last heartbeat reached us (ms since epoch).
    pub heartbeats: HashMap<String, u64>,
    pub sync: Sync,
    /// When the replica last heard anything from the plane (ms since epoch).
    pub last_update: u64,
    pub gaps: u64,
    /// New epochs seen: a controller whose revision went below ours.
    pub epochs: u64,
    /// Bumped on every change the views care about, so they can cache per generation.
    pub generation: u64,
    /// Bumped when rows come, go or change, but not for metrics.
    pub structure: u64,
    /// Bumped per table when its rows come or go: a table in its natural order needs a
    /// new index only then.
    pub members: Membership,
    /// Snapshots applied: after one, any row may have changed.
    pub snapshots: u64,
    /// At the last beacon we were behind: the controller's revision then, and ours.
    behind: Option<(u64, u64)>,
    /// Our revision at the last beacon that was below it, if the last beacon was.
    below: Option<u64>,
    /// Events the history held after the last one applied, as the backend's follow
    /// counted them (`Feed::Pending`): how late the replica is. 0 when caught up, or
    /// when the bus cannot tell.
    pub pending: u64,
    /// Metrics over the last minutes, fed by heartbeats, by host id.
    pub host_history: HashMap<String, History>,
    /// The same by instance id.
    pub instance_history: HashMap<String, History>,
    /// When the controller was last heard (a beacon, an event or a snapshot), ms since
    /// epoch; 0 until it has been.
    pub controller_heard: u64,
    /// When the last beacon arrived, the intervals between the last few, and their
    /// median (0 until there is one): the controller's period.
    last_beacon: u64,
    beacon_intervals: VecDeque<u64>,
    beacon_period: u64,
    /// Each host's heartbeat period, from its heartbeats, and the longest of them.
    host_periods: HashMap<String, u64>,
    longest_period: u64,
    /// When the bus connection last came back: sources are judged from then at the
    /// earliest, as the controller gives hosts a fresh grace period after an outage.
    reconnected_at: u64,
    /// The silent sources at the last `tick`, and a counter bumped when they change.
    pub silence: Silence,
    pub silence_changes: u64,
}

impl Default for Replica {
    fn default() -> Self {
        Replica {
            fleet: Fleet::default(),
            events: VecDeque::new(),
            audit: VecDeque::new(),
            heartbeats: HashMap::new(),
            sync: Sync::Loading,
            last_update: 0,
            gaps: 0,
            epochs: 0,
            generation: 0,
            structure: 0,
            members: Membership::default(),
            snapshots: 0,
            behind: None,
            below: None,
            pending: 0,
            host_history: HashMap::new(),
            instance_history: HashMap::new(),
            controller_heard: 0,
            last_beacon: 0,
            beacon_intervals: VecDeque::new(),
            beacon_period: 0,
            host_periods: HashMap::new(),
            longest_period: 0,
            reconnected_at: 0,
            silence: Silence::default(),
            silence_changes: 0,
        }
    }
}

impl Replica {
    pub fn apply_snapshot(&mut self, fleet: Fleet, now: u64) {
        self.structure += 1;
        self.snapshots += 1;
        self.members.bump_fleet();
        self.fleet = fleet;
        self.sync = Sync::Live;
        // A snapshot comes right after a fresh follow, which starts at the head.
        self.pending = 0;
        self.last_update = now;
        self.heard_controller(now);
        self.generation += 1;
    }

    /// Applies one event. `Err(Gap)` means the caller must ask for a fresh snapshot; the
    /// replica is then marked `Resyncing` and ignores events until it gets one.
    pub fn apply_event(&mut self, event: Event, now: u64) -> Result<(), Gap> {
        self.last_update = now;
        // Only the controller publishes events: one is as good as a beacon.
        self.heard_controller(now);
        if event.kind == crate::protocol::EventKind::Audit {
            self.remember_audit(&event);
        }
        if self.sync != Sync::Live {
            self.remember(event);
            return Ok(());
        }
        let sizes = Sizes::of(&self.fleet);
        match self.fleet.apply(&event) {
            Ok(_) => {
                self.members.note(sizes, &self.fleet, &event.changes);
                self.generation += 1;
                self.structure += 1;
                self.remember(event);
                Ok(())
            }
            Err(gap) => {
                self.gaps += 1;
                self.sync = Sync::Resyncing;
                self.remember(event);
                Err(gap)
            }
        }
    }

    /// A controller beacon. Returns true when the replica must take a fresh snapshot: it
    /// was behind at the previous beacon, is still behind, applied nothing since, and its
    /// follow says nothing is waiting, so an event was lost (a gap at the end of the
    /// stream, which no later event would reveal). A replica that is merely late (a flood:
    /// events still pending, or still arriving) is not lost, and a snapshot would only
    /// make it later.
    ///
    /// Beacons below the replica's own revision mean a new epoch (a controller restarted on
    /// a store that lost its last events): the events that follow would all look already
    /// applied and be ignored, so the replica takes a fresh snapshot. One such beacon is not
    /// enough: beacons and events come by different paths (a subscription and the stream's
    /// consumer), so events published after a beacon can be applied before it, and the
    /// beacon is then old news, below us by those events. A new epoch is two beacons in a
    /// row below us with nothing applied between them: the replica ignores what a new epoch
    /// sends it, so it cannot move.
    pub fn note_beacon(&mut self, revision: u64) -> bool {
        let ours = self.fleet.revision;
        if self.sync != Sync::Live {
            (self.behind, self.below) = (None, None);
            return false;
        }
        if revision < ours {
            self.behind = None;
            if self.below.replace(ours) != Some(ours) {
                return false;
            }
            log::warn!(
                "the controller's revision {revision} is below ours ({ours}): a new epoch; taking a fresh snapshot"
            );
            self.below = None;
            self.epochs += 1;
            self.sync = Sync::Resyncing;
            return true;
        }
        self.below = None;
        if revision == ours {
            self.behind = None;
            return false;
        }
        match self.behind {
            Some((prev, then)) if ours < prev && ours == then && self.pending == 0 => {
                self.behind = None;
                self.gaps += 1;
                self.sync = Sync::Resyncing;
                true
            }
            _ => {
                // Events may still be in flight: give them one beacon period.
                self.behind = Some((revision, ours));
                false
            }
        }
    }

    /// What the backend's follow said of the events behind the last one it handed on.
    pub fn note_pending(&mut self, pending: u64) {
        if self.pending != pending {
            self.pending = pending;
            self.generation += 1;
        }
    }

    /// How many events the replica is behind the history, while it follows live and is
    /// behind at all: what the header shows.
    pub fn lag(&self) -> Option<u64> {
        (self.sync == Sync::Live && self.pending > 0).then_some(self.pending)
    }

    /// A controller beacon heard at `now`: `note_beacon`, plus what the freshness rule
    /// needs (when the controller was last heard, and its period).
    pub fn note_beacon_at(&mut self, revision: u64, now: u64) -> bool {
        if self.last_beacon > 0 && now > self.last_beacon {
            if self.beacon_intervals.len() >= BEACON_INTERVALS_KEPT {
                self.beacon_intervals.pop_front();
            }
            self.beacon_intervals.push_back(now - self.last_beacon);
            let mut v: Vec<u64> = self.beacon_intervals.iter().copied().collect();
            v.sort_unstable();
            self.beacon_period = v[v.len() / 2];
        }
        self.last_beacon = now;
        self.heard_controller(now);
        self.note_beacon(revision)
    }

    /// History fetched at start: older events for the Events panel, merged by revision.
    pub fn apply_history(&mut self, history: Vec<Event>) {
        let newest_audit = self.audit.front().map(|e| e.rev).unwrap_or(u64::MAX);
        let older_audit: Vec<&Event> = history
            .iter()
            .filter(|e| e.kind == crate::protocol::EventKind::Audit && e.rev < newest_audit)
            .collect();
        for e in older_audit.into_iter().rev() {
            self.audit.push_front(e.clone());
        }
        while self.audit.len() > AUDIT_KEPT {
            self.audit.pop_front();
        }
        let newest_known = self.events.front().map(|e| e.rev).unwrap_or(u64::MAX);
        let older: Vec<Event> = history.into_iter().filter(|e| e.rev < newest_known).collect();
        for e in older.into_iter().rev() {
            self.events.push_front(e);
        }
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
        self.generation += 1;
        self.structure += 1;
        self.members.events += 1;
        self.members.audit += 1;
    }

    fn remember_audit(&mut self, event: &Event) {
        if self.audit.back().is_some_and(|last| last.rev >= event.rev) {
            return;
        }
        if self.audit.len() >= AUDIT_KEPT {
            self.audit.pop_front();
        }
        self.audit.push_back(event.clone());
        self.generation += 1;
        self.structure += 1;
        self.members.audit += 1;
    }

    fn remember(&mut self, event: Event) {
        if self.events.back().is_some_and(|last| last.rev >= event.rev) {
            return;
        }
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(event);
        // The Events panel's rows changed, even while the fleet waits for a snapshot.
        self.generation += 1;
        self.structure += 1;
        self.members.events += 1;
    }

    /// Heartbeats carry metrics, which have no revision: latest wins.
    pub fn apply_heartbeat(&mut self, hb: &Heartbeat, now: u64) {
        self.last_update = now;
        self.heartbeats.insert(hb.host.id.clone(), now);
        if self.host_periods.get(&hb.host.id) != Some(&hb.period_ms) {
            self.host_periods.insert(hb.host.id.clone(), hb.period_ms);
            self.longest_period = self.longest_period.max(hb.period_ms);
        }
        // A silent host that speaks again is fresh at once, not at the next tick.
        if self.silence.hosts.remove(&hb.host.id) {
            self.silence_changed();
        }
        if let Some(host) = self.fleet.hosts.get_mut(&hb.host.id) {
            host.metrics = hb.metrics.clone();
            host.unmanaged = hb.unmanaged.clone();
            host.last_heartbeat = now;
        }
        let m = &hb.metrics;
        let mem_pct =
            |used: u64, total: u64| if total > 0 { used as f32 * 100.0 / total as f32 } else { 0.0 };
        let sample = Sample { ts: now, cpu_pct: m.cpu_pct, mem_pct: mem_pct(m.mem_used_mb, m.mem_total_mb) };
        remember(self.host_history.entry(hb.host.id.clone()).or_default(), sample);
        for r in &hb.instances {
            if let Some(inst) = self.fleet.instances.get_mut(&r.id) {
                inst.cpu_pct = r.cpu_pct;
                inst.mem_used_mb = r.mem_used_mb;
                let sample = Sample {
                    ts: now,
                    cpu_pct: r.cpu_pct,
                    mem_pct: mem_pct(r.mem_used_mb, inst.mem_limit_mb),
                };
                remember(self.instance_history.entry(r.id.clone()).or_default(), sample);
            }
        }
        // Instances that are gone take their history with them (now and then: cheap).
        if self.instance_history.len() > self.fleet.instances.len() + 64 {
            let fleet = &self.fleet;
            self.instance_history.retain(|id, _| fleet.instances.contains_key(id));
        }
        if self.host_history.len() > self.fleet.hosts.len() + 16 {
            let fleet = &self.fleet;
            self.host_history.retain(|id, _| fleet.hosts.contains_key(id) || *id == hb.host.id);
        }
        self.generation += 1;
    }

    /// A connection loss: the data is kept, marked as not live, until a fresh snapshot.
    pub fn mark_resyncing(&mut self) {
        if self.sync == Sync::Live {
            self.sync = Sync::Resyncing;
        }
    }

    /// The bus connection came back (or went): sources are judged from now at the
    /// earliest, since nothing could be heard while it was down. Going down marks the data
    /// as not live until a fresh snapshot.
    pub fn note_connection(&mut self, connected: bool, now: u64) {
        if connected {
            self.reconnected_at = now;
        } else {
            self.mark_resyncing();
        }
    }

    fn heard_controller(&mut self, now: u64) {
        self.controller_heard = self.controller_heard.max(now);
        if self.silence.controller {
            self.silence.controller = false;
            self.silence_changed();
        }
    }

    fn silence_changed(&mut self) {
        self.silence_changes += 1;
        self.generation += 1;
    }

    /// The controller's beacon period: the median of the last intervals between beacons;
    /// until two beacons have been heard, the default or the longest host period if
    /// longer (a large fleet beats slowly, and its controller with it), so that a cockpit
    /// just started does not call a slow controller gone.
    pub fn controller_period(&self) -> u64 {
        match self.beacon_period {
            0 => self.longest_period.max(DEFAULT_PERIOD_MS),
            p => clamp_period(p),
        }
    }

    /// How long the controller has been silent, once it has missed
    /// `SILENT_AFTER_PERIODS` beacons; `None` while it is heard, or before it ever was.
    pub fn controller_silence(&self, now: u64) -> Option<u64> {
        if self.controller_heard == 0 {
            return None;
        }
        silent_for(self.controller_heard, self.reconnected_at, self.controller_period(), now)
    }

    /// A host's heartbeat period: its own, else the longest heard from any host (a
    /// host is not called silent for a period it may not have), else the default.
    pub fn host_period(&self, host: &str) -> u64 {
        match self.host_periods.get(host) {
            Some(p) => *p,
            None if self.longest_period > 0 => self.longest_period,
            None => DEFAULT_PERIOD_MS,
        }
    }

    /// How long a host has been silent, once its heartbeat was `SILENT_AFTER_PERIODS`
    /// periods late at the last `tick`; `None` while it beats, or when it was never heard.
    /// Hosts are judged at the tick (a pass over them all, once a second) and heard again
    /// at their next heartbeat, so that the header, the rows and the filter agree, and no
    /// frame judges every host.
    pub fn host_silence(&self, host: &str, now: u64) -> Option<u64> {
        if !self.silence.hosts.contains(host) {
            return None;
        }
        self.heartbeat_age(host, now)
    }

    /// Whether a host is silent at `now`, by the rule: what `tick` asks of each host.
    fn judge_host(&self, host: &str, now: u64) -> bool {
        self.last_heartbeat(host).is_some_and(|heard| {
            silent_for(heard, self.reconnected_at, self.host_period(host), now).is_some()
        })
    }

    /// A host's state as the cockpit shows it: the controller's, except that a host it
    /// has up whose heartbeat is silent is stale (whether or not a controller is left to
    /// say so), with how long it has been silent.
    pub fn host_state(&self, host: &Host, now: u64) -> (HostState, Option<u64>) {
        let silent = self.host_silence(&host.info.id, now);
        let state = match (host.state, silent) {
            (HostState::Up, Some(_)) => HostState::Stale,
            (state, _) => state,
        };
        (state, silent)
    }

    /// How old an instance's facts are, when they are old: its host is silent, or the
    /// controller that reports its state is. `None` while both are heard.
    pub fn instance_age(&self, host: &str, now: u64) -> Option<u64> {
        match (self.controller_silence(now), self.host_silence(host, now)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Judges every source at `now` (the cockpit's clock tick): when the set of silent
    /// sources changes, `silence_changes` and the generation move, so cached rows that
    /// show freshness are built again. The controller is also judged at each frame (one
    /// comparison, `controller_silence`); hosts only here.
    pub fn tick(&mut self, now: u64) {
        let silence = Silence {
            controller: self.controller_silence(now).is_some(),
            hosts: self.fleet.hosts.keys().filter(|h| self.judge_host(h, now)).cloned().collect(),
        };
        if silence != self.silence {
            self.silence = silence;
            self.silence_changed();
        }
    }

    /// When a host's last heartbeat reached us, or the controller last heard it.
    fn last_heartbeat(&self, host: &str) -> Option<u64> {
        self.heartbeats
            .get(host)
            .copied()
            .or_else(|| self.fleet.hosts.get(host).map(|h| h.last_heartbeat))
            .filter(|t| *t > 0)
    }

    /// Milliseconds since a host's last heartbeat reached us, if one has.
    pub fn heartbeat_age(&self, host: &str, now: u64) -> Option<u64> {
        self.last_heartbeat(host).map(|t| now.saturating_sub(t))
    }
}

/// A heartbeat from `host` with its metrics and no instances, for tests.
#[cfg(test)]
pub(crate) fn test_heartbeat(host: &Host, period_ms: u64) -> Heartbeat {
    Heartbeat {
        host: host.info.clone(),
        metrics: host.metrics.clone(),
        instances: vec![],
        period_ms,
        unmanaged: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EventKind;

    fn host(id: &str) -> Host {
        let mut h = Host::for_test(id, "az1", 4, 8192);
        h.info.hostname = format!("{id}.test");
        h
    }

    #[test]
    fn the_rule_is_three_periods_from_the_later_of_heard_and_grace() {
        assert_eq!(silent_for(1_000, 0, 300, 1_900), None, "exactly 3 periods is not yet silent");
        assert_eq!(silent_for(1_000, 0, 300, 1_901), Some(901));
        // A grace period (the bus came back) delays the judgement, not the age shown.
        assert_eq!(silent_for(1_000, 5_000, 300, 5_900), None);
        assert_eq!(silent_for(1_000, 5_000, 300, 5_901), Some(4_901));
        // Periods are clamped as the controller clamps them.
        assert_eq!(silent_for(0, 0, 0, 301), Some(301));
    }

    #[test]
    fn a_controller_is_silent_after_three_of_its_beacon_periods() {
        let mut r = Replica::default();
        assert_eq!(r.controller_silence(1_000_000), None, "never heard: nothing to judge");
        r.apply_snapshot(Fleet { revision: 10, ..Fleet::default() }, 1_000);
        assert_eq!(r.controller_period(), DEFAULT_PERIOD_MS, "the default before two beacons");
        assert_eq!(r.controller_silence(7_000), None);
        assert_eq!(r.controller_silence(7_001), Some(6_001));
        // Beacons every 300 ms teach the period, even with one late beacon among them.
        let mut t = 1_000;
        for gap in [300, 300, 300, 2_000, 300, 300] {
            t += gap;
            r.note_beacon_at(10, t);
        }
        assert_eq!(r.controller_period(), 300);
        assert_eq!(r.controller_silence(t + 900), None);
        assert_eq!(r.controller_silence(t + 901), Some(901));
        // An event is the controller speaking too.
        r.apply_event(ev(11), t + 800).unwrap();
        assert_eq!(r.controller_silence(t + 1_500), None);
        // The bus was down: judged again from when it came back.
        r.note_connection(false, t + 2_000);
        assert_eq!(r.sync, Sync::Resyncing, "a lost connection marks the data not live");
        r.note_connection(true, t + 30_000);
        assert_eq!(r.controller_silence(t + 30_500), None);
        assert_eq!(r.controller_silence(t + 30_901), Some(30_901 - 800));
    }

    #[test]
    fn a_host_is_silent_after_three_of_its_own_periods_and_then_shown_stale() {
        let mut r = Replica::default();
        let (a, b) = (host("a"), host("b"));
        let fleet = Fleet {
            revision: 1,
            hosts: [(a.info.id.clone(), a.clone()), (b.info.id.clone(), b.clone())].into_iter().collect(),
            ..Fleet::default()
        };
        r.apply_snapshot(fleet, 1_000);
        r.tick(10_000);
        assert_eq!(r.host_silence("a", 10_000), None, "never heard: nothing to judge");
        r.apply_heartbeat(&test_heartbeat(&a, 500), 1_000);
        assert_eq!(r.host_period("a"), 500);
        assert_eq!(r.host_period("b"), 500, "a host not heard yet gets the longest known period");
        r.tick(2_500);
        assert_eq!(r.host_silence("a", 2_500), None);
        r.tick(2_501);
        assert_eq!(r.host_silence("a", 2_501), Some(1_501));
        assert_eq!(r.host_state(&a, 2_600), (HostState::Stale, Some(1_600)), "no controller needed");
        let lost = Host { state: HostState::Lost, ..a.clone() };
        assert_eq!(r.host_state(&lost, 2_600).0, HostState::Lost);
        // Its instances' facts are as old as its heartbeat, or as the controller's word.
        r.apply_heartbeat(&test_heartbeat(&b, 500), 2_500);
        assert_eq!(r.instance_age("a", 2_600), Some(1_600));
        assert_eq!(r.instance_age("b", 2_600), None);
        assert_eq!(r.instance_age("b", 10_000), Some(9_000), "the controller is silent by then");
        // Heard again: up at once, before any tick.
        r.apply_heartbeat(&test_heartbeat(&a, 500), 2_700);
        assert_eq!(r.host_state(&a, 2_700), (HostState::Up, None));
    }

    #[test]
    fn the_tick_notes_each_change_of_silence_once() {
        let mut r = Replica::default();
        let a = host("a");
        let fleet = Fleet {
            revision: 1,
            hosts: [(a.info.id.clone(), a.clone())].into_iter().collect(),
            ..Fleet::default()
        };
        r.apply_snapshot(fleet, 1_000);
        r.apply_heartbeat(&test_heartbeat(&a, 1_000), 1_000);
        r.note_beacon_at(1, 1_000);
        r.tick(2_000);
        assert_eq!((r.silence.clone(), r.silence_changes), (Silence::default(), 0));
        r.tick(5_000);
        r.tick(5_500);
        assert!(r.silence.hosts.contains("a") && !r.silence.controller);
        assert_eq!(r.silence_changes, 1, "one change, however many ticks");
        r.tick(8_000);
        assert!(r.silence.controller, "the default period: 3 x 2 s");
        assert_eq!(r.silence_changes, 2);
        // Heard again: fresh at once, not at the next tick.
        let generation = r.generation;
        r.apply_heartbeat(&test_heartbeat(&a, 1_000), 8_100);
        r.note_beacon_at(1, 8_100);
        assert_eq!(r.silence, Silence::default());
        assert_eq!(r.silence_changes, 4);
        assert!(r.generation > generation);
    }

    fn ev(rev: u64) -> Event {
        Event {
            rev,
            ts: 0,
            kind: EventKind::HostUp,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            message: String::new(),
            changes: vec![],
            audit: None,
        }
    }

    #[test]
    fn follows_events_and_detects_gaps() {
        let mut r = Replica::default();
        r.apply_snapshot(Fleet { revision: 10, ..Fleet::default() }, 1);
        assert!(r.apply_event(ev(9), 2).is_ok(), "old events are ignored");
        assert!(r.apply_event(ev(11), 2).is_ok());
        assert_eq!(r.fleet.revision, 11);
        assert_eq!(r.apply_event(ev(13), 3), Err(Gap { have: 11, got: 13 }));
        assert_eq!(r.sync, Sync::Resyncing);
        assert_eq!(r.gaps, 1);
        // Until the fresh snapshot, events are shown but not applied.
        assert!(r.apply_event(ev(14), 4).is_ok());
        assert_eq!(r.fleet.revision, 11);
        r.apply_snapshot(Fleet { revision: 14, ..Fleet::default() }, 5);
        assert_eq!(r.sync, Sync::Live);
        assert!(r.apply_event(ev(15), 6).is_ok());
        assert_eq!(r.fleet.revision, 15);
    }

    #[test]
    fn a_beacon_below_our_revision_is_a_new_epoch_and_asks_for_a_snapshot() {
        let mut r = Replica::default();
        r.apply_snapshot(Fleet { revision: 93, ..Fleet::default() }, 0);
        assert!(!r.note_beacon(93), "in step");
        assert!(!r.note_beacon(16), "one beacon below may be old news");
        assert!(r.note_beacon(17), "a controller restarted on an older store: we did not move");
        assert_eq!((r.sync, r.epochs), (Sync::Resyncing, 1));
        // The fresh snapshot is taken as it is, lower revision and all, and the events
        // above it apply again.
        r.apply_snapshot(Fleet { revision: 16, ..Fleet::default() }, 0);
        assert_eq!((r.sync, r.fleet.revision), (Sync::Live, 16));
        assert!(!r.note_beacon(16));
    }

    #[test]
    fn a_beacon_overtaken_by_events_is_not_a_new_epoch() {
        let mut r = Replica::default();
        r.apply_snapshot(Fleet { revision: 10, ..Fleet::default() }, 0);
        // The beacon said 11, but events 11 and 12 were applied before it was read.
        r.apply_event(ev(11), 1).unwrap();
        r.apply_event(ev(12), 1).unwrap();
        assert!(!r.note_beacon(11));
        // The flood goes on: the next beacon is below us again, but we moved.
        r.apply_event(ev(13), 2).unwrap();
        assert!(!r.note_beacon(12));
        // In step: whatever was below before is forgotten.
        assert!(!r.note_beacon(13));
        assert!(!r.note_beacon(12));
        assert_eq!((r.sync, r.epochs, r.gaps), (Sync::Live, 0, 0));
    }

    #[test]
    fn a_lost_last_event_is_found_by_the_beacon() {
        let mut r = Replica::default();
        r.apply_snapshot(Fleet { revision: 10, ..Fleet::default() }, 1);
        assert!(!r.note_beacon(10));
        assert!(!r.note_beacon(11), "event 11 may be in flight");
        r.apply_event(ev(11), 2).unwrap();
        assert!(!r.note_beacon(12));
        // Event 12 never arrives.
        assert!(r.note_beacon(12));
        assert_eq!(r.sync, Sync::Resyncing);
    }

    #[test]
    fn a_late_replica_is_not_lost_while_events_are_pending_or_arriving() {
        let mut r = Replica::default();
        r.apply_snapshot(Fleet { revision: 10, ..Fleet::default() }, 1);
        // A flood: the follow says 500 events wait, the beacon is far ahead.
        r.note_pending(500);
        assert_eq!(r.lag(), Some(500));
        assert!(!r.note_beacon(600));
        assert!(!r.note_beacon(700), "events are pending: late, not lost");
        // Nothing pending any more, but events still arrive between beacons.
        r.note_pending(0);
        r.apply_event(ev(11), 2).unwrap();
        assert!(!r.note_beacon(700), "it moved on since the last beacon");
        assert_eq!(r.lag(), None, "caught up as far as the follow knows");
        // Nothing pending, nothing applied, still behind: the last events were lost.
        assert!(r.note_beacon(700));
        assert_eq!((r.sync, r.gaps), (Sync::Resyncing, 1));
        // Not live: the header says resyncing, not how late.
        r.note_pending(3);
        assert_eq!(r.lag(), None);
        // A snapshot comes after a fresh follow, which starts at the head.
        r.apply_snapshot(Fleet { revision: 700, ..Fleet::default() }, 3);
        assert_eq!((r.pending, r.lag()), (0, None));
    }

    #[test]
    fn events_are_bounded_and_history_goes_in_front() {
        let mut r = Replica::default();
        r.apply_snapshot(Fleet { revision: 100, ..Fleet::default() }, 1);
        r.apply_event(ev(101), 1).unwrap();
        r.apply_history((1..=101).map(ev).collect());
        assert_eq!(r.events.front().map(|e| e.rev), Some(1));
        assert_eq!(r.events.back().map(|e| e.rev), Some(101));
        assert_eq!(r.events.len(), 101);
        for rev in 102..(102 + EVENTS_KEPT as u64) {
            r.apply_event(ev(rev), 1).unwrap();
        }
        assert_eq!(r.events.len(), EVENTS_KEPT);
    }
}
