//! Headless tests of read-only: refused at once, never a command effect, and turned on or off by what the server allows.

use crate::actions::keymap::BINDABLE;
use crate::actions::prompt::InputMode;
use crate::actions::{Action, Effect, Panel};
use crate::app::{App, Overlay};
use crate::backend::Inbound;
use crate::views::harness::{app, screen, sent, type_text};

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
    let scratch = crate::app::scratch::ScratchArtifact::new("ro-upload", "shop-web-2.0.0.tar.gz", 2048);
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
