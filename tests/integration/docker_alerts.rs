//! A crash loop's alert on a real nats-server + dockerd (issue 20): an instance whose
//! container keeps exiting fires `crash_loop` on its instance, and a webhook receiver on
//! 127.0.0.1 gets it (its first answer is a 500: this arrives on a retry); the app scaled
//! to 0 ends the loop, the alert resolves, the receiver gets that too and `ctl alerts
//! --all --json` shows it resolved.

use std::time::Duration;

use crate::docker_support::{docker, site};
use crate::nats_support::{alert_of, ctl, ctl_json, ctl_ok, eventually};
use crate::stack_support::{Stack, StackConfig, site_cmd_deploy_args};
use crate::webhook_support::Receiver;

/// The first run serves until the test drops /tmp/crash; every later run (the restart keeps
/// the container's /tmp) serves a second, then exits 3: a crash loop.
const RUN_SH: &str = r#"n=$(cat /tmp/runs 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > /tmp/runs
httpd -p 8080 -h /app
if [ "$n" -ge 2 ]; then sleep 1; echo "run-$n exits 3"; exit 3; fi
while true; do
  if [ -e /tmp/crash ]; then echo "run-$n exits 3"; exit 3; fi
  sleep 0.2
done
"#;

const SLOW: Duration = Duration::from_secs(120);

#[test]
fn docker_a_crash_loop_fires_its_alert_and_resolves_when_the_loop_stops() {
    let name = "docker_a_crash_loop_fires_its_alert_and_resolves_when_the_loop_stops";
    let hook = Receiver::start(1);
    let url_flag: &'static str = Box::leak(hook.url.clone().into_boxed_str());
    let config = StackConfig {
        liveness: vec![
            "--stale-after",
            "5",
            "--lost-after",
            "100",
            "--webhook",
            url_flag,
            "--alert-crash-loop",
            "2/60s",
            "--alert-resolve-after",
            "1s",
        ],
        ..StackConfig::default()
    };
    let Some(stack) = Stack::start_config(name, config) else { return };
    let url = stack.url();
    let artifact = stack.nats.dir().join("looper.tar.gz");
    std::fs::write(&artifact, site(&[("index.html", "<h1>looper</h1>"), ("run.sh", RUN_SH)]))
        .expect("artifact");
    let image = crate::docker_support::image();
    let args = site_cmd_deploy_args(&image, "sh /app/run.sh", "1.0.0", "1", &artifact, &[]);
    let out = ctl(&url, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.ok(), "deploy: {out}");
    let instances = ctl_json(&url, &["instances"]);
    let instance = instances[0]["id"].as_str().expect("the instance").to_string();
    let container = instances[0]["container_id"].as_str().expect("its container").to_string();
    assert!(alert_of(&url, &format!("crash_loop:instance/{instance}")).is_none(), "no loop yet");

    docker(&["exec", &container, "touch", "/tmp/crash"]);
    let id = format!("crash_loop:instance/{instance}");
    let fired = eventually(SLOW, "the crash_loop webhook", || {
        let got = hook.got(&id, "firing");
        got.first().cloned().ok_or_else(|| format!("bodies: {:?}", hook.bodies()))
    });
    assert_eq!(fired["rule"], "crash_loop", "{fired}");
    assert_eq!(fired["subject"], format!("instance/{instance}"), "{fired}");
    assert!(fired["summary"].as_str().is_some_and(|s| s.contains("exit 3")), "{fired}");
    let alert = alert_of(&url, &id).expect("the alert in the state");
    assert!(alert["causes"].as_array().is_some_and(|c| c.len() >= 2), "the crashes' events: {alert}");

    // The loop stops: no instance left to crash.
    ctl_ok(&url, &["scale", "site", "0", "--wait"]);
    let resolved = eventually(SLOW, "the resolved webhook", || {
        let got = hook.got(&id, "resolved");
        got.first().cloned().ok_or_else(|| format!("bodies: {:?}", hook.bodies()))
    });
    assert_eq!(resolved["since"], fired["since"], "{resolved}");
    let shown = alert_of(&url, &id).expect("kept once resolved");
    assert_eq!(shown["state"], "resolved", "{shown}");
    assert!(shown["resolved_at"].as_u64().is_some(), "{shown}");
}
