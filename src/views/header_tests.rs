//! Snapshot and cell-style tests of the header, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::backend::{Feed, Inbound};
use crate::views::harness::{app, draw, find, text};

/// A replica following a flood says how far behind it is, in the warning colour, and says
/// nothing once it has caught up.
#[test]
fn header_says_how_far_behind_a_late_replica_is() {
    let mut app = app();
    let t = app.theme.clone();
    app.apply(Inbound::Feed(Feed::Pending(12_345)));
    let buf = draw(&mut app, 140, 6);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let (x, y) = find(&buf, "behind 12,345 events").expect("the lag in the header");
    assert_eq!(y, 0, "in the header:\n{screen}");
    assert_eq!(buf[(x, y)].fg, t.warn.fg.unwrap_or(Color::Reset));
    // A narrow terminal keeps it, short.
    let narrow = text(&draw(&mut app, 80, 6));
    assert!(narrow.lines().next().is_some_and(|l| l.contains("-12,345")), "{narrow}");
    // Caught up: nothing.
    app.apply(Inbound::Feed(Feed::Pending(0)));
    let screen = text(&draw(&mut app, 140, 6));
    assert!(!screen.contains("behind"), "{screen}");
    // Not live (a fresh snapshot is on its way): the badge says so, not the lag.
    app.apply(Inbound::Feed(Feed::Pending(7)));
    app.replica.mark_resyncing();
    let screen = text(&draw(&mut app, 140, 6));
    assert!(screen.contains("resyncing") && !screen.contains("behind"), "{screen}");
}
