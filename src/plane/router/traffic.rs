//! Traffic per app and backend from nginx's access log: one JSON line per request (the
//! `qd_json` format `config.rs` renders), parsed here and added to a sliding window whose
//! sums go into the router's status. Pure: the tailer that brings the lines is in
//! `access_log.rs`, the clock is passed in.
//!
//! Memory is bounded whatever the request rate: the window is `SLOTS` one-second slots,
//! each holding per key a count, a 5xx count and a latency histogram of fixed size
//! (`BUCKETS` buckets, ~6% wide, so p50/p99 are within ~6% of the exact value); keys are
//! only apps of the route table (a request for an unknown `Host` is dropped) and at most
//! `MAX_BACKENDS` backends.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Deserialize;

use crate::protocol::{Traffic, TrafficStats};

/// The window's length in one-second slots.
pub const SLOTS: u64 = 10;
const SLOT_MS: u64 = 1000;
/// The most backends counted in one slot; more (a flood of retries to many addresses) are
/// dropped and counted as `dropped`.
pub const MAX_BACKENDS: usize = 1024;
/// Latency buckets: exact below 16 µs, then 16 per power of two up to 2^32 µs.
const SUB: u64 = 16;
const BUCKETS: usize = 16 * 29;

/// One access log line, as nginx wrote it (`escape=json`: every value a string).
#[derive(Debug, Deserialize)]
struct Raw {
    h: String,
    ua: String,
    s: String,
    us: String,
    urt: String,
    rt: String,
}

/// One try of a backend within a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Try {
    pub backend: String,
    /// `None` when nginx got no answer it could name (`-`).
    pub status: Option<u16>,
    pub time_us: Option<u64>,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The `Host` header, lower case, without a port.
    pub host: String,
    pub status: u16,
    pub time_us: Option<u64>,
    /// The backends tried, in order; empty when nginx answered itself.
    pub tries: Vec<Try>,
}

/// Parses one access log line: the JSON object alone, or after a syslog header (`<190>Dec
/// 6 15:51:33 qd: {...}`). Never panics; says what is wrong with a line it refuses.
pub fn parse_line(line: &str) -> Result<Request, String> {
    let json = match line.find('{') {
        Some(at) => &line[at..],
        None => return Err("no JSON object in the line".into()),
    };
    let raw: Raw = serde_json::from_str(json.trim_end()).map_err(|e| format!("not a qd_json line: {e}"))?;
    let status = raw.s.parse::<u16>().map_err(|_| format!("status {:?} is not a number", raw.s))?;
    let host = raw.h.split(':').next().unwrap_or("").to_ascii_lowercase();
    Ok(Request { host, status, time_us: seconds_to_us(&raw.rt), tries: tries(&raw.ua, &raw.us, &raw.urt) })
}

/// The tries of one request from nginx's lists: `a, b` after a retry, `a : b` across an
/// internal redirect, `-` for none. An entry that is not an `ip:port` (an upstream group's
/// name, when none of its servers was live; a unix socket) is no backend.
fn tries(addrs: &str, statuses: &str, times: &str) -> Vec<Try> {
    let split = |s: &str| -> Vec<String> {
        s.split([',', ':'].as_slice()).map(|p| p.trim().to_string()).collect::<Vec<_>>()
    };
    // Addresses hold ':' themselves: split them on the separators only.
    let addr_list: Vec<&str> = addrs.split(',').flat_map(|p| p.split(" : ")).map(str::trim).collect();
    let status_list = split(statuses);
    let time_list = split(times);
    addr_list
        .iter()
        .enumerate()
        .filter(|(_, a)| a.parse::<std::net::SocketAddr>().is_ok())
        .map(|(i, a)| Try {
            backend: a.to_string(),
            status: status_list.get(i).and_then(|s| s.parse().ok()),
            time_us: time_list.get(i).and_then(|t| seconds_to_us(t)),
        })
        .collect()
}

/// `0.004` (seconds, nginx's millisecond resolution) as µs; `None` for `-` or garbage.
fn seconds_to_us(s: &str) -> Option<u64> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac6: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    whole.checked_mul(1_000_000)?.checked_add(frac6.parse::<u64>().ok()?)
}

/// A latency histogram of fixed size.
#[derive(Clone)]
struct Histogram(Box<[u32; BUCKETS]>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(Box::new([0; BUCKETS]))
    }
}

