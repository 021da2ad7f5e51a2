//! Permission errors are reported as such (issue 15): what nats-server refuses a user fails
//! at once with `permission denied on SUBJECT for user NAME`, not with a timeout, and a
//! cockpit logged in as a viewer turns read-only by itself. On the harness's plane with
//! roles on (`Mode::Roles`: the users `quarterdeck auth init` writes).

use std::time::Duration;

use bytes::Bytes;
use quarterdeck::actions::{Action, Panel};
use quarterdeck::backend::{self, BackendHandle};
use quarterdeck::bus::{Bus, BusError};
use quarterdeck::protocol::subjects::{self, CtlVerb, RouteVerb};

use crate::cockpit_support::{cockpit_app, screen, type_text};
use crate::nats_support::{Mode, Plane, PlaneConfig, connect_as, ctl_as, deploy_args};
use crate::support::{carry_out, pump};

/// The plane (controller c1, agents h1 and h2) with roles on; the viewer is carol.
fn role_plane(test: &str) -> Option<Plane> {
    Plane::start(test, PlaneConfig { mode: Mode::Roles, ..PlaneConfig::default() })
}

/// The operator deploys `app`, and the plane answers.
fn operator_deploys(plane: &Plane, app: &str) {
    let out = ctl_as(&plane.nats, "operator/alice", &deploy_args(app, "1.0.0", "1"));
    assert!(out.ok(), "the operator's deploy: {out}");
}

/// Longer than any test waits: an answer that came from this timeout would be the old
/// behaviour, and the words below would not match it.
const LONG: Duration = Duration::from_secs(600);

/// `ctl deploy` as the viewer: refused by the server, and said so, naming the subject ctl
/// sent on and the viewer. (Before: `no answer on qd.v1.ctl.carol.deploy within 3s`.)
#[test]
fn nats_denied_a_viewers_ctl_deploy_says_permission_denied() {
    let test = "nats_denied_a_viewers_ctl_deploy_says_permission_denied";
    let Some(plane) = role_plane(test) else { return };
    let mut args = deploy_args("sneaky", "1.0.0", "1");
    args.extend(["--timeout", "600s"]);
    let out = ctl_as(&plane.nats, "viewer/carol", &args);
    let stderr = &out.stderr;
    assert!(!out.ok(), "the viewer's deploy succeeded: {out}");
    // ctl's error, its last line (the log line before it says the same).
    let said = stderr.lines().rfind(|l| l.starts_with("quarterdeck: ")).unwrap_or_default();
    let subject = subjects::command("carol", CtlVerb::Deploy);
    assert_eq!(said, format!("quarterdeck: permission denied on {subject} for user carol"), "{stderr}");
    assert!(!stderr.contains("no answer"), "{stderr}");
    operator_deploys(&plane, "web");
}

/// The library's request and subscribe, as the viewer: the server's refusal is the error.
#[test]
fn nats_denied_a_viewers_request_and_subscription_fail_as_denied() {
    let test = "nats_denied_a_viewers_request_and_subscription_fail_as_denied";
    let Some(plane) = role_plane(test) else { return };
    crate::nats_support::block_on(async {
        let carol = connect_as(&plane.nats, "viewer/carol").await;
        let restart = subjects::command("carol", CtlVerb::Restart);
        let got = carol.request(&restart, Bytes::from_static(b"{}"), LONG).await;
        let want = BusError::PermissionDenied { subject: restart.clone(), user: "carol".into() };
        assert_eq!(got.clone().err(), Some(want.clone()), "{got:?}");
        assert_eq!(want.to_string(), "permission denied on qd.v1.ctl.carol.restart for user carol");
        // Typed, as ctl and the cockpit send: the same refusal, passed through.
        let env = quarterdeck::protocol::Envelope::new("test/carol", serde_json::json!({}));
        let typed: Result<serde_json::Value, _> =
            quarterdeck::bus::command(&carol, CtlVerb::Route(RouteVerb::Add), &env, LONG).await;
        let text = typed.expect_err("refused").to_string();
        assert_eq!(text, "permission denied on qd.v1.ctl.carol.route.add for user carol");
        // A subscription the viewer may not make.
        let sub = carol.subscribe(subjects::CTL_ALL).await;
        let want = BusError::PermissionDenied { subject: subjects::CTL_ALL.into(), user: "carol".into() };
        assert_eq!(sub.err(), Some(want));
        // What the viewer may do still works on the same connection.
        let fleet = crate::nats_support::library_snapshot(&carol).await.expect("the viewer reads");
        assert!(fleet.hosts.len() == 2, "{:?}", fleet.hosts.keys());
    });
}

