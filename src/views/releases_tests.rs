//! Snapshot tests of the releases in an app's detail pane, at 120x40 and at 80x24 (where
//! the pane is cut: the releases come before what is cut).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::Inbound;
use crate::protocol::release::{Cause, Release, ReleaseList};
use crate::views::harness::{app, draw, text};

/// The first app's detail open, with releases 1 to 4 (4 current: a rollback to 1, whose
/// image, artifact and command it has again) and release 3 selected.
fn with_releases() -> App {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Detail);
    let spec = app.selected_app().cloned().expect("an app");
    let release = |number: u64, version: &str, image: &str, cmd: &str, cause| {
        let mut s = spec.clone();
        s.version = version.into();
        s.image = image.into();
        s.run.cmd = Some(cmd.split(' ').map(str::to_string).collect());
        Release {
            number,
            spec: s,
            who: "ana".into(),
            when: app.now - (5 - number) * 3_600_000,
            operation_id: None,
            cause,
        }
    };
    let list = ReleaseList {
        app: spec.name.clone(),
        current: Some(4),
        releases: vec![
            release(1, "1.0.0", "web:1", "serve --port 80", Cause::Deploy),
            release(2, "1.1.0", "web:2", "serve --port 80", Cause::Deploy),
            release(3, "1.2.0", "web:2", "serve --port 80 -v", Cause::Env),
            release(4, "1.0.0", "web:1", "serve --port 80", Cause::Rollback { to: 1 }),
        ],
    };
    app.apply(Inbound::Releases { app: spec.name, result: Ok(list) });
    // The default is the one before the current; the selection moves to 3 anyway.
    assert_eq!(app.releases.selected, Some(3));
    app
}

#[test]
fn an_apps_detail_lists_its_releases_and_the_diff_to_the_selected_one() {
    let mut app = with_releases();
    let screen = text(&draw(&mut app, 120, 40));
    assert_snapshot!(screen);
    assert!(screen.contains("rollback to 1"), "{screen}");
    assert!(screen.contains(">   3"), "the selected one: {screen}");
    assert!(screen.contains("diff 4 → 3"), "{screen}");
    for change in ["image                web:1 → web:2", "version              1.0.0 → 1.2.0", "run.cmd "]
    {
        assert!(screen.contains(change), "{change}: {screen}");
    }
}

#[test]
fn at_80x24_the_releases_and_their_diff_still_show() {
    let mut app = with_releases();
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    assert!(screen.contains("diff 4 → 3"), "{screen}");
    assert!(screen.contains("version"), "{screen}");
    // Moving to the current release: no diff, said so.
    app.update(Action::ReleaseNext);
    let screen = text(&draw(&mut app, 80, 24));
    assert!(screen.contains("release 4 is the current spec"), "{screen}");
}

#[test]
fn while_asked_and_when_refused_the_pane_says_so() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Detail);
    assert!(text(&draw(&mut app, 120, 40)).contains("asking the controller"));
    let name = app.selected_app().map(|a| a.name.clone()).unwrap_or_default();
    let refused = crate::backend::CommandError::NoResponder { subject: "qd.v1.ctl.u.releases".into() };
    app.apply(Inbound::Releases { app: name, result: Err(refused) });
    let screen = text(&draw(&mut app, 120, 40));
    assert!(screen.contains("releases      ⚠"), "{screen}");
}
