//! Headless app tests: Actions in, model and effects (and the drawn buffer) out, on the
//! fixed-seed fixture fleet. No terminal, no bus.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::rows::RowKey;
use super::{App, Overlay};
use crate::actions::keymap::{BINDABLE, Keymap};
use crate::actions::prompt::{self, InputMode};
use crate::actions::{Action, Effect, Panel};
use crate::backend::{Feed, Inbound};
use crate::protocol::ControlCommand;
use crate::protocol::subjects::RouteVerb;
use crate::protocol::{RestartBody, RestartRequest};
use crate::views::harness::{app, change_event, row_ids, screen, sent, type_text};

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

#[test]
fn restart_confirmed_and_refused() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().cloned().expect("an instance");
    assert!(app.update(Action::Restart).is_empty(), "nothing before the confirmation");
    assert_eq!(app.input_mode(), InputMode::Confirm);
    // Refused: nothing is sent.
    assert!(app.update(Action::Cancelled).is_empty());
    assert!(app.overlay().is_none());
    assert!(screen(&mut app, 120, 14).contains("cancelled"));
    // Keys other than y/n do nothing in the dialog.
    app.update(Action::Restart);
    assert!(app.update(Action::Restart).is_empty());
    assert!(app.update(Action::Submit).is_empty());
    let effects = app.update(Action::Confirmed);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Restart(RestartBody::from(RestartRequest::Instance(target.id.clone())))]
    );
    assert!(screen(&mut app, 120, 14).contains(&format!("sent: restart instance {}", target.id)));
}

/// Not live: the dialog says so and `y` sends nothing; once live again it does.
#[test]
fn confirm_refuses_while_not_live() {
    use crate::bus::Connection;
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().cloned().expect("an instance");
    app.update(Action::Restart);
    let live = screen(&mut app, 120, 16);
    assert!(!live.contains("not live"), "{live}");
    let down = Connection::Disconnected { since: app.now, reason: "disconnected".into() };
    app.apply(Inbound::Feed(Feed::Connection(down)));
    assert_eq!(app.input_mode(), InputMode::Confirm, "the dialog stays open");
    assert!(screen(&mut app, 120, 16).contains("⚠ not live: this will not be sent"));
    assert!(app.update(Action::Confirmed).is_empty(), "nothing is sent while not live");
    assert!(app.update(Action::Submit).is_empty());
    assert_eq!(app.input_mode(), InputMode::Confirm);
    let shown = screen(&mut app, 120, 16);
    assert!(shown.contains("not sent: reconnecting"), "{shown}");
    // Back and live again (a fresh snapshot after the reconnect): `y` sends.
    app.apply(Inbound::Feed(Feed::Connection(Connection::Connected)));
    let (fleet, _) = crate::plane::fixture::fixture(42, 6, 0);
    app.apply(Inbound::Feed(Feed::Snapshot(fleet)));
    assert!(!screen(&mut app, 120, 16).contains("⚠ not live"));
    let effects = app.update(Action::Confirmed);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Restart(RestartBody::from(RestartRequest::Instance(target.id.clone())))]
    );
}

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

/// The server refused a command (a viewer's cockpit): the refusal is shown as such, the
/// cockpit turns read-only with the reason, and nothing more is sent.
#[test]
fn a_command_the_server_refuses_turns_the_cockpit_read_only() {
    let mut app = app();
    assert!(!app.read_only);
    let result = Err(crate::backend::CommandError::Denied {
        subject: "qd.v1.ctl.restart".into(),
        user: "carol".into(),
    });
    app.apply(Inbound::CommandDone { what: "restart app shop-web".into(), result });
    assert!(app.read_only, "read-only once the server refused");
    let shown = screen(&mut app, 140, 14);
    assert!(shown.contains("READ-ONLY"), "{shown}");
    assert!(
        shown.contains(
            "refused: restart app shop-web; read-only: the server refused qd.v1.ctl.restart for user carol"
        ),
        "{shown}"
    );
    assert!(!shown.contains("accepted"), "{shown}");
    // What the operator tries next is refused in the cockpit, with the server's reason.
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let effects = app.update(Action::Restart);
    let effects = [effects, app.update(Action::Confirmed)].concat();
    assert!(sent(&effects).is_empty(), "sent after the refusal: {effects:?}");
    let shown = screen(&mut app, 160, 14);
    assert!(
        shown.contains("read-only: restart refused (the server refused qd.v1.ctl.restart for user carol)"),
        "{shown}"
    );
}

