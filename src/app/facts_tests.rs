//! Headless tests of the fleet facts, driven through the whole App on the fixture: kept up
//! event by event, they equal the facts counted afresh.

use crate::views::harness::change_event;

#[test]
fn facts_kept_up_event_by_event_are_the_facts_counted_afresh() {
    use crate::protocol::{Change, HostState, InstanceState, RouteState};
    let mut app = crate::views::harness::fixture_app(300);
    app.refresh_views();
    let mut rng = crate::plane::rng::Rng::new(7);
    let states =
        [InstanceState::Running, InstanceState::Crashed, InstanceState::Starting, InstanceState::Stopped];
    let pick = |rng: &mut crate::plane::rng::Rng, n: usize| rng.between(0, n as u64 - 1) as usize;
    for step in 0..400 {
        let f = &app.replica.fleet;
        let inst = |rng: &mut crate::plane::rng::Rng| {
            f.instances.values().nth(pick(rng, f.instances.len())).cloned()
        };
        let mut changes = Vec::new();
        // One to three changes per event, now and then the same thing twice.
        for _ in 0..rng.between(1, 3) {
            let change = match rng.between(0, 8) {
                0 | 1 => inst(&mut rng).map(|mut i| {
                    i.state = states[pick(&mut rng, states.len())];
                    Change::Instance(i)
                }),
                2 => inst(&mut rng).map(|mut i| {
                    i.host = f.hosts.keys().nth(pick(&mut rng, f.hosts.len())).cloned().unwrap_or_default();
                    i.endpoint = if rng.chance(0.2) {
                        String::new()
                    } else {
                        format!("10.0.0.{}:80", rng.between(1, 9))
                    };
                    if rng.chance(0.3) {
                        i.version = format!("9.{}", rng.between(0, 2));
                    }
                    Change::Instance(i)
                }),
                3 => inst(&mut rng).map(|i| Change::InstanceRemoved { id: i.id }),
                4 => inst(&mut rng).map(|i| {
                    Change::Instance(crate::protocol::Instance {
                        id: format!("new-{step}-{}", rng.next_u64()),
                        ..i
                    })
                }),
                5 => inst(&mut rng).and_then(|i| {
                    let route = f.routes.values().next().cloned()?;
                    let state = if rng.chance(0.5) { RouteState::Disabled } else { route.state };
                    Some(Change::Route(crate::protocol::Route {
                        app: i.app,
                        backend: i.endpoint,
                        state,
                        ..route
                    }))
                }),
                6 => f.routes.keys().nth(pick(&mut rng, f.routes.len().max(1))).map(|(app, backend)| {
                    Change::RouteRemoved { app: app.clone(), backend: backend.clone() }
                }),
                7 => f.hosts.values().nth(pick(&mut rng, f.hosts.len())).cloned().map(|mut h| {
                    h.state = if h.state == HostState::Up { HostState::Lost } else { HostState::Up };
                    Change::Host(h)
                }),
                _ => f.apps.values().nth(pick(&mut rng, f.apps.len())).cloned().map(|mut a| {
                    a.instances = rng.between(0, 9) as u32;
                    Change::App(a)
                }),
            };
            changes.extend(change);
        }
        if rng.chance(0.1)
            && let Some(c) = changes.first().cloned()
        {
            changes.push(c);
        }
        // One event per frame: a trickle, which the facts follow one event at a time.
        app.refresh_views();
        let update = change_event(&app, changes.clone());
        app.apply(update);
        assert_eq!(
            app.facts.stamp,
            crate::app::facts::stamp_of(&app.replica),
            "step {step}: the facts followed"
        );
        let fresh = crate::app::facts::FleetFacts::of(&app.replica);
        assert_eq!(app.facts, fresh, "step {step}: {changes:?}");
    }
}

#[test]
fn a_burst_past_the_budget_is_counted_afresh_before_the_frame() {
    use crate::protocol::{Change, InstanceState};
    let mut app = crate::views::harness::fixture_app(300);
    app.refresh_views();
    let ids: Vec<String> = app.replica.fleet.instances.keys().cloned().collect();
    for n in 0..crate::app::FACTS_BUDGET + 10 {
        let mut inst = app.replica.fleet.instances[&ids[n % ids.len()]].clone();
        inst.state = if n % 3 == 0 { InstanceState::Crashed } else { InstanceState::Running };
        let update = change_event(&app, vec![Change::Instance(inst)]);
        app.apply(update);
    }
    assert_ne!(
        app.facts.stamp,
        crate::app::facts::stamp_of(&app.replica),
        "followed no further than the budget"
    );
    app.refresh_views();
    assert_eq!(app.facts, crate::app::facts::FleetFacts::of(&app.replica));
}
