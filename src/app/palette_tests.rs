//! Headless tests of the command palette as it is typed: completion, history, `q` as text.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::actions::prompt::{self, InputMode};
use crate::actions::{Action, Panel};
use crate::app::{App, Overlay};
use crate::views::harness::{app, screen, type_text};

fn palette_input(app: &App) -> String {
    match app.overlay() {
        Some(Overlay::Palette(p)) => p.input.clone(),
        other => panic!("no palette open: {other:?}"),
    }
}

#[test]
fn palette_navigation_completion_and_history() {
    let mut app = app();
    app.update(Action::Palette);
    assert_eq!(app.input_mode(), InputMode::Text);
    // In the palette `q` is text, not quit.
    let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    assert!(matches!(prompt::action_for(app.input_mode(), &q), Some(Action::Input('q'))));

    type_text(&mut app, "au");
    app.update(Action::Complete);
    assert_eq!(palette_input(&app), "audit ");
    app.update(Action::Submit);
    assert_eq!(app.panel, Panel::Audit);
    assert!(app.overlay().is_none());

    app.update(Action::Palette);
    type_text(&mut app, "restart app s");
    app.update(Action::Complete);
    // session-cache and shop-web share only "s": Tab cycles through them.
    assert_eq!(palette_input(&app), "restart app session-cache");
    app.update(Action::Complete);
    assert_eq!(palette_input(&app), "restart app shop-web");
    app.update(Action::CompletePrev);
    assert_eq!(palette_input(&app), "restart app session-cache");
    app.update(Action::Back);
    assert!(app.overlay().is_none());

    // A wrong line stays open with its error, and is remembered.
    app.update(Action::Palette);
    type_text(&mut app, "rstart app shop-web");
    app.update(Action::Submit);
    match app.overlay() {
        Some(Overlay::Palette(p)) => {
            assert!(p.error.as_deref().is_some_and(|e| e.contains("unknown command")))
        }
        other => panic!("{other:?}"),
    }
    app.update(Action::ClearInput);
    app.update(Action::HistoryPrev);
    assert_eq!(palette_input(&app), "rstart app shop-web");
    app.update(Action::HistoryPrev);
    assert_eq!(palette_input(&app), "audit");
    app.update(Action::HistoryNext);
    assert_eq!(palette_input(&app), "rstart app shop-web");
    app.update(Action::Back);

    // A destructive command goes through the confirm dialog.
    app.update(Action::Palette);
    type_text(&mut app, "restart app api-gateway");
    assert!(app.update(Action::Submit).is_empty());
    assert!(matches!(app.overlay(), Some(Overlay::Confirm(_))));
    let shown = screen(&mut app, 100, 20);
    assert!(shown.contains("Restart every instance of api-gateway (2), rolling?"), "{shown}");
}
