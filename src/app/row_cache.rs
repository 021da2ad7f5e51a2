//! The rows a filter or a sort looks at, built once and kept: each row's sort keys and
//! the text the filter matches (both from `cells::row`, what the screen shows), in natural order, plus whether the current filter keeps it.
//! A filter keystroke re-matches the kept text and builds no row; a heartbeat or an event
//! rebuilds the rows it touched (`dirty`, see `touched_by`), nothing else. Everything is
//! rebuilt when the panel's rows come or go (the replica's membership counters), or when
//! the time the panel shows moves on.

use std::collections::{HashMap, HashSet};

use crate::protocol::{Change, Fleet, Instance};

use super::cells::{RowSource, row};
use super::rows::{Filter, RowKey, natural};
use super::sort_key::SortKey;
use crate::actions::Panel;
use crate::backend::Replica;

#[derive(Debug, Clone, Default)]
pub struct RowCache {
    /// The replica's snapshots and the panel's membership counter, the panel's time
    /// bucket with the replica's changes of silent sources, and the row count it was built
    /// for.
    stamp: Option<(u64, u64, (u64, u64), usize)>,
    /// Natural order.
    pub keys: Vec<RowKey>,
    pos: HashMap<RowKey, usize>,
    /// Each row's sort keys, one per column.
    pub sort_keys: Vec<Vec<SortKey<'static>>>,
    hay: Vec<String>,
    /// Whether each row passes `matched_for`'s filter.
    pub keep: Vec<bool>,
    matched_for: Option<Option<String>>,
    /// Rows events or heartbeats changed since the last refresh.
    pub dirty: HashSet<RowKey>,
    /// Rows built so far, ever: what the tests count.
    pub builds: u64,
    /// Indexes ordered from these rows so far, ever: what the tests count.
    pub orders: u64,
}

/// What a panel's rows show of the clock: hosts their heartbeat age to the second (and
/// with it the bytes of their pulls, which step events move without touching a row),
/// instances their uptime and alerts their age to the minute; the rest nothing that moves.
fn time_bucket(panel: Panel, now: u64) -> u64 {
    match panel {
        Panel::Hosts => now / 1000,
        Panel::Instances | Panel::Alerts => now / 60_000,
        _ => 0,
    }
}

/// What changed in a refresh, so the caller knows whether the index must be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// Every row was built again, or the filter matched again: the order must follow now.
    All,
    /// Rows events or heartbeats touched were rebuilt in place, if any. An index built on
    /// the cache before is still right unless one of them `moved`: its filter result
    /// flipped, or its sort key changed while the filter keeps it.
    Some { moved: bool },
}

impl RowCache {
    /// Whether a heartbeat's changes should be noted: only a cache in use needs them.
    pub fn in_use(&self) -> bool {
        self.stamp.is_some()
    }

    /// Lets the rows go (natural order needs none), keeping the count of builds.
    pub fn release(&mut self) {
        if self.in_use() {
            *self = RowCache { builds: self.builds, orders: self.orders, ..RowCache::default() };
        }
    }

