//! Snapshot and cell-style tests of the instances panel, drawn from the fixed-seed fixture through
//! the shared headless harness (`views::harness`).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::plane::fixture::T0;
use crate::views::harness::{app, draw, find, text, type_text};

#[test]
fn instances_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let screen = text(&draw(&mut app, 120, 16));
    assert_snapshot!(screen);
    // At 120 columns each row names its instance: the id is what `y` copies and ctl takes.
    let header = screen.lines().find(|l| l.contains("APP")).expect("the header");
    assert!(header.trim_end_matches(['│', ' ']).ends_with(" ID"), "{header}");
    for i in app.replica.fleet.instances.values() {
        assert!(
            screen.lines().any(|l| l.contains(&i.app) && l.contains(i.id.as_str())),
            "{}:\n{screen}",
            i.id
        );
    }
}

#[test]
fn a_crash_shows_its_reason_in_the_panel_and_the_detail() {
    use crate::protocol::{ExitInfo, InstanceState};
    let mut app = app();
    let ids: Vec<String> = app.replica.fleet.instances.keys().take(4).cloned().collect();
    let exits = [ExitInfo::new(3, false, T0), ExitInfo::new(137, true, T0), ExitInfo::new(137, false, T0)];
    for (id, exit) in ids.iter().skip(1).zip(exits) {
        if let Some(i) = app.replica.fleet.instances.get_mut(id) {
            i.state = InstanceState::Crashed;
            i.last_exit = Some(exit);
        }
    }
    let t = app.theme.clone();
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 120, 16);
    for cell in ["✕ exit 3", "✕ OOM", "✕ SIGKILL"] {
        let (x, y) = find(&buf, cell).unwrap_or_else(|| panic!("{cell} missing:\n{}", text(&buf)));
        assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset), "{cell} in the bad colour");
    }
    // The filter finds crashes by their reason.
    app.update(Action::Filter);
    type_text(&mut app, "OOM");
    app.update(Action::Submit);
    let shown = text(&draw(&mut app, 120, 16));
    assert!(shown.contains("✕ OOM") && !shown.contains("✕ exit 3"), "{shown}");
    // The detail of the instance that exited 3 says so, with when.
    let mut app = self::app();
    if let Some(i) = app.replica.fleet.instances.get_mut(&ids[0]) {
        i.state = InstanceState::Crashed;
        i.last_exit = Some(ExitInfo::new(3, false, T0));
    }
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Detail);
    let shown = text(&draw(&mut app, 120, 40));
    let line = shown.lines().find(|l| l.contains("last exit")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains("exit 3 at "), "{line}");
}
