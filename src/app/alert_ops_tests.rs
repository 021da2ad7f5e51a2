//! The Alerts panel driven through the whole App: `a` (confirm, the command sent, read-only,
//! marks), Enter to each kind of subject, the cockpit's own `no_controller` alert.

use crate::actions::{Action, Panel};
use crate::app::Overlay;
use crate::app::rows::RowKey;
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::T0;
use crate::protocol::{AlertAckRequest, AlertRule, AlertState, ControlCommand};
use crate::views::harness::{alert, alerts_app, feed_alert, question, row_ids, sent, type_text};

fn ack(id: &str) -> ControlCommand {
    ControlCommand::AlertAck(AlertAckRequest { id: id.into() })
}

/// Selects the row of the Alerts panel whose id starts with `prefix`.
fn select(app: &mut crate::app::App, prefix: &str) -> String {
    app.update(Action::ShowPanel(Panel::Alerts));
    let ids = row_ids(app, Panel::Alerts);
    let at = ids.iter().position(|id| id.starts_with(prefix)).expect("the alert's row");
    app.update(Action::Top);
    for _ in 0..at {
        app.update(Action::Down);
    }
    ids[at].clone()
}

#[test]
fn rows_are_firing_first_newest_first_then_acknowledged_then_resolved() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Alerts));
    let ids = row_ids(&app, Panel::Alerts);
    let rules: Vec<&str> = ids.iter().map(|id| id.split(':').next().unwrap_or_default()).collect();
    assert_eq!(rules, ["crash_loop", "host_down", "deploy_failed", "route_5xx"]);
    // Acknowledging the newest moves it below the other firing one.
    let first = ids[0].clone();
    let mut a = app.replica.fleet.alerts[&first].clone();
    a.state = AlertState::Acknowledged;
    a.acked_by = Some("bob@h".into());
    feed_alert(&mut app, a);
    let rules: Vec<String> = row_ids(&app, Panel::Alerts)
        .iter()
        .map(|id| id.split(':').next().unwrap_or_default().into())
        .collect();
    assert_eq!(rules, ["host_down", "crash_loop", "deploy_failed", "route_5xx"]);
}

#[test]
fn a_acknowledges_the_selected_alert_once_confirmed() {
    let mut app = alerts_app();
    let id = select(&mut app, "host_down");
    assert!(sent(&app.update(Action::Ack)).is_empty(), "nothing before the answer");
    assert_eq!(question(&app), format!("Acknowledge {id}? It is recorded as yours."));
    assert_eq!(sent(&app.update(Action::Confirmed)), vec![ack(&id)]);
    assert!(app.overlay().is_none());
}

#[test]
fn a_is_refused_read_only_before_any_dialog() {
    let mut app = alerts_app();
    app.read_only = true;
    select(&mut app, "host_down");
    assert!(sent(&app.update(Action::Ack)).is_empty());
    assert!(app.overlay().is_none(), "no dialog: {:?}", app.overlay());
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(status.contains("read-only: ack refused"), "{status}");
}

#[test]
fn a_production_context_types_its_name_to_acknowledge() {
    let mut app = alerts_app();
    app.set_plane(crate::app::PlaneLabel { name: "prod-eu".into(), colour: None, production: true });
    let id = select(&mut app, "crash_loop");
    app.update(Action::Ack);
    assert!(sent(&app.update(Action::Confirmed)).is_empty(), "y alone does not do");
    type_text(&mut app, "prod-eu");
    assert_eq!(sent(&app.update(Action::Submit)), vec![ack(&id)]);
}

#[test]
fn marked_alerts_are_acknowledged_together_leaving_out_those_not_firing() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Alerts));
    let ids = row_ids(&app, Panel::Alerts);
    app.update(Action::Top);
    for _ in 0..ids.len() {
        app.update(Action::Mark);
    }
    app.update(Action::Ack);
    assert!(question(&app).contains("2 marked not firing are left out"), "{}", question(&app));
    assert_eq!(sent(&app.update(Action::Confirmed)), vec![ack(&ids[0]), ack(&ids[1])]);

    // Only the acknowledged and the resolved marked: nothing is sent, and no dialog.
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Alerts));
    app.update(Action::Top);
    app.update(Action::Down);
    app.update(Action::Down);
    app.update(Action::Mark);
    app.update(Action::Mark);
    assert!(sent(&app.update(Action::Ack)).is_empty());
    assert!(app.overlay().is_none(), "{:?}", app.overlay());
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert_eq!(status, "nothing sent: the 2 alerts are not firing");
}

