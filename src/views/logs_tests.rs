//! Snapshot and cell-style tests of the logs view, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::Inbound;
use crate::plane::fixture::T0;
use crate::views::harness::{app, draw, find, text};

fn logs_app() -> App {
    use crate::backend::LogsEvent;
    use crate::protocol::{LogBatch, LogLine, LogSource};
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Logs);
    app.apply(Inbound::Logs { session: 1, event: LogsEvent::Streaming });
    let texts = [
        "INFO [main] o.a.c.startup.Catalina Server startup in 2130 ms",
        "INFO [http-nio-8080-exec-1] GET /cart 200 12ms",
        "INFO [http-nio-8080-exec-2] GET /api/items 200 8ms",
        "SEVERE [http-nio-8080-exec-3] Servlet.service() threw exception: Connection pool Error",
        "INFO [http-nio-8080-exec-4] GET /login 200 31ms",
        "INFO [http-nio-8080-exec-5] GET /checkout 500 912ms",
        "WARN [pool-1] HikariPool-1 - Connection is not available, error after 30000ms",
        "INFO [http-nio-8080-exec-6] GET /health 200 1ms",
        "INFO [http-nio-8080-exec-7] GET / 200 4ms",
        "INFO [http-nio-8080-exec-8] GET /static/app.js 304 2ms",
        "INFO [http-nio-8080-exec-9] GET /cart 200 10ms",
        "INFO [http-nio-8080-exec-1] GET /api/items/42 404 3ms",
    ];
    let lines = texts
        .iter()
        .enumerate()
        .map(|(k, t)| LogLine {
            ts: T0 + k as u64 * 500,
            source: if t.starts_with("SEVERE") { LogSource::Stderr } else { LogSource::Stdout },
            text: t.to_string(),
        })
        .collect();
    let batch = LogBatch { instance: "x".into(), seq: 0, lines, end: None };
    app.apply(Inbound::Logs { session: 1, event: LogsEvent::Batch(batch) });
    app
}

