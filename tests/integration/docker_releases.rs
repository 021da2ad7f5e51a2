//! Issue 19, releases: every deploy makes a numbered release; `ctl diff` names exactly the
//! fields that changed; `ctl rollback` goes back to any kept release as a rolling deploy of
//! its whole spec (image, artifact, command, count), checked on the running containers;
//! bad input is refused by name; the releases survive a controller killed with -9 right
//! after it accepted a rollback. On real nats-server and dockerd.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::docker_support::inspect;
use crate::nats_support::{CtlOut, Mode, Proc, WAIT, ctl, ctl_as, ctl_json, eventually, snapshot};
use crate::stack_support::{Stack, StackConfig, get, site_cmd_deploy_args};

/// The test image under two names: the same bytes, but the spec (and each container's
/// `Config.Image`) says which one a release runs.
fn image_a() -> String {
    std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into())
}

fn image_b() -> String {
    format!("{}:latest", image_a().split(':').next().unwrap_or_default())
}

const CMD_1: &str = "httpd -f -p 8080 -h /app";
const CMD_3: &str = "httpd -f -v -p 8080 -h /app";

/// Release 1's env and release 3's: one variable changes, one is new.
const ENV_1: &[&str] = &["GREETING=one"];
const ENV_3: &[&str] = &["GREETING=three", "EXTRA=3"];

