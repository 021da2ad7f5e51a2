//! Contexts on two real planes (a nats-server, a controller and sim agents each, with
//! different apps): the cockpit started on `a` shows a's apps; `:context b` switches it live
//! to b's, with none of a's left; a context whose server is down leaves it on b, saying
//! why; `ctl --context b` reads b. The contexts file lives in a temporary
//! XDG_CONFIG_HOME.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use quarterdeck::actions::{Action, Effect};
use quarterdeck::app::App;
use quarterdeck::backend::BackendHandle;
use quarterdeck::cli::Cli;
use quarterdeck::theme::ColorMode;
use serde_json::Value;

use crate::cockpit_support::{Tmux, cockpit_app, screen, type_text};
use crate::nats_support::{BIN, CtlOut, Plane, PlaneConfig, run_captured, unique_dir};
use crate::support::pump;

/// `$XDG_CONFIG_HOME/quarterdeck/contexts.toml` naming both planes and one that is down.
fn contexts_home(test: &str, a: &str, b: &str) -> PathBuf {
    let home = unique_dir(test).join("xdg");
    std::fs::create_dir_all(home.join("quarterdeck")).expect("config dir");
    let text = format!(
        "[contexts.a]\nnats = \"{a}\"\ncolour = \"green\"\n\n\
         [contexts.b]\nnats = \"{b}\"\ncolour = \"yellow\"\nproduction = true\n\n\
         [contexts.down]\nnats = \"nats://127.0.0.1:1\"\n"
    );
    std::fs::write(home.join("quarterdeck/contexts.toml"), text).expect("contexts file");
    home
}

fn ctl_in(home: &Path, args: &[&str]) -> CtlOut {
    let mut cmd = Command::new(BIN);
    cmd.arg("ctl").args(args).env("XDG_CONFIG_HOME", home).env_remove("NATS_URL").env_remove("NATS_NKEY");
    run_captured(&mut cmd, Duration::from_secs(120))
}

fn app_names(app: &App) -> Vec<String> {
    app.replica.fleet.apps.keys().cloned().collect()
}