    /// Rebuilds the rows marked dirty; says whether one moved: its filter verdict flipped,
    /// or its sort key changed while the filter keeps it.
    /// Rows came or went, and nothing else moved: the rows still there keep what was
    /// built for them, and only the new ones are built.
    fn keep_and_add(
        &mut self,
        keys: Vec<RowKey>,
        build: &dyn Fn(&RowKey) -> (Vec<SortKey<'static>>, String),
        filter: Option<&Filter>,
    ) {
        let mut old: Vec<Option<(Vec<SortKey<'static>>, String, bool)>> = std::mem::take(&mut self.sort_keys)
            .into_iter()
            .zip(std::mem::take(&mut self.hay))
            .zip(std::mem::take(&mut self.keep))
            .map(|((f, h), k)| Some((f, h, k)))
            .collect();
        for key in &keys {
            let kept = self.pos.get(key).and_then(|&p| old.get_mut(p)).and_then(Option::take);
            let (f, h, k) = match kept {
                Some(row) => row,
                None => {
                    // Built now, and so not again for being touched.
                    self.dirty.remove(key);
                    self.builds += 1;
                    let (f, h) = build(key);
                    let k = filter.is_none_or(|x| x.keeps(&h));
                    (f, h, k)
                }
            };
            self.sort_keys.push(f);
            self.hay.push(h);
            self.keep.push(k);
        }
        self.pos = keys.iter().enumerate().map(|(p, k)| (k.clone(), p)).collect();
        self.keys = keys;
    }

    fn refresh_dirty(
        &mut self,
        build: &dyn Fn(&RowKey) -> (Vec<SortKey<'static>>, String),
        filter: Option<&Filter>,
        sort_column: Option<usize>,
    ) -> bool {
        let mut moved = false;
        for key in std::mem::take(&mut self.dirty) {
            let Some(&p) = self.pos.get(&key) else { continue };
            let (keys, hay) = build(&key);
            // A heartbeat that leaves the sorted column alone (sorted by app or host, say)
            // leaves the order alone: no re-sort of every kept row.
            let sort_key = |k: &[SortKey<'static>]| sort_column.and_then(|c| k.get(c)).cloned();
            moved |= self.keep[p] && sort_key(&self.sort_keys[p]) != sort_key(&keys);
            self.sort_keys[p] = keys;
            self.hay[p] = hay;
            self.builds += 1;
            let keep = filter.is_none_or(|f| f.keeps(&self.hay[p]));
            moved |= keep != self.keep[p];
            self.keep[p] = keep;
        }
        moved
    }

    /// A kept row's filter text, for tests.
    #[cfg(test)]
    pub fn hay_of(&self, key: &RowKey) -> Option<&str> {
        self.pos.get(key).and_then(|&p| self.hay.get(p)).map(String::as_str)
    }

    /// Notes a row an event or a heartbeat changed; past a fleet's worth it is cheaper to
    /// rebuild them all.
    pub fn touch(&mut self, key: RowKey) {
        if self.dirty.len() > self.keys.len() / 2 {
            self.stamp = None;
            self.dirty.clear();
        } else {
            self.dirty.insert(key);
        }
    }

    /// Every row is built again at the next refresh: what they show changed for all of
    /// them (traffic became known or unknown).
    pub fn rebuild_all(&mut self) {
        self.stamp = None;
        self.dirty.clear();
    }

    /// Brings the rows up to date and re-matches the filter if it changed.
    pub fn refresh(
        &mut self,
        src: RowSource<'_>,
        panel: Panel,
        filter: Option<&Filter>,
        sort_column: Option<usize>,
    ) -> Refreshed {
        let (replica, now) = (src.replica, src.now);
        let total = super::rows::total(replica, panel);
        // A source going silent or speaking again changes what rows show (`? running`),
        // as the clock moving on does.
        let bucket = (time_bucket(panel, now), replica.silence_changes);
        let stamp = (replica.snapshots, super::rows::members(replica, panel), bucket, total);
        // Counted once per refresh: a pass over the running operations.
        let pulls =
            if panel == Panel::Hosts { super::pulls::by_host(&replica.fleet) } else { Default::default() };
        let build = |key: &RowKey| {
            let row = row(src, &pulls, panel, key).unwrap_or_default();
            let hay = row.hay();
            (row.keys(), hay)
        };
        let filter_text = filter.map(|f| f.text.clone());
        let same_rows_since = |old: &(u64, u64, (u64, u64), usize)| old.0 == stamp.0 && old.2 == stamp.2;
        if self.stamp.as_ref().is_some_and(|old| *old != stamp && same_rows_since(old)) {
            // Rows came or went, and no snapshot or clock moved the others: the rows still
            // there are kept (those the change touched are in `dirty`, rebuilt below) and
            // the new ones built. An Events panel gains a row per event this way, not 5,000.
            self.keep_and_add(natural(replica, panel), &build, filter);
            self.stamp = Some(stamp);
            self.refresh_dirty(&build, filter, sort_column);
            if self.matched_for.as_ref() != Some(&filter_text) {
                self.keep = self.hay.iter().map(|h| filter.is_none_or(|f| f.keeps(h))).collect();
                self.matched_for = Some(filter_text);
            }
            return Refreshed::All;
        }
        if self.stamp != Some(stamp) {
            self.keys = natural(replica, panel);
            self.pos = self.keys.iter().enumerate().map(|(p, k)| (k.clone(), p)).collect();
            (self.sort_keys, self.hay) = self.keys.iter().map(&build).unzip();
            self.builds += self.keys.len() as u64;
            self.keep = self.hay.iter().map(|h| filter.is_none_or(|f| f.keeps(h))).collect();
            self.matched_for = Some(filter_text);
            self.dirty.clear();
            self.stamp = Some(stamp);
            return Refreshed::All;
        }
        let moved = self.refresh_dirty(&build, filter, sort_column);
        if self.matched_for.as_ref() != Some(&filter_text) {
            // A new filter: matched against the kept text, no row is built.
            self.keep = self.hay.iter().map(|h| filter.is_none_or(|f| f.keeps(h))).collect();
            self.matched_for = Some(filter_text);
            return Refreshed::All;
        }
        Refreshed::Some { moved }
    }
}

/// The rows of each panel that `changes` touch, from the fleet as it was before they
/// applied (a moved or removed instance also touches the host, app and route it left).
/// Rows that come or go are not listed: the replica's membership counters rebuild those
/// tables whole.
pub fn touched_by(fleet: &Fleet, changes: &[Change]) -> Vec<(Panel, RowKey)> {
    let id = |s: &str| RowKey::Id(s.to_string());
    let route = |app: &str, backend: &str| RowKey::Route(app.to_string(), backend.to_string());
    // What an instance shows up in besides its own row: its host's count, its app's
    // running count, the state behind its route.
    let around = |i: &Instance, out: &mut Vec<(Panel, RowKey)>| {
        out.push((Panel::Hosts, id(&i.host)));
        out.push((Panel::Apps, id(&i.app)));
        if !i.endpoint.is_empty() {
            out.push((Panel::Routes, route(&i.app, &i.endpoint)));
        }
    };
    let mut out = Vec::new();
    for change in changes {
        match change {
            Change::Instance(i) => {
                out.push((Panel::Instances, id(&i.id)));
                around(i, &mut out);
                if let Some(old) = fleet.instances.get(&i.id) {
                    around(old, &mut out);
                }
            }
            Change::InstanceRemoved { id } => {
                if let Some(old) = fleet.instances.get(id) {
                    around(old, &mut out);
                }
            }
            Change::Host(h) => out.push((Panel::Hosts, id(&h.info.id))),
            Change::App(a) => out.push((Panel::Apps, id(&a.name))),
            Change::Route(crate::protocol::Route { app, backend, .. })
            | Change::RouteRemoved { app, backend } => {
                out.push((Panel::Routes, route(app, backend)));
                out.push((Panel::Apps, id(app)));
                // The instances behind it show whether they are routed.
                for i in fleet.instances_of(app).filter(|i| i.endpoint == *backend) {
                    out.push((Panel::Instances, id(&i.id)));
                }
            }
            // An app shows `◌ changing` while an operation runs on it: one that starts,
            // ends or goes changes its row. Steps change nothing an app shows.
            Change::Operation(op) => out.push((Panel::Apps, id(&op.app))),
            Change::OperationEnded(crate::protocol::OperationEnded { id: op, .. })
            | Change::OperationRemoved { id: op } => {
                if let Some(op) = fleet.operations.get(op) {
                    out.push((Panel::Apps, id(&op.app)));
                }
            }
            Change::Alert(a) => out.push((Panel::Alerts, id(&a.id))),
            // A silence marks the alerts on its subject.
            Change::Silence(crate::protocol::Silence { subject, .. }) => {
                let subject = subject.to_string();
                out.extend(alerts_on(fleet, &subject));
            }
            Change::SilenceRemoved { subject } => out.extend(alerts_on(fleet, subject)),
            // Rows that go are the membership counters' (`Membership::note`).
            Change::AppRemoved { .. } | Change::OperationStep(_) | Change::AlertRemoved { .. } => {}
        }
    }
    out
}

/// The Alerts panel's rows about a subject (its text form).
fn alerts_on<'a>(fleet: &'a Fleet, subject: &'a str) -> impl Iterator<Item = (Panel, RowKey)> + 'a {
    fleet
        .alerts
        .values()
        .filter(move |a| a.subject.to_string() == subject)
        .map(|a| (Panel::Alerts, RowKey::Id(a.id.clone())))
}

/// The audit records whose result an event's operation changes change: a record shows
/// how the operation it started stands. Only an operation that is new, ends or is removed
/// touches them, so the steps of a running operation cost nothing here.
pub fn audit_rows_of(replica: &Replica, changes: &[Change]) -> Vec<(Panel, RowKey)> {
    let mut out = Vec::new();
    for change in changes {
        let (id, state) = match change {
            Change::Operation(op) => (&op.id, Some(op.state)),
            Change::OperationEnded(end) => (&end.id, Some(end.state)),
            Change::OperationRemoved { id } => (id, None),
            _ => continue,
        };
        if replica.fleet.operations.get(id).map(|o| o.state) == state {
            continue;
        }
        let started = |e: &&crate::protocol::Event| {
            e.audit.as_ref().is_some_and(|a| a.outcome.operation_id.as_deref() == Some(id.as_str()))
        };
        out.extend(replica.audit.iter().filter(started).map(|e| (Panel::Audit, RowKey::Rev(e.rev))));
    }
    out
}

#[cfg(test)]
#[path = "row_cache_tests.rs"]
mod tests;
