//! Which rows a table shows, in which order: the filter (`/`) and the sort (`s`) turn the
//! replica's collections into an index of row keys. The index is cached per replica
//! generation and filter/sort settings, so frames only look rows up; views still build
//! cells for the visible window only.
//!
//! A row's cells come from one function per table (`cells`): the filter matches their
//! text and the sort orders by their keys, so both see what the screen shows.
//!
//! Filter syntax: a case-insensitive regex over the row's text (every column as shown,
//! plus flags such as `silent` and `unknown`); text that is not a valid regex is matched
//! as a plain substring instead; a leading `!` keeps the rows that do not match.
//! The `regex` crate is already built for async-nats, so using it costs no build time or
//! binary size; a home-made glob would have been the fallback.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::sort_key::{SortKey, compare};

use super::cells::RowSource;
use super::facts::FleetFacts;
use super::row_cache::{Refreshed, RowCache};
use super::traffic::TrafficBook;
use crate::actions::Panel;
use crate::backend::Replica;
use crate::protocol::Event;

/// A row's identity, stable across updates: a host, instance or app id, a route's
/// `(app, backend)`, an alert's id, or an event's revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKey {
    Id(String),
    Route(String, String),
    Rev(u64),
}

impl RowKey {
    /// What `y` copies.
    pub fn id_text(&self) -> String {
        match self {
            RowKey::Id(id) => id.clone(),
            RowKey::Route(_, backend) => backend.clone(),
            RowKey::Rev(rev) => rev.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Regex(regex::Regex),
    /// Lower-cased.
    Substring(String),
}

/// An active filter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// As typed, `!` included.
    pub text: String,
    pub invert: bool,
    matcher: Matcher,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Filter {
    /// `None` for an empty filter (`""` or a lone `!`).
    pub fn parse(text: &str) -> Option<Filter> {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if pattern.is_empty() {
            return None;
        }
        let matcher =
            match regex::RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 20).build() {
                Ok(re) => Matcher::Regex(re),
                Err(_) => Matcher::Substring(pattern.to_lowercase()),
            };
        Some(Filter { text: text.to_string(), invert, matcher })
    }

    pub fn is_regex(&self) -> bool {
        matches!(self.matcher, Matcher::Regex(_))
    }

    /// Whether a row whose text is `hay` is shown.
    pub fn keeps(&self, hay: &str) -> bool {
        let hit = match &self.matcher {
            Matcher::Regex(re) => re.is_match(hay),
            Matcher::Substring(s) => hay.to_lowercase().contains(s.as_str()),
        };
        hit != self.invert
    }

    /// For the panel title: `/shop/`, `!/shop/`, or `"shop("` for a substring.
    pub fn label(&self) -> String {
        let pattern = self.text.strip_prefix('!').unwrap_or(&self.text);
        let bang = if self.invert { "!" } else { "" };
        if self.is_regex() { format!("{bang}/{pattern}/") } else { format!("{bang}\"{pattern}\"") }
    }
}

/// The sort: a column of the panel's table and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

/// How the operator moves the sort: `s`, `<`, or Shift and a column's letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortStep {
    /// The next column, ascending; past the last, the natural order.
    Next,
    /// The previous column, ascending; before the first, the natural order.
    Prev,
    /// The first column whose title starts with the letter; on it, the other way round;
    /// from descending, the next column with that letter (k9s).
    Letter(char),
}

/// The sort after `step` on a table with these column titles, or what is wrong with it.
pub fn next_sort(current: Option<Sort>, titles: &[&str], step: SortStep) -> Result<Option<Sort>, String> {
    let up = |column: usize| Some(Sort { column, descending: false });
    let n = titles.len();
    Ok(match (step, current) {
        (_, _) if n == 0 => None,
        (SortStep::Next, None) => up(0),
        (SortStep::Next, Some(s)) => (s.column + 1 < n).then_some(s.column + 1).and_then(up),
        (SortStep::Prev, None) => up(n - 1),
        (SortStep::Prev, Some(s)) => s.column.checked_sub(1).and_then(up),
        (SortStep::Letter(c), current) => {
            let starts = |t: &&str| t.chars().next().is_some_and(|f| f.eq_ignore_ascii_case(&c));
            let matching: Vec<usize> = (0..n).filter(|&i| starts(&titles[i])).collect();
            let Some(&first) = matching.first() else {
                let letter = c.to_ascii_uppercase();
                return Err(format!("no column starts with {letter}: {}", titles.join(" ")));
            };
            match current {
                Some(s) if matching.contains(&s.column) && !s.descending => {
                    Some(Sort { column: s.column, descending: true })
                }
                Some(s) if matching.contains(&s.column) => {
                    up(matching.iter().copied().find(|&i| i > s.column).unwrap_or(first))
                }
                _ => up(first),
            }
        }
    })
}

