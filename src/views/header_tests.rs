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

/// The header names the context in its colour and marks a production one in words, at
/// 120x40 and, shorter, at 80x24.
#[test]
fn header_names_the_context_in_its_colour_and_marks_production() {
    use crate::app::PlaneLabel;
    let mut app = app();
    app.set_plane(PlaneLabel { name: "prod-eu".into(), colour: Some(Color::Magenta), production: true });
    let buf = draw(&mut app, 120, 40);
    let wide = text(&buf);
    assert_snapshot!("context_production_120x40", wide.lines().take(2).collect::<Vec<_>>().join("\n"));
    let (x, y) = find(&buf, "prod-eu").expect("the context's name");
    assert_eq!((y, buf[(x, y)].fg), (0, Color::Magenta), "{wide}");
    let (x, y) = find(&buf, "⚠ PROD").expect("the production marker");
    assert_eq!(y, 0);
    assert!(buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    let widest = text(&draw(&mut app, 160, 10));
    assert!(
        widest.lines().next().is_some_and(|h| h.contains("⚠ PRODUCTION")),
        "in full when it fits:\n{widest}"
    );
    let narrow = text(&draw(&mut app, 80, 24));
    assert_snapshot!("context_production_80x24", narrow.lines().take(2).collect::<Vec<_>>().join("\n"));
    let header = narrow.lines().next().unwrap_or_default();
    assert!(header.contains("prod-eu") && header.contains("PROD"), "{narrow}");
    // Not production: the name alone; the sandbox is named too.
    app.set_plane(PlaneLabel { name: "staging".into(), colour: Some(Color::Yellow), production: false });
    let s = text(&draw(&mut app, 120, 40));
    assert!(s.lines().next().is_some_and(|h| h.contains("staging") && !h.contains("PROD")), "{s}");
    app.set_plane(PlaneLabel::plain("sandbox"));
    let s = text(&draw(&mut app, 80, 24));
    assert!(s.lines().next().is_some_and(|h| h.contains("sandbox")), "{s}");
}
