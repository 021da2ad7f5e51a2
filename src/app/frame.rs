//! The frame context: everything the views read for one frame, worked out before the draw
//! (television's `Ctx`, oxker's `FrameData`). `App::frame_context` refreshes the caches
//! (fleet facts, the current panel's row index and window) and does the checks that touch
//! the file system (the deploy form's artifact path); the views then only read.
//!
//! The context derefs to the `App` it was made from, so a view reads the app's state as
//! before, but the methods that could recompute (`facts`, `rows`, `row_count`) resolve to
//! the context's own, which only borrow what the refresh left: nothing is counted, built or
//! read from the disk inside a draw.

use std::ops::Deref;

use super::facts::FleetFacts;
use super::rows::RowKey;
use super::{App, Overlay};
use crate::actions::Panel;
use crate::app::wizard::{Field, Step};
use crate::backend::Connection;

/// The link to the bus as the header shows it: the views never see the transport's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connected,
    /// Lost at this time (ms since epoch), reconnecting since.
    Reconnecting {
        since: u64,
    },
}

impl Link {
    fn of(connection: &Connection) -> Link {
        match connection {
            Connection::Connected => Link::Connected,
            Connection::Disconnected { since, .. } => Link::Reconnecting { since: *since },
        }
    }
}

pub struct FrameContext<'a> {
    app: &'a App,
    pub link: Link,
    /// The deploy form's verdict on each field (`Field::ALL` order), when a form is open.
    wizard_checks: Vec<Option<String>>,
}

impl Deref for FrameContext<'_> {
    type Target = App;
    fn deref(&self) -> &App {
        self.app
    }
}

impl<'a> FrameContext<'a> {
    /// Fleet-wide counts, as the refresh left them.
    pub fn facts(&self) -> &'a FleetFacts {
        &self.app.facts
    }

    /// A panel's rows in order, as the refresh left its index: the current panel's is
    /// current; the others are not drawn.
    pub fn rows(&self, panel: Panel) -> &'a [RowKey] {
        self.app.views[panel.index()].index.as_ref().map(|ix| ix.keys.as_slice()).unwrap_or_default()
    }

    pub fn row_count(&self, panel: Panel) -> usize {
        self.rows(panel).len()
    }

    /// What is wrong with the deploy form's field `n` (`Field::ALL` order), if anything.
    pub fn wizard_check(&self, n: usize) -> Option<&str> {
        self.wizard_checks.get(n).and_then(|c| c.as_deref())
    }
}

impl App {
    /// Readies the app for a frame whose panel body has `page_rows` table rows, and returns
    /// what the views read. Called before each draw, never from inside one.
    pub fn frame_context(&mut self, page_rows: usize) -> FrameContext<'_> {
        self.page_rows = page_rows;
        self.refresh_views();
        let wizard_checks = match self.overlays.iter().rev().find_map(|o| match o {
            Overlay::Wizard(w) => Some(w),
            _ => None,
        }) {
            // `check` reads the artifact's file: once here, not in the view.
            Some(w) if w.step == Step::Form => Field::ALL.iter().map(|f| w.check(*f)).collect(),
            _ => Vec::new(),
        };
        FrameContext { link: Link::of(&self.connection), app: self, wizard_checks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Action;

    #[test]
    fn the_context_reads_what_the_refresh_left() {
        let mut app = crate::views::harness::fixture_app(20);
        app.update(Action::ShowPanel(Panel::Instances));
        let fresh = crate::app::rows::build(
            &app.replica,
            &app.facts(),
            &app.traffic,
            app.now,
            Panel::Instances,
            app.view(Panel::Instances),
        )
        .keys;
        let ctx = app.frame_context(10);
        assert_eq!(ctx.page_rows, 10);
        assert_eq!(ctx.rows(Panel::Instances), fresh.as_slice());
        assert_eq!(ctx.facts().stamp, crate::app::facts::stamp_of(&ctx.replica));
        assert_eq!(ctx.link, Link::Connected);
        assert!(ctx.wizard_check(0).is_none());
    }

    #[test]
    fn the_deploy_forms_file_checks_are_done_when_the_context_is_made() {
        let mut app = crate::views::harness::fixture_app(0);
        app.update(Action::Deploy);
        let dir = std::env::temp_dir().join(format!("qd-frame-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tarball = dir.join("app.tar.gz");
        std::fs::write(&tarball, b"not empty").unwrap();
        let Some(Overlay::Wizard(w)) = app.overlays.last_mut() else { panic!("no wizard") };
        w.values[Field::Artifact as usize] = tarball.display().to_string();
        let artifact = Field::Artifact as usize;
        assert_eq!(app.frame_context(20).wizard_check(artifact), None);
        // The file goes: the next context says so; the view has nothing to read but it.
        std::fs::remove_file(&tarball).unwrap();
        let ctx = app.frame_context(20);
        let verdict = ctx.wizard_check(artifact).expect("a missing file is an error");
        assert!(verdict.contains("app.tar.gz"), "{verdict}");
        // Without a form open, nothing is checked.
        app.update(Action::Back);
        assert!(app.frame_context(20).wizard_checks.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_link_hides_the_transport() {
        let lost = Connection::Disconnected { since: 7, reason: "eof".into() };
        assert_eq!(Link::of(&lost), Link::Reconnecting { since: 7 });
        assert_eq!(Link::of(&Connection::Connected), Link::Connected);
    }
}
