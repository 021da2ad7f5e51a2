//! Env vars and secrets (issue 19) on a real nats-server with sim agents: who may read the
//! `qd_secrets` bucket (the server decides), and bad names refused by ctl and by the
//! controller, each naming the key.

use std::time::Duration;

use bytes::Bytes;
use quarterdeck::bus::{self, Bus, RequestError};
use quarterdeck::protocol::subjects::CtlVerb;
use quarterdeck::protocol::{Accepted, DeployRequest, Envelope, ErrorCode, RunPatch, SecretSetRequest};

use crate::nats_support::{Mode, Plane, PlaneConfig, WAIT, connect, connect_as, ctl, eventually, snapshot};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

/// A value no test output could hold by chance.
fn secret_value(test: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("qd-{test}-{nanos}")
}

/// A secret set as the operator (from a file), then read attempts on the bucket by an
/// operator holding every grant and by a viewer: the server refuses each, and logs it.
#[test]
fn nats_secrets_operators_and_viewers_reading_the_bucket_are_refused_by_the_server() {
    let test = "nats_secrets_operators_and_viewers_reading_the_bucket_are_refused_by_the_server";
    let Some(plane) = Plane::start(test, PlaneConfig { mode: Mode::Roles, ..PlaneConfig::default() }) else {
        return;
    };
    plane.deploy("web", "1.0.0", 1);
    let value = secret_value("roles");
    let file = plane.nats.dir().join("db-pass");
    std::fs::write(&file, &value).expect("secret file");
    let from = format!("@{}", file.display());
    let set =
        ctl(&plane.url(), &["secret", "set", "web", "DB_PASS", &from, "--wait", "--wait-timeout", "60s"]);
    assert!(set.ok(), "{set}");
    let get = "$JS.API.DIRECT.GET.KV_qd_secrets.$KV.qd_secrets.web.DB_PASS.1";
    let info = "$JS.API.STREAM.INFO.KV_qd_secrets";
    let rt = rt();
    for who in ["operator/alice", "viewer/carol"] {
        rt.block_on(async {
            let bus = connect_as(&plane.nats, who).await;
            let js = bus.jetstream();
            let opened = tokio::time::timeout(Duration::from_secs(10), js.get_key_value("qd_secrets")).await;
            assert!(!matches!(opened, Ok(Ok(_))), "{who} opened the secrets bucket");
            let asked = bus.request(get, Bytes::new(), Duration::from_secs(2)).await;
            assert!(asked.is_err(), "{who}'s direct get was answered");
            let _ = bus.subscribe("$KV.qd_secrets.>").await;
            let _ = bus.flush().await;
        });
    }
    eventually(WAIT, "the server refused every read of the bucket", || {
        let refused = plane.nats.violations();
        for subject in [info, get] {
            let n = refused
                .iter()
                .filter(|l| l.contains(&format!("Publish Violation - Subject \"{subject}\"")))
                .count();
            if n < 2 {
                return Err(format!("{subject} refused {n} times, not for both users: {refused:#?}"));
            }
        }
        plane.nats.violation("Subscription", "$KV.qd_secrets.>")
    });
    // The ones who need it were never refused: the controller wrote it, nobody else.
    let refused = plane.nats.violations();
    assert!(
        refused.iter().all(|l| !l.contains("controller") && !l.contains("agent")),
        "the controller or an agent was refused: {refused:#?}"
    );
    let snap = snapshot(&plane.url());
    let app = snap["apps"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "web")).cloned();
    let r = app.map(|a| a["run"]["secrets"]["DB_PASS"].clone()).unwrap_or_default();
    assert_eq!(r["version"], 1, "{snap}");
    assert!(!snap.to_string().contains(&value), "the snapshot holds the value");
}

