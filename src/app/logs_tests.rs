//! Headless tests of the merged logs view (`l` on an app or a route): the streams it asks
//! for, the time-ordered stable merge, the prefix, the filter to one instance, the
//! bound, and instances joining and leaving while it is open.

use super::*;
use crate::backend::Inbound;
use crate::plane::fixture::T0;
use crate::protocol::{Instance, LogBatch};

/// The fixture app with the Apps panel on the app of the most instances, and its name.
fn on_busiest_app() -> (App, String, usize) {
    let mut app = crate::views::harness::fixture_app(0);
    app.page_rows = 10;
    let mut count = std::collections::BTreeMap::<String, usize>::new();
    for i in app.replica.fleet.instances.values().filter(|i| has_log(i.state)) {
        *count.entry(i.app.clone()).or_default() += 1;
    }
    let (name, n) = count.into_iter().max_by_key(|(_, n)| *n).expect("an app");
    assert!(n >= 2, "the fixture has an app of several instances");
    app.update(Action::ShowPanel(Panel::Apps));
    for _ in 0..app.replica.fleet.apps.len() {
        if app.selected_app().is_some_and(|a| a.name == name) {
            break;
        }
        app.update(Action::Down);
    }
    assert_eq!(app.selected_app().map(|a| a.name.clone()), Some(name.clone()));
    (app, name, n)
}

fn sessions(effects: &[Effect]) -> Vec<(u64, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Logs(s) => Some((s.session, s.instance.clone())),
            _ => None,
        })
        .collect()
}

fn line(ts: u64, text: &str) -> LogLine {
    LogLine { ts, source: LogSource::Stdout, text: text.into() }
}

fn batch(app: &mut App, session: u64, seq: u64, lines: Vec<LogLine>, end: Option<&str>) {
    let body = LogBatch { instance: "x".into(), seq, lines, end: end.map(Into::into) };
    app.apply(Inbound::Logs { session, event: LogsEvent::Batch(body) });
}

fn texts(app: &App) -> Vec<String> {
    let v = app.logs.as_ref().expect("open");
    (0..v.lines.len()).filter(|&i| v.visible(i)).map(|i| v.lines[i].text.clone()).collect()
}

#[test]
fn l_on_an_app_streams_every_instance_and_merges_them_in_time_order() {
    let (mut app, name, n) = on_busiest_app();
    let effects = app.update(Action::Logs);
    let asked = sessions(&effects);
    assert_eq!(asked.len(), n, "one stream per instance: {effects:?}");
    let mut ids: Vec<&str> = asked.iter().map(|(_, i)| i.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), n, "each instance once");
    assert!(effects.iter().all(|e| matches!(e, Effect::Logs(s) if s.follow && s.tail == LOG_TAIL)));
    let view = app.logs.as_ref().expect("open");
    assert_eq!(view.app.as_deref(), Some(name.as_str()));
    assert_eq!(view.state, LogState::Connecting);
    let (a, b) = (asked[0].0, asked[1].0);
    app.apply(Inbound::Logs { session: a, event: LogsEvent::Streaming });
    assert_eq!(app.logs.as_ref().map(|v| v.state.clone()), Some(LogState::Streaming));
    // a's batch first, then b's with lines in between: merged by time.
    batch(&mut app, a, 0, vec![line(T0 + 10, "a10"), line(T0 + 30, "a30"), line(T0 + 50, "a50")], None);
    batch(&mut app, b, 0, vec![line(T0 + 20, "b20"), line(T0 + 40, "b40"), line(T0 + 60, "b60")], None);
    // A line of a whose clock went back stays after a's earlier lines (a stable merge);
    // one of unknown time goes last.
    batch(&mut app, a, 1, vec![line(T0 + 15, "a15 late clock"), line(0, "a unknown")], None);
    assert_eq!(texts(&app), ["a10", "b20", "a30", "b40", "a50", "a15 late clock", "b60", "a unknown"]);
    // Each line carries its instance's word, in the saved text too.
    let view = app.logs.as_ref().expect("open");
    let words: Vec<String> = view.feeds.iter().map(LogFeed::word).collect();
    assert!(words.iter().all(|w| w.starts_with('#')), "{words:?}");
    let saved = app.update(Action::LogView(LogKey::Save));
    let [Effect::SaveLog { path, text, lines }] = saved.as_slice() else { panic!("a save: {saved:?}") };
    assert!(path.starts_with(&format!("./{name}-")), "{path}");
    assert_eq!(*lines, 8);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.ends_with(&format!(" {} a10", words[0])), "{first}");
    // Esc stops every stream at once.
    assert_eq!(app.update(Action::Back), vec![Effect::LogsStop]);
}