#[test]
fn a_elsewhere_says_where_it_works_and_i_opens_the_route_form() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Routes));
    assert!(sent(&app.update(Action::Ack)).is_empty());
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(status.contains("on the Alerts panel (7)"), "{status}");
    let keymap = crate::actions::keymap::Keymap::defaults();
    let key = |c| crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
    assert_eq!(keymap.action_for(&key('a')), Some(Action::Ack));
    assert_eq!(keymap.action_for(&key('i')), Some(Action::AddRoute));
    assert_eq!(keymap.action_for(&key('7')), Some(Action::ShowPanel(Panel::Alerts)));
    app.update(Action::AddRoute);
    assert!(matches!(app.overlay(), Some(Overlay::Form(_))), "{:?}", app.overlay());
}

#[test]
fn enter_jumps_to_each_kind_of_subject() {
    let mut app = alerts_app();
    let instance = app.replica.fleet.instances.keys().next().cloned().expect("an instance");
    let route = app.replica.fleet.routes.keys().next().cloned().expect("a route");
    let cases = [
        ("host_down", Panel::Hosts, RowKey::Id("host-02".into())),
        ("crash_loop", Panel::Instances, RowKey::Id(instance)),
        ("deploy_failed", Panel::Apps, RowKey::Id("shop-web".into())),
        ("route_5xx", Panel::Routes, RowKey::Route(route.0, route.1)),
    ];
    for (rule, panel, key) in cases {
        select(&mut app, rule);
        app.update(Action::Detail);
        assert_eq!(app.panel, panel, "{rule}");
        assert_eq!(app.selected_key(panel), Some(key), "{rule}");
        assert!(app.overlay().is_none(), "{rule}: {:?}", app.overlay());
    }
}

#[test]
fn enter_clears_a_filter_that_hides_the_subject_and_says_a_subject_gone() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Hosts));
    app.views[Panel::Hosts.index()].set_filter(crate::app::rows::Filter::parse("host-05"));
    select(&mut app, "host_down");
    app.update(Action::Detail);
    assert_eq!(app.selected_key(Panel::Hosts), Some(RowKey::Id("host-02".into())));
    assert!(app.view(Panel::Hosts).filter.is_none());
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(status.contains("cleared"), "{status}");

    feed_alert(&mut app, alert(AlertRule::HostDown, "host/host-99", AlertState::Firing, T0 + 30_000));
    select(&mut app, "host_down:host/host-99");
    app.update(Action::Detail);
    assert_eq!(app.panel, Panel::Alerts, "stays");
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert_eq!(status, "host/host-99 is gone from the fleet: nothing to show");
}

/// The controller's beacon every 2 s up to `now`.
fn beacons_until(app: &mut crate::app::App, now: u64) {
    for k in (0..4).rev() {
        app.now = now - k * 2_000;
        app.apply(Inbound::Feed(Feed::Beacon(app.replica.fleet.revision)));
    }
}

