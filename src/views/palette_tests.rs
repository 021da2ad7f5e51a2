//! Snapshot and cell-style tests of the command palette, the filter prompt and the route form,
//! drawn from the fixed-seed fixture through the shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::views::harness::{app, draw, text, type_text};

#[test]
fn palette_with_completions() {
    let mut app = app();
    app.update(Action::Palette);
    type_text(&mut app, "restart app ");
    app.update(Action::Complete);
    let screen = text(&draw(&mut app, 100, 16));
    assert_snapshot!(screen);
    assert!(screen.contains(":restart app api-gateway"), "Tab put the first of several in place:\n{screen}");
    assert!(screen.contains("session-cache  shop-web"), "{screen}");
}

#[test]
fn palette_names_what_is_wrong() {
    let mut app = app();
    app.update(Action::Palette);
    type_text(&mut app, "route disable shop-web 10.1.1");
    app.update(Action::Submit);
    let screen = text(&draw(&mut app, 100, 16));
    assert!(screen.contains("✕ backend \"10.1.1\" is not valid: expected IPv4:PORT"), "{screen}");
    // On a narrow terminal the error wraps, whole, instead of being cut at the border.
    app.update(Action::ClearInput);
    type_text(&mut app, "bogus");
    app.update(Action::Submit);
    let screen = text(&draw(&mut app, 60, 16));
    let at =
        screen.lines().position(|l| l.contains("✕ unknown command")).unwrap_or_else(|| panic!("{screen}"));
    let rest =
        screen.lines().skip(at).take(3).map(|l| l.trim_matches(['│', ' '])).collect::<Vec<_>>().join(" ");
    assert!(rest.contains("help, q"), "the whole list of commands:\n{screen}");
}

#[test]
fn route_form_and_read_only_badge() {
    let mut app = app();
    app.read_only = true;
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::AddRoute);
    let screen = text(&draw(&mut app, 100, 14));
    assert!(screen.contains("READ-ONLY"), "{screen}");
    assert!(screen.contains("read-only: add route refused"), "{screen}");
    app.read_only = false;
    app.update(Action::AddRoute);
    type_text(&mut app, "10.101.1.99:8080");
    let screen = text(&draw(&mut app, 100, 14));
    assert_snapshot!(screen);
    assert!(screen.contains("backend  10.101.1.99:8080█"), "{screen}");
}