/// The `whoami` probe: a viewer's cockpit is read-only before anything is tried; an
/// answer later (permissions granted) lifts it; a cockpit started read-only stays so.
#[test]
fn the_probe_turns_read_only_on_for_a_viewer_and_off_once_allowed() {
    use crate::backend::CommandError;
    let mut app = app();
    let denied = || CommandError::Denied { subject: "qd.v1.ctl.carol.whoami".into(), user: "carol".into() };
    app.apply(Inbound::MayAct(Err(denied())));
    assert!(app.read_only);
    let shown = screen(&mut app, 140, 14);
    assert!(shown.contains("READ-ONLY"), "{shown}");
    assert!(shown.contains("read-only: the server refused qd.v1.ctl.carol.whoami for user carol"), "{shown}");
    app.apply(Inbound::MayAct(Ok("carol".into())));
    assert!(!app.read_only, "allowed again");
    assert!(screen(&mut app, 140, 14).contains("carol may send commands again"));
    // No answer tells nothing.
    let failed = CommandError::Failed("no answer".into());
    app.apply(Inbound::MayAct(Err(failed)));
    assert!(!app.read_only);
    // Started read-only: the probe's answer does not lift it.
    let mut started = self::app();
    started.read_only = true;
    started.apply(Inbound::MayAct(Ok("alice".into())));
    assert!(started.read_only);
}

#[test]
fn marked_instances_restart_together_with_a_batch_size() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    // api-gateway ×2 and session-cache ×1; none is prod.
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::Mark);
    assert_eq!(app.view(Panel::Instances).marks.len(), 3);
    assert!(screen(&mut app, 120, 14).contains("◆ 3 marked"));
    app.update(Action::Restart);
    app.update(Action::Adjust(1));
    app.update(Action::Adjust(5));
    let shown = screen(&mut app, 120, 16);
    assert!(shown.contains("Restart 3 marked instance(s): ") && shown.contains("◀ 3 ▶"), "{shown}");
    app.update(Action::Input('2'));
    let effects = app.update(Action::Confirmed);
    let commands = sent(&effects);
    let [ControlCommand::Restart(body)] = commands.as_slice() else { panic!("{effects:?}") };
    let body = body.clone();
    assert_eq!(body.batch, Some(2));
    let RestartRequest::Instances(ids) = body.target else { panic!("{:?}", body.target) };
    assert_eq!(ids.len(), 3);
    // Esc clears the marks.
    app.update(Action::Back);
    assert!(app.view(Panel::Instances).marks.is_empty());
}

#[test]
fn prod_apps_need_their_name_typed() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Bottom);
    assert_eq!(app.selected_app().map(|a| a.name.as_str()), Some("shop-web"));
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::TypedConfirm);
    // `y` is just a letter here.
    let y = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE);
    let action = prompt::action_for(app.input_mode(), &y).expect("an action");
    assert!(app.update(action).is_empty());
    assert!(app.update(Action::Confirmed).is_empty(), "no y/N shortcut for prod");
    assert!(app.update(Action::Submit).is_empty(), "\"y\" is not the name");
    assert!(screen(&mut app, 100, 20).contains("type shop-web exactly to confirm"));
    app.update(Action::ClearInput);
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Restart(RestartBody::from(RestartRequest::App("shop-web".into())))]
    );
    // Not prod: `y` is enough.
    app.update(Action::Top);
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::Confirm);
}

