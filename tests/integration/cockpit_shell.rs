//! A shell in an instance from the cockpit (`s`), in a real terminal (tmux) as an on-call
//! engineer would use it, on nats-server + dockerd + a controller + a docker agent with the
//! app `site` deployed: the shell runs commands, `exit` returns to the cockpit redrawn and
//! live, a container killed under the shell returns with a message, and the terminal's
//! modes (`stty -a`) after the cockpit exits are those it had before it started. Traffic
//! goes to 127.0.0.1 only; the `Stack` removes its containers.

use std::path::Path;
use std::time::Duration;

use crate::cockpit_support::Tmux;
use crate::docker_support::docker;
use crate::nats_support::{BIN, eventually, instances_of, snapshot, str_of, unique_dir};
use crate::stack_support::Stack;

/// An interactive shell with a prompt that is easy to find.
const SHELL: &str = "env -u NO_COLOR -u COLORTERM PS1='qd$ ' bash --norc --noprofile -i";

/// The id and container of a running instance of `site` at `version`.
fn running_instance(stack: &Stack, version: &str) -> (String, String) {
    eventually(Duration::from_secs(60), "a running instance of site", || {
        let snap = snapshot(&stack.url());
        instances_of(&snap, "site")
            .into_iter()
            .find(|i| i["state"] == "running" && i["version"] == version)
            .map(|i| (str_of(i, "id").to_string(), str_of(i, "container_id").to_string()))
            .ok_or_else(|| format!("none yet in {snap}"))
    })
}

/// Starts the cockpit on the stack from the pane's shell, with `stty -a` written to
/// `before` first and to `after` once it exits, then its exit status on the screen.
fn start_cockpit(t: &Tmux, stack: &Stack, before: &Path, after: &Path, run: &str) {
    t.type_text(&format!(
        "stty -a > {}; {BIN} --nats {}; echo \"{run}=$?\"; stty -a > {}",
        before.display(),
        stack.url(),
        after.display()
    ));
    t.keys(&["Enter"]);
}

/// Waits for the cockpit's exit status line and compares the terminal's modes after it
/// with those before it started.
fn assert_sane_after(t: &Tmux, before: &Path, after: &Path, run: &str, status: u8) {
    t.wait_for(&[&format!("{run}={status}")], "the cockpit's exit status");
    let modes = eventually(Duration::from_secs(30), "stty -a after the cockpit", || {
        let text = std::fs::read_to_string(after).map_err(|e| e.to_string())?;
        if text.contains("speed") { Ok(text) } else { Err(text) }
    });
    let before = std::fs::read_to_string(before).expect("stty -a before the cockpit");
    assert_eq!(modes, before, "{run}: the terminal's modes after the cockpit are not those before it");
}

/// `s`, then waits until the shell has the terminal (the cockpit's screen is gone): keys
/// typed before that are the cockpit's, as a user who waits for the prompt knows.
fn open_shell(t: &Tmux) {
    t.keys(&["s"]);
    eventually(Duration::from_secs(60), "the shell takes the terminal", || {
        let screen = t.screen();
        if screen.contains("2 Instances") { Err(screen) } else { Ok(()) }
    });
}

/// The Instances panel with the instance `id` selected (the filter leaves only it).
/// The shell that took the terminal runs commands: `echo ready-$((40+2))` prints ready-42.
fn shell_answers(t: &Tmux, what: &str) {
    t.type_text("echo ready-$((40+2))");
    t.keys(&["Enter"]);
    eventually(Duration::from_secs(60), what, || {
        let screen = t.screen();
        if screen.lines().any(|l| l.trim() == "ready-42") { Ok(()) } else { Err(screen) }
    });
}

fn select_instance(t: &Tmux, id: &str) {
    t.keys(&["2"]);
    t.wait_for(&["VERSION", "ENDPOINT"], "the Instances panel");
    t.keys(&["/"]);
    t.type_text(id);
    t.keys(&["Enter"]);
    t.wait_for(&[id], "the instance's row");
}

