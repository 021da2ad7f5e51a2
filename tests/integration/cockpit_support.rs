//! The one headless cockpit the integration tests drive: a fresh app, its screen drawn to
//! a test buffer and read back as text, typing, and the open wizard. The unit tests' twin is
//! `src/views/harness.rs` (test-only inside the crate, so not reachable from here).

use quarterdeck::actions::keymap::Keymap;
use quarterdeck::actions::{Action, Effect};
use quarterdeck::app::{App, Overlay, Wizard};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::theme::{ColorMode, Theme};

/// A cockpit with nothing in its replica yet, the default keys and colours, the clock now;
/// `bus_label` is what its header says it is connected to.
pub fn cockpit_app(bus_label: impl Into<String>) -> App {
    App::new(bus_label, Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms())
}

/// The cockpit's screen, `width` x 30, as text.
pub fn screen(app: &mut App, width: u16) -> String {
    screen_rows(app, width, 30)
}

/// The cockpit's screen, `width` x `rows`, as text, one line per row.
pub fn screen_rows(app: &mut App, width: u16, rows: u16) -> String {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, rows)).expect("test terminal");
    quarterdeck::tui::render(&mut terminal, app).expect("draw");
    let buf = terminal.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

/// Each character of `text` typed into the app, and the effects the keystrokes asked for.
pub fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| app.update(Action::Input(c))).collect()
}

/// The open wizard; a test that expects one fails here when none is open.
pub fn wizard(app: &App) -> &Wizard {
    match app.overlays.last() {
        Some(Overlay::Wizard(w)) => w,
        other => panic!("no wizard open: {other:?}"),
    }
}