#[test]
fn read_only_refuses_every_action_and_sends_nothing() {
    let mut app = app();
    app.read_only = true;
    let mut all_effects = Vec::new();
    for panel in Panel::ALL {
        app.update(Action::ShowPanel(panel));
        for b in BINDABLE {
            if matches!(b, Action::Quit) {
                continue;
            }
            all_effects.extend(app.update(b));
            // Answer whatever opened as if the operator insisted.
            all_effects.extend(app.update(Action::Confirmed));
            all_effects.extend(type_text(&mut app, "shop-web"));
            all_effects.extend(app.update(Action::Submit));
            app.overlays.clear();
        }
    }
    for line in [
        "restart app shop-web",
        "restart instance nope",
        "route disable shop-web 10.101.1.31:8080",
        "route add shop-web 10.9.9.9:80",
        "deploy shop-web",
    ] {
        app.update(Action::Palette);
        type_text(&mut app, line);
        all_effects.extend(app.update(Action::Submit));
        all_effects.extend(app.update(Action::Confirmed));
        app.overlays.clear();
    }
    assert!(sent(&all_effects).is_empty(), "read-only sent {:?}", sent(&all_effects));
    assert!(!all_effects.iter().any(|e| matches!(e, Effect::Upload(_))), "read-only uploaded");
    let shown = screen(&mut app, 120, 14);
    assert!(shown.contains("READ-ONLY"), "{shown}");
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    let shown = screen(&mut app, 120, 14);
    assert!(shown.contains("read-only: restart refused"), "{shown}");
    assert!(app.overlay().is_none());
    // Looking still works: panels, filter, sort, detail, palette navigation.
    app.update(Action::Filter);
    app.update(Action::ClearInput);
    type_text(&mut app, "shop");
    app.update(Action::Submit);
    assert_eq!(app.row_count(Panel::Instances), 3);
}

/// Every key that would lead to a command is refused at once in read-only, with a word
/// that names it, and nothing that leaves the cockpit (a command or an upload) is made.
#[test]
fn read_only_refuses_each_acting_key_at_once_and_makes_no_command_effect() {
    let mut app = app();
    app.read_only = true;
    for panel in [Panel::Instances, Panel::Routes, Panel::Apps] {
        app.update(Action::ShowPanel(panel));
        for action in crate::actions::keymap::BINDABLE {
            app.status = None;
            let effects = app.update(action);
            let acting = matches!(
                action,
                Action::Restart
                    | Action::Remove
                    | Action::ToggleRoute
                    | Action::AddRoute
                    | Action::Weight
                    | Action::Deploy
            );
            if acting {
                let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
                assert!(said.starts_with("read-only: "), "{panel:?} {action:?}: {said:?}");
                assert!(app.overlay().is_none(), "{panel:?} {action:?} opened {:?}", app.overlay());
            }
            assert!(
                !effects.iter().any(|e| matches!(e, Effect::Send(_) | Effect::Upload(_))),
                "{panel:?} {action:?}: {effects:?}"
            );
            app.overlays.clear();
            app.should_quit = false;
        }
    }
}

