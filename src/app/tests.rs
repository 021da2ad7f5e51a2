//! Headless app tests: Actions in, model and effects (and the drawn buffer) out, on the
//! fixed-seed fixture fleet. No terminal, no bus.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::Overlay;
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Panel};
use crate::backend::{Feed, Inbound};
use crate::protocol::ControlCommand;
use crate::protocol::subjects::RouteVerb;
use crate::views::harness::{app, row_ids, screen, sent, type_text};

/// The Audit panel's filter sees how a command's operation ended, as it changes.
#[test]
fn audit_filter_follows_how_the_operation_ended() {
    use crate::views::harness::{audit_event, operation_event};
    let mut app = app();
    let e = audit_event(&app, serde_json::json!({"app": "shop-web"}), "restart", true);
    let op = e.audit.as_ref().and_then(|a| a.outcome.operation_id.clone()).expect("an operation id");
    app.apply(Inbound::Feed(Feed::Event(e)));
    app.update(Action::ShowPanel(Panel::Audit));
    app.update(Action::Filter);
    type_text(&mut app, "failed");
    app.update(Action::Submit);
    screen(&mut app, 150, 12);
    assert_eq!(app.row_count(Panel::Audit), 0);
    let started = operation_event(&app, &op, None);
    app.apply(Inbound::Feed(Feed::Event(started)));
    screen(&mut app, 150, 12);
    assert_eq!(app.row_count(Panel::Audit), 0, "running is not failed");
    let failed = operation_event(&app, &op, Some("no up host in AZ az-9"));
    app.apply(Inbound::Feed(Feed::Event(failed)));
    // A row whose filter result flips is re-ordered at most once per re-sort period.
    app.now += 10_000;
    let shown = screen(&mut app, 200, 12);
    assert_eq!(app.row_count(Panel::Audit), 1, "{shown}");
    assert!(shown.contains("✕ failed: no up host in AZ az-9"), "{shown}");
}

/// A command the backend did not send says "not sent", with why.
#[test]
fn a_command_not_sent_says_so() {
    let mut app = app();
    let result = Err(crate::backend::CommandError::NotLive("bus disconnected for 3s".into()));
    app.apply(Inbound::CommandDone { what: "restart app shop-web".into(), result });
    let shown = screen(&mut app, 140, 14);
    assert!(shown.contains("restart app shop-web: not live (bus disconnected for 3s), not sent"), "{shown}");
}

/// A timeout and a refusal reach the status line in different words: the refusal with its
/// code, the timeout saying it may have run. Before, both read `refused: ...`.
#[test]
fn a_timeout_and_a_refusal_are_worded_apart() {
    use crate::backend::CommandError;
    use crate::protocol::{ErrorCode, WireError};
    let mut app = app();
    let what = || "restart app shop-web".to_string();
    let refusal = WireError::new(ErrorCode::Conflict, "shop-web has a deploy running");
    app.apply(Inbound::CommandDone { what: what(), result: Err(CommandError::Refused(refusal)) });
    let refused = screen(&mut app, 160, 14);
    assert!(
        refused.contains("refused: restart app shop-web: shop-web has a deploy running (conflict)"),
        "{refused}"
    );
    let timeout = std::time::Duration::from_secs(5);
    let late = CommandError::Timeout { subject: "qd.v1.ctl.alice.restart".into(), timeout };
    app.apply(Inbound::CommandDone { what: what(), result: Err(late) });
    let shown = screen(&mut app, 160, 14);
    assert!(shown.contains("no answer: restart app shop-web: nothing within 5s"), "{shown}");
    assert!(!shown.contains("refused"), "a timeout is no refusal: {shown}");
}

