//! Headless tests of following the newest row.

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::views::harness::{app, change_event, screen};

/// The Events panel follows its newest event like `tail -f`: a new event takes the
/// selection while it is on the newest row; once the operator moves off, the selection
/// stays on its event and the title says the panel is paused; `g` (the newest row in the
/// newest-first order) follows again, and so does `G` once a sort puts the newest last.
#[test]
fn the_events_panel_follows_the_newest_until_the_operator_moves() {
    use crate::protocol::{Change, InstanceState};
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Events));
    let newest = |app: &App| app.replica.events.iter().map(|e| e.rev).max();
    let selected = |app: &App| app.selected_event().map(|e| e.rev);
    assert_eq!(selected(&app), newest(&app));
    assert!(screen(&mut app, 120, 14).contains("● following"));
    let mut inst = app.replica.fleet.instances.values().next().cloned().expect("an instance");
    let mut feed = |app: &mut App| {
        inst.state = if inst.state == InstanceState::Crashed {
            InstanceState::Running
        } else {
            InstanceState::Crashed
        };
        let update = change_event(app, vec![Change::Instance(inst.clone())]);
        app.apply(update);
        app.refresh_views();
    };
    feed(&mut app);
    feed(&mut app);
    assert_eq!(selected(&app), newest(&app), "the newest event is selected as it arrives");
    assert_eq!(app.selection().offset, 0, "and on screen");

    app.update(Action::Down);
    let kept = selected(&app);
    feed(&mut app);
    assert_eq!(selected(&app), kept, "paused: the selection stays on its event");
    let shown = screen(&mut app, 120, 14);
    assert!(shown.contains("⏸ paused (g: newest)") && !shown.contains("following"), "{shown}");

    app.update(Action::Top);
    feed(&mut app);
    assert_eq!(selected(&app), newest(&app), "g follows again");
    assert!(screen(&mut app, 120, 14).contains("● following"));

    // Sorted oldest first (REV ascending), the newest row is the last: `G` follows.
    app.update(Action::Sort);
    app.update(Action::Sort);
    assert!(app.status.as_ref().is_some_and(|s| s.text == "sorted by REV ↑"), "{:?}", app.status);
    app.update(Action::Bottom);
    feed(&mut app);
    assert_eq!(selected(&app), newest(&app), "G follows when the newest is last");
    app.update(Action::Up);
    feed(&mut app);
    assert_ne!(selected(&app), newest(&app));
    assert!(screen(&mut app, 120, 14).contains("⏸ paused (G: newest)"));
}
