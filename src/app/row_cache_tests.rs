//! Headless tests of the row cache, driven through the whole App on the fixture: which rows
//! an update rebuilds, and when a sorted table re-sorts.

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::{Feed, Inbound};
use crate::views::harness::{app, change_event, screen, type_text};

/// A heartbeat for host-01 with new metrics, as the bus would bring it.
fn metrics_heartbeat(app: &App) -> Inbound {
    let host = app.replica.fleet.hosts.get("host-01").cloned().expect("host-01");
    Inbound::Feed(Feed::Heartbeat(Box::new(crate::protocol::Heartbeat {
        host: host.info.clone(),
        metrics: crate::protocol::HostMetrics { cpu_pct: 99.0, ..host.metrics.clone() },
        instances: vec![],
        period_ms: 2000,
        unmanaged: vec![],
    })))
}

#[test]
fn metrics_alone_do_not_rebuild_a_table_in_natural_order() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.refresh_views();
    let i = Panel::Instances.index();
    let stamp = |app: &App| app.views[i].index.as_ref().map(|ix| ix.stamp);
    let before = stamp(&app);
    let update = metrics_heartbeat(&app);
    app.apply(update);
    app.refresh_views();
    assert_eq!(stamp(&app), before, "a heartbeat rebuilt the natural-order index");

    // Sorted, the order may depend on metrics: the same heartbeat rebuilds it.
    app.views[i].set_sort(Some(crate::app::rows::Sort { column: 8, descending: true }));
    app.refresh_views();
    let sorted = stamp(&app);
    let update = metrics_heartbeat(&app);
    app.apply(update);
    app.refresh_views();
    assert_ne!(stamp(&app), sorted, "a sorted index must follow the metrics");
}

/// A heartbeat from `host` reporting its instances with new metrics.
fn instances_heartbeat(app: &App, host: &str) -> (Inbound, usize) {
    let Inbound::Feed(Feed::Heartbeat(mut hb)) = metrics_heartbeat(app) else { unreachable!("a heartbeat") };
    let h = app.replica.fleet.hosts.get(host).cloned().expect("the host");
    hb.host.id = h.info.id.clone();
    hb.instances = app
        .replica
        .fleet
        .instances_on(host)
        .map(|i| crate::protocol::InstanceReport {
            cpu_pct: 77.0,
            mem_used_mb: i.mem_used_mb / 2 + 1,
            ..crate::protocol::InstanceReport::of(i)
        })
        .collect();
    let n = hb.instances.len();
    (Inbound::Feed(Feed::Heartbeat(hb)), n)
}

#[test]
fn a_filter_keystroke_rebuilds_no_row_and_a_heartbeat_only_its_own() {
    let mut app = crate::views::harness::fixture_app(2_000);
    app.update(Action::ShowPanel(Panel::Instances));
    let total = app.total_rows(Panel::Instances) as u64;
    let builds = |app: &App| app.view(Panel::Instances).cache.builds;
    assert_eq!(builds(&app), 0, "natural order builds no row");

    app.update(Action::Filter);
    type_text(&mut app, "s");
    assert_eq!(builds(&app), total, "the first filter builds each row once");
    type_text(&mut app, "hop-web");
    app.update(Action::Backspace);
    assert_eq!(builds(&app), total, "keystrokes re-match the kept rows and build none");
    let shown = app.row_count(Panel::Instances);
    assert!(shown > 0 && (shown as u64) < total, "{shown} of {total}");
    assert!(screen(&mut app, 200, 50).contains("filter /shop-we/"));

    // A heartbeat rebuilds the rows it touched, in the next frame, and no other.
    let (update, touched) = instances_heartbeat(&app, "host-02");
    assert!(touched > 0);
    app.apply(update);
    app.refresh_views();
    assert_eq!(builds(&app), total + touched as u64);
    app.refresh_views();
    assert_eq!(builds(&app), total + touched as u64, "a frame with nothing new builds nothing");

    // The index still agrees with a from-scratch build.
    let fresh = crate::app::rows::build(
        &app.replica,
        &app.facts(),
        &app.traffic,
        app.now,
        Panel::Instances,
        app.view(Panel::Instances),
    );
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh.keys.as_slice());
}