#[test]
fn a_silent_controller_raises_the_cockpits_own_alert_which_cannot_be_acked() {
    let mut app = alerts_app();
    let t = T0 + 60_000;
    beacons_until(&mut app, t);
    app.update(Action::Tick(t + 6_000));
    app.update(Action::ShowPanel(Panel::Alerts));
    assert!(!row_ids(&app, Panel::Alerts).iter().any(|id| id.starts_with("no_controller")));

    app.update(Action::Tick(t + 6_001));
    let ids = row_ids(&app, Panel::Alerts);
    assert_eq!(ids.len(), 5, "the stored alerts stay, as last heard: {ids:?}");
    let own = app.replica.fleet.alerts.len();
    assert_eq!(own, 4, "never stored");
    let id = select(&mut app, "no_controller");
    assert_eq!(id, "no_controller:controller");
    let a = app.selected_alert().expect("the alert");
    assert_eq!((a.state, a.since), (AlertState::Firing, t));
    assert!(app.staleness().is_some_and(|s| s.contains("not live")));
    // `a` says what it is and sends nothing; Enter says what it means.
    assert!(sent(&app.update(Action::Ack)).is_empty());
    assert!(app.overlay().is_none());
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(status.starts_with("nothing sent: no_controller is the cockpit's own alert"), "{status}");
    app.update(Action::Detail);
    assert_eq!(app.panel, Panel::Alerts);
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(status.contains("no beacon from the controller"), "{status}");

    // Heard again: gone at once.
    app.now = t + 7_000;
    app.apply(Inbound::Feed(Feed::Beacon(app.replica.fleet.revision)));
    app.refresh_views();
    assert!(!row_ids(&app, Panel::Alerts).iter().any(|id| id.starts_with("no_controller")));
    assert_eq!(crate::app::alerts::active(&app.replica).firing, 2);
}

#[test]
fn the_palette_acks_and_silences_through_the_confirm_dialog() {
    use crate::protocol::{AlertSubject, SilenceRequest};
    let mut app = alerts_app();
    let id = crate::protocol::Alert::id_of(AlertRule::HostDown, &AlertSubject::Host("host-02".into()));
    app.update(Action::Palette);
    type_text(&mut app, &format!("ack {id}"));
    app.update(Action::Submit);
    assert_eq!(sent(&app.update(Action::Confirmed)), vec![ack(&id)]);

    app.update(Action::Palette);
    type_text(&mut app, "silence host/host-02 2h disk swap");
    assert!(sent(&app.update(Action::Submit)).is_empty());
    assert!(
        question(&app).starts_with("Silence host/host-02 for 2h? 1 active alert(s)"),
        "{}",
        question(&app)
    );
    let want = ControlCommand::AlertSilence(SilenceRequest {
        subject: AlertSubject::Host("host-02".into()),
        for_ms: 7_200_000,
        reason: Some("disk swap".into()),
    });
    assert_eq!(sent(&app.update(Action::Confirmed)), vec![want]);

    // Read-only: refused at Enter, before a dialog.
    app.read_only = true;
    app.update(Action::Palette);
    type_text(&mut app, "silence host/host-02 1h");
    app.update(Action::Submit);
    assert!(app.overlay().is_none(), "{:?}", app.overlay());
    let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(status.contains("read-only: silence refused"), "{status}");
}

#[test]
fn a_silence_marks_the_alerts_on_its_subject_until_it_runs_out() {
    use crate::protocol::{AlertSubject, Change, Silence};
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Alerts));
    app.update(Action::Filter);
    type_text(&mut app, "silenced");
    app.update(Action::Submit);
    assert!(row_ids(&app, Panel::Alerts).is_empty());
    // The filter's kept rows are rebuilt for the alerts on the silence's subject.
    let until = app.now + 3_600_000;
    let silence =
        Silence { subject: AlertSubject::Host("host-02".into()), until, by: "alice".into(), reason: None };
    let e = crate::views::harness::change_event(&app, vec![Change::Silence(silence)]);
    app.apply(e);
    // A filtered table's rows follow within a second (`rows::RESORT_MS`).
    // (The clock alone: a tick judges the hosts, and a change in who is silent rebuilds
    // every row, which would hide whether the silence touched its alerts' rows.)
    let silences = app.replica.silence_changes;
    app.now += crate::app::rows::RESORT_MS;
    app.refresh_views();
    assert_eq!(app.replica.silence_changes, silences);
    let ids = row_ids(&app, Panel::Alerts);
    assert_eq!(ids, vec!["host_down:host/host-02".to_string()]);
    app.update(Action::Tick(until + 60_000));
    app.refresh_views();
    assert!(row_ids(&app, Panel::Alerts).is_empty(), "run out: no mark");
}
