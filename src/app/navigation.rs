//! Moving around: panels, rows, and the overlays opened and closed over them.

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, Panel};

impl App {
    /// The actions that open or close an overlay (or quit, with none open).
    pub(super) fn open_or_close(&mut self, action: Action) -> Vec<Effect> {
        match action {
            // Ctrl-c from a dialog arrives as Cancelled: it closes, it never quits.
            Action::Cancelled => {
                self.overlays.pop();
                vec![]
            }
            Action::Quit => {
                if self.overlays.is_empty() {
                    self.should_quit = true;
                    vec![Effect::Quit]
                } else {
                    self.overlays.pop();
                    vec![]
                }
            }
            Action::Back => {
                if self.overlays.pop().is_none() {
                    self.clear_filter_or_marks();
                }
                vec![]
            }
            Action::Help => {
                if matches!(self.overlay(), Some(Overlay::Help)) {
                    self.overlays.pop();
                } else {
                    self.overlays.push(Overlay::Help);
                }
                vec![]
            }
            Action::Detail => {
                if self.row_count(self.panel) > 0 && !matches!(self.overlay(), Some(Overlay::Detail)) {
                    self.overlays.push(Overlay::Detail);
                }
                vec![]
            }
            Action::Palette => {
                self.overlays.retain(|o| !matches!(o, Overlay::Detail | Overlay::Help));
                self.overlays.push(Overlay::Palette(Box::default()));
                vec![]
            }
            Action::Filter => {
                self.overlays.retain(|o| !matches!(o, Overlay::Detail | Overlay::Help));
                let current =
                    self.view(self.panel).filter.as_ref().map(|f| f.text.clone()).unwrap_or_default();
                self.overlays.push(Overlay::Filter(current));
                vec![]
            }
            _ => vec![],
        }
    }

    pub(super) fn show(&mut self, panel: Panel) {
        self.overlays.clear();
        self.panel = panel;
    }

    fn clear_filter_or_marks(&mut self) {
        let view = &mut self.views[self.panel.index()];
        if view.filter.is_some() {
            view.set_filter(None);
            self.say(Level::Info, "filter cleared".into());
        } else if !view.marks.is_empty() {
            view.marks.clear();
            self.say(Level::Info, "marks cleared".into());
        }
    }

    pub(super) fn move_by(&mut self, delta: i64) -> Vec<Effect> {
        if self.overlay().is_some() {
            return vec![];
        }
        let count = self.row_count(self.panel);
        let page = self.page_rows;
        let sel = &mut self.selections[self.panel.index()];
        if count == 0 {
            sel.index = 0;
            return vec![];
        }
        let next = (sel.index as i64).saturating_add(delta).clamp(0, count as i64 - 1);
        sel.index = next as usize;
        sel.offset = super::window_start(sel.index, sel.offset, page, count);
        vec![]
    }
}