#[test]
fn logs_view_with_a_search() {
    let mut app = logs_app();
    app.page_rows = crate::views::body_rows(16);
    app.update(Action::Filter);
    for c in "error".chars() {
        app.update(Action::Input(c));
    }
    let typing = text(&draw(&mut app, 110, 16));
    assert!(typing.contains("/error▏"), "{typing}");
    app.update(Action::Submit);
    let buf = draw(&mut app, 110, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("/error match 1/2"), "{screen}");
    assert!(screen.contains("last 10000 kept"), "{screen}");
    // Matches are highlighted (reversed, not by colour alone), whatever their case.
    let (x, y) = find(&buf, "Error").expect("the first match");
    assert!(buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    let (x, y) = find(&buf, "error after").expect("the second match");
    assert!(buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    let (x, y) = find(&buf, "GET /cart").expect("a plain line");
    assert!(!buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    // The current match carries the ▶ mark; n moves it.
    assert!(screen.lines().any(|l| l.contains("▶") && l.contains("pool Error")), "{screen}");
    app.update(Action::LogView(crate::actions::LogKey::NextMatch));
    let screen = text(&draw(&mut app, 110, 16));
    assert!(screen.contains("/error match 2/2"), "{screen}");
    assert!(screen.lines().any(|l| l.contains("▶") && l.contains("error after")), "{screen}");
}

#[test]
fn logs_view_wraps_a_long_line_under_its_text() {
    use crate::protocol::{LogBatch, LogLine, LogSource};
    let mut app = logs_app();
    let long = format!("ERROR begin {} the very end", "payload ".repeat(20));
    let line = LogLine { ts: T0 + 9_000, source: LogSource::Stdout, text: long };
    let batch = LogBatch { instance: "x".into(), seq: 1, lines: vec![line], end: None };
    app.apply(Inbound::Logs { session: 1, event: crate::backend::LogsEvent::Batch(batch) });
    let screen = text(&draw(&mut app, 80, 16));
    // Every part of the line is on screen, the newest line last, rows indented under the text.
    assert!(screen.contains("ERROR begin payload"), "{screen}");
    assert!(screen.contains("the very end"), "{screen}");
    let rows: Vec<&str> = screen.lines().collect();
    let first = rows.iter().position(|l| l.contains("ERROR begin")).expect("the line");
    assert!(rows[first + 1].starts_with("│          payload"), "{screen}");
    assert!(rows[first + 2..].iter().any(|l| l.contains("the very end")), "{screen}");
}

/// The merged view of the fixture's app of the most instances, with lines of each.
fn merged_app() -> App {
    use crate::backend::LogsEvent;
    use crate::protocol::{LogBatch, LogLine, LogSource};
    let mut app = app();
    let mut count = std::collections::BTreeMap::<String, usize>::new();
    for i in app.replica.fleet.instances.values() {
        *count.entry(i.app.clone()).or_default() += 1;
    }
    let (name, _) = count.into_iter().max_by_key(|(_, n)| *n).expect("an app");
    app.update(Action::ShowPanel(Panel::Apps));
    while app.selected_app().is_some_and(|a| a.name != name) {
        app.update(Action::Down);
    }
    let sessions: Vec<u64> = app
        .update(Action::Logs)
        .into_iter()
        .filter_map(|e| match e {
            crate::actions::Effect::Logs(s) => Some(s.session),
            _ => None,
        })
        .collect();
    for (k, session) in sessions.iter().enumerate() {
        app.apply(Inbound::Logs { session: *session, event: LogsEvent::Streaming });
        let lines = (0..3u64)
            .map(|j| LogLine {
                ts: T0 + j * 1_000 + k as u64 * 300,
                source: if j == 2 && k == 0 { LogSource::Stderr } else { LogSource::Stdout },
                text: format!("GET /item/{j} 200 from instance {k}"),
            })
            .collect();
        let batch = LogBatch { instance: "x".into(), seq: 0, lines, end: None };
        app.apply(Inbound::Logs { session: *session, event: LogsEvent::Batch(batch) });
    }
    app
}

#[test]
fn merged_logs_view_prefixes_each_line_with_its_instance() {
    let mut app = merged_app();
    let buf = draw(&mut app, 110, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("instances merged"), "{screen}");
    assert!(screen.contains("i/0-9 one instance"), "the key is in the view's footer: {screen}");
    // The word tells instances apart without colour; the colour is the theme's, per index.
    let view = app.logs.as_ref().expect("open");
    let (first, second) = (view.feeds[0].clone(), view.feeds[1].clone());
    let (x0, y0) =
        find(&buf, &format!("{} GET /item/0 200 from instance 0", first.word())).expect("a line of #a");
    let (x1, y1) =
        find(&buf, &format!("{} GET /item/0 200 from instance 1", second.word())).expect("a line of #b");
    assert!(y0 < y1, "merged by time");
    let theme = &app.theme;
    assert_eq!(buf[(x0, y0)].fg, theme.series(first.index as usize).fg.expect("a colour"));
    assert_eq!(buf[(x1, y1)].fg, theme.series(second.index as usize).fg.expect("a colour"));
    assert_ne!(buf[(x0, y0)].fg, buf[(x1, y1)].fg, "two instances, two colours");
    // Filtered to one instance: only its lines, and the title says which.
    app.update(Action::LogView(crate::actions::LogKey::NextInstance));
    let screen = text(&draw(&mut app, 110, 16));
    assert!(screen.contains(&format!("only {} (i: next)", first.word())), "{screen}");
    assert!(screen.contains("from instance 0") && !screen.contains("from instance 1"), "{screen}");
}

/// On a narrow terminal the title's end (which lines are shown, how many are kept) is cut
/// with `…` at the corner, not silently.
#[test]
fn logs_title_too_long_for_the_terminal_ends_in_an_ellipsis() {
    let mut app = logs_app();
    let screen = text(&draw(&mut app, 70, 16));
    let top = screen.lines().find(|l| l.contains(" Logs ")).expect("the title");
    assert!(top.contains("● following"), "{top}");
    assert!(top.ends_with("…╮"), "{top}");
    let screen = text(&draw(&mut app, 120, 16));
    let top = screen.lines().find(|l| l.contains(" Logs ")).expect("the title");
    assert!(top.contains("kept] ─") && !top.contains('…'), "whole where it fits: {top}");
}