#[test]
fn a_heartbeat_re_sorts_only_when_it_moves_a_sort_key() {
    let mut app = crate::views::harness::fixture_app(2_000);
    app.update(Action::ShowPanel(Panel::Instances));
    let orders = |app: &App| app.view(Panel::Instances).cache.orders;
    let fresh = |app: &App| {
        crate::app::rows::build(
            &app.replica,
            &app.facts(),
            &app.traffic,
            app.now,
            Panel::Instances,
            app.view(Panel::Instances),
        )
        .keys
    };
    let sort = |app: &mut App, column: usize| {
        let i = Panel::Instances.index();
        app.views[i].set_sort(Some(crate::app::rows::Sort { column, descending: true }));
        app.refresh_views();
    };

    // Sorted by host, a heartbeat with new metrics changes no sort key: no re-sort.
    sort(&mut app, 3);
    let before = orders(&app);
    let (update, touched) = instances_heartbeat(&app, "host-02");
    assert!(touched > 0);
    app.apply(update);
    app.refresh_views();
    assert_eq!(orders(&app), before, "metrics moved no host");
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());

    // Sorted by CPU, the same kind of heartbeat moves its rows: the order follows once
    // the second is up, as `top` re-sorts per refresh, and is then a fresh build's.
    sort(&mut app, 8);
    let before = orders(&app);
    let (update, _) = instances_heartbeat(&app, "host-03");
    app.apply(update);
    app.refresh_views();
    assert_eq!(orders(&app), before, "within the second, heartbeats do not re-sort");
    let more = metrics_heartbeat(&app);
    app.apply(more);
    app.update(Action::Tick(app.now + crate::app::rows::RESORT_MS));
    app.refresh_views();
    assert_eq!(orders(&app), before + 1, "the CPU column moved: one re-sort");
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());
    // With nothing new, the next second does not sort again.
    app.update(Action::Tick(app.now + crate::app::rows::RESORT_MS));
    app.refresh_views();
    assert_eq!(orders(&app), before + 1);

    // An event that moves a sort key re-sorts in the next frame: a second has passed.
    let mut inst = app.replica.fleet.instances.values().nth(7).cloned().expect("an instance");
    inst.cpu_pct = 1000.0;
    let update = change_event(&app, vec![crate::protocol::Change::Instance(inst)]);
    app.apply(update);
    app.refresh_views();
    assert_eq!(orders(&app), before + 2);
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());
}

