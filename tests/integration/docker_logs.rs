//! `ctl logs APP|INSTANCE` on a real nats-server and dockerd: the lines of every instance
//! of an app merged in time order with their instance's word, `--json` naming the
//! instance, `--tail` and `--since` bounding what is printed, `--follow` printing new
//! lines, and an unknown app refused.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use quarterdeck::protocol::clock::{datetime, now_ms};
use serde_json::Value;

use crate::docker_support::docker;
use crate::nats_support::{BIN, WAIT, ctl, ctl_json, eventually, operator_seed};
use crate::stack_support::Stack;

/// The site's instances as (index, id), by index.
fn instances(url: &str) -> Vec<(u64, String)> {
    let all = ctl_json(url, &["instances"]);
    let mut of_site: Vec<(u64, String)> = all
        .as_array()
        .expect("a list")
        .iter()
        .filter(|i| i["app"] == "site")
        .map(|i| (i["index"].as_u64().expect("an index"), i["id"].as_str().expect("an id").to_string()))
        .collect();
    of_site.sort();
    of_site
}

/// A line on the container's own stdout, as its process would write it.
fn say(instance: &str, text: &str) {
    docker(&["exec", &format!("qd-{instance}"), "sh", "-c", &format!("echo '{text}' > /proc/1/fd/1")]);
}

/// Waits until the wall clock is past a whole second, and returns that second (ms).
fn next_second() -> u64 {
    let cut = (now_ms() / 1000 + 1) * 1000;
    while now_ms() <= cut {
        std::thread::sleep(Duration::from_millis(20));
    }
    cut
}

