//! An app's releases in the cockpit, in a real terminal (tmux) on the sandbox: the detail
//! pane asks the controller for them through the backend and lists them (the sandbox
//! deploys each of its apps once: release 1), and `b` on the
//! current release is refused without a dialog. Needs tmux (./scripts/test installs it).

use crate::cockpit_support::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_quarterdeck");

#[test]
fn cockpit_app_detail_lists_the_apps_releases_from_the_controller() {
    let command = format!("env -u NO_COLOR {BIN} --seed 42 --sandbox-crash-rate 0");
    let Some(t) = Tmux::start_sized("releases", &command, 80, 24) else { return };
    t.wait_for(&["1 Hosts", "HOST"], "the cockpit's first frame");
    t.keys(&["6"]);
    t.wait_for(&["APP", "VERSION"], "the Apps panel");
    t.keys(&["Enter"]);
    let screen =
        t.wait_for(&["releases      1 kept", ">*  1"], "release 1 in the app's detail, selected and current");
    assert!(screen.contains("[ ] select, b rolls back"), "{screen}");
    assert!(screen.contains("release 1 is the current spec"), "{screen}");
    t.keys(&["b"]);
    let screen = t.wait_for(&["already runs release 1's spec"], "b on the current release is refused");
    assert!(!screen.contains("[y/N]"), "no dialog for a refused rollback:\n{screen}");
}