#[test]
fn a_key_filters_the_merged_view_to_one_instance_and_search_follows_it() {
    let (mut app, _, _) = on_busiest_app();
    let asked = sessions(&app.update(Action::Logs));
    let index_of = |app: &App, session: u64| {
        let v = app.logs.as_ref().expect("open");
        v.feeds[v.feed_of(session).expect("a feed")].index
    };
    let (a, b) = (asked[0].0, asked[1].0);
    let (ia, ib) = (index_of(&app, a), index_of(&app, b));
    batch(&mut app, a, 0, vec![line(T0 + 1, "a error one"), line(T0 + 3, "a three")], None);
    batch(&mut app, b, 0, vec![line(T0 + 2, "b error two"), line(T0 + 4, "b four")], None);
    // `i` shows the first instance alone, then the next, then all again.
    app.update(Action::LogView(LogKey::NextInstance));
    assert_eq!(app.logs.as_ref().and_then(|v| v.only), Some(ia));
    assert_eq!(texts(&app), ["a error one", "a three"]);
    app.update(Action::LogView(LogKey::NextInstance));
    assert_eq!(app.logs.as_ref().and_then(|v| v.only), Some(ib));
    assert_eq!(texts(&app), ["b error two", "b four"]);
    // Search and its count see the shown lines only.
    app.update(Action::Filter);
    for c in "error".chars() {
        app.update(Action::Input(c));
    }
    app.update(Action::Submit);
    let v = app.logs.as_ref().expect("open");
    assert_eq!(v.match_count(), 1);
    assert_eq!(v.current.map(|c| v.lines[c].text.clone()).as_deref(), Some("b error two"));
    // A digit picks an index; the same digit again shows all; an index not there is said.
    let digit = u8::try_from(ia).expect("a small index");
    app.update(Action::LogView(LogKey::Only(digit)));
    assert_eq!(app.logs.as_ref().and_then(|v| v.only), Some(ia));
    app.update(Action::LogView(LogKey::Only(digit)));
    assert_eq!(app.logs.as_ref().and_then(|v| v.only), None);
    assert_eq!(texts(&app).len(), 4);
    app.update(Action::LogView(LogKey::Only(9)));
    assert_eq!(app.logs.as_ref().and_then(|v| v.only), None);
    assert!(app.status.as_ref().is_some_and(|s| s.text.contains("no instance #9")), "{:?}", app.status);
    // Scrolling a filtered view moves over shown lines: Top shows the first of b.
    app.update(Action::LogView(LogKey::Only(u8::try_from(ib).expect("small"))));
    app.update(Action::Top);
    let v = app.logs.as_ref().expect("open");
    assert_eq!(v.lines[v.first_shown(10)].text, "b error two");
}

#[test]
fn the_merged_buffer_keeps_its_bound_and_its_order() {
    let (mut app, _, _) = on_busiest_app();
    let asked = sessions(&app.update(Action::Logs));
    // Three rounds over every instance, each batch older than the newest line there.
    for round in 0..3u64 {
        for (k, (session, _)) in asked.iter().enumerate() {
            let lines = (0..2_000u64).map(|j| line(T0 + round * 100_000 + j * 10 + k as u64, "x")).collect();
            batch(&mut app, *session, round, lines, None);
        }
    }
    let v = app.logs.as_ref().expect("open");
    assert_eq!(v.lines.len(), LOG_LINES_KEPT);
    assert_eq!(v.dropped, 3 * 2_000 * asked.len() as u64 - LOG_LINES_KEPT as u64);
    assert!(v.lines.iter().zip(v.lines.iter().skip(1)).all(|(x, y)| x.ts <= y.ts), "in time order");
}

#[test]
fn instances_joining_a_merged_view_are_followed_and_ending_ones_say_so() {
    let (mut app, name, n) = on_busiest_app();
    let asked = sessions(&app.update(Action::Logs));
    // A deploy places a new instance: its stream is asked for at the next tick.
    let mut new: Instance =
        app.replica.fleet.instances.values().find(|i| i.app == name).cloned().expect("an instance");
    new.id = format!("{name}-9-new1");
    new.index = 9;
    new.version = "9.9.9".into();
    new.state = InstanceState::Deploying;
    app.replica.fleet.instances.insert(new.id.clone(), new.clone());
    assert!(sessions(&app.follow_log_instances()).is_empty(), "no container yet: not asked");
    app.replica.fleet.instances.get_mut(&new.id).expect("there").state = InstanceState::Running;
    let joined = sessions(&app.follow_log_instances());
    assert_eq!(app.logs.as_ref().map(|v| v.state.clone()), Some(LogState::Connecting));
    assert_eq!(joined.iter().map(|(_, i)| i.as_str()).collect::<Vec<_>>(), [new.id.as_str()]);
    assert!(sessions(&app.follow_log_instances()).is_empty(), "asked once");
    let v = app.logs.as_ref().expect("open");
    assert_eq!(v.feeds.len(), n + 1);
    let said = texts(&app);
    assert!(said.iter().any(|l| l.contains(&format!("#9 {} joined (9.9.9 on", new.id))), "{said:?}");
    // An instance removed: its agent ends its stream, which the view says; the view
    // goes on with the others.
    app.apply(Inbound::Logs { session: asked[1].0, event: LogsEvent::Streaming });
    batch(&mut app, asked[0].0, 0, vec![line(T0 + 5, "last words")], Some("the instance was removed"));
    let said = texts(&app);
    assert!(said.iter().any(|l| l.ends_with("ended: the instance was removed ──")), "{said:?}");
    assert_eq!(app.logs.as_ref().map(|v| v.state.clone()), Some(LogState::Streaming));
    // A session no longer in the view is ignored.
    batch(&mut app, 999, 0, vec![line(T0, "stray")], None);
    assert!(!texts(&app).iter().any(|l| l == "stray"));
}