/// A cockpit as the viewer, started without `--read-only` and not told by the probe below:
/// its first command is refused by the server, shown refused, and the cockpit is read-only
/// from then on.
#[test]
fn nats_denied_a_viewers_cockpit_turns_read_only_when_refused() {
    let test = "nats_denied_a_viewers_cockpit_turns_read_only_when_refused";
    let Some(plane) = role_plane(test) else { return };
    operator_deploys(&plane, "web");
    crate::nats_support::block_on(async {
        let carol = std::sync::Arc::new(connect_as(&plane.nats, "viewer/carol").await);
        // Without the `whoami` probe (as when no controller answered it): the refusal of a
        // command is what the cockpit learns from.
        let options = backend::ClientOptions::default();
        let mut handle: BackendHandle = backend::spawn_with(carol, "cockpit/carol@test".into(), options);
        let mut app = cockpit_app("nats");
        assert!(!app.read_only);
        pump(&mut app, &mut handle, "the viewer's cockpit loaded with web", |a| {
            a.replica.fleet.apps.contains_key("web")
        })
        .await;
        app.update(Action::Palette);
        type_text(&mut app, "restart app web");
        assert!(app.update(Action::Submit).is_empty(), "confirm first");
        for effect in app.update(Action::Confirmed) {
            carry_out(&handle, effect);
        }
        pump(&mut app, &mut handle, "read-only after the server's refusal", |a| a.read_only).await;
        app.update(Action::ShowPanel(Panel::Apps));
        let shown = screen(&mut app, 200);
        assert!(shown.contains("READ-ONLY"), "{shown}");
        let refused =
            "refused: restart app web; read-only: the server refused qd.v1.ctl.carol.restart for user carol";
        assert!(shown.contains(refused), "{shown}");
        // The next try is refused in the cockpit: nothing is sent.
        app.update(Action::Palette);
        type_text(&mut app, "restart app web");
        let effects = [app.update(Action::Submit), app.update(Action::Confirmed)].concat();
        assert!(effects.iter().all(|e| !matches!(e, quarterdeck::actions::Effect::Send(_))), "{effects:?}");
    });
}

/// A cockpit as the viewer, started without `--read-only`, is read-only before the viewer
/// tries anything: its backend asks `whoami`, which the server refuses a viewer. The
/// operator's cockpit is told it may act.
#[test]
fn nats_denied_a_viewers_cockpit_is_read_only_from_the_start() {
    let test = "nats_denied_a_viewers_cockpit_is_read_only_from_the_start";
    let Some(plane) = role_plane(test) else { return };
    crate::nats_support::block_on(async {
        let carol = std::sync::Arc::new(connect_as(&plane.nats, "viewer/carol").await);
        let mut handle =
            backend::spawn_cockpit(carol, "cockpit/carol@test".into(), backend::Identity::default());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "the viewer's cockpit read-only by itself", |a| a.read_only).await;
        let shown = screen(&mut app, 200);
        assert!(shown.contains("READ-ONLY"), "{shown}");
        let reason = "read-only: the server refused qd.v1.ctl.carol.whoami for user carol";
        assert!(shown.contains(reason), "{shown}");
        // Nothing more is sent: a restart is refused in the cockpit with that reason.
        pump(&mut app, &mut handle, "loaded", |a| a.replica.fleet.hosts.len() == 2).await;
        app.update(Action::ShowPanel(Panel::Hosts));
        app.update(Action::Restart);
        assert!(app.update(Action::Confirmed).is_empty(), "nothing sent");
        let shown = screen(&mut app, 200);
        assert!(
            shown.contains("refused (the server refused qd.v1.ctl.carol.whoami for user carol)"),
            "{shown}"
        );

        let alice = std::sync::Arc::new(connect_as(&plane.nats, "operator/alice").await);
        let mut handle =
            backend::spawn_cockpit(alice, "cockpit/alice@test".into(), backend::Identity::default());
        let deadline = tokio::time::Instant::now() + crate::nats_support::WAIT;
        let may = loop {
            match tokio::time::timeout_at(deadline, handle.updates.recv()).await {
                Ok(Some(backend::Inbound::MayAct(may))) => break may,
                Ok(Some(_)) => {}
                other => panic!("no whoami answer for the operator: {other:?}"),
            }
        };
        assert_eq!(may, Ok("alice".to_string()));
    });
}
