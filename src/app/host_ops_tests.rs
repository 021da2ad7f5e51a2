//! `c` and `o` on the Hosts panel, driven through the whole App on the fixture.

use crate::actions::{Action, Effect, Panel};
use crate::app::Overlay;
use crate::protocol::subjects::HostVerb;
use crate::protocol::{ControlCommand, HostRequest, HostSchedule};
use crate::views::harness::{app, type_text};

fn sent(effects: &[Effect]) -> Vec<ControlCommand> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Answers the dialog: `y`, or for a host running a prod app, its name typed (`y` alone
/// sends nothing then).
fn answer(app: &mut crate::app::App) -> Vec<Effect> {
    let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no confirm: {:?}", app.overlay()) };
    match p.typed.clone() {
        Some(name) => {
            assert!(sent(&app.update(Action::Confirmed)).is_empty(), "y alone with a prod app on the host");
            type_text(app, &name);
            app.update(Action::Submit)
        }
        None => app.update(Action::Confirmed),
    }
}

fn selected_host(app: &crate::app::App) -> String {
    app.selected_host().expect("a selected host").info.id.clone()
}

#[test]
fn c_cordons_an_open_host_and_uncordons_a_cordoned_one_once_confirmed() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Hosts));
    let host = selected_host(&app);
    assert!(sent(&app.update(Action::Cordon)).is_empty(), "nothing before the answer");
    let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no confirm: {:?}", app.overlay()) };
    assert!(p.question.starts_with(&format!("Cordon {host}?")), "{}", p.question);
    let effects = answer(&mut app);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Host(HostVerb::Cordon, HostRequest { host: host.clone() })]
    );

    app.replica.fleet.hosts.get_mut(&host).expect("the host").schedule = HostSchedule::Cordoned;
    app.update(Action::Cordon);
    let effects = answer(&mut app);
    assert_eq!(sent(&effects), vec![ControlCommand::Host(HostVerb::Uncordon, HostRequest { host })]);
}

#[test]
fn o_drains_the_selected_host_once_confirmed_and_not_a_draining_one() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Hosts));
    let host = selected_host(&app);
    app.update(Action::Drain);
    let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no confirm: {:?}", app.overlay()) };
    assert!(p.question.contains(&format!("Drain {host}?")), "{}", p.question);
    // Cancelled: nothing goes.
    assert!(sent(&app.update(Action::Cancelled)).is_empty());
    app.update(Action::Drain);
    let effects = answer(&mut app);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Host(HostVerb::Drain, HostRequest { host: host.clone() })]
    );

    app.replica.fleet.hosts.get_mut(&host).expect("the host").schedule =
        HostSchedule::Draining { done: 1, total: 2 };
    for action in [Action::Drain, Action::Cordon] {
        app.status = None;
        assert!(app.update(action).is_empty());
        assert!(app.overlay().is_none(), "{action:?} opened {:?}", app.overlay());
        let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
        assert!(said.contains("draining 1/2"), "{action:?}: {said}");
    }
}

#[test]
fn the_host_keys_work_on_the_hosts_panel_only_and_not_in_read_only_mode() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    assert!(app.update(Action::Drain).is_empty());
    assert!(app.overlay().is_none());
    let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(said.contains("Hosts panel"), "{said}");

    app.update(Action::ShowPanel(Panel::Hosts));
    app.read_only = true;
    for action in [Action::Cordon, Action::Drain] {
        app.status = None;
        assert!(sent(&app.update(action)).is_empty());
        assert!(app.overlay().is_none(), "{action:?} opened {:?}", app.overlay());
        let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
        assert!(said.starts_with("read-only: "), "{action:?}: {said}");
    }
}
