//! Env vars and secrets (issue 19) end to end on real dockerd and nats-server, roles on:
//! `ctl deploy --env`, `ctl env set|unset` and `ctl secret set` (from a file and from
//! stdin) each roll the app out, `docker inspect` shows the containers' environment, and
//! a secret's value is nowhere but there: not in an event, the audit trail, a snapshot,
//! any `ctl --json` output, nor any process's log.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::docker_support::inspect;
use quarterdeck::bus;
use quarterdeck::protocol::subjects::CtlVerb;
use quarterdeck::protocol::{Accepted, DeployRequest, Envelope, RunPatch, SecretRef};

use crate::nats_support::{
    BIN, CtlOut, Mode, WAIT, block_on, connect, ctl, ctl_json, ctl_json_lines, eventually, operator_seed,
    snapshot,
};
use crate::stack_support::{Stack, StackConfig};

/// `ctl ARGS` with `input` on its stdin, as the harness's operator (bounded by the
/// `--wait-timeout` and `--timeout` the caller gives).
fn ctl_stdin(url: &str, args: &[&str], input: &str) -> CtlOut {
    let mut cmd = Command::new(BIN);
    if let Some(seed) = operator_seed(url) {
        cmd.env("NATS_NKEY", seed);
    }
    let mut child = cmd
        .arg("ctl")
        .args(args)
        .env("NATS_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctl");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("ctl output");
    CtlOut {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The environment of every running container of the stack, one list per container.
fn envs(stack: &Stack) -> Vec<Vec<String>> {
    stack
        .containers(&[])
        .iter()
        .map(|c| serde_json::from_str::<Vec<String>>(&inspect(c, "{{json .Config.Env}}")).unwrap_or_default())
        .collect()
}

fn app(url: &str) -> Value {
    let snap = snapshot(url);
    snap["apps"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "site").cloned()).unwrap_or_default()
}

#[test]
fn docker_secrets_env_and_secrets_reach_the_containers_and_the_value_nothing_else() {
    let test = "docker_secrets_env_and_secrets_reach_the_containers_and_the_value_nothing_else";
    let config = StackConfig { mode: Mode::Roles, ..StackConfig::default() };
    let Some(stack) = Stack::start_config(test, config) else { return };
    let url = stack.url();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let first = format!("first-secret-{nanos}");
    let second = format!("second-secret-{nanos}");
    let mut printed = String::new();

    // Deploy with an env variable: every container has it.
    let out = stack.deploy("1", "2", "hello", &["--env", "GREETING=hello world"]);
    assert!(out.ok(), "{out}");
    let all = envs(&stack);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|e| e.contains(&"GREETING=hello world".to_string())), "{all:?}");

    // A secret from a file, then a new value from stdin: each rolls out; the containers
    // run the newest value, and the spec names its version and sha8.
    let file = stack.nats.dir().join("db-pass");
    std::fs::write(&file, format!("{first}\n")).expect("secret file");
    let from = format!("@{}", file.display());
    let out = ctl(&url, &["secret", "set", "site", "DB_PASS", &from, "--wait", "--json"]);
    assert!(out.ok(), "{out}");
    printed.push_str(&out.stdout);
    let before: Vec<String> = stack.containers(&[]);
    let out = ctl_stdin(
        &url,
        &["secret", "set", "site", "DB_PASS", "--wait", "--wait-timeout", "100s", "--json"],
        &second,
    );
    assert!(out.ok(), "{out}");
    printed.push_str(&out.stdout);
    let after = stack.containers(&[]);
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|c| !before.contains(c)), "every container was replaced: {before:?} {after:?}");
    let all = envs(&stack);
    for e in &all {
        assert!(e.contains(&format!("DB_PASS={second}")), "{e:?}");
        assert!(e.contains(&"GREETING=hello world".to_string()), "{e:?}");
    }
    let r = &app(&url)["run"]["secrets"]["DB_PASS"];
    assert_eq!(r["version"], 2, "{r}");
    let sha = quarterdeck::repository::sha256_hex(second.as_bytes());
    assert_eq!(r["sha8"], &sha[..8], "{r}");

    // env set and unset roll out too.
    let out = ctl(&url, &["env", "set", "site", "MODE=blue", "--wait"]);
    assert!(out.ok(), "{out}");
    let out = ctl(&url, &["env", "unset", "site", "GREETING", "--wait"]);
    assert!(out.ok(), "{out}");
    let all = envs(&stack);
    assert_eq!(all.len(), 2);
    for e in &all {
        assert!(
            e.contains(&"MODE=blue".to_string()) && !e.iter().any(|v| v.starts_with("GREETING=")),
            "{e:?}"
        );
        assert!(e.contains(&format!("DB_PASS={second}")), "the secret stays: {e:?}");
    }
    let listed = ctl_json(&url, &["env", "list", "site"]);
    assert_eq!(listed["env"]["MODE"], "blue", "{listed}");
    assert_eq!(listed["secrets"]["DB_PASS"]["version"], 2, "{listed}");
    printed.push_str(&listed.to_string());

    // The value is in the containers only.
    let events = ctl_json_lines(&url, &["events", "--since", "1h"]);
    let audit = ctl_json_lines(&url, &["audit", "--since", "1h"]);
    let snap = ctl_json(&url, &["snapshot"]);
    let sets: Vec<&Value> = audit.iter().filter(|r| r["verb"] == "secret.set").collect();
    assert_eq!(sets.len(), 2, "{audit:#?}");
    assert!(sets.iter().all(|r| r["request"]["value"].as_str().is_some_and(|v| v.starts_with("[redacted"))));
    let places = [
        ("the events", serde_json::to_string(&events).unwrap_or_default()),
        ("the audit trail", serde_json::to_string(&audit).unwrap_or_default()),
        ("the snapshot", snap.to_string()),
        ("ctl --json output", printed),
        ("the controller's log", stack._controller.stderr_text()),
        ("the agent's log", stack.agent.stderr_text()),
        ("the router's log", stack.router.as_ref().map(|r| r.stderr_text()).unwrap_or_default()),
        ("the server's log", stack.nats.log()),
    ];
    for (place, text) in &places {
        for value in [&first, &second] {
            assert!(!text.contains(value.as_str()), "a secret's value is in {place}");
        }
    }
    assert!(
        !places[0].1.is_empty() && !places[4].1.is_empty() && !places[5].1.is_empty(),
        "nothing was read"
    );
    stack.nats.assert_no_violations();

    // A reference whose sha does not match the stored value (as a forged or stale deploy
    // would name it): the agent refuses the instance, naming the secret and version, the
    // deploy fails, the app's spec goes back and the old containers keep serving.
    let running = stack.containers(&[]);
    let forged = SecretRef { version: 2, sha8: "00000000".into() };
    let run = RunPatch { secrets: Some([("DB_PASS".to_string(), forged)].into()), ..RunPatch::default() };
    let req = DeployRequest {
        app: "site".into(),
        version: "1".into(),
        instances: 2,
        run: Some(run),
        ..DeployRequest::default()
    };
    let op = block_on(async {
        let bus = connect(&url, "test/forged-secret").await;
        let sent: Accepted =
            bus::command(&bus, CtlVerb::Deploy, &Envelope::new("test", req), WAIT).await.expect("accepted");
        sent.operation_id.expect("an operation")
    });
    let error = eventually(WAIT * 4, "the deploy with a wrong sha8 failed", || {
        let o = snapshot(&url)["operations"]
            .as_array()
            .and_then(|ops| ops.iter().find(|o| o["id"] == op.as_str()).cloned());
        match o {
            Some(o) if o["state"] == "failed" => Ok(o["error"].as_str().unwrap_or_default().to_string()),
            other => Err(format!("{other:?}")),
        }
    });
    assert!(
        error.contains("secret DB_PASS v2") && error.contains("has sha8") && error.contains("not 00000000"),
        "{error}"
    );
    assert!(!error.contains(&second), "{error}");
    assert_eq!(app(&url)["run"]["secrets"]["DB_PASS"]["sha8"], &sha[..8], "the spec went back");
    assert_eq!(stack.containers(&[]), running, "the old containers kept serving");
}