#[test]
fn an_event_rebuilds_only_the_rows_it_touched_and_a_sorted_table_stays_right() {
    use crate::protocol::{Change, InstanceState, RouteState};
    let mut app = crate::views::harness::fixture_app(2_000);
    app.update(Action::ShowPanel(Panel::Instances));
    let i = Panel::Instances.index();
    // Sorted by state, so a state change moves its row.
    app.views[i].set_sort(Some(crate::app::rows::Sort { column: 5, descending: false }));
    app.refresh_views();
    let builds = |app: &App| app.view(Panel::Instances).cache.builds;
    let fresh = |app: &App| {
        crate::app::rows::build(
            &app.replica,
            &app.facts(),
            &app.traffic,
            app.now,
            Panel::Instances,
            app.view(Panel::Instances),
        )
        .keys
    };
    let before = builds(&app);

    // One instance crashes: its row is built again, no other, and it moves (once a
    // second has passed since the table was sorted).
    let mut inst = app.replica.fleet.instances.values().nth(100).cloned().expect("an instance");
    inst.state = InstanceState::Crashed;
    let update = change_event(&app, vec![Change::Instance(inst.clone())]);
    app.apply(update);
    app.refresh_views();
    assert_eq!(builds(&app), before + 1, "only the crashed instance's row");
    assert_ne!(
        app.rows(Panel::Instances).first(),
        Some(&crate::app::rows::RowKey::Id(inst.id.clone())),
        "not yet"
    );
    app.update(Action::Tick(app.now + crate::app::rows::RESORT_MS));
    app.refresh_views();
    assert_eq!(builds(&app), before + 1, "only the crashed instance's row");
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());
    assert_eq!(app.rows(Panel::Instances).first(), Some(&crate::app::rows::RowKey::Id(inst.id.clone())));

    // Its route is turned off: the rows behind that route show it, and only they are built.
    let route = app
        .replica
        .fleet
        .routes
        .values()
        .find(|r| r.app == inst.app && r.backend == inst.endpoint)
        .cloned()
        .expect("the instance is routed");
    let behind = app.replica.fleet.instances_of(&inst.app).filter(|i| i.endpoint == inst.endpoint).count();
    let before = builds(&app);
    let update = change_event(
        &app,
        vec![Change::Route(crate::protocol::Route { state: RouteState::Disabled, ..route })],
    );
    app.apply(update);
    app.refresh_views();
    assert_eq!(builds(&app), before + behind as u64);
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());
    let facts = app.facts();
    let src = crate::app::cells::RowSource {
        replica: &app.replica,
        facts: &facts,
        traffic: &app.traffic,
        now: app.now,
    };
    let key = crate::app::rows::RowKey::Id(inst.id.clone());
    let row = crate::app::cells::row(src, &Default::default(), Panel::Instances, &key).expect("the row");
    assert_eq!(row.cells[10].text, "○ off");
    let cached = app.view(Panel::Instances).cache.hay_of(&key);
    assert_eq!(cached, Some(row.hay().as_str()));

    // A new instance comes: its row is built and the others are kept, and it takes its
    // place in the order at once.
    let before = builds(&app);
    let new = crate::protocol::Instance { id: "brand-new-1".into(), ..inst };
    let update = change_event(&app, vec![Change::Instance(new)]);
    app.apply(update);
    app.refresh_views();
    assert_eq!(builds(&app), before + 1);
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());
    assert!(app.rows(Panel::Instances).contains(&crate::app::rows::RowKey::Id("brand-new-1".into())));

    // It goes: nothing is built, and it leaves the order at once.
    let before = builds(&app);
    let update = change_event(&app, vec![Change::InstanceRemoved { id: "brand-new-1".into() }]);
    app.apply(update);
    app.refresh_views();
    assert_eq!(builds(&app), before);
    assert_eq!(app.rows(Panel::Instances).as_ref(), fresh(&app).as_slice());

    // A snapshot may change any row: all are built again.
    let before = builds(&app);
    let total = app.total_rows(Panel::Instances) as u64;
    let fleet = app.replica.fleet.clone();
    app.apply(Inbound::Feed(Feed::Snapshot(fleet)));
    app.refresh_views();
    assert_eq!(builds(&app), before + total);
}

#[test]
fn a_filtered_events_panel_builds_one_row_per_new_event() {
    use crate::protocol::{Change, InstanceState};
    let mut app = crate::views::harness::fixture_app(300);
    app.update(Action::ShowPanel(Panel::Events));
    app.update(Action::Filter);
    type_text(&mut app, "crash");
    app.update(Action::Submit);
    app.refresh_views();
    let builds = |app: &App| app.view(Panel::Events).cache.builds;
    let fresh = |app: &App| {
        crate::app::rows::build(
            &app.replica,
            &app.facts(),
            &app.traffic,
            app.now,
            Panel::Events,
            app.view(Panel::Events),
        )
        .keys
    };
    let before = builds(&app);
    let mut inst = app.replica.fleet.instances.values().next().cloned().expect("an instance");
    for n in 0..5 {
        inst.state = if n % 2 == 0 { InstanceState::Crashed } else { InstanceState::Running };
        let update = change_event(&app, vec![Change::Instance(inst.clone())]);
        app.apply(update);
        app.refresh_views();
    }
    assert_eq!(builds(&app), before + 5, "one row per event, the rest kept");
    assert_eq!(app.rows(Panel::Events).as_ref(), fresh(&app).as_slice());
}