/// Read-only that comes on while a dialog is open (the server refused another command)
/// stops the command where it is made: a confirm dialog, the route form, the wizard's
/// confirmation, and the deploy a finished upload would send.
#[test]
fn read_only_that_comes_on_while_a_dialog_is_open_sends_nothing() {
    let deny = |app: &mut App| {
        let result = Err(crate::backend::CommandError::Denied {
            subject: "qd.v1.ctl.restart".into(),
            user: "carol".into(),
        });
        app.apply(Inbound::CommandDone { what: "earlier".into(), result });
        assert!(app.read_only);
    };
    // A confirm dialog.
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::Confirm);
    deny(&mut app);
    assert!(sent(&app.update(Action::Confirmed)).is_empty());
    assert!(app.status.as_ref().is_some_and(|s| s.text.starts_with("read-only: command refused")));

    // The route form: its Enter is refused and the form closes.
    let mut app = self::app();
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::Weight);
    assert!(matches!(app.overlay(), Some(Overlay::Form(_))));
    deny(&mut app);
    app.update(Action::ClearInput);
    type_text(&mut app, "7");
    let effects = [app.update(Action::Submit), app.update(Action::Confirmed)].concat();
    assert!(sent(&effects).is_empty(), "{effects:?}");
    assert!(app.overlay().is_none());

    // The wizard's confirmation of a prod app.
    let mut app = self::app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Bottom);
    app.update(Action::Deploy);
    app.update(Action::Submit);
    app.update(Action::Submit);
    type_text(&mut app, "shop-web");
    deny(&mut app);
    let effects = app.update(Action::Submit);
    assert!(effects.is_empty(), "{effects:?}");
    assert!(app.status.as_ref().is_some_and(|s| s.text.starts_with("read-only: deploy refused")));

    // The deploy waiting for its upload: the upload ends after read-only came on.
    let scratch = super::scratch::ScratchArtifact::new("ro-upload", "shop-web-2.0.0.tar.gz", 2048);
    let file = scratch.file.clone();
    let mut app = self::app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Bottom);
    app.update(Action::Deploy);
    app.update(Action::ClearInput);
    type_text(&mut app, "2.0.0");
    app.update(Action::HistoryNext);
    app.update(Action::ClearInput);
    type_text(&mut app, &file.display().to_string());
    app.update(Action::Submit);
    app.update(Action::Submit);
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert!(matches!(effects.as_slice(), [Effect::Upload(_)]), "{effects:?}");
    deny(&mut app);
    let artifact =
        crate::protocol::ArtifactRef { name: "shop-web-2.0.0".into(), sha256: "c".repeat(64), size: 2048 };
    let done = crate::backend::upload::Uploaded { artifact, already_there: false };
    let effects = app.apply(Inbound::Uploaded { path: file, result: Ok(done) });
    assert!(effects.is_empty(), "the deploy went out in read-only: {effects:?}");
    let shown = screen(&mut app, 120, 20);
    assert!(shown.contains("refused"), "the wizard says the deploy was refused: {shown}");
}

/// "Is this prod" is one rule, `protocol::App::is_prod`: the confirm dialog and the
/// wizard both ask it, so a tag added to an app changes both.
#[test]
fn the_prod_rule_is_the_apps_tag_for_the_dialog_and_the_wizard() {
    let mut app = app();
    let spec = app.replica.fleet.apps.get_mut("api-gateway").expect("api-gateway");
    assert!(!spec.is_prod());
    spec.tags.push(crate::protocol::PROD_TAG.into());
    assert!(app.replica.fleet.apps["api-gateway"].is_prod());
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Top);
    assert_eq!(app.selected_app().map(|a| a.name.as_str()), Some("api-gateway"));
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::TypedConfirm, "a restart of a prod app asks for its name");
    app.overlays.clear();
    app.update(Action::Deploy);
    let Some(Overlay::Wizard(w)) = app.overlay() else { panic!("no wizard: {:?}", app.overlay()) };
    assert!(w.is_prod(), "the wizard asks the same rule");
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
fn copy_writes_the_selected_id_through_an_effect() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let id = app.selected_instance().map(|i| i.id.clone()).expect("an instance");
    assert_eq!(app.update(Action::Copy), vec![Effect::Copy(id)]);
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

fn question(app: &App) -> String {
    match app.overlay() {
        Some(Overlay::Confirm(p)) => p.question.clone(),
        other => panic!("no confirm dialog: {other:?}"),
    }
}

