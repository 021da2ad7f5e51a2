//! A shell in an instance (`s`, `:exec`): which instance, whether it may be asked for, and
//! what the status line says when it ends. The event loop opens it and hands it the
//! terminal (`tui::shell`); the app only asks (`Effect::Exec`) and hears how it ended.

use super::{App, Level};
use crate::actions::{Effect, Panel};
use crate::backend::{ExecError, ExecOutcome};
use crate::protocol::ExecStart;
use crate::protocol::exec::ExecEndReason;

impl App {
    /// A shell (or `cmd`) in `instance`, by default the selected one of the Instances
    /// panel. It must exist and run; read-only refuses it at `outgoing`, like a command.
    pub(super) fn open_shell(&mut self, instance: Option<String>, cmd: Vec<String>) -> Vec<Effect> {
        if let Some(open) = &self.shell {
            let text = format!("shell: one is already open in {open}");
            self.say(Level::Warn, text);
            return vec![];
        }
        let selected = || (self.panel == Panel::Instances).then(|| self.selected_instance()).flatten();
        let Some(id) = instance.or_else(|| selected().map(|i| i.id.clone())) else {
            self.say(Level::Warn, "shell: select an instance first (2: Instances)".into());
            return vec![];
        };
        let target = match crate::backend::exec_target(&self.replica.fleet, &id) {
            Ok(t) => t,
            Err(e) => {
                self.say(Level::Warn, format!("shell: {e}"));
                return vec![];
            }
        };
        let start = ExecStart { host: target.host.clone(), instance: target.instance.clone(), cmd };
        let Ok(effects) = self.outgoing("shell", vec![Effect::Exec(start)]) else { return vec![] };
        self.say(Level::Info, format!("opening a shell in {} on {}…", target.instance, target.host));
        self.shell = Some(target.instance);
        effects
    }

    /// The shell asked for could not be opened; the cockpit never left the screen.
    pub fn shell_not_opened(&mut self, err: &ExecError) {
        let instance = self.shell.take().unwrap_or_default();
        self.say(Level::Error, format!("shell in {instance} not opened: {err}"));
    }