/// `ctl deploy --wait` of `site`: `version`, `instances`, `image`, an artifact serving
/// `body`, `cmd` and `env`.
fn deploy(
    stack: &Stack,
    version: &str,
    instances: &str,
    image: &str,
    body: &str,
    cmd: &str,
    env: &[&str],
) -> CtlOut {
    let artifact = stack.artifact(&format!("site-{version}-{}", body.len()), body);
    let extra: Vec<&str> = env.iter().flat_map(|kv| ["--env", kv]).collect();
    let args = site_cmd_deploy_args(image, cmd, version, instances, &artifact, &extra);
    ctl(&stack.url(), &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn releases(url: &str) -> Value {
    ctl_json(url, &["releases", "site"])
}

fn numbers(list: &Value) -> Vec<u64> {
    list["releases"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["number"].as_u64()).collect())
        .unwrap_or_default()
}

/// The running instances of `site`: (container id, endpoint).
fn running(url: &str) -> Vec<(String, String)> {
    snapshot(url)["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|i| i["app"] == "site" && i["state"] == "running")
        .map(|i| {
            (
                i["container_id"].as_str().unwrap_or_default().to_string(),
                i["endpoint"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn body_at(endpoint: &str) -> Result<String, String> {
    let port = endpoint
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| format!("not a local endpoint: {endpoint}"))?;
    let (status, _, body) = get(port, "site.test")?;
    if status == 200 { Ok(body.trim().to_string()) } else { Err(format!("status {status}: {body}")) }
}

fn refused(out: &CtlOut, words: &str) {
    assert!(!out.ok(), "should be refused: {out}");
    assert!(out.stderr.contains(words), "the refusal should say {words:?}: {out}");
}

#[test]
fn docker_rollback_restores_an_earlier_release_and_diff_names_the_changes() {
    let name = "docker_rollback_restores_an_earlier_release_and_diff_names_the_changes";
    let config = StackConfig { mode: Mode::Roles, ..StackConfig::default() };
    let Some(mut stack) = Stack::start_config(name, config) else { return };
    let url = stack.url();

    // r1, r2, r3: image, artifact, command and count change along the way.
    let out = deploy(&stack, "1", "2", &image_a(), "hello r1", CMD_1, ENV_1);
    assert!(out.ok(), "{out}");
    let out = deploy(&stack, "2", "1", &image_b(), "hello r2", CMD_1, ENV_1);
    assert!(out.ok(), "{out}");
    let out = deploy(&stack, "3", "1", &image_b(), "hello r3", CMD_3, ENV_3);
    assert!(out.ok(), "{out}");
    let list = releases(&url);
    assert_eq!(numbers(&list), vec![1, 2, 3], "{list:#}");
    assert_eq!(list["current"], 3);
    let r = |n: usize| list["releases"][n - 1].clone();
    assert_eq!(r(1)["who"], "alice", "who: the operator the server checked");
    assert_eq!(r(1)["cause"]["kind"], "deploy");

    // The diff names exactly what changed from 1 to 3 (an artifact's size only if the
    // archives' sizes differ).
    let diff = ctl_json(&url, &["diff", "site", "1", "3"]);
    let fields: BTreeSet<String> = diff["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{diff}"))
        .iter()
        .map(|c| c["field"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut want: BTreeSet<String> = [
        "image",
        "instances",
        "run.artifact.name",
        "run.artifact.sha256",
        "run.cmd",
        "run.env.EXTRA",
        "run.env.GREETING",
        "version",
    ]
    .map(String::from)
    .into();
    if r(1)["spec"]["run"]["artifact"]["size"] != r(3)["spec"]["run"]["artifact"]["size"] {
        want.insert("run.artifact.size".into());
    }
    assert_eq!(fields, want, "{diff:#}");
    let cmd = diff["changes"].as_array().and_then(|c| c.iter().find(|c| c["field"] == "run.cmd")).cloned();
    assert_eq!(
        cmd.map(|c| c["to"].clone()),
        Some(serde_json::json!(["httpd", "-f", "-v", "-p", "8080", "-h", "/app"]))
    );
    let table = ctl(&url, &["diff", "site", "1", "2"]);
    assert!(table.ok() && table.stdout.lines().any(|l| l.starts_with("image ")), "{table}");

    // A viewer reads the releases (with roles on, under its own name).
    let as_viewer = ctl_as(&stack.nats, "viewer/carol", &["releases", "site", "--json"]);
    assert!(as_viewer.ok(), "a viewer may read releases: {as_viewer}");
    let viewed: Value = serde_json::from_str(&as_viewer.stdout).unwrap_or(Value::Null);
    assert_eq!(numbers(&viewed), vec![1, 2, 3]);
    let viewer_rollback = ctl_as(&stack.nats, "viewer/carol", &["rollback", "site", "1"]);
    assert!(!viewer_rollback.ok(), "a viewer may not roll back: {viewer_rollback}");

    // Bad input, each refused by name, nothing started.
    refused(&ctl(&url, &["rollback", "site", "3"]), "already runs release 3");
    refused(&ctl(&url, &["rollback", "site", "99"]), "site has no release 99 (releases 1 to 3 are kept)");
    refused(&ctl(&url, &["rollback", "nosuch"]), "no app nosuch");
    refused(&ctl(&url, &["rollback", "Bad_Name"]), "app");
    refused(&ctl(&url, &["releases", "nosuch"]), "no app nosuch");
    refused(&ctl(&url, &["diff", "site", "1", "99"]), "site has no release 99");

    // Rollback to 1: a rolling deploy of release 1's image, artifact, command and count.
    let out = ctl(&url, &["rollback", "site", "1", "--wait"]);
    assert!(out.ok(), "{out}");
    eventually(WAIT, "two instances of release 1 running", || {
        let now = running(&url);
        if now.len() == 2 { Ok(()) } else { Err(format!("{now:?}")) }
    });
    for (container, endpoint) in running(&url) {
        assert_eq!(inspect(&container, "{{.Config.Image}}"), image_a(), "{container}");
        assert_eq!(inspect(&container, "{{json .Config.Cmd}}"), r#"["httpd","-f","-p","8080","-h","/app"]"#);
        assert_eq!(body_at(&endpoint).as_deref(), Ok("hello r1"), "{endpoint}");
        let env = inspect(&container, "{{json .Config.Env}}");
        assert!(env.contains("\"GREETING=one\"") && !env.contains("EXTRA="), "release 1's env: {env}");
    }
    let list = releases(&url);
    assert_eq!(numbers(&list), vec![1, 2, 3, 4]);
    assert_eq!(list["current"], 4);
    assert_eq!(list["releases"][3]["cause"], serde_json::json!({"kind": "rollback", "to": 1}));
    let table = ctl(&url, &["releases", "site"]);
    assert!(table.stdout.lines().any(|l| l.starts_with("4*") && l.contains("rollback to 1")), "{table}");
    // Now 1's spec runs: rolling back to it again is refused, and the default goes to 3.
    refused(&ctl(&url, &["rollback", "site", "1"]), "already runs release 1's spec");

    // An artifact no longer in the repository: version 2 uploaded again with other bytes.
    let out = deploy(&stack, "2", "1", &image_b(), "hello r2, again", CMD_1, ENV_1);
    assert!(out.ok(), "{out}");
    refused(
        &ctl(&url, &["rollback", "site", "2"]),
        "release 2's artifact site@2 is no longer in the repository",
    );

    // Durable once accepted: a controller killed with -9 right after it accepted a
    // rollback still has that rollback's release when it starts again.
    let out = ctl(&url, &["rollback", "site", "3"]);
    assert!(out.ok(), "{out}");
    stack._controller.kill9();
    let args = ["--route-stale-after", "2s", "--stale-after", "5", "--lost-after", "100"];
    stack._controller = Proc::controller(&stack.nats, "c1", &args);
    eventually(Duration::from_secs(60), "the restarted controller answers with release 6", || {
        let out = ctl(&url, &["releases", "site", "--json"]);
        let list: Value = serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {out}"))?;
        let last = list["releases"].as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
        if numbers(&list) == vec![1, 2, 3, 4, 5, 6]
            && last["cause"] == serde_json::json!({"kind": "rollback", "to": 3})
        {
            Ok(())
        } else {
            Err(format!("{list}"))
        }
    });
    // The viewer's rollback is the one refusal the server logged.
    let refused: Vec<String> =
        stack.nats.violations().into_iter().filter(|v| !v.contains("qd.v1.ctl.carol.rollback")).collect();
    assert!(refused.is_empty(), "the server refused:\n{}", refused.join("\n"));
    assert!(stack.nats.violation("Publish", "qd.v1.ctl.carol.rollback").is_ok());
}
