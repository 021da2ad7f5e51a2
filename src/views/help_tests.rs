//! Snapshot and cell-style tests of the help overlay, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::Action;
use crate::views::harness::{app, draw, text};

#[test]
fn help_overlay() {
    let mut app = app();
    app.update(Action::Help);
    assert_snapshot!(text(&draw(&mut app, 120, 24)));
}

/// At 80 columns a description longer than its column wraps under itself: every word of
/// every description is on screen. At 24 rows the keys no longer all fit since the host
/// keys (`c`, `o`): the last line says how many more a taller terminal shows.
#[test]
fn help_lines_wrap_at_80x24() {
    let mut app = app();
    app.update(Action::Help);
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    for b in crate::actions::keymap::BINDABLE {
        for word in b.describe().split(' ') {
            assert!(screen.contains(word), "{:?}: {word:?} is cut: {screen}", b.describe());
        }
    }
    assert!(!screen.contains('…'), "{screen}");
}