#[test]
fn docker_ctl_logs_merges_every_instance_of_an_app() {
    let Some(stack) = Stack::start("docker_ctl_logs_merges_every_instance_of_an_app") else { return };
    let out = stack.deploy("1.0.0", "3", "<h1>logs</h1>", &[]);
    assert!(out.ok(), "deploy: {out}");
    let url = stack.url();
    let insts = instances(&url);
    assert_eq!(insts.len(), 3, "{insts:?}");
    // Written in this order, across instances: the merge must give it back.
    let order = [0, 1, 2, 0, 2, 1];
    for (k, &i) in order.iter().enumerate() {
        say(&insts[i].1, &format!("seq-{k}-from-{}", insts[i].1));
    }
    let cut = next_second();
    let late: Vec<String> = insts.iter().map(|(_, id)| format!("late-from-{id}")).collect();
    for ((_, id), text) in insts.iter().zip(&late) {
        say(id, text);
    }

    // Text: every instance's lines, in time order, each with its instance's word.
    let out = ctl(&url, &["logs", "site"]);
    assert!(out.ok(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let mut last = None;
    for (k, &i) in order.iter().enumerate() {
        let (index, id) = &insts[i];
        let text = format!("seq-{k}-from-{id}");
        let pos = at(&text).unwrap_or_else(|| panic!("{text} missing: {out}"));
        assert!(
            lines[pos].contains(&format!(" #{index} {text}")),
            "the word before the text: {}",
            lines[pos]
        );
        assert!(last < Some(pos), "in time order: {text} at {pos}: {out}");
        last = Some(pos);
    }
    assert!(!out.stdout.contains('\x1b'), "no colour when stdout is no terminal: {out}");

    // --json: one object per line, naming the instance of each.
    let out = ctl(&url, &["logs", "site", "--json"]);
    assert!(out.ok(), "{out}");
    let objs: Vec<Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    for (_, id) in &insts {
        let mine = objs.iter().find(|o| o["text"] == format!("late-from-{id}")).expect("the line");
        assert_eq!(mine["instance"], id.as_str(), "{mine}");
        assert_eq!(mine["source"], "stdout");
        assert!(mine["ts"].as_u64().is_some_and(|ts| ts >= cut), "{mine}");
    }

    // --tail N: the last N lines of the merged log.
    let out = ctl(&url, &["logs", "site", "--tail", "2"]);
    assert!(out.ok(), "{out}");
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
    assert!(out.stdout.lines().all(|l| l.contains("late-from-")), "{out}");
    // --since TIME: only the lines from then on.
    let since = format!("{}Z", datetime(cut).replace(' ', "T"));
    let out = ctl(&url, &["logs", "site", "--since", &since]);
    assert!(out.ok(), "{out}");
    assert!(late.iter().all(|l| out.stdout.contains(l.as_str())), "{out}");
    assert!(!out.stdout.contains("seq-"), "nothing before {since}: {out}");
    let out = ctl(&url, &["logs", "site", "--since", "2999-01-01T00:00:00Z"]);
    assert!(!out.ok() && out.stderr.contains("in the future"), "{out}");

    // One instance: its lines only, no prefix.
    let (_, first) = &insts[0];
    let out = ctl(&url, &["logs", first]);
    assert!(out.ok(), "{out}");
    assert!(out.stdout.contains(&format!("late-from-{first}")), "{out}");
    assert!(
        !out.stdout.contains(" #0 ") && !out.stdout.contains(&format!("late-from-{}", insts[1].1)),
        "{out}"
    );

    // An unknown app is an error that says what was not found.
    let out = ctl(&url, &["logs", "no-such-app"]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("no app or instance \"no-such-app\""), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn docker_ctl_logs_follow_prints_new_lines_of_every_instance() {
    let Some(stack) = Stack::start("docker_ctl_logs_follow_prints_new_lines_of_every_instance") else {
        return;
    };
    let out = stack.deploy("1.0.0", "2", "<h1>follow</h1>", &[]);
    assert!(out.ok(), "deploy: {out}");
    let url = stack.url();
    let insts = instances(&url);
    assert_eq!(insts.len(), 2, "{insts:?}");
    let mut cmd = Command::new(BIN);
    match operator_seed(&url) {
        Some(seed) => cmd.env("NATS_NKEY", seed),
        None => cmd.env_remove("NATS_NKEY"),
    };
    let mut child = cmd
        .args(["ctl", "logs", "site", "--follow", "--json"])
        .env("NATS_URL", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctl logs --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<Value> = Vec::new();
    let mut k = 0;
    // Lines written while it follows arrive, each naming its instance; written again
    // until seen, since the stream may start after the first write.
    eventually(WAIT * 2, "followed lines of both instances", || {
        k += 1;
        for (_, id) in &insts {
            say(id, &format!("followed-{k}-from-{id}"));
        }
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
        let followed = |id: &str| {
            seen.iter().any(|o| {
                o["instance"] == id
                    && o["text"].as_str().is_some_and(|t| t.starts_with("followed-") && t.ends_with(id))
            })
        };
        match insts.iter().all(|(_, id)| followed(id)) {
            true => Ok(()),
            false => {
                Err(format!("{} lines seen: {:?}", seen.len(), seen.iter().rev().take(4).collect::<Vec<_>>()))
            }
        }
    });
    // Ctrl-C ends it with success.
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let status = crate::nats_support::wait_or_kill(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

/// `l` on the Apps panel of a headless cockpit on the same stack: the lines of both
/// instances in one view, each with its word, and a digit filters to one.
#[test]
fn docker_cockpit_merged_logs_show_every_instance() {
    use std::sync::Arc;

    use quarterdeck::actions::{Action, LogKey, Panel};
    use quarterdeck::backend::{self, Identity};
    use quarterdeck::protocol::InstanceState;

    use crate::cockpit_logs::{carry, has_line};
    use crate::cockpit_support::{cockpit_app, screen};
    use crate::nats_support::{block_on, connect};
    use crate::support::pump;

    let Some(stack) = Stack::start("docker_cockpit_merged_logs_show_every_instance") else { return };
    let out = stack.deploy("1.0.0", "2", "<h1>merged</h1>", &[]);
    assert!(out.ok(), "deploy: {out}");
    let insts = instances(&stack.url());
    for (_, id) in &insts {
        say(id, &format!("before-from-{id}"));
    }
    block_on(async {
        let bus = Arc::new(connect(&stack.url(), "cockpit/test@here").await);
        let mut handle = backend::spawn_cockpit(bus, "cockpit/test@here".into(), Identity::default());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "both instances running", |a| {
            a.replica.fleet.instances.values().filter(|i| i.state == InstanceState::Running).count() == 2
        })
        .await;
        app.update(Action::ShowPanel(Panel::Apps));
        carry(&handle, app.update(Action::Logs));
        assert_eq!(app.logs.as_ref().map(|v| v.feeds.len()), Some(2));
        pump(&mut app, &mut handle, "the tail of both instances", |a| {
            insts.iter().all(|(_, id)| has_line(a, &format!("before-from-{id}")))
        })
        .await;
        for (_, id) in &insts {
            say(id, &format!("while-following-{id}"));
        }
        pump(&mut app, &mut handle, "followed lines of both", |a| {
            insts.iter().all(|(_, id)| has_line(a, &format!("while-following-{id}")))
        })
        .await;
        let shown = screen(&mut app, 160);
        for (index, id) in &insts {
            assert!(shown.contains(&format!("#{index} while-following-{id}")), "{shown}");
        }
        assert!(shown.contains("Logs of site: 2 instances merged"), "{shown}");
        app.update(Action::LogView(LogKey::Only(u8::try_from(insts[1].0).expect("small"))));
        let shown = screen(&mut app, 160);
        assert!(shown.contains(&format!("while-following-{}", insts[1].1)), "{shown}");
        assert!(!shown.contains(&format!("while-following-{}", insts[0].1)), "filtered: {shown}");
        carry(&handle, app.update(Action::Back));
        assert!(app.logs.is_none());
    });
}
