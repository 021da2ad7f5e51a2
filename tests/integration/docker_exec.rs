//! `ctl exec` on real services: nats-server with roles (alice holds the exec grant, bob
//! none), a controller, a docker agent and the app `site` serving an artifact. Traffic goes
//! to 127.0.0.1 only; the `Stack` removes its containers.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::docker_support::docker;
use crate::nats_support::{
    BIN, CtlOut, Mode, Users, ctl, ctl_as, ctl_json_lines, eventually, instances_of, snapshot, str_of,
};
use crate::stack_support::{Stack, StackConfig};

/// The id and container of the app's one running instance.
fn the_instance(stack: &Stack) -> (String, String) {
    let snap = snapshot(&stack.url());
    let inst = instances_of(&snap, "site")
        .into_iter()
        .find(|i| i["state"] == "running")
        .expect("a running instance");
    (str_of(inst, "id").to_string(), str_of(inst, "container_id").to_string())
}

fn exec(stack: &Stack, args: &[&str]) -> CtlOut {
    ctl(&stack.url(), &[&["exec"], args].concat())
}

/// Whether `needle` is in the container's process list (`docker top`).
fn runs(container: &str, needle: &str) -> bool {
    docker(&["top", container, "-o", "pid,args"]).lines().any(|l| l.contains(needle))
}

