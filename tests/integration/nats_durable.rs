//! "ok" only once durable (etcd's promise): a command's reply comes after its events are in
//! the stream and the state. Before, the reply came when the event was queued; behind a
//! backlog of commits, a kill -9 right after the "ok" lost the change.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::bus::Bus;
use quarterdeck::protocol::subjects::{CtlVerb, RouteVerb};
use quarterdeck::protocol::{Accepted, Envelope, RouteRequest};

use crate::nats_support::{PlaneConfig, block_on, ctl_ok, deploy_args, plane_or_skip, str_of};

const FLOOD: u32 = 2_000;
const MARK: u32 = 777;

#[test]
fn nats_a_change_acknowledged_behind_a_backlog_survives_a_kill_right_after_its_reply() {
    let mut plane = plane_or_skip!("nats_a_change_acknowledged_survives_a_kill", PlaneConfig::default());
    let url = plane.url();
    ctl_ok(&url, &deploy_args("web", "1.0.0", "2"));
    let snap = plane.snapshot();
    let routes: Vec<String> =
        snap["routes"].as_array().unwrap().iter().map(|r| str_of(r, "backend").to_string()).collect();
    assert_eq!(routes.len(), 2, "{}", snap["routes"]);
    let (busy, marked) = (routes[0].clone(), routes[1].clone());

    block_on(async {
        let bus: Arc<dyn Bus> = Arc::new(crate::nats_support::connect(&url, "test/durable").await);
        // A backlog: many accepted changes at once, each one event to commit.
        for k in 0..FLOOD {
            let bus = bus.clone();
            let req = RouteRequest { app: "web".into(), backend: busy.clone(), weight: Some(1 + k % 100) };
            tokio::spawn(async move {
                let env = Envelope::new("test/flood", req);
                let _ = quarterdeck::bus::command::<_, Accepted>(
                    bus.as_ref(),
                    CtlVerb::Route(RouteVerb::Weight),
                    &env,
                    Duration::from_secs(60),
                )
                .await;
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let req = RouteRequest { app: "web".into(), backend: marked.clone(), weight: Some(MARK) };
        let answer: Result<Accepted, _> = quarterdeck::bus::command(
            bus.as_ref(),
            CtlVerb::Route(RouteVerb::Weight),
            &Envelope::new("test/mark", req),
            Duration::from_secs(60),
        )
        .await;
        answer.expect("the marked change is accepted");
    });
    // Right after its "ok": nothing more of this controller runs.
    plane.controller.kill9();
    plane.restart_controller("c1");
    let snap = plane.wait_hosts_up();
    let weight = snap["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| str_of(r, "backend") == marked)
        .map(|r| r["weight"].clone());
    assert_eq!(
        weight,
        Some(serde_json::Value::from(MARK)),
        "the acknowledged change was lost: {}",
        snap["routes"]
    );
}