/// A table's rows in order, for one replica generation and one filter/sort setting.
#[derive(Debug, Clone, Default)]
pub struct RowIndex {
    /// The replica generation, the settings version and the unfiltered row count it was
    /// built for. The count catches changes made to the replica without a new generation.
    pub stamp: (u64, u64, usize),
    pub keys: Vec<RowKey>,
    /// Rows before filtering.
    pub total: usize,
    /// When the rows were last put in order (ms since epoch).
    pub ordered_at: u64,
    /// Whether rows changed their place since: the order follows within `RESORT_MS`.
    pub resort_pending: bool,
}

/// How long a sorted or filtered table keeps its order while heartbeats and events move
/// its rows (their text is current at once): it follows at most once a second, as `top`
/// re-sorts per refresh. Rows do not jump at every heartbeat, and a sort of 20,000 rows
/// is not paid for at every frame. A new filter or sort, and rows coming or going, apply
/// at once.
pub const RESORT_MS: u64 = 1000;

/// Per-panel table state: filter, sort, marks and the cached index.
#[derive(Debug, Clone, Default)]
pub struct PanelView {
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    pub marks: BTreeSet<RowKey>,
    /// Bumped whenever filter or sort changes, so the index is rebuilt.
    pub settings: u64,
    pub index: Option<RowIndex>,
    /// The rows the filter and the sort look at, kept between frames.
    pub cache: super::row_cache::RowCache,
}

impl PanelView {
    pub fn set_filter(&mut self, filter: Option<Filter>) {
        if self.filter != filter {
            self.filter = filter;
            self.settings += 1;
        }
    }

    pub fn set_sort(&mut self, sort: Option<Sort>) {
        if self.sort != sort {
            self.sort = sort;
            self.settings += 1;
        }
    }
}

/// The row keys of a panel in natural order: by id, routes by `(app, backend)`, events and
/// audit records newest first, alerts firing first (`alerts::natural`).
pub(super) fn natural(replica: &Replica, panel: Panel) -> Vec<RowKey> {
    let f = &replica.fleet;
    match panel {
        Panel::Hosts => f.hosts.keys().cloned().map(RowKey::Id).collect(),
        Panel::Instances => f.instances.keys().cloned().map(RowKey::Id).collect(),
        Panel::Routes => f.routes.keys().map(|(a, b)| RowKey::Route(a.clone(), b.clone())).collect(),
        Panel::Events => replica.events.iter().rev().map(|e| RowKey::Rev(e.rev)).collect(),
        Panel::Audit => replica.audit.iter().rev().map(|e| RowKey::Rev(e.rev)).collect(),
        Panel::Apps => f.apps.keys().cloned().map(RowKey::Id).collect(),
        Panel::Alerts => super::alerts::natural(replica),
    }
}

/// An event by revision; events are kept in revision order.
pub fn event_by_rev(events: &std::collections::VecDeque<Event>, rev: u64) -> Option<&Event> {
    events.binary_search_by_key(&rev, |e| e.rev).ok().and_then(|i| events.get(i))
}

/// What an index was built from. In natural order (no filter, no sort) only rows coming
/// or going matter, so neither heartbeats nor state changes invalidate it; a filter or a
/// sort may look at anything in a row, so then every change is looked at (and the row
/// cache rebuilds only the rows it touched).
pub fn stamp_of(replica: &Replica, panel: Panel, view: &PanelView, total: usize) -> (u64, u64, usize) {
    let data = if view.filter.is_none() && view.sort.is_none() {
        members(replica, panel)
    } else {
        replica.generation
    };
    (data, view.settings, total)
}

/// The counter of a panel's rows coming and going.
pub fn members(replica: &Replica, panel: Panel) -> u64 {
    let m = &replica.members;
    match panel {
        Panel::Hosts => m.hosts,
        Panel::Instances => m.instances,
        Panel::Routes => m.routes,
        Panel::Events => m.events,
        Panel::Audit => m.audit,
        Panel::Apps => m.apps,
        Panel::Alerts => m.alerts,
    }
}

/// Rows before the filter.
pub fn total(replica: &Replica, panel: Panel) -> usize {
    let f = &replica.fleet;
    match panel {
        Panel::Hosts => f.hosts.len(),
        Panel::Instances => f.instances.len(),
        Panel::Routes => f.routes.len(),
        Panel::Events => replica.events.len(),
        Panel::Audit => replica.audit.len(),
        Panel::Apps => f.apps.len(),
        Panel::Alerts => super::alerts::total(replica),
    }
}

/// Brings a panel's index up to date: natural order, then the filter, then a stable sort,
/// over the rows its cache keeps (`row_cache`). When no row changed its place or its
/// filter result, the index stays as it is.
pub fn refresh(
    replica: &Replica,
    facts: &FleetFacts,
    traffic: &TrafficBook,
    now: u64,
    panel: Panel,
    view: &mut PanelView,
) {
    let total = total(replica, panel);
    let stamp = stamp_of(replica, panel, view, total);
    if view.filter.is_none() && view.sort.is_none() {
        // Natural order needs no rows built; the cache's memory goes back.
        view.cache.release();
        view.index = Some(RowIndex {
            stamp,
            keys: natural(replica, panel),
            total,
            ordered_at: now,
            resort_pending: false,
        });
        return;
    }
    let sort_column = view.sort.map(|s| s.column);
    let refreshed = view.cache.refresh(
        RowSource { replica, facts, traffic, now },
        panel,
        view.filter.as_ref(),
        sort_column,
    );
    let settings = view.settings;
    if let (Refreshed::Some { moved }, Some(ix)) = (refreshed, view.index.as_mut())
        && ix.stamp.1 == settings
    {
        ix.resort_pending |= moved;
        if !ix.resort_pending || now < ix.ordered_at + RESORT_MS {
            ix.stamp = stamp;
            return;
        }
    }
    view.cache.orders += 1;
    view.index = Some(order(&view.cache, view.sort, stamp, total, now));
}