    /// The shell ended and the cockpit has the terminal again: why, on the status line.
    /// `Err` is a failure of the terminal side (its input, a signal).
    pub fn shell_ended(&mut self, ended: Result<ExecOutcome, String>) {
        let instance = self.shell.take().unwrap_or_default();
        let (level, text) = match ended {
            Ok(ExecOutcome::Exited(0)) => (Level::Info, format!("shell in {instance} ended")),
            Ok(ExecOutcome::Exited(code)) => (Level::Info, format!("shell in {instance} ended: exit {code}")),
            Ok(ExecOutcome::Ended { reason: ExecEndReason::ContainerDied, detail }) => {
                // The agent's detail says it whole ("the container stopped (…)", "the
                // instance was removed"); without one, the reason alone.
                let why = if detail.is_empty() { "the container stopped".to_string() } else { detail };
                (Level::Warn, format!("shell in {instance} ended: {why}"))
            }
            Ok(outcome @ ExecOutcome::AgentLost(_)) => (
                Level::Error,
                format!("shell in {instance} ended: {}", outcome.message().unwrap_or_default()),
            ),
            Ok(outcome) => {
                (Level::Warn, format!("shell in {instance} ended: {}", outcome.message().unwrap_or_default()))
            }
            Err(e) => (Level::Error, format!("shell in {instance} ended: {e}")),
        };
        self.say(level, text);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::actions::Action;
    use crate::app::rows::RowKey;
    use crate::protocol::InstanceState;
    use crate::views::harness::{app, type_text};

    /// The fixture app on the Instances panel with a running instance selected; its id
    /// and host.
    fn on_a_running_instance() -> (App, String, String) {
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Instances));
        for _ in 0..app.row_count(Panel::Instances) {
            if let Some(i) = app.selected_instance().filter(|i| i.state == InstanceState::Running) {
                let (id, host) = (i.id.clone(), i.host.clone());
                return (app, id, host);
            }
            app.update(Action::Down);
        }
        panic!("the fixture has no running instance");
    }

    fn status(app: &App) -> (Level, String) {
        let s = app.status.as_ref().expect("a status line");
        (s.level, s.text.clone())
    }

    #[test]
    fn s_asks_for_a_shell_in_the_selected_instance_and_a_second_waits_for_the_first() {
        let (mut app, id, host) = on_a_running_instance();
        let s = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(app.keymap.action_for(&s), Some(Action::Shell));
        let effects = app.update(Action::Shell);
        assert_eq!(
            effects,
            vec![Effect::Exec(ExecStart { host: host.clone(), instance: id.clone(), cmd: vec![] })]
        );
        assert_eq!(app.shell.as_deref(), Some(id.as_str()));
        assert_eq!(status(&app).1, format!("opening a shell in {id} on {host}…"));
        assert!(app.update(Action::Shell).is_empty());
        assert_eq!(status(&app), (Level::Warn, format!("shell: one is already open in {id}")));
    }

    #[test]
    fn exec_in_the_palette_takes_an_instance_and_a_quoted_command() {
        let (mut app, id, host) = on_a_running_instance();
        app.update(Action::ShowPanel(Panel::Hosts));
        app.update(Action::Palette);
        type_text(&mut app, &format!("exec {id} -- sh -c 'echo $((6*7))'"));
        let effects = app.update(Action::Submit);
        let cmd = vec!["sh".to_string(), "-c".to_string(), "echo $((6*7))".to_string()];
        assert_eq!(effects, vec![Effect::Exec(ExecStart { host, instance: id, cmd })]);
        assert!(app.overlay().is_none());
    }

    #[test]
    fn without_an_instance_a_shell_asks_for_one() {
        let mut app = app();
        assert_eq!(app.panel, Panel::Hosts);
        assert!(app.update(Action::Shell).is_empty());
        assert_eq!(status(&app), (Level::Warn, "shell: select an instance first (2: Instances)".into()));
        assert_eq!(app.shell, None);
    }

    #[test]
    fn read_only_refuses_a_shell_before_anything_is_sent() {
        let (mut app, id, _) = on_a_running_instance();
        app.read_only = true;
        assert!(app.update(Action::Shell).is_empty());
        let (level, text) = status(&app);
        assert_eq!(level, Level::Warn);
        assert!(text.starts_with("read-only: shell refused"), "{text}");
        app.update(Action::Palette);
        type_text(&mut app, &format!("exec {id}"));
        assert!(app.update(Action::Submit).is_empty());
        assert!(status(&app).1.starts_with("read-only: shell refused"));
        assert_eq!(app.shell, None, "nothing is open or opening");
    }

    #[test]
    fn an_instance_that_is_not_running_is_refused_with_a_message() {
        let (mut app, id, _) = on_a_running_instance();
        if let Some(i) = app.replica.fleet.instances.get_mut(&id) {
            i.state = InstanceState::Crashed;
        }
        assert!(app.update(Action::Shell).is_empty());
        assert_eq!(
            status(&app),
            (Level::Warn, format!("shell: instance {id} is crashed, not running: nothing to exec in"))
        );
        assert_eq!(app.shell, None);
    }

    #[test]
    fn the_return_says_how_the_shell_ended_and_leaves_the_panel_as_it_was() {
        let (mut app, id, _) = on_a_running_instance();
        app.update(Action::Filter);
        type_text(&mut app, "-");
        app.update(Action::Submit);
        let selected = app.selected_key(Panel::Instances);
        assert_eq!(selected, Some(RowKey::Id(id.clone())));
        let ends: [(Result<ExecOutcome, String>, Level, String); 5] = [
            (Ok(ExecOutcome::Exited(0)), Level::Info, format!("shell in {id} ended")),
            (Ok(ExecOutcome::Exited(3)), Level::Info, format!("shell in {id} ended: exit 3")),
            (
                Ok(ExecOutcome::Ended {
                    reason: ExecEndReason::ContainerDied,
                    detail: "the container stopped (the process's exit code: 137)".into(),
                }),
                Level::Warn,
                format!("shell in {id} ended: the container stopped (the process's exit code: 137)"),
            ),
            (
                Ok(ExecOutcome::AgentLost(Duration::from_secs(10))),
                Level::Error,
                format!(
                    "shell in {id} ended: lost the agent: nothing from it for 10 s (the bus or the agent is down)"
                ),
            ),
            (
                Err("hang-up: the session was stopped".into()),
                Level::Error,
                format!("shell in {id} ended: hang-up: the session was stopped"),
            ),
        ];
        for (ended, level, text) in ends {
            assert_eq!(app.update(Action::Shell).len(), 1);
            app.shell_ended(ended);
            assert_eq!(status(&app), (level, text));
            assert_eq!(app.shell, None);
            assert_eq!(app.panel, Panel::Instances);
            assert_eq!(app.selected_key(Panel::Instances), selected);
            assert_eq!(app.view(Panel::Instances).filter.as_ref().map(|f| f.text.as_str()), Some("-"));
        }
        assert_eq!(app.update(Action::Shell).len(), 1);
        app.shell_not_opened(&ExecError::Denied { user: "bob".into() });
        let (level, text) = status(&app);
        assert_eq!(level, Level::Error);
        assert_eq!(
            text,
            format!(
                "shell in {id} not opened: bob may not exec: ask for the exec grant (quarterdeck auth grant bob exec)"
            )
        );
        assert_eq!(app.shell, None);
    }
}