/// Space marks the row and moves the cursor down, as the help says.
#[test]
fn space_marks_the_row_and_moves_down_as_the_help_says() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let first = app.selected_key(Panel::Instances).expect("a row");
    app.update(Action::Mark);
    assert_eq!(app.selection().index, 1, "the cursor moved down");
    assert!(app.view(Panel::Instances).marks.contains(&first));
    app.update(Action::Up);
    app.update(Action::Mark);
    assert!(!app.view(Panel::Instances).marks.contains(&first), "Space again unmarks");
    app.update(Action::Help);
    let shown = screen(&mut app, 200, 30);
    assert!(shown.contains("mark/unmark, then move down"), "{shown}");
}

/// A bulk confirmation names its targets, the first few and then `…`.
#[test]
fn bulk_confirmations_name_their_targets() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    let routes: Vec<(String, String)> = app
        .rows(Panel::Routes)
        .iter()
        .filter_map(|k| match k {
            RowKey::Route(a, b) => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect();
    assert!(routes.len() >= 5, "{routes:?}");
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let q = question(&app);
    let (a, b) = (&routes[0], &routes[1]);
    assert!(q.starts_with(&format!("Disable 2 routes: {} {}, {} {}?", a.0, a.1, b.0, b.1)), "{q}");
    app.update(Action::Cancelled);
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let q = question(&app);
    let c = &routes[2];
    assert!(
        q.starts_with(&format!("Disable 4 routes: {} {}, {} {}, {} {}, …?", a.0, a.1, b.0, b.1, c.0, c.1)),
        "{q}"
    );
    // Marked instances are named too.
    app.update(Action::Cancelled);
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Mark);
    app.update(Action::Mark);
    let ids: Vec<String> = row_ids(&app, Panel::Instances).into_iter().take(2).collect();
    app.update(Action::Restart);
    let q = question(&app);
    assert!(q.starts_with(&format!("Restart 2 marked instance(s): {}, {}, rolling?", ids[0], ids[1])), "{q}");
}

/// Enabling an enabled route (or disabling a disabled one) is a no-op that says so and
/// sends nothing; among marked routes, those already so are left out and named as such.
#[test]
fn enabling_an_enabled_route_is_a_no_op_that_says_so() {
    use crate::protocol::RouteState;
    let mut app = app();
    let (key, route) =
        app.replica.fleet.routes.iter().next().map(|(k, r)| (k.clone(), r.clone())).expect("a route");
    assert_eq!(route.state, RouteState::Enabled);
    app.update(Action::Palette);
    type_text(&mut app, &format!("route enable {} {}", key.0, key.1));
    let effects = app.update(Action::Submit);
    assert!(effects.is_empty() && app.overlay().is_none(), "{effects:?} {:?}", app.overlay());
    let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert_eq!(said, format!("route {} -> {} is already enabled: nothing sent", route.domain, route.backend));
    // The other way round it is a command, confirmed as usual.
    app.update(Action::Palette);
    type_text(&mut app, &format!("route disable {} {}", key.0, key.1));
    app.update(Action::Submit);
    assert!(question(&app).starts_with("Disable route"), "{}", question(&app));
    app.overlays.clear();

    // Marks: the second route is disabled already; `e` goes the way of the first
    // (disable) and sends one command.
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::Top);
    let second = match app.rows(Panel::Routes).get(1) {
        Some(RowKey::Route(a, b)) => (a.clone(), b.clone()),
        other => panic!("{other:?}"),
    };
    app.replica.fleet.routes.get_mut(&second).expect("second route").state = RouteState::Disabled;
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let q = question(&app);
    assert!(q.contains("1 marked already disabled: left as they are"), "{q}");
    let commands = sent(&app.update(Action::Confirmed));
    assert_eq!(commands.len(), 1, "{commands:?}");
    let ControlCommand::Route(RouteVerb::Disable, req) = &commands[0] else { panic!("{commands:?}") };
    assert_ne!((req.app.clone(), req.backend.clone()), second);
}
