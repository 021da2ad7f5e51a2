//! Alerts on a real nats-server with sim agents (issue 20): a failed deploy fires
//! `deploy_failed` and the webhook receiver gets it; `ctl alert ack` is audited with the
//! operator and shown in `ctl alerts`; bad silences are refused with their reason; the
//! alert survives a controller restart; a silence holds its webhooks back.

use std::time::Duration;

use serde_json::Value;

use crate::nats_support::{
    PlaneConfig, alert_of, ctl, ctl_json, ctl_json_lines, ctl_ok, deploy_args, eventually, plane_or_skip,
};
use crate::webhook_support::Receiver;

const WAIT: Duration = Duration::from_secs(60);
const ID: &str = "deploy_failed:app/shop";

fn wait_alert_state(url: &str, state: &str) -> Value {
    eventually(WAIT, &format!("{ID} {state}"), || {
        let a = alert_of(url, ID).ok_or_else(|| "no alert yet".to_string())?;
        if a["state"] == state { Ok(a) } else { Err(format!("{a}")) }
    })
}

fn failing_deploy(url: &str, version: &str) {
    let mut args = deploy_args("shop", version, "1");
    args.extend(["--az", "az-9"]);
    let out = ctl(url, &args);
    assert!(!out.ok(), "no host is in az-9: {out}");
}

#[test]
fn nats_alerts_fire_ack_silence_and_survive_a_restart() {
    let hook = Receiver::start(1);
    let url_flag: &'static str = Box::leak(hook.url.clone().into_boxed_str());
    let config = PlaneConfig {
        controller: vec![
            "--stale-after",
            "5",
            "--lost-after",
            "100",
            "--webhook",
            url_flag,
            "--alert-resolve-after",
            "1s",
        ],
        ..PlaneConfig::default()
    };
    let mut plane = plane_or_skip!("nats_alerts_fire_ack_silence_and_survive_a_restart", config);
    let url = plane.url();
    plane.deploy("shop", "1.0.0", 1);
    failing_deploy(&url, "2.0.0");

    // Fired, with the failed operation's event as its cause; the receiver's first answer
    // was a 500, so this arrived on a retry.
    let fired = wait_alert_state(&url, "firing");
    assert!(fired["summary"].as_str().is_some_and(|s| s.contains("az-9")), "{fired}");
    assert!(fired["causes"].as_array().is_some_and(|c| !c.is_empty()), "{fired}");
    let got = eventually(WAIT, "the firing webhook", || {
        let got = hook.got(ID, "firing");
        if got.is_empty() { Err(format!("bodies: {:?}", hook.bodies())) } else { Ok(got) }
    });
    assert_eq!(got[0]["rule"], "deploy_failed");
    assert_eq!(got[0]["subject"], "app/shop");
    assert_eq!(got[0]["controller"], "controller/c1");
    assert!(hook.requests.load(std::sync::atomic::Ordering::SeqCst) >= 2, "a 500, then the retry");

    // Ack: the operator's identity in the alert, the audit trail and the webhook.
    ctl_ok(&url, &["alert", "ack", ID]);
    let acked = wait_alert_state(&url, "acknowledged");
    let by = acked["acked_by"].as_str().expect("acked_by").to_string();
    let audit = ctl_json_lines(&url, &["audit", "--since", "1h"]);
    let record = audit.iter().find(|l| l["verb"] == "alert.ack").unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(record["operator"]["user"], by.as_str(), "{record}");
    let table = ctl_ok(&url, &["alerts"]);
    assert!(table.contains("acknowledged") && table.contains(&by), "{table}");
    eventually(WAIT, "the acknowledged webhook", || {
        if hook.got(ID, "acknowledged").is_empty() { Err(format!("{:?}", hook.bodies())) } else { Ok(()) }
    });

    // Refusals, each with its reason.
    for (args, says) in [
        (vec!["alert", "ack", ID], "already acknowledged"),
        (vec!["alert", "ack", "crash_loop:instance/nope"], "no alert"),
        (vec!["silence", "shop", "10m"], "bad alert subject"),
        (vec!["silence", "app/shop", "8d"], "at most 7 days"),
        (vec!["silence", "app/nope", "10m"], "nothing to silence"),
        (vec!["silence", "--lift", "app/shop"], "not silenced"),
    ] {
        let out = ctl(&url, &args);
        assert!(!out.ok() && out.stderr.contains(says), "{args:?} must say {says:?}: {out}");
    }

    // The controller restarts: the alert is loaded back as it was.
    plane.restart_controller("c1");
    plane.wait_hosts_up();
    let back = alert_of(&url, ID).expect("the alert after the restart");
    assert_eq!(
        (back["state"].clone(), back["since"].clone()),
        (acked["state"].clone(), acked["since"].clone())
    );

    // Silenced, it resolves without a webhook: the next unsilenced transition (it fires
    // again after the silence is lifted) arrives with no `resolved` before it.
    ctl_ok(&url, &["silence", "app/shop", "10m", "--reason", "fixing it"]);
    let silences = ctl_json(&url, &["alerts"])["silences"].clone();
    assert_eq!(silences[0]["reason"], "fixing it", "{silences}");
    plane.deploy("shop", "3.0.0", 1);
    let resolved = wait_alert_state(&url, "resolved");
    ctl_ok(&url, &["silence", "--lift", "app/shop"]);
    failing_deploy(&url, "4.0.0");
    let again = eventually(WAIT, "the second firing webhook", || {
        let got = hook.got(ID, "firing");
        if got.len() >= 2 { Ok(got) } else { Err(format!("{:?}", hook.bodies())) }
    });
    assert!(again[1]["since"].as_u64() > resolved["since"].as_u64(), "a new since: {again:?}");
    assert!(hook.got(ID, "resolved").is_empty(), "silenced: no resolved webhook: {:?}", hook.bodies());
}
