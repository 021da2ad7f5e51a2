//! Fleet-wide facts the views show on every frame (header totals, instances per host, the
//! instance behind a route backend). Counting them means a pass over every instance, so
//! they are computed once per change of the fleet's structure, not per frame: heartbeats
//! change metrics only, never a state or a placement, so they keep the facts current.

use std::collections::HashMap;

use crate::backend::Replica;
use crate::protocol::{HostState, InstanceState, RouteState};

/// What the facts were computed from: the replica's structure counter plus the collection
/// sizes, which catch changes made to the fleet without a new structure (tests do that).
pub type FactsStamp = (u64, usize, usize, usize, usize);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetFacts {
    pub stamp: FactsStamp,
    pub hosts_up: usize,
    pub running: usize,
    /// Instances the apps ask for, summed.
    pub desired: u64,
    /// Running instances with an endpoint and no route.
    pub unrouted: usize,
    /// Instances placed on each host.
    pub per_host: HashMap<String, usize>,
    /// The instances behind each endpoint, by app then endpoint: nested so that a view
    /// looks one up by `&str`, without building a key.
    pub by_endpoint: HashMap<String, HashMap<String, Endpoint>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Endpoint {
    /// The state of the first instance on it, in id order (what the Routes panel shows).
    pub first: InstanceState,
    /// Whether any instance on it runs.
    pub serving: bool,
    /// The route to it, if there is one.
    pub route: Option<RouteState>,
}

pub fn stamp_of(replica: &Replica) -> FactsStamp {
    let f = &replica.fleet;
    (replica.structure, f.hosts.len(), f.instances.len(), f.apps.len(), f.routes.len())
}

impl FleetFacts {
    pub fn of(replica: &Replica) -> FleetFacts {
        let f = &replica.fleet;
        let mut facts = FleetFacts {
            stamp: stamp_of(replica),
            hosts_up: f.hosts.values().filter(|h| h.state == HostState::Up).count(),
            desired: f.apps.values().map(|a| u64::from(a.instances)).sum(),
            ..FleetFacts::default()
        };
        for i in f.instances.values() {
            *facts.per_host.entry(i.host.clone()).or_default() += 1;
            if i.state == InstanceState::Running {
                facts.running += 1;
            }
            if i.endpoint.is_empty() {
                continue;
            }
            let key = (i.app.clone(), i.endpoint.clone());
            let route = f.routes.get(&key).map(|r| r.state);
            let running = i.state == InstanceState::Running;
            if running && route.is_none() {
                facts.unrouted += 1;
            }
            facts
                .by_endpoint
                .entry(key.0)
                .or_default()
                .entry(key.1)
                .and_modify(|e| e.serving |= running)
                .or_insert(Endpoint { first: i.state, serving: running, route });
        }
        facts
    }

    pub fn instances_on(&self, host: &str) -> usize {
        self.per_host.get(host).copied().unwrap_or(0)
    }

    pub fn endpoint(&self, app: &str, endpoint: &str) -> Option<&Endpoint> {
        self.by_endpoint.get(app).and_then(|m| m.get(endpoint))
    }

    /// The routing word for an instance, as `rows::instance_route` says it.
    pub fn route_word(&self, app: &str, endpoint: &str, state: InstanceState) -> &'static str {
        match self.endpoint(app, endpoint).and_then(|e| e.route) {
            Some(RouteState::Disabled) => "○ off",
            Some(_) => "✓",
            None if state == InstanceState::Running && !endpoint.is_empty() => "⚠ unrouted",
            None => "-",
        }
    }
}
