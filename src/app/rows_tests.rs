//! Headless tests of the row index, driven through the whole App on the fixture: sorting
//! and filtering a panel.

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::app::rows::RowKey;
use crate::views::harness::{app, change_event, row_ids, running_op, screen, type_text};

#[test]
fn filter_regex_substring_and_bang() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Filter);
    type_text(&mut app, "^shop");
    assert_eq!(app.row_count(Panel::Instances), 3, "a regex anchored at the row's start");
    app.update(Action::Submit);
    assert!(app.overlay().is_none(), "Enter keeps the filter and closes the prompt");
    assert_eq!(app.row_count(Panel::Instances), 3);
    assert!(screen(&mut app, 120, 14).contains("filter /^shop/ (3 of 7)"));

    // `!` inverts; case does not matter.
    app.update(Action::Filter);
    app.update(Action::ClearInput);
    type_text(&mut app, "!SHOP-WEB");
    assert_eq!(app.row_count(Panel::Instances), 4);
    // Not a valid regex: matched as plain text.
    app.update(Action::ClearInput);
    type_text(&mut app, "host-0[6");
    assert_eq!(app.row_count(Panel::Instances), 0);
    app.update(Action::ClearInput);
    type_text(&mut app, "host-0[16]");
    assert_eq!(app.row_count(Panel::Instances), 3, "host-01 once, host-06 twice");
    app.update(Action::Submit);

    // Other panels keep their own filter; Esc in the panel clears it.
    app.update(Action::ShowPanel(Panel::Routes));
    assert_eq!(app.row_count(Panel::Routes), 7);
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Back);
    assert_eq!(app.row_count(Panel::Instances), 7);
    assert!(app.view(Panel::Instances).filter.is_none());

    // Esc while typing clears it too.
    app.update(Action::Filter);
    type_text(&mut app, "cache");
    assert_eq!(app.row_count(Panel::Instances), 2);
    app.update(Action::Back);
    assert_eq!(app.row_count(Panel::Instances), 7);

    // The filter sees flags too.
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::Filter);
    type_text(&mut app, "stale");
    assert_eq!(app.row_count(Panel::Routes), 0, "every backend runs");
}

#[test]
fn sort_cycles_columns_and_direction_and_the_index_is_cached() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Hosts));
    let natural = row_ids(&app, Panel::Hosts);
    // HOST ↑, then AZ ↑, then IP ↑, then CPU ↑.
    for _ in 0..4 {
        app.update(Action::Sort);
    }
    let cpu = |app: &App| -> Vec<f32> {
        app.rows(Panel::Hosts)
            .iter()
            .filter_map(|k| match k {
                RowKey::Id(id) => app.replica.fleet.hosts.get(id).map(|h| h.metrics.cpu_pct),
                _ => None,
            })
            .collect()
    };
    let up = cpu(&app);
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    // Shift-C: CPU again, the other way round.
    app.update(Action::SortBy('C'));
    let down = cpu(&app);
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    assert!(screen(&mut app, 120, 14).contains("sort CPU ↓"));
    // The selection stays on the same host when the order changes.
    app.update(Action::Top);
    let top = app.selected_host().map(|h| h.info.id.clone());
    app.update(Action::SortBy('C'));
    assert_eq!(app.selected_host().map(|h| h.info.id.clone()), top);
    assert_eq!(app.selection().index, 5);
    // `<` goes back a column: IP ↑, then AZ, HOST, and the natural order.
    app.update(Action::SortPrev);
    assert!(screen(&mut app, 120, 14).contains("sort IP ↑"));
    for _ in 0..3 {
        app.update(Action::SortPrev);
    }
    assert_eq!(row_ids(&app, Panel::Hosts), natural);
    app.update(Action::SortBy('C'));
    // A letter no column starts with says so.
    app.update(Action::SortBy('Z'));
    assert!(screen(&mut app, 120, 14).contains("no column starts with Z"));
    // Cached: the stamp matches the replica's generation until the data changes.
    let stamp = app.view(Panel::Hosts).index.as_ref().map(|i| i.stamp);
    assert_eq!(stamp, Some((app.replica.generation, app.view(Panel::Hosts).settings, 6)));
    // Past the last of the 10 columns: the natural order again.
    for _ in 4..11 {
        app.update(Action::Sort);
    }
    assert_eq!(row_ids(&app, Panel::Hosts), natural);
}

/// A filter that matches nothing says so, in every table, instead of the empty text.
#[test]
fn a_filter_that_matches_nothing_says_no_match() {
    let mut app = app();
    let with_rows: Vec<Panel> = Panel::ALL.into_iter().filter(|p| app.total_rows(*p) > 0).collect();
    assert_eq!(with_rows.len(), 5, "every panel but Audit has rows in the fixture");
    for panel in with_rows {
        app.update(Action::ShowPanel(panel));
        app.update(Action::Filter);
        type_text(&mut app, "zzz-matches-nothing");
        app.update(Action::Submit);
        let shown = screen(&mut app, 120, 14);
        assert!(shown.contains("no match: Esc clears the filter"), "{panel:?}: {shown}");
        assert!(!shown.contains("no events yet"), "{panel:?}: {shown}");
        app.update(Action::Back);
        assert!(!screen(&mut app, 120, 14).contains("no match"), "{panel:?}");
    }
    // With no rows at all, the panel's own empty text.
    assert_eq!(app.total_rows(Panel::Audit), 0);
    app.update(Action::ShowPanel(Panel::Audit));
    app.update(Action::Filter);
    type_text(&mut app, "zzz");
    let shown = screen(&mut app, 120, 14);
    assert!(shown.contains("no operator commands") && !shown.contains("no match"), "{shown}");
}

/// The filter matches what the screen shows: an app shown `◌ changing` is found by
/// `/changing`, also on a table whose rows were kept from before the operation began
/// (sorted), and leaves the filter when the operation ends.
#[test]
fn a_filter_finds_the_changing_app_the_screen_shows() {
    use crate::protocol::{Change, OperationEnded, OperationState, StepCounts};
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Sort);
    let op = running_op("op-t1", "shop-web", &[], app.now);
    let update = change_event(&app, vec![Change::Operation(op)]);
    app.apply(update);
    app.update(Action::Filter);
    type_text(&mut app, "changing");
    app.update(Action::Submit);
    assert_eq!(row_ids(&app, Panel::Apps), vec!["shop-web".to_string()]);
    let shown = screen(&mut app, 120, 14);
    assert!(shown.contains("◌ changing"), "{shown}");
    let end = OperationEnded {
        id: "op-t1".into(),
        state: OperationState::Succeeded,
        error: None,
        finished_at: app.now,
        steps: StepCounts::default(),
    };
    let update = change_event(&app, vec![Change::OperationEnded(end)]);
    app.apply(update);
    // Rows that leave a filter follow within the second (`RESORT_MS`).
    app.update(Action::Tick(app.now + crate::app::rows::RESORT_MS));
    app.refresh_views();
    assert!(row_ids(&app, Panel::Apps).is_empty(), "{:?}", row_ids(&app, Panel::Apps));
}
