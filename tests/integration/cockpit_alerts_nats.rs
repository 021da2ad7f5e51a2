//! The Alerts panel on a real nats-server: an alert in the controller's state reaches the
//! cockpit's panel and header through its snapshot, and `a` sends its acknowledgment on
//! `qd.v1.ctl.<user>.alert.ack` with the operator's identity. The controller's rules and
//! its handling of the ack are another part of #20: the alert is put in the controller's
//! state as its store keeps alerts (`alert.<id>` in `qd_state`, loaded at its start), and
//! the test asserts what the cockpit sends, not the controller's answer.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::backend::{self, Identity};
use quarterdeck::bus::Bus;
use quarterdeck::protocol::{
    Alert, AlertAckRequest, AlertRule, AlertState, AlertSubject, Change, ControlCommand, Operator,
};

use crate::cockpit_support::{cockpit_app, screen};
use crate::nats_support::{PlaneConfig, block_on, connect, plane_or_skip};
use crate::support::{carry_out, pump};

fn alice() -> Operator {
    Operator::from_parts("alice", "bastion-1", None, Some("ops".into()))
}

fn host_down() -> Alert {
    let subject = AlertSubject::Host("h1".into());
    let since = quarterdeck::protocol::clock::now_ms();
    Alert {
        id: Alert::id_of(AlertRule::HostDown, &subject),
        rule: AlertRule::HostDown,
        subject,
        state: AlertState::Firing,
        since,
        changed_at: since,
        resolved_at: None,
        summary: "h1 silent for 12s".into(),
        causes: vec![],
        acked_by: None,
    }
}

/// Writes the alert into the stopped controller's state bucket, as its store does.
async fn store_alert(url: &str, alert: &Alert) {
    let bus = connect(url, "test/state-writer").await;
    let kv = bus.jetstream().get_key_value("qd_state").await.expect("the controller's state bucket");
    let key = format!("alert.{}", alert.id.replace(':', "_"));
    let value = serde_json::to_vec(&Change::Alert(alert.clone())).expect("encode");
    kv.put(key, value.into()).await.expect("put the alert");
}

#[test]
fn cockpit_shows_an_alert_from_the_plane_and_a_sends_its_ack() {
    let mut plane = plane_or_skip!("cockpit_alerts_nats", PlaneConfig::default());
    let url = plane.url();
    let alert = host_down();
    plane.controller.kill9();
    block_on(store_alert(&url, &alert));
    plane.restart_controller("c1");
    plane.wait_hosts_up();

    block_on(async {
        let spy = connect(&url, "test/spy").await;
        let mut acks = spy.subscribe("qd.v1.ctl.*.alert.ack").await.expect("subscribe");
        let bus: Arc<dyn Bus> = Arc::new(connect(&url, "cockpit/alice@bastion-1").await);
        let identity = Identity { operator: Some(alice()), read_only: false, repository: None };
        let label = bus.describe();
        let mut handle = backend::spawn_cockpit(bus, "cockpit/alice@bastion-1".into(), identity);
        let mut app = cockpit_app(label);
        pump(&mut app, &mut handle, "the alert in the replica", |a| {
            a.replica.fleet.alerts.contains_key(&alert.id)
        })
        .await;

        app.update(Action::ShowPanel(Panel::Alerts));
        let shown = screen(&mut app, 200);
        let row = shown.lines().find(|l| l.contains("host/h1")).unwrap_or_default();
        assert!(row.contains("● firing") && row.contains("host_down"), "{shown}");
        assert!(shown.lines().next().is_some_and(|h| h.contains("● 1 alert")), "{shown}");

        app.update(Action::Ack);
        let effects = app.update(Action::Confirmed);
        let want = ControlCommand::AlertAck(AlertAckRequest { id: alert.id.clone() });
        assert_eq!(effects, vec![Effect::Send(want)]);
        for e in effects {
            carry_out(&handle, e);
        }
        let msg = tokio::time::timeout(Duration::from_secs(20), acks.next())
            .await
            .expect("the ack on the bus in time")
            .expect("the subscription open");
        let env = quarterdeck::protocol::decode::<AlertAckRequest>(&msg.payload).expect("an ack envelope");
        assert_eq!(env.body, AlertAckRequest { id: alert.id.clone() });
        assert_eq!(env.operator.map(|o| o.user), Some("alice@bastion-1".to_string()));
        assert!(msg.subject.ends_with(".alert.ack"), "{}", msg.subject);
    });
}
