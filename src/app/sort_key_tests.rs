//! Headless tests of the typed sort keys, driven through the whole App on the fixture:
//! numbers, versions, memory and pulls sort as the screen shows them.

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::views::harness::{app, change_event, row_ids, running_op, screen};

/// Numbers and versions sort as numbers (RST 2 before 10, 1.9 before 1.10), and MEM by
/// the memory used, as it shows (`100/128M` before `512/1024M`, though 78 % > 50 %).
#[test]
fn numbers_versions_and_memory_sort_as_they_show() {
    use crate::protocol::Change;
    let mut app = app();
    let mut ids: Vec<String> = app.replica.fleet.instances.keys().cloned().collect();
    ids.sort();
    let mut ten = app.replica.fleet.instances[&ids[0]].clone();
    let mut two = app.replica.fleet.instances[&ids[1]].clone();
    (ten.restarts, ten.version, ten.mem_used_mb, ten.mem_limit_mb) = (10, "1.10.0".into(), 100, 128);
    (two.restarts, two.version, two.mem_used_mb, two.mem_limit_mb) = (2, "1.9.0".into(), 512, 1024);
    let update = change_event(&app, vec![Change::Instance(ten.clone()), Change::Instance(two.clone())]);
    app.apply(update);
    app.update(Action::ShowPanel(Panel::Instances));
    let at = |app: &App, id: &str| row_ids(app, Panel::Instances).iter().position(|r| r == id);
    let column = |app: &App, f: fn(&crate::protocol::Instance) -> u64| -> Vec<u64> {
        row_ids(app, Panel::Instances).iter().map(|id| f(&app.replica.fleet.instances[id])).collect()
    };

    app.update(Action::SortBy('R'));
    assert!(screen(&mut app, 160, 14).contains("sort RST ↑"));
    let rst = column(&app, |i| i.restarts as u64);
    assert!(rst.windows(2).all(|w| w[0] <= w[1]), "{rst:?}");
    assert!(at(&app, &two.id) < at(&app, &ten.id));

    app.update(Action::SortBy('V'));
    assert!(at(&app, &two.id) < at(&app, &ten.id), "1.9.0 before 1.10.0");
    app.update(Action::SortBy('V'));
    assert!(at(&app, &ten.id) < at(&app, &two.id), "descending: 1.10.0 first");

    app.update(Action::SortBy('M'));
    assert!(screen(&mut app, 160, 14).contains("sort MEM ↑"));
    let used = column(&app, |i| i.mem_used_mb);
    assert!(used.windows(2).all(|w| w[0] <= w[1]), "{used:?}");
    assert!(at(&app, &ten.id) < at(&app, &two.id));
}

/// The Hosts panel's PULL column sorts by the bytes fetched, and follows new pulls.
#[test]
fn hosts_sort_by_their_pulls() {
    use crate::protocol::Change;
    let mut app = app();
    let first_on = |app: &App, host: &str| {
        let mut ids: Vec<String> = app.replica.fleet.instances_on(host).map(|i| i.id.clone()).collect();
        ids.sort();
        ids.remove(0)
    };
    let (one, six) = (first_on(&app, "host-01"), first_on(&app, "host-06"));
    let op = running_op("op-pull", "shop-web", &[(&one, 12_000_000), (&six, 3_000_000)], app.now);
    let update = change_event(&app, vec![Change::Operation(op)]);
    app.apply(update);
    app.update(Action::ShowPanel(Panel::Hosts));
    app.update(Action::SortBy('P'));
    assert!(screen(&mut app, 120, 14).contains("sort PULL ↑"));
    // Hosts pulling nothing first, then by bytes.
    let ids = row_ids(&app, Panel::Hosts);
    assert_eq!(ids[4..], ["host-06".to_string(), "host-01".to_string()], "{ids:?}");
    app.update(Action::SortBy('P'));
    assert_eq!(row_ids(&app, Panel::Hosts)[..2], ["host-01".to_string(), "host-06".to_string()]);
    // A bigger pull starts on host-03: the order follows within the second.
    let three = first_on(&app, "host-03");
    let op = running_op("op-pull-2", "shop-web", &[(&three, 50_000_000)], app.now);
    let update = change_event(&app, vec![Change::Operation(op)]);
    app.apply(update);
    app.update(Action::Tick(app.now + crate::app::rows::RESORT_MS));
    app.refresh_views();
    assert_eq!(row_ids(&app, Panel::Hosts)[0], "host-03");
}