#[test]
fn l_on_a_route_opens_its_apps_merged_view_and_l_elsewhere_says_what_to_select() {
    let mut app = crate::views::harness::fixture_app(0);
    app.update(Action::ShowPanel(Panel::Routes));
    let route_app = app.selected_route().map(|r| r.app.clone()).expect("a route");
    let effects = app.update(Action::Logs);
    assert!(!sessions(&effects).is_empty());
    assert_eq!(app.logs.as_ref().and_then(|v| v.app.clone()), Some(route_app));
    app.update(Action::Back);
    app.update(Action::ShowPanel(Panel::Hosts));
    assert!(app.update(Action::Logs).is_empty());
    assert!(app.status.as_ref().is_some_and(|s| s.text.contains("an app (6: Apps)")), "{:?}", app.status);
}

#[test]
fn lines_merged_above_a_paused_window_keep_it_and_the_match_on_their_lines() {
    let feeds = (0..2).map(|k| LogFeed::new(k, "h".into(), format!("a-{k}"), k as u32)).collect();
    let mut v = LogView::merged("a".into(), feeds);
    v.push(0, (0..20u64).map(|k| line(T0 + k * 10, &format!("a{k}"))));
    v.follow = false;
    v.top = 5;
    v.current = Some(8);
    // Lines of the other feed from before the window and within it.
    v.push(1, (0..10u64).map(|k| line(T0 + k * 10 + 5, &format!("b{k}"))));
    assert_eq!(v.lines.len(), 30);
    assert_eq!(v.lines[v.top].text, "a5", "the window stays on its line");
    assert_eq!(v.current.map(|c| v.lines[c].text.clone()).as_deref(), Some("a8"), "and the match");
    let order: Vec<&str> = v.lines.iter().take(6).map(|l| l.text.as_str()).collect();
    assert_eq!(order, ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn i_and_the_digits_are_the_merged_views_keys_only() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let (mut app, _, _) = on_busiest_app();
    app.update(Action::Logs);
    assert_eq!(key_action(&app, &key('3')), Some(Action::LogView(LogKey::Only(3))));
    assert_eq!(key_action(&app, &key('i')), Some(Action::LogView(LogKey::NextInstance)));
    assert_eq!(key_action(&app, &key('f')), Some(Action::LogView(LogKey::Follow)));
    // While a search is typed, they are text.
    app.update(Action::Filter);
    assert_eq!(key_action(&app, &key('3')), None);
    app.update(Action::Back);
    app.update(Action::Back);
    // One instance's view leaves them to the keymap (which does nothing with them there).
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Logs);
    assert!(app.logs.as_ref().is_some_and(|v| !v.is_merged()));
    assert_eq!(key_action(&app, &key('3')), None);
    assert_eq!(key_action(&app, &key('i')), None);
}

#[test]
fn an_app_without_a_container_yet_opens_its_view_and_its_instances_join_as_they_start() {
    let (mut app, name, _) = on_busiest_app();
    for i in app.replica.fleet.instances.values_mut().filter(|i| i.app == name) {
        i.state = InstanceState::Deploying;
    }
    assert!(sessions(&app.update(Action::Logs)).is_empty(), "nothing to read yet");
    assert!(app.logs.as_ref().is_some_and(|v| v.feeds.is_empty() && v.state == LogState::Connecting));
    let screen = crate::views::harness::text(&crate::views::harness::draw(&mut app, 110, 16));
    assert!(screen.contains(&format!("no instance of {name} has a container yet")), "{screen}");
    let first = app.replica.fleet.instances.values_mut().find(|i| i.app == name).expect("one");
    first.state = InstanceState::Starting;
    let id = first.id.clone();
    let joined = sessions(&app.follow_log_instances());
    assert_eq!(joined.iter().map(|(_, i)| i.as_str()).collect::<Vec<_>>(), [id.as_str()]);
}
