//! The nginx configuration the router renders from a route table that came off the bus.
//! Whatever the apps, domains and backends hold, the render never panics, and what it
//! writes stays well-formed: braces balance, every line is one directive, and every name,
//! domain and backend in the file passed its validation, so no value injects a `;`, a
//! `{` or a new line.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::router::config::{AccessLog, Target, failing_line, render, render_without};
use quarterdeck::protocol::{AppSpec, Fleet, Route, RouteState, RunSpec, validate};

/// Text the fuzzer can steer: raw, or built from characters that matter to nginx and to
/// the validators, so near-valid names come up often.
#[derive(Arbitrary, Debug)]
enum Text {
    Raw(String),
    Pieces(Vec<u8>),
}

const ALPHABET: &[char] =
    &['a', 'b', 'z', '0', '9', '-', '.', ';', '{', '}', '\n', ' ', '$', '"', '\\', '#', 'A', '_', ':', 'é'];

impl Text {
    fn get(&self) -> String {
        match self {
            Text::Raw(s) => s.clone(),
            Text::Pieces(p) => p.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()]).collect(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Backend {
    Raw(Text),
    Addr([u8; 4], u16),
}

#[derive(Arbitrary, Debug)]
struct RouteIn {
    backend: Backend,
    weight: u16,
    enabled: bool,
    stale: bool,
    /// A route for an app other than the one it is listed under.
    other_app: Option<Text>,
}

#[derive(Arbitrary, Debug)]
struct AppIn {
    name: Text,
    domain: Text,
    routes: Vec<RouteIn>,
    left_out: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    revision: u64,
    port: u16,
    apps: Vec<AppIn>,
}

fn fleet_of(input: &Input) -> (Fleet, BTreeSet<String>) {
    let mut fleet = Fleet { revision: input.revision, ..Fleet::default() };
    let mut left_out = BTreeSet::new();
    for a in &input.apps {
        let name = a.name.get();
        let app = AppSpec {
            name: name.clone(),
            version: "1".into(),
            instances: 1,
            image: "img".into(),
            port: 80,
            constraints: Default::default(),
            domain: a.domain.get(),
            tags: vec![],
            run: RunSpec::default(),
            shortfall: None,
            digest: None,
        };
        if a.left_out {
            left_out.insert(name.clone());
        }
        fleet.apps.insert(name.clone(), app);
        for r in &a.routes {
            let backend = match &r.backend {
                Backend::Raw(t) => t.get(),
                Backend::Addr(ip, port) => format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]),
            };
            let route = Route {
                app: r.other_app.as_ref().map(Text::get).unwrap_or_else(|| name.clone()),
                domain: String::new(),
                backend,
                state: if r.enabled { RouteState::Enabled } else { RouteState::Disabled },
                weight: u32::from(r.weight),
                stale: r.stale,
            };
            fleet.routes.insert(route.key(), route);
        }
    }
    (fleet, left_out)
}

/// The checks every rendered file must pass.
fn well_formed(config: &str, fleet: &Fleet, left_out: &BTreeSet<String>) -> usize {
    let (mut depth, mut quoted, mut escaped) = (0i64, false, false);
    for c in config.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => {
                depth -= 1;
                assert!(depth >= 0, "a '}}' closes nothing:\n{config}");
            }
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced braces:\n{config}");
    assert!(!quoted, "an unterminated string:\n{config}");
    let (mut servers, mut names) = (0, BTreeSet::new());
    for line in config.lines() {
        let t = line.trim();
        assert!(
            t.is_empty() || t.starts_with('#') || t.ends_with(';') || t.ends_with('{') || t.ends_with('}'),
            "a line that is not one directive: {line:?}\n{config}"
        );
        if let Some(domain) = t.strip_prefix("server_name ").and_then(|d| d.strip_suffix(';')) {
            assert!(validate::domain(domain).is_ok(), "server_name {domain:?} is not a valid domain");
            assert!(names.insert(domain.to_string()), "two servers named {domain}");
        }
        if let Some(rest) = t.strip_prefix("server ").filter(|r| r.contains(" weight=")) {
            let (backend, rest) = rest.split_once(' ').expect("a server line has fields");
            assert!(validate::backend(backend).is_ok(), "backend {backend:?} written");
            let weight: u32 = rest
                .strip_prefix("weight=")
                .and_then(|r| r.split(' ').next())
                .and_then(|w| w.parse().ok())
                .expect("a weight");
            assert!((1..=1000).contains(&weight), "weight {weight}");
            servers += 1;
        }
        if let Some(up) = t.strip_prefix("upstream ").and_then(|u| u.strip_suffix(" {")) {
            let app = up.strip_prefix("qd_").expect("upstreams are qd_<app>");
            assert!(app.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{up}");
        }
    }
    // Only validated apps, never one left out, have a server; only valid names appear.
    for app in fleet.apps.values() {
        let valid = validate::name("app", &app.name).is_ok() && validate::domain(&app.domain).is_ok();
        if !valid || left_out.contains(&app.name) {
            let proxy = format!("proxy_pass http://qd_{};", app.name.replace('-', "_"));
            let owned = fleet.apps.values().any(|o| {
                o.name != app.name
                    && !left_out.contains(&o.name)
                    && o.name.replace('-', "_") == app.name.replace('-', "_")
            });
            assert!(owned || !config.contains(&proxy), "{:?} reached the config", app.name);
        }
    }
    servers
}

fuzz_target!(|input: Input| {
    let (fleet, left_out) = fleet_of(&input);
    let listen = format!("127.0.0.1:{}", input.port);
    let dir = Path::new("/tmp/qd-fuzz-router");
    let target = Target {
        listen: &listen,
        dir,
        log: if input.port % 2 == 0 { AccessLog::Traffic } else { AccessLog::File },
    };
    let all = render(&fleet, target);
    let servers = well_formed(&all.config, &fleet, &BTreeSet::new());
    assert_eq!(servers, all.backends, "backends counted {} but {servers} written", all.backends);
    let some = render_without(&fleet, target, &left_out);
    well_formed(&some.config, &fleet, &left_out);
    for (range, app) in &some.blocks {
        assert!(some.config.get(range.clone()).is_some(), "a block outside the file");
        assert!(validate::name("app", app).is_ok() && !left_out.contains(app), "block of {app:?}");
    }
    let lines = some.config.lines().count();
    for line in 0..=lines + 1 {
        if let Some(app) = some.app_at_line(line) {
            assert!(some.blocks.iter().any(|(_, a)| a == app));
        }
    }
    let error = format!("nginx: [emerg] bad in {}/nginx.conf.new:{lines}", dir.display());
    assert_eq!(failing_line(&error), Some(lines));
});