#[test]
fn routes_flag_stale_backends_and_instances_flag_unrouted() {
    let mut app = app();
    let f = &mut app.replica.fleet;
    // A route whose instance is gone: stale at once, before the controller says so.
    let gone = f.instances.values().find(|i| i.app == "api-gateway").cloned().expect("an instance");
    f.instances.remove(&gone.id);
    // A running instance whose route was removed: unrouted.
    let lonely = f.instances.values().find(|i| i.app == "shop-web").cloned().expect("an instance");
    f.routes.remove(&(lonely.app.clone(), lonely.endpoint.clone()));
    app.replica.generation += 1;

    app.update(Action::ShowPanel(Panel::Routes));
    let shown = screen(&mut app, 130, 16);
    let row = shown.lines().find(|l| l.contains(&gone.endpoint)).expect("the route's row");
    assert!(row.contains("◐ stale") && row.contains("⚠ none"), "{row}");
    assert!(shown.contains("⚠ 1 running instance(s) unrouted"), "{shown}");
    app.update(Action::Filter);
    type_text(&mut app, "stale");
    assert_eq!(app.row_count(Panel::Routes), 1);
    app.update(Action::Back);

    app.update(Action::ShowPanel(Panel::Instances));
    let shown = screen(&mut app, 130, 16);
    let row = shown.lines().find(|l| l.contains(&lonely.endpoint)).expect("the instance's row");
    assert!(row.contains("⚠ unrouted"), "{row}");
    app.update(Action::Filter);
    type_text(&mut app, "unrouted");
    app.update(Action::Submit);
    assert_eq!(row_ids(&app, Panel::Instances), vec![lonely.id.clone()]);
    // `a` on the unrouted instance offers its endpoint.
    app.update(Action::AddRoute);
    match app.overlay() {
        Some(Overlay::Form(form)) => {
            assert_eq!((form.app.as_str(), form.backend.as_str()), ("shop-web", lonely.endpoint.as_str()))
        }
        other => panic!("{other:?}"),
    }
    app.update(Action::Submit);
    let effects = app.update(Action::Confirmed);
    assert!(
        matches!(sent(&effects).as_slice(), [ControlCommand::Route(RouteVerb::Add, r)] if r.backend == lonely.endpoint && r.weight == Some(1))
    );
}

#[test]
fn a_remapped_keymap_drives_the_app_and_a_clash_keeps_the_defaults() {
    let remapped =
        Keymap::parse("[keys]\nrestart = [\"R\", \"ctrl-r\"]\n", Some(&Keymap::defaults())).expect("valid");
    let mut app = app();
    app.keymap = remapped;
    app.update(Action::ShowPanel(Panel::Instances));
    let key = |c: char, m| KeyEvent::new(KeyCode::Char(c), m);
    assert!(app.keymap.action_for(&key('r', KeyModifiers::NONE)).is_none());
    let action = app.keymap.action_for(&key('R', KeyModifiers::SHIFT)).expect("R restarts");
    app.update(action);
    assert!(matches!(app.overlay(), Some(Overlay::Confirm(_))));
    app.update(Action::Cancelled);
    assert!(matches!(app.keymap.action_for(&key('r', KeyModifiers::CONTROL)), Some(Action::Restart)));
    // Help shows the remap.
    app.update(Action::Help);
    assert!(screen(&mut app, 120, 24).contains("R Ctrl-r"));

    let clash = Keymap::parse("[keys]\nrestart = [\"r\"]\nsort = [\"r\"]\n", Some(&Keymap::defaults()));
    let err = clash.expect_err("r twice");
    assert!(err.to_string().contains("r is bound to both"), "{err}");
}

#[test]
fn an_idle_cockpit_writes_no_bytes_until_something_on_screen_changes() {
    // The bench's byte counter behind the cockpit's own output path, at 200x50.
    let out = crate::cli::bench::Counter::default();
    let mut terminal = crate::cli::bench::counting_terminal(&out).expect("terminal");
    for panel in [Panel::Hosts, Panel::Instances, Panel::Routes] {
        let mut app = crate::views::harness::fixture_app(300);
        app.update(Action::ShowPanel(panel));
        crate::tui::draw(&mut terminal, &mut app).expect("draw");
        assert!(out.bytes() > 0, "the first frame is written");
        // Two seconds of the event loop's clock and no events.
        let before = out.bytes();
        let start = app.now;
        for s in 1..=2 {
            let (wrote, _) = crate::tui::tick(&mut terminal, &mut app, start + s * 1000).expect("tick");
            assert!(!wrote, "{panel:?}: a tick with nothing new on screen wrote a frame");
        }
        assert_eq!(out.bytes() - before, 0, "{panel:?}: an idle cockpit wrote bytes");
    }

    // What on-call needs still shows up on its own: old data, late heartbeats.
    let mut app = crate::views::harness::fixture_app(0);
    crate::tui::draw(&mut terminal, &mut app).expect("draw");
    let before = out.bytes();
    let start = app.now;
    assert!(crate::tui::tick(&mut terminal, &mut app, start + 11_000).expect("tick").0);
    assert!(out.bytes() > before, "data gone old is written at once");
    let screen = screen(&mut app, 200, 50);
    assert!(screen.contains("⚠ data 11s old"), "{screen}");
    assert!(!screen.contains("<5s"), "every heartbeat is late now and shows its age:\n{screen}");
}
