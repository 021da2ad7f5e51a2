//! The fleet's state at one revision, and how an event moves it to the next.
//!
//! The controller's state and every replica are the same type, so a replica that applies
//! the controller's events in order ends up equal to the controller's snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::{Change, Event};
use super::model::{App, Host, Instance, Operation, Route, RouteKey};

/// The snapshot body and the state the controller keeps, keyed for stable ordering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    pub revision: u64,
    #[serde(with = "as_list::hosts")]
    pub hosts: BTreeMap<String, Host>,
    #[serde(with = "as_list::apps")]
    pub apps: BTreeMap<String, App>,
    #[serde(with = "as_list::instances")]
    pub instances: BTreeMap<String, Instance>,
    #[serde(with = "as_list::routes")]
    pub routes: BTreeMap<RouteKey, Route>,
    #[serde(with = "as_list::operations")]
    pub operations: BTreeMap<String, Operation>,
}

/// An event arrived whose revision is not the next one: the replica must take a fresh
/// snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("revision gap: at {have}, received {got}")]
pub struct Gap {
    pub have: u64,
    pub got: u64,
}

/// How many finished operations a fleet keeps; running ones are always kept.
pub const FINISHED_OPERATIONS_KEPT: usize = 200;

impl Fleet {
    /// Applies an event at `revision + 1`. Older events are ignored (already included);
    /// newer ones are a gap and change nothing.
    pub fn apply(&mut self, event: &Event) -> Result<bool, Gap> {
        if event.rev <= self.revision {
            return Ok(false);
        }
        if event.rev != self.revision + 1 {
            return Err(Gap { have: self.revision, got: event.rev });
        }
        for change in &event.changes {
            self.apply_change(change);
        }
        self.revision = event.rev;
        Ok(true)
    }

    pub fn apply_change(&mut self, change: &Change) {
        match change {
            Change::Host(h) => {
                self.hosts.insert(h.id.clone(), h.clone());
            }
            Change::App(a) => {
                self.apps.insert(a.name.clone(), a.clone());
            }
            Change::AppRemoved { name } => {
                self.apps.remove(name);
            }
            // In place when known: most events move an existing instance on.
            Change::Instance(i) => match self.instances.get_mut(&i.id) {
                Some(known) => known.clone_from(i),
                None => {
                    self.instances.insert(i.id.clone(), i.clone());
                }
            },
            Change::InstanceRemoved { id } => {
                self.instances.remove(id);
            }
            Change::Route(r) => {
                self.routes.insert(r.key(), r.clone());
            }
            Change::RouteRemoved { app, backend } => {
                self.routes.remove(&(app.clone(), backend.clone()));
            }
            Change::Operation(op) => {
                self.operations.insert(op.id.clone(), op.clone());
                self.trim_operations();
            }
        }
    }

    fn trim_operations(&mut self) {
        let finished = self.operations.values().filter(|o| o.finished_at.is_some()).count();
        if finished <= FINISHED_OPERATIONS_KEPT {
            return;
        }
        let mut done: Vec<(u64, String)> =
            self.operations.values().filter_map(|o| o.finished_at.map(|t| (t, o.id.clone()))).collect();
        done.sort();
        for (_, id) in done.into_iter().take(finished - FINISHED_OPERATIONS_KEPT) {
            self.operations.remove(&id);
        }
    }

    /// The instances placed on one host, in id order.
    pub fn instances_on<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| i.host == host)
    }

    /// The instances of one app, in id order.
    pub fn instances_of<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| i.app == app)
    }
}

/// On the wire the maps are plain JSON arrays, which is what scripts expect from
/// `ctl snapshot --json`.
mod as_list {
    macro_rules! list_of {
        ($name:ident, $ty:ty, $key:ty, |$v:ident| $k:expr) => {
            pub mod $name {
                use std::collections::BTreeMap;

                use serde::{Deserialize, Deserializer, Serializer};

                pub fn serialize<S: Serializer>(map: &BTreeMap<$key, $ty>, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_seq(map.values())
                }

                pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<$key, $ty>, D::Error> {
                    let items = Vec::<$ty>::deserialize(d)?;
                    Ok(items
                        .into_iter()
                        .map(|$v| {
                            let key = $k;
                            (key, $v)
                        })
                        .collect())
                }
            }
        };
    }
    list_of!(hosts, crate::protocol::model::Host, String, |v| v.id.clone());
    list_of!(apps, crate::protocol::model::App, String, |v| v.name.clone());
    list_of!(instances, crate::protocol::model::Instance, String, |v| v.id.clone());
    list_of!(routes, crate::protocol::model::Route, (String, String), |v| v.key());
    list_of!(operations, crate::protocol::model::Operation, String, |v| v.id.clone());
}
