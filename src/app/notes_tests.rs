//! Headless tests of `n` (a note typed on one line, sent without a dialog, refused
//! read-only) and `:export` (the effect the backend writes from, and what it says).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::default_export_name;
use crate::actions::Panel;
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Effect};
use crate::app::Overlay;
use crate::backend::Inbound;
use crate::protocol::{ControlCommand, EventKind, NoteRequest, TimelineExport};
use crate::views::harness::{app, audit_event, feed, screen, sent, type_text};

#[test]
fn n_opens_a_line_enter_sends_the_note_and_esc_drops_it() {
    let n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE);
    assert_eq!(Keymap::defaults().action_for(&n), Some(Action::Note));
    let mut app = app();
    assert!(app.update(Action::Note).is_empty());
    assert!(matches!(app.overlay(), Some(Overlay::Palette(p)) if p.input == "note "), "{:?}", app.overlay());
    type_text(&mut app, "db failover | done");
    let effects = app.update(Action::Submit);
    let note = ControlCommand::Note(NoteRequest { text: "db failover | done".into() });
    assert_eq!(sent(&effects), vec![note], "sent at once, no confirm dialog");
    assert!(app.overlay().is_none(), "{:?}", app.overlay());
    app.update(Action::Note);
    type_text(&mut app, "never mind");
    assert!(app.update(Action::Back).is_empty());
    assert!(app.overlay().is_none(), "Esc closes it, nothing sent");
}

#[test]
fn an_empty_or_oversize_note_is_refused_where_it_is_typed() {
    let mut app = app();
    app.update(Action::Note);
    assert!(sent(&app.update(Action::Submit)).is_empty());
    assert!(screen(&mut app, 160, 16).contains("a note needs some text"));
    type_text(&mut app, &"x".repeat(2001));
    assert!(sent(&app.update(Action::Submit)).is_empty());
    let Some(Overlay::Palette(p)) = app.overlay() else { panic!("closed: {:?}", app.overlay()) };
    assert!(p.error.as_deref().is_some_and(|e| e.contains("at most 2000 characters")), "{:?}", p.error);
}

#[test]
fn read_only_refuses_a_note_before_the_line_opens() {
    let mut app = app();
    app.read_only = true;
    let effects = app.update(Action::Note);
    assert!(effects.is_empty() && app.overlay().is_none(), "{:?}", app.overlay());
    assert!(screen(&mut app, 160, 16).contains("read-only: note refused"));
    // The palette's own `:note` too.
    app.update(Action::Palette);
    type_text(&mut app, "note hello");
    assert!(sent(&app.update(Action::Submit)).is_empty());
    assert!(screen(&mut app, 160, 16).contains("read-only: note refused"));
}

#[test]
fn export_asks_the_backend_for_the_window_and_says_where_it_went() {
    let mut app = app();
    app.now = 1_796_551_200_000;
    app.update(Action::Palette);
    type_text(&mut app, "export 6h /tmp/incident.md");
    let effects = app.update(Action::Submit);
    let want = TimelineExport {
        since: app.now - 6 * 3_600_000,
        until: app.now,
        path: "/tmp/incident.md".into(),
        plane: app.bus_label.clone(),
    };
    assert_eq!(effects, vec![Effect::Export(want)]);
    app.apply(Inbound::Exported { path: "/tmp/incident.md".into(), result: Ok(7) });
    assert!(screen(&mut app, 160, 16).contains("timeline written to /tmp/incident.md (7 entries)"));
    app.apply(Inbound::Exported { path: "/x".into(), result: Err("no history from the controller".into()) });
    assert!(screen(&mut app, 160, 16).contains("timeline not written: no history from the controller"));
    // Read-only may export: it reads.
    app.read_only = true;
    app.update(Action::Palette);
    type_text(&mut app, "export");
    let effects = app.update(Action::Submit);
    let Some(Effect::Export(e)) = effects.first() else { panic!("{effects:?}") };
    assert_eq!(e.since, app.now - 2 * 3_600_000, "2 h by default");
    assert_eq!(e.path.to_str(), Some("quarterdeck-timeline-20261206T100000Z.md"));
    assert_eq!(default_export_name(app.now), "quarterdeck-timeline-20261206T100000Z.md");
    app.update(Action::Palette);
    type_text(&mut app, "export 6h a b");
    assert!(app.update(Action::Submit).is_empty());
    assert!(screen(&mut app, 160, 16).contains("unexpected \"b\""));
}

#[test]
fn the_events_panel_shows_a_note_with_who_wrote_it() {
    let mut app = app();
    let mut note = audit_event(&app, serde_json::json!({"text": "db failover done"}), "note", true);
    note.kind = EventKind::Note;
    note.message = "db failover done".into();
    feed(&mut app, note);
    app.update(Action::ShowPanel(Panel::Events));
    let shown = screen(&mut app, 160, 20);
    assert!(shown.contains("NOTE") && shown.contains("db failover done — alice@bastion-1"), "{shown}");
}