/// Builds a panel's index from scratch, for a caller that cannot keep it.
pub fn build(
    replica: &Replica,
    facts: &FleetFacts,
    traffic: &TrafficBook,
    now: u64,
    panel: Panel,
    view: &PanelView,
) -> RowIndex {
    let mut view = PanelView { cache: Default::default(), index: None, ..view.clone() };
    refresh(replica, facts, traffic, now, panel, &mut view);
    view.index.unwrap_or_default()
}

/// The kept rows, filtered, in sort order: by the sort column's keys (`cells::compare`),
/// a stable sort, so rows with equal keys keep their natural order.
fn order(cache: &RowCache, sort: Option<Sort>, stamp: (u64, u64, usize), total: usize, now: u64) -> RowIndex {
    let mut rows: Vec<usize> = (0..cache.keys.len()).filter(|&p| cache.keep[p]).collect();
    let missing = SortKey::Missing;
    let key = |p: usize, column: usize| cache.sort_keys[p].get(column).unwrap_or(&missing);
    let direct = |o: Ordering, sort: Sort| if sort.descending { o.reverse() } else { o };
    if let Some(sort) = sort
        && rows.iter().all(|&p| matches!(key(p, sort.column), SortKey::Num(_)))
    {
        // Numbers (a metric, a count) sort on a copy of the keys next to the rows: the
        // comparisons then read one array, not each row's keys.
        let mut keyed: Vec<(f64, usize)> = rows
            .iter()
            .map(|&p| match key(p, sort.column) {
                SortKey::Num(v) => (*v, p),
                _ => (0.0, p),
            })
            .collect();
        keyed.sort_by(|a, b| direct(a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal), sort));
        rows = keyed.into_iter().map(|(_, p)| p).collect();
    } else if let Some(sort) = sort {
        rows.sort_by(|&a, &b| direct(compare(key(a, sort.column), key(b, sort.column)), sort));
    }
    let keys = rows.into_iter().map(|p| cache.keys[p].clone()).collect();
    RowIndex { stamp, keys, total, ordered_at: now, resort_pending: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_case_insensitive_regexes_with_a_substring_fallback_and_bang() {
        let f = Filter::parse("^SHOP").expect("a filter");
        assert!(f.is_regex() && f.keeps("shop-web 1.0.0") && !f.keeps("api-gateway shop"));
        let f = Filter::parse("!shop").expect("a filter");
        assert!(!f.keeps("shop-web") && f.keeps("api-gateway"));
        assert_eq!(f.label(), "!/shop/");
        let f = Filter::parse("web(").expect("a filter");
        assert!(!f.is_regex() && f.keeps("shop-WEB(1)") && !f.keeps("shop-web"));
        assert_eq!(f.label(), "\"web(\"");
        assert!(Filter::parse("!").is_none() && Filter::parse("").is_none());
    }

    #[test]
    fn sorting_cycles_both_ways_and_a_letter_jumps_to_its_column() {
        let titles = ["HOST", "AZ", "HB", "#"];
        let s = |column, descending| Some(Sort { column, descending });
        let step = |cur, st| next_sort(cur, &titles, st).expect("a sort");
        assert_eq!(step(None, SortStep::Next), s(0, false));
        assert_eq!(step(s(3, true), SortStep::Next), None);
        assert_eq!(step(s(1, true), SortStep::Next), s(2, false));
        assert_eq!(step(None, SortStep::Prev), s(3, false));
        assert_eq!(step(s(2, false), SortStep::Prev), s(1, false));
        assert_eq!(step(s(0, false), SortStep::Prev), None);
        // H: HOST ↑, HOST ↓, HB ↑, HB ↓, HOST ↑.
        let mut cur = None;
        let mut seen = vec![];
        for _ in 0..5 {
            cur = step(cur, SortStep::Letter('H'));
            seen.push(cur);
        }
        assert_eq!(seen, vec![s(0, false), s(0, true), s(2, false), s(2, true), s(0, false)]);
        assert_eq!(step(s(1, false), SortStep::Letter('#')), s(3, false));
        let err = next_sort(None, &titles, SortStep::Letter('Z')).expect_err("no such column");
        assert_eq!(err, "no column starts with Z: HOST AZ HB #");
        assert_eq!(next_sort(None, &[], SortStep::Next), Ok(None));
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod headless_tests;