fn bucket_of(us: u64) -> usize {
    let us = us.min((1 << 32) - 1);
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros() as u64; // >= 4
    let sub = (us >> (exp - 4)) & (SUB - 1);
    ((exp - 3) * SUB + sub) as usize
}

/// The middle of a bucket, µs.
fn bucket_value(index: usize) -> u64 {
    let i = index as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + 3;
    let low = (SUB + i % SUB) << (exp - 4);
    low + (1 << (exp - 4)) / 2
}

impl Histogram {
    fn add(&mut self, us: u64) {
        let b = &mut self.0[bucket_of(us)];
        *b = b.saturating_add(1);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// The `pct`th percentile (nearest rank), `None` when empty.
    fn percentile(&self, pct: u64) -> Option<u64> {
        let total: u64 = self.0.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = (total * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, &c) in self.0.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(bucket_value(i));
            }
        }
        None
    }
}

#[derive(Clone, Default)]
struct Counts {
    requests: u64,
    errors_5xx: u64,
    latency: Histogram,
}

impl Counts {
    fn add(&mut self, is_5xx: bool, time_us: Option<u64>) {
        self.requests += 1;
        self.errors_5xx += u64::from(is_5xx);
        if let Some(t) = time_us {
            self.latency.add(t);
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors_5xx += other.errors_5xx;
        self.latency.merge(&other.latency);
    }

    fn stats(&self) -> TrafficStats {
        TrafficStats {
            requests: self.requests,
            errors_5xx: self.errors_5xx,
            p50_us: self.latency.percentile(50),
            p99_us: self.latency.percentile(99),
        }
    }
}

#[derive(Default)]
struct Slot {
    apps: HashMap<String, Counts>,
    backends: HashMap<(String, String), Counts>,
}

/// The sliding window of traffic, and what the lines that did not count were.
#[derive(Default)]
pub struct Window {
    /// `Host` (lower case) to app, from the route table in force.
    domains: HashMap<String, String>,
    slots: VecDeque<(u64, Slot)>,
    /// When the first line came: the window is shorter until it has run `SLOTS` seconds.
    started: Option<u64>,
    /// Lines that were not `qd_json`, requests for no app's domain, backends over the cap.
    pub bad_lines: u64,
    pub unrouted: u64,
    pub dropped: u64,
}

impl Window {
    /// Sets which app each domain belongs to (after each apply).
    pub fn set_domains(&mut self, domains: HashMap<String, String>) {
        self.domains = domains;
    }

    /// Adds one log line received at `now_ms`.
    pub fn add_line(&mut self, line: &str, now_ms: u64) -> Result<(), String> {
        match parse_line(line) {
            Ok(request) => {
                self.add(&request, now_ms);
                Ok(())
            }
            Err(e) => {
                self.bad_lines += 1;
                Err(e)
            }
        }
    }

    /// Adds one request at `now_ms`: one for its app (by its `Host`, whatever answered:
    /// a 503 from nginx itself counts) and one for each backend it tried.
    pub fn add(&mut self, request: &Request, now_ms: u64) {
        let Some(app) = self.domains.get(&request.host).cloned() else {
            self.unrouted += 1;
            return;
        };
        self.started.get_or_insert(now_ms);
        let slot = self.slot(now_ms);
        let slot = &mut self.slots[slot].1;
        slot.apps.entry(app.clone()).or_default().add(request.status >= 500, request.time_us);
        for t in &request.tries {
            let key = (app.clone(), t.backend.clone());
            if !slot.backends.contains_key(&key) && slot.backends.len() >= MAX_BACKENDS {
                self.dropped += 1;
                continue;
            }
            // No status: nginx could not get an answer from it, which its client saw as a 502.
            let is_5xx = t.status.is_none_or(|s| s >= 500);
            slot.backends.entry(key).or_default().add(is_5xx, t.time_us);
        }
    }

    /// The index of the slot of `now_ms`'s second, made when it is the first line in it.
    fn slot(&mut self, now_ms: u64) -> usize {
        let second = now_ms / SLOT_MS;
        if self.slots.back().map(|(s, _)| *s) != Some(second) {
            self.slots.push_back((second, Slot::default()));
        }
        while self.slots.len() as u64 > SLOTS {
            self.slots.pop_front();
        }
        self.slots.len() - 1
    }