/// Bad env names and secret names are refused before anything is sent (ctl) and by the
/// controller (a request made without ctl), each error naming the key; a value on the
/// command line is refused without being echoed.
#[test]
fn nats_secrets_bad_env_and_secret_names_are_refused_naming_the_key() {
    let test = "nats_secrets_bad_env_and_secret_names_are_refused_naming_the_key";
    let Some(plane) = Plane::start(test, PlaneConfig::default()) else { return };
    let url = plane.url();
    plane.deploy("web", "1.0.0", 1);
    let rev = snapshot(&url)["revision"].as_u64();

    let mut args = crate::nats_support::deploy_args("web", "2.0.0", "1");
    args.extend(["--env", "1BAD=x"]);
    let out = ctl(&url, &args);
    assert!(!out.ok() && out.stderr.contains("\"1BAD\""), "{out}");
    let out = ctl(&url, &["env", "set", "web", "BAD-NAME=1"]);
    assert!(!out.ok() && out.stderr.contains("\"BAD-NAME\""), "{out}");
    let out = ctl(&url, &["env", "unset", "web", "NOT_THERE"]);
    assert!(!out.ok() && out.stderr.contains("no env variable \"NOT_THERE\""), "{out}");
    let out = ctl(&url, &["secret", "set", "web", "bad.name", "@/dev/null"]);
    assert!(!out.ok() && out.stderr.contains("\"bad.name\""), "{out}");
    let out = ctl(&url, &["secret", "set", "web", "DB_PASS", "hunter2-on-argv"]);
    assert!(!out.ok() && out.stderr.contains("never taken from the command line"), "{out}");
    assert!(!out.stderr.contains("hunter2-on-argv") && !out.stdout.contains("hunter2-on-argv"), "{out}");
    assert_eq!(snapshot(&url)["revision"].as_u64(), rev, "nothing was sent");

    rt().block_on(async {
        let bus = connect(&url, "test/bad-env").await;
        let run =
            RunPatch { env: Some([("BAD-NAME".to_string(), "x".to_string())].into()), ..RunPatch::default() };
        let req = DeployRequest {
            app: "web".into(),
            version: "1.0.0".into(),
            instances: 1,
            run: Some(run),
            ..DeployRequest::default()
        };
        let sent: Result<Accepted, _> =
            bus::command(&bus, CtlVerb::Deploy, &Envelope::new("test", req), Duration::from_secs(10)).await;
        match sent {
            Err(RequestError::Refused(w)) => {
                assert_eq!(w.code, ErrorCode::BadRequest);
                assert!(w.reason.contains("\"BAD-NAME\""), "{}", w.reason);
            }
            other => panic!("a bad env name was not refused: {other:?}"),
        }
        let secret = SecretSetRequest { app: "web".into(), name: "K".into(), value: "a\0b-hidden".into() };
        let sent: Result<Accepted, _> =
            bus::command(&bus, CtlVerb::SecretSet, &Envelope::new("test", secret), Duration::from_secs(10))
                .await;
        match sent {
            Err(RequestError::Refused(w)) => {
                assert!(
                    w.reason.contains("secret K's value") && !w.reason.contains("hidden"),
                    "{}",
                    w.reason
                );
            }
            other => panic!("a value with NUL was not refused: {other:?}"),
        }
    });
}

/// `ctl secret set` at a terminal (tmux): the value is typed at a hidden prompt, never
/// shown, Backspace edits it; Ctrl-C cancels with exit 130 and changes nothing; the
/// terminal echoes again after each.
#[test]
fn nats_secrets_typed_at_a_terminal_the_value_is_hidden_and_ctrl_c_cancels() {
    use crate::cockpit_support::{TMUX_WAIT, Tmux};
    use crate::nats_support::{BIN, operator_seed};
    let test = "nats_secrets_typed_at_a_terminal_the_value_is_hidden_and_ctrl_c_cancels";
    let Some(plane) = Plane::start(test, PlaneConfig::default()) else { return };
    let url = plane.url();
    plane.deploy("web", "1.0.0", 1);
    let login = match operator_seed(&url) {
        Some(seed) => format!("NATS_NKEY='{}'", seed.display()),
        None => String::new(),
    };
    let set = format!("env -u NATS_NKEY {login} NATS_URL='{url}' '{BIN}' ctl secret set web DB_PASS");
    let tty = "$(stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e -echo)";
    let script = plane.nats.dir().join("prompt.sh");
    std::fs::write(
        &script,
        format!(
            "{set} --wait --wait-timeout 60s\necho \"first=$? tty:{tty}\"\n{set}\necho \"second=$? tty:{tty}\"\nsleep 600\n"
        ),
    )
    .expect("script");
    let Some(t) = Tmux::start("secret-prompt", &format!("sh '{}'", script.display())) else { return };
    // tmux drops a line's trailing space.
    let prompt = "value for DB_PASS (hidden):";
    t.wait_for(&[prompt], "the hidden prompt");
    let value = secret_value("tty");
    t.type_text(&format!("{value}xy"));
    t.keys(&["BSpace", "BSpace", "Enter"]);
    let screen = t.wait_for(&["first=0 tty:echo"], "the secret set, the terminal echoing again");
    assert!(!screen.contains(&value) && !screen.contains("qd-tty"), "the value showed:\n{screen}");
    let snap = snapshot(&url);
    let app = snap["apps"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "web")).cloned();
    let r = app.map(|a| a["run"]["secrets"]["DB_PASS"].clone()).unwrap_or_default();
    let want = quarterdeck::secrets::secret_ref(value.as_bytes(), 1);
    assert_eq!((r["version"].as_u64(), r["sha8"].as_str()), (Some(1), Some(want.sha8.as_str())), "{snap}");

    // The second run: cancelled at its prompt.
    let deadline = std::time::Instant::now() + TMUX_WAIT;
    while t.screen().matches(prompt).count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second prompt:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    t.type_text("abandoned");
    t.keys(&["C-c"]);
    let screen = t.wait_for(&["second=130 tty:echo"], "the cancel, the terminal echoing again");
    assert!(screen.contains("cancelled: secret DB_PASS of web left as it was"), "{screen}");
    assert!(!screen.contains("abandoned"), "{screen}");
    let snap = snapshot(&url);
    let app = snap["apps"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "web")).cloned();
    assert_eq!(app.map(|a| a["run"]["secrets"]["DB_PASS"]["version"].clone()), Some(1.into()), "{snap}");
}
