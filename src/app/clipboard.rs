//! `y`: the selected row's id to the clipboard, through an effect the event loop writes.

use super::{App, Level};
use crate::actions::{Effect, Panel};

impl App {
    pub(super) fn copy(&mut self) -> Vec<Effect> {
        let text = match self.panel {
            Panel::Events => {
                self.selected_event().map(|e| e.operation_id.clone().unwrap_or_else(|| e.rev.to_string()))
            }
            Panel::Audit => {
                self.selected_audit().and_then(|e| e.audit.as_ref().map(|a| a.command_id.clone()))
            }
            _ => self.selected_key(self.panel).map(|k| k.id_text()),
        };
        match text {
            Some(text) => {
                self.say(Level::Info, format!("copied {text} (OSC 52)"));
                vec![Effect::Copy(text)]
            }
            None => {
                self.say(Level::Warn, "nothing selected to copy".into());
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::actions::{Action, Effect, Panel};
    use crate::views::harness::app;

    #[test]
    fn copy_writes_the_selected_id_through_an_effect() {
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Instances));
        let id = app.selected_instance().map(|i| i.id.clone()).expect("an instance");
        assert_eq!(app.update(Action::Copy), vec![Effect::Copy(id)]);
    }
}