    /// The sums over the last `SLOTS` seconds up to `now_ms`.
    pub fn traffic(&mut self, now_ms: u64) -> Traffic {
        let oldest = (now_ms / SLOT_MS).saturating_sub(SLOTS - 1);
        while self.slots.front().is_some_and(|(s, _)| *s < oldest) {
            self.slots.pop_front();
        }
        let mut apps: BTreeMap<String, Counts> = BTreeMap::new();
        let mut backends: BTreeMap<String, BTreeMap<String, Counts>> = BTreeMap::new();
        for (_, slot) in &self.slots {
            for (app, c) in &slot.apps {
                apps.entry(app.clone()).or_default().merge(c);
            }
            for ((app, backend), c) in &slot.backends {
                backends.entry(app.clone()).or_default().entry(backend.clone()).or_default().merge(c);
            }
        }
        // From the start of the oldest second counted (or of the first line's) to now.
        let first = self.started.map_or(0, |s| s / SLOT_MS).max(oldest);
        let window_ms = now_ms.saturating_sub(first * SLOT_MS).max(1);
        Traffic {
            at: now_ms,
            window_ms,
            apps: apps.into_iter().map(|(a, c)| (a, c.stats())).collect(),
            backends: backends
                .into_iter()
                .map(|(a, b)| (a, b.into_iter().map(|(k, c)| (k, c.stats())).collect()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(h: &str, ua: &str, s: &str, us: &str, urt: &str, rt: &str) -> String {
        serde_json::json!({"h": h, "ua": ua, "s": s, "us": us, "urt": urt, "rt": rt}).to_string()
    }

    #[test]
    fn a_line_is_read_alone_or_after_a_syslog_header() {
        let l = line("Shop.Test:8080", "127.0.0.1:3001", "200", "200", "0.004", "0.005");
        let r = parse_line(&format!("<190>Dec  6 15:51:33 qd: {l}")).expect("parses");
        assert_eq!(r.host, "shop.test");
        assert_eq!((r.status, r.time_us), (200, Some(5000)));
        assert_eq!(
            r.tries,
            vec![Try { backend: "127.0.0.1:3001".into(), status: Some(200), time_us: Some(4000) }]
        );
        assert_eq!(parse_line(&l), Ok(r));
    }

    #[test]
    fn retries_redirects_and_no_upstream_are_read() {
        let r =
            parse_line(&line("a", "10.0.0.1:80, 10.0.0.2:80", "200", "502, 200", "0.001, 0.010", "0.011"))
                .expect("parses");
        assert_eq!(r.tries.len(), 2);
        assert_eq!((r.tries[0].status, r.tries[0].time_us), (Some(502), Some(1000)));
        assert_eq!((r.tries[1].backend.as_str(), r.tries[1].status), ("10.0.0.2:80", Some(200)));
        let r =
            parse_line(&line("a", "10.0.0.1:80 : 10.0.0.3:81", "200", "404 : 200", "0.002 : 0.003", "0.005"))
                .expect("parses");
        assert_eq!(
            r.tries.iter().map(|t| t.backend.as_str()).collect::<Vec<_>>(),
            ["10.0.0.1:80", "10.0.0.3:81"]
        );
        assert_eq!(r.tries[1].time_us, Some(3000));
        // nginx answered itself: no backend, and `-` is no time.
        let r = parse_line(&line("a", "-", "503", "-", "-", "0.000")).expect("parses");
        assert!(r.tries.is_empty());
        assert_eq!((r.status, r.time_us), (503, Some(0)));
        // No live server in the group: nginx names the group, which is no backend.
        let r = parse_line(&line("a", "qd_shop", "502", "502", "0.000", "0.000")).expect("parses");
        assert!(r.tries.is_empty());
        // A failed connect: the backend is tried, with no status.
        let r = parse_line(&line("a", "10.0.0.1:80", "502", "-", "0.001", "0.001")).expect("parses");
        assert_eq!(r.tries[0].status, None);
    }

    #[test]
    fn escapes_and_garbage_are_refused_or_read_never_a_panic() {
        // escape=json: a quote or a control character in the Host header arrives escaped.
        let r = parse_line(r#"{"h":"a\"b\u0001","ua":"-","s":"404","us":"-","urt":"-","rt":"0.000"}"#)
            .expect("parses");
        assert_eq!(r.host, "a\"b\u{1}");
        for bad in [
            "",
            "{",
            "no json here",
            "<190>qd: {\"h\":1}",
            r#"{"h":"a","ua":"-","s":"abc","us":"-","urt":"-","rt":"-"}"#,
            r#"{"h":"a","ua":"-","s":"99999","us":"-","urt":"-","rt":"-"}"#,
            "\u{0}\u{ffff}{}}}{",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?} was taken");
        }
        for odd in ["-", "", ".", "1.", ".5", "1.2.3", "-1", "99999999999999999999.0", "1e3", "0.0000001"] {
            let _ = seconds_to_us(odd);
        }
        assert_eq!(seconds_to_us("1."), Some(1_000_000));
        assert_eq!(seconds_to_us("0.0000019"), Some(1));
        assert_eq!(seconds_to_us("-"), None);
        assert_eq!(seconds_to_us("99999999999999999999.0"), None);
    }

    fn window() -> Window {
        let mut w = Window::default();
        w.set_domains([("shop.test".to_string(), "shop".to_string())].into_iter().collect());
        w
    }

    #[test]
    fn the_window_counts_per_app_and_backend_and_forgets_what_is_older() {
        let mut w = window();
        let t0 = 1_000_000;
        for i in 0..10 {
            let (status, us) = if i < 6 { ("500", "500") } else { ("200", "200") };
            w.add_line(&line("shop.test", "127.0.0.1:1", status, us, "0.002", "0.002"), t0 + i * 100)
                .expect("parses");
        }
        w.add_line(&line("shop.test", "-", "503", "-", "-", "0.000"), t0 + 1500).expect("parses");
        w.add_line(&line("other.test", "-", "404", "-", "-", "0.000"), t0 + 1500).expect("parses");
        assert!(w.add_line("garbage", t0 + 1500).is_err());
        let t = w.traffic(t0 + 2000);
        assert_eq!(t.window_ms, 2000);
        let app = &t.apps["shop"];
        assert_eq!((app.requests, app.errors_5xx), (11, 7));
        let backend = &t.backends["shop"]["127.0.0.1:1"];
        assert_eq!((backend.requests, backend.errors_5xx), (10, 6));
        assert_eq!(backend.pct_5xx(), Some(60.0));
        assert_eq!((w.unrouted, w.bad_lines), (1, 1));
        // Ten seconds on, the first second is out of the window; later, all of it.
        let t = w.traffic(t0 + 10_500);
        assert_eq!(t.apps["shop"].requests, 1);
        assert_eq!(t.window_ms, (SLOTS - 1) * SLOT_MS + 500, "the oldest second counted, to now");
        let t = w.traffic(t0 + 60_000);
        assert!(t.apps.is_empty() && t.backends.is_empty(), "{t:?}");
    }

    #[test]
    fn percentiles_are_within_the_buckets_width() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50), None);
        for us in 1..=1000u64 {
            h.add(us * 100);
        }
        let close = |got: Option<u64>, want: u64| {
            let got = got.expect("a value") as f64;
            assert!((got - want as f64).abs() <= want as f64 * 0.07, "{got} vs {want}");
        };
        close(h.percentile(50), 50_000);
        close(h.percentile(99), 99_000);
        h.add(u64::MAX);
        assert!(h.percentile(100).is_some_and(|v| v >= 1 << 31));
        for us in [0, 1, 15, 16, 17, 1000, 123_456, 1 << 40] {
            let b = bucket_of(us);
            assert!(b < BUCKETS, "{us} -> {b}");
            let v = bucket_value(b) as f64;
            let want = us.min((1 << 32) - 1) as f64;
            assert!((v - want).abs() <= want * 0.07 + 1.0, "{us} -> {v}");
        }
    }

    #[test]
    fn memory_is_bounded_by_the_backend_cap() {
        let mut w = window();
        for i in 0..(MAX_BACKENDS + 10) {
            let addr = format!("10.{}.{}.1:80", i / 256, i % 256);
            w.add_line(&line("shop.test", &addr, "200", "200", "0.001", "0.001"), 5_000).expect("parses");
        }
        assert_eq!(w.dropped, 10);
        assert_eq!(w.traffic(5_500).backends["shop"].len(), MAX_BACKENDS);
    }
}