#[test]
fn cockpit_context_switch_between_two_planes() {
    let test = "cockpit_context_switch_between_two_planes";
    let Some(a) = Plane::start(&format!("{test}-a"), PlaneConfig::default()) else { return };
    let Some(b) = Plane::start(&format!("{test}-b"), PlaneConfig::default()) else { return };
    a.deploy("alpha-web", "1.0.0", 1);
    b.deploy("beta-api", "2.0.0", 1);
    let home = contexts_home(test, &a.url(), &b.url());

    // ctl --context b reads b, and only b.
    let out = ctl_in(&home, &["--context", "b", "snapshot", "--json"]);
    assert!(out.ok(), "{out}");
    let snap: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let apps: Vec<&str> =
        snap["apps"].as_array().expect("apps").iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(apps, ["beta-api"], "{snap}");
    // Naming a plane twice, or a context nobody defined, is an error that says so.
    let out = ctl_in(&home, &["--context", "b", "--nats", &a.url(), "snapshot"]);
    assert!(!out.ok() && out.stderr.contains("both name a plane"), "{out}");
    let out = ctl_in(&home, &["--context", "qa", "snapshot"]);
    assert!(
        !out.ok() && out.stderr.contains("no context \"qa\"") && out.stderr.contains("a, b, down"),
        "{out}"
    );

    let contexts = quarterdeck::context::load(&home.join("quarterdeck/contexts.toml"))
        .expect("the file parses")
        .expect("the file is there");
    // Taken here: the async block below must not own (and so drop) plane b.
    let b_url = b.url();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    runtime.block_on(async move {
        // The flags as typed: none but the context (the cockpit's `given`).
        let given = Cli::try_parse_from(["quarterdeck", "--context", "a"]).expect("parses").bus;
        let connect =
            quarterdeck::cli::cockpit::connector(given, contexts.clone(), false, ColorMode::TrueColor);
        let first = connect("a".into()).await.expect("connects to a");
        let mut app = cockpit_app("nothing yet");
        app.contexts = contexts.list.clone();
        app.switched(first.plane, first.connection);
        let mut handle: BackendHandle = first.backend;
        pump(&mut app, &mut handle, "a's app", |app| app.replica.fleet.apps.contains_key("alpha-web")).await;
        app.update(Action::ShowPanel(quarterdeck::actions::Panel::Apps));
        let s = screen(&mut app, 140);
        assert!(s.lines().next().is_some_and(|h| h.contains(" a ")) && s.contains("alpha-web"), "{s}");

        // `:context b`, as typed, then the switch as the event loop carries it out.
        app.update(Action::Palette);
        type_text(&mut app, "context b");
        let effects = app.update(Action::Submit);
        assert_eq!(effects, vec![Effect::SwitchContext("b".into())]);
        let result = connect("b".into()).await;
        quarterdeck::tui::switch::finish(&mut app, &mut handle, "b", result).await;
        assert!(app.replica.fleet.apps.is_empty(), "nothing of a's is left: {:?}", app_names(&app));
        let s = screen(&mut app, 140);
        assert!(s.lines().next().is_some_and(|h| h.contains(" b ") && h.contains("PROD")), "{s}");
        pump(&mut app, &mut handle, "b's app", |app| app.replica.fleet.apps.contains_key("beta-api")).await;
        assert_eq!(app_names(&app), ["beta-api"], "b's apps and none of a's");
        assert!(app.replica.fleet.instances.values().all(|i| i.app == "beta-api"));
        let s = screen(&mut app, 140);
        assert!(s.contains("beta-api") && !s.contains("alpha-web"), "{s}");

        // A plane that is down: a clear error, and the cockpit stays on b, live.
        app.update(Action::Palette);
        type_text(&mut app, "context down");
        assert_eq!(app.update(Action::Submit), vec![Effect::SwitchContext("down".into())]);
        let result = connect("down".into()).await;
        assert!(result.is_err(), "nothing listens on port 1");
        quarterdeck::tui::switch::finish(&mut app, &mut handle, "down", result).await;
        let s = screen(&mut app, 160);
        assert!(s.lines().next().is_some_and(|h| h.contains(" b ")) && s.contains("beta-api"), "{s}");
        assert!(s.contains("cannot switch to down: ") && s.contains("still on b"), "{s}");
        // Still following b: a new app there shows up.
        let url = b_url.clone();
        tokio::task::spawn_blocking(move || {
            crate::nats_support::ctl_ok(&url, &crate::nats_support::deploy_args("beta-two", "1.0.0", "1"))
        })
        .await
        .expect("ctl ran");
        pump(&mut app, &mut handle, "b's second app", |app| app.replica.fleet.apps.contains_key("beta-two"))
            .await;
    });

    // The same as a user sees it: the binary in a terminal, through its event loop.
    let command =
        format!("env -u NATS_URL -u NATS_NKEY XDG_CONFIG_HOME={} {BIN} --context a", home.display());
    let Some(t) = Tmux::start("contexts", &command) else { return };
    t.wait_for(&["1 Hosts", "h1"], "the cockpit on a");
    t.keys(&["6"]);
    let on_a = t.wait_for(&["alpha-web"], "a's apps");
    assert!(on_a.lines().next().is_some_and(|h| h.contains(" a ") && !h.contains("PROD")), "{on_a}");
    t.type_text(":context b");
    t.keys(&["Enter"]);
    // A failure is said for a few seconds only: caught as soon as it shows.
    let deadline = std::time::Instant::now() + crate::cockpit_support::TMUX_WAIT;
    loop {
        let s = t.screen();
        assert!(!s.contains("cannot switch"), "{s}");
        if s.contains("switched to b") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no switch:\n{s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let on_b = t.wait_for(&["beta-api", "beta-two", "switched to b"], ":context b shows b's apps");
    assert!(!on_b.contains("alpha-web"), "none of a's:\n{on_b}");
    assert!(on_b.lines().next().is_some_and(|h| h.contains(" b ") && h.contains("⚠ PROD")), "{on_b}");
    t.type_text(":context down");
    t.keys(&["Enter"]);
    let stayed = t.wait_for(&["cannot switch to down", "still on b"], "a plane that is down");
    assert!(
        stayed.contains("beta-api") && stayed.lines().next().is_some_and(|h| h.contains(" b ")),
        "{stayed}"
    );
    t.keys(&["q"]);
}
