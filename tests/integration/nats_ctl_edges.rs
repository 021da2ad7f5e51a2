//! ctl's rough edges, as a user meets them: a `--nats` nobody listens on, and a container
//! command with quoted words. The first needs no server at all; the second runs on a real
//! plane (nats-server, controller, two sim agents) and skips, saying so, without one.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::nats_support::{
    BIN, CtlOut, PlaneConfig, WAIT, check, ctl, ctl_ok, eventually, list, plane_or_skip, run_captured,
    unique_dir,
};

/// A loopback port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// `quarterdeck ARGS`, with no terminal, killed if it has not ended within a minute (it
/// should end at once; the bound only keeps a regression from hanging the suite).
fn quarterdeck(args: &[&str]) -> CtlOut {
    run_captured(Command::new(BIN).args(args).env_remove("NATS_URL"), Duration::from_secs(60))
}

fn assert_refused(out: &CtlOut, url: &str) {
    assert!(!out.ok(), "a closed port is a failure: {out}");
    let want = format!("cannot connect to {url}: connection refused");
    assert!(out.stderr.contains(&want), "says {want:?}: {out}");
    assert!(!out.stderr.contains("reconnecting"), "no reconnecting for a server never reached: {out}");
}

#[test]
fn nats_unreachable_ctl_says_connection_refused() {
    let url = format!("nats://127.0.0.1:{}", closed_port());
    for args in [&["hosts"][..], &["deploy", "--app", "web", "--version", "1"], &["events", "--follow"]] {
        let mut all = vec!["ctl", "--nats", &url];
        all.extend_from_slice(args);
        assert_refused(&quarterdeck(&all), &url);
    }
}

#[test]
fn nats_unreachable_cockpit_says_connection_refused_before_the_screen() {
    let url = format!("nats://127.0.0.1:{}", closed_port());
    let out = quarterdeck(&["--nats", &url]);
    assert_refused(&out, &url);
    assert!(!out.stderr.contains("terminal"), "it ends before it takes the terminal: {out}");
}

/// A service waits for its server, as the services come up in any order, and says why
/// while it does, instead of the client library's `IO error` at every try.
#[test]
fn nats_unreachable_service_says_why_while_it_waits() {
    let url = format!("nats://127.0.0.1:{}", closed_port());
    let dir = unique_dir("nats_unreachable_service");
    let log = dir.join("agent.log");
    let mut agent = Command::new(BIN)
        .args(["agent", "--host-id", "h1", "--az", "az1", "--nats", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("agent");
    let want = format!("cannot connect to {url}: connection refused; waiting for the server");
    let said = eventually(WAIT, "the agent says why it waits", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        check(text.contains(&want), || text.clone())?;
        Ok(text)
    });
    let running = agent.try_wait().expect("try_wait").is_none();
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(running, "the agent waits for its server: {said}");
    assert!(!said.contains("IO error"), "{said}");
}

/// `--cmd "sh -c 'echo a b'"` reaches the controller as three words, and `--arg` as given.
#[test]
fn nats_deploy_cmd_keeps_quoted_words_together() {
    let plane = plane_or_skip!("nats_deploy_cmd_keeps_quoted_words_together", PlaneConfig::default());
    let url = plane.url();
    let deploy = |app: &str, cmd: &[&str]| {
        let mut args =
            vec!["deploy", "--app", app, "--version", "1", "--image", "tomcat:8.5", "--port", "8080"];
        args.extend_from_slice(cmd);
        ctl_ok(&url, &args);
    };
    let cmd_of = |app: &str| -> Value {
        let snap: Value = serde_json::from_str(&ctl_ok(&url, &["snapshot", "--json"])).expect("JSON");
        let found = list(&snap, "apps").iter().find(|a| a["name"] == app).cloned();
        found.unwrap_or_else(|| panic!("no app {app} in {snap}"))["run"]["cmd"].clone()
    };
    deploy("quoted", &["--cmd", "sh -c 'echo a b' \"c d\""]);
    assert_eq!(cmd_of("quoted"), serde_json::json!(["sh", "-c", "echo a b", "c d"]));
    deploy("words", &["--arg", "sh", "--arg", "-c", "--arg", "echo 'a b'"]);
    assert_eq!(cmd_of("words"), serde_json::json!(["sh", "-c", "echo 'a b'"]));
    let bad = ctl(&url, &["deploy", "--app", "bad", "--version", "1", "--cmd", "sh -c 'echo"]);
    assert!(!bad.ok() && bad.stderr.contains("unclosed single quote"), "{bad}");
}