#[test]
fn cockpit_shell_runs_in_the_instance_and_returns_live_or_with_the_containers_death() {
    let name = "cockpit_shell_runs_in_the_instance_and_returns_live_or_with_the_containers_death";
    let Some(stack) = Stack::start(name) else { return };
    let out = stack.deploy("1", "1", "hello from the artifact", &[]);
    assert!(out.ok(), "{out}");
    let (id, _) = running_instance(&stack, "1");
    let dir = unique_dir(name);
    let Some(t) = Tmux::start("shell", SHELL) else { return };
    t.wait_for(&["qd$"], "the shell's prompt");

    // `s` gives a shell in the instance; it computes; `exit` comes back.
    let (before, after) = (dir.join("before-1"), dir.join("after-1"));
    start_cockpit(&t, &stack, &before, &after, "run1");
    t.wait_for(&["1 Hosts", "2 Instances"], "the cockpit's first frame");
    select_instance(&t, &id);
    open_shell(&t);
    t.type_text("echo $((6*7))");
    t.keys(&["Enter"]);
    let screen = eventually(Duration::from_secs(60), "the shell's answer", || {
        let screen = t.screen();
        if screen.lines().any(|l| l.trim() == "42") { Ok(screen) } else { Err(screen) }
    });
    assert!(!screen.contains("2 Instances"), "the shell has the whole terminal:\n{screen}");
    t.type_text("exit");
    t.keys(&["Enter"]);
    // Back as it was: the panel, its filter and the row, and why the shell ended.
    let back = t.wait_for(
        &["1 Hosts", "2 Instances", "ENDPOINT", &id, &format!("shell in {id} ended")],
        "exit returns to the cockpit, drawn whole",
    );
    assert!(!back.contains("qd$"), "the cockpit's screen is back:\n{back}");

    // Live: a deploy after the return shows its new version's instance.
    let out = stack.deploy("2", "1", "version two", &[]);
    assert!(out.ok(), "{out}");
    let (id2, container2) = running_instance(&stack, "2");
    t.keys(&["Escape"]);
    t.wait_for(&[&id2], "the new instance shows in the cockpit that came back");
    t.keys(&["q"]);
    assert_sane_after(&t, &before, &after, "run1", 0);

    // A container killed under the shell: back to the cockpit, saying so.
    let (before, after) = (dir.join("before-2"), dir.join("after-2"));
    start_cockpit(&t, &stack, &before, &after, "run2");
    t.wait_for(&["1 Hosts", "2 Instances"], "the cockpit's first frame");
    select_instance(&t, &id2);
    open_shell(&t);
    shell_answers(&t, "the second shell runs");
    docker(&["kill", &container2]);
    let ended = format!("shell in {id2} ended");
    let back = t.wait_for(&["2 Instances", &ended], "the container's death returns to the cockpit");
    let said = back.lines().find(|l| l.contains(&ended)).unwrap_or_default();
    assert!(said.contains("ended: the container stopped"), "the message says why: {said}");
    t.keys(&["q"]);
    assert_sane_after(&t, &before, &after, "run2", 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cockpit_shell_ends_with_sighup_as_129_and_returns_when_its_agent_is_lost() {
    let name = "cockpit_shell_ends_with_sighup_as_129_and_returns_when_its_agent_is_lost";
    let Some(mut stack) = Stack::start(name) else { return };
    let out = stack.deploy("1", "1", "hello from the artifact", &[]);
    assert!(out.ok(), "{out}");
    let (id, _) = running_instance(&stack, "1");
    let dir = unique_dir(name);
    let Some(t) = Tmux::start("shell-lost", SHELL) else { return };
    t.wait_for(&["qd$"], "the shell's prompt");

    // SIGHUP while the shell has the terminal: status 129, the terminal given back.
    let (before, after) = (dir.join("before-hup"), dir.join("after-hup"));
    start_cockpit(&t, &stack, &before, &after, "hup");
    t.wait_for(&["1 Hosts", "2 Instances"], "the cockpit's first frame");
    let cockpit = t.shells_child();
    select_instance(&t, &id);
    open_shell(&t);
    shell_answers(&t, "the shell runs");
    let sent = std::process::Command::new("kill").args(["-HUP", &cockpit.to_string()]).status();
    assert!(sent.expect("kill runs").success());
    assert_sane_after(&t, &before, &after, "hup", 129);

    // The agent killed under the shell: its frames stop, and the cockpit comes back with
    // the reason instead of a hung screen.
    let (before, after) = (dir.join("before-lost"), dir.join("after-lost"));
    start_cockpit(&t, &stack, &before, &after, "lost");
    t.wait_for(&["1 Hosts", "2 Instances"], "the cockpit's first frame");
    select_instance(&t, &id);
    open_shell(&t);
    shell_answers(&t, "the shell runs");
    stack.agent.kill9();
    let ended = format!("shell in {id} ended");
    let back = t.wait_for(&["2 Instances", &ended], "a lost agent returns to the cockpit");
    let said = back.lines().find(|l| l.contains(&ended)).unwrap_or_default();
    assert!(said.contains("lost the agent"), "the message says why: {said}");
    t.keys(&["q"]);
    assert_sane_after(&t, &before, &after, "lost", 0);
    let _ = std::fs::remove_dir_all(&dir);
}