#[test]
fn docker_exec_runs_a_command_and_ends_with_its_exit_code() {
    let name = "docker_exec_runs_a_command_and_ends_with_its_exit_code";
    let config = StackConfig { mode: Mode::Roles, ..StackConfig::default() };
    let Some(mut stack) = Stack::start_config(name, config) else { return };
    let out = stack.deploy("1", "1", "hello from the artifact", &[]);
    assert!(out.ok(), "{out}");
    let (id, container) = the_instance(&stack);

    // The artifact, as the container sees it where it is mounted.
    let out = exec(&stack, &[&id, "--", "cat", "/app/index.html"]);
    assert!(out.ok(), "{out}");
    assert_eq!(out.stdout, "hello from the artifact");

    // The command's exit code is ctl's, and stdout and stderr stay apart.
    let out = exec(&stack, &[&id, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert_eq!(out.stdout, "out\n", "{out}");
    assert!(out.stderr.starts_with("err\n"), "{out}");

    // Each session is in the audit trail, with its exit code and its recording, which
    // plays back to the same output.
    let url = stack.url();
    let audited = |command: &str| {
        eventually(Duration::from_secs(30), "the session's end in the audit trail", || {
            ctl_json_lines(&url, &["audit"])
                .into_iter()
                .find(|r| {
                    r["verb"] == "exec"
                        && r["request"]["command"] == command
                        && !r["request"]["ended_at"].is_null()
                })
                .ok_or_else(|| format!("no record of {command}"))
        })
    };
    let cat = audited("cat /app/index.html");
    assert_eq!(cat["by"], Users::OPERATOR_NAME, "{cat}");
    assert_eq!(cat["request"]["exit_code"], 0, "{cat}");
    assert_eq!(cat["request"]["instance"], id.as_str(), "{cat}");
    assert!(cat["request"]["duration_ms"].as_u64().is_some(), "{cat}");
    let three = audited("sh -c 'echo out; echo err >&2; exit 3'");
    assert_eq!(three["request"]["exit_code"], 3, "{three}");
    assert!(three["result"].as_str().unwrap_or("").contains("exited 3 after"), "{three}");
    let recording = cat["request"]["recording"].as_str().expect("a recording").to_string();
    let replay = ctl(&url, &["exec-replay", &recording, "--no-wait"]);
    assert!(replay.ok(), "{replay}");
    assert_eq!(replay.stdout, "hello from the artifact", "the recording replays to the same output");

    // An unknown instance, said before anything is asked of an agent.
    let out = exec(&stack, &["site-9-nope", "--", "true"]);
    assert!(!out.ok() && out.stderr.contains("no instance \"site-9-nope\""), "{out}");

    // The server refuses bob, who lacks the grant; the same command as alice works.
    let out =
        ctl_as(&stack.nats, &format!("operator/{}", Users::UNGRANTED_OPERATOR), &["exec", &id, "--", "true"]);
    assert!(!out.ok(), "{out}");
    assert!(
        out.stderr.contains("bob may not exec: ask for the exec grant (quarterdeck auth grant bob exec)"),
        "{out}"
    );
    assert!(exec(&stack, &[&id, "--", "true"]).ok(), "alice may");
    // The server refused bob, and nothing else: the agent's session reports and recordings
    // and alice's replay each have the permission they use.
    let refused = stack.nats.violations();
    assert!(refused.iter().any(|v| v.contains("qd.v1.exec.bob.")), "{refused:?}");
    assert!(refused.iter().all(|v| v.contains("bob")), "{refused:?}");
    assert!(!runs(&container, "sleep 7777"), "no leftover from another run");

    // A viewer killed with -9 sends no stop: its keep-alives stop, and the agent kills the
    // process within the keep-alive timeout (10 s).
    let seed = stack.nats.seed(&format!("operator/{}", Users::OPERATOR_NAME));
    let mut cmd = Command::new(BIN);
    if let Some(seed) = seed {
        cmd.env("NATS_NKEY", seed);
    }
    let mut viewer = cmd
        .args(["ctl", "exec", &id, "--", "sleep", "7777"])
        .env("NATS_URL", stack.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctl exec");
    eventually(Duration::from_secs(30), "the exec runs in the container", || {
        if runs(&container, "sleep 7777") { Ok(()) } else { Err(docker(&["top", &container])) }
    });
    viewer.kill().expect("kill -9 the viewer");
    let _ = viewer.wait();
    eventually(Duration::from_secs(40), "the agent killed the dead viewer's exec", || {
        if runs(&container, "sleep 7777") { Err(docker(&["top", &container])) } else { Ok(()) }
    });

    // The agent dies under a session: the viewer hears nothing from it for 10 s, says so
    // and ends, never hangs.
    let url = stack.url();
    let seed = stack.nats.seed(&format!("operator/{}", Users::OPERATOR_NAME));
    let lost = std::thread::spawn(move || {
        crate::nats_support::ctl_with_seed(&url, seed, &["exec", &id, "--", "sleep", "7778"])
    });
    eventually(Duration::from_secs(30), "the second exec runs", || {
        if runs(&container, "sleep 7778") { Ok(()) } else { Err(docker(&["top", &container])) }
    });
    stack.agent.kill9();
    let out = lost.join().expect("the viewer's thread");
    assert_eq!(out.status.code(), Some(255), "{out}");
    assert!(out.stderr.contains("lost the agent: nothing from it for 10 s"), "{out}");
}

/// Read-only refuses before anything is sent: with no server at all, the refusal is the
/// answer, not a connection error.
#[test]
fn exec_in_read_only_mode_is_refused_before_anything_is_sent() {
    let out = crate::nats_support::run_captured(
        Command::new(BIN)
            .args(["ctl", "exec", "--read-only", "site-0-abcd", "--", "true"])
            .env("NATS_URL", "nats://127.0.0.1:9"),
        Duration::from_secs(60),
    );
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("read-only: exec in site-0-abcd refused; nothing was sent"), "{out}");
    assert!(!out.stderr.contains("cannot connect"), "{out}");
}

/// `ctl exec` on a real terminal (tmux): a shell, window resizes reach it, `exit` gives
/// the terminal back as it was; a container killed under the shell ends the session with a
/// message and the terminal as it was.
#[test]
fn docker_exec_on_a_terminal_is_a_shell_and_gives_the_terminal_back() {
    let name = "docker_exec_on_a_terminal_is_a_shell_and_gives_the_terminal_back";
    let Some(stack) = Stack::start_config(name, StackConfig::default()) else { return };
    let out = stack.deploy("1", "1", "tty", &[]);
    assert!(out.ok(), "{out}");
    let (id, container) = the_instance(&stack);
    let shell = format!("env NATS_URL={} PS1='$ ' bash --norc --noprofile", stack.url());
    let Some(tmux) = crate::cockpit_support::Tmux::start_sized(name, &shell, 100, 30) else { return };
    let dir = stack.nats.dir().display().to_string();
    // Markers are computed, so the typed command line never shows them.
    tmux.type_text(&format!(
        "stty -g > {dir}/before; {BIN} ctl exec {id}; echo rc=$?; stty -g > {dir}/after; cmp -s {dir}/before {dir}/after && echo SANE-$((1+1))"
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["/ #"], "the container's shell prompt");
    tmux.type_text("echo X$((6*7))X; stty size");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["X42X", "30 100"], "the shell runs, at the terminal's size");
    tmux.run(&["resize-window", "-t", "t", "-x", "90", "-y", "25"]);
    eventually(Duration::from_secs(20), "the new size reaches the shell", || {
        tmux.type_text("stty size");
        tmux.keys(&["Enter"]);
        std::thread::sleep(Duration::from_millis(500));
        let screen = tmux.screen();
        if screen.contains("25 90") { Ok(()) } else { Err(screen) }
    });
    tmux.type_text("exit");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["rc=0", "SANE-2"], "exit gives the terminal back as it was");

    tmux.type_text("clear");
    tmux.keys(&["Enter"]);
    eventually(Duration::from_secs(20), "the screen cleared", || {
        let screen = tmux.screen();
        if screen.contains("/ #") { Err(screen) } else { Ok(()) }
    });
    tmux.type_text(&format!(
        "{BIN} ctl exec {id}; echo rc=$?; stty -g > {dir}/after; diff {dir}/before {dir}/after && echo OK-$((2+2))"
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["/ #"], "the container's shell prompt again");
    docker(&["kill", &container]);
    let screen = tmux.wait_for(&["rc=255", "OK-4"], "the container's death gives the terminal back");
    assert!(screen.contains("the container died under the session"), "{screen}");
}
