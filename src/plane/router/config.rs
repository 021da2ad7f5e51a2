//! The nginx configuration for a route table: one `upstream` per app with its serving
//! backends and weights, one `server` per app domain on the listen address. Pure, so the
//! rule that nothing unvalidated reaches the file is tested without nginx.
//!
//! Every value written into the file is either validated against a strict grammar (app
//! names, domains, IPv4:port backends, weights) or produced here; a route that fails
//! validation is left out and reported, so no route can inject nginx directives.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use crate::protocol::{Fleet, validate};

/// What the router renders, and the routes it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub config: String,
    pub backends: usize,
    pub refused: Vec<String>,
    /// Where each app's `upstream` and `server` blocks are in `config` (byte ranges), so an
    /// error `nginx -t` reports at a line can be pinned on one app.
    pub blocks: Vec<(std::ops::Range<usize>, String)>,
}

impl Rendered {
    /// The app whose block holds line `line` (1-based) of the configuration.
    pub fn app_at_line(&self, line: usize) -> Option<&str> {
        let offset =
            if line <= 1 { 0 } else { self.config.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)? };
        self.blocks.iter().find(|(range, _)| range.contains(&offset)).map(|(_, app)| app.as_str())
    }
}

/// The line of the configuration that `nginx -t` names in its error (`… in
/// /path/nginx.conf.new:123`).
pub fn failing_line(error: &str) -> Option<usize> {
    let at = error.rfind(".conf.new:")? + ".conf.new:".len();
    let digits: String = error[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// How long nginx waits for a backend to accept a connection before it tries the next.
pub const CONNECT_TIMEOUT: &str = "1s";

/// How many backends one request may try (the first included).
pub const NEXT_UPSTREAM_TRIES: u32 = 4;

/// How long one request may spend trying backends in all.
pub const NEXT_UPSTREAM_TIMEOUT: &str = "10s";

struct Upstream {
    domain: String,
    servers: Vec<(String, u32)>,
}

/// Where nginx writes its access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// `DIR/logs/access.log` in nginx's own format: the traffic reading is off.
    File,
    /// `DIR/logs/traffic.log` in the `qd_json` format, buffered (64 KiB, flushed at least
    /// every second) so nginx writes in blocks, not once per request; the router tails it
    /// and rotates it (`access_log.rs`).
    Traffic,
}

/// The `qd_json` log format: what `traffic.rs` parses. `escape=json` makes every value a
/// JSON string, whatever a client puts in its `Host` header.
pub const LOG_FORMAT: &str = r#"log_format qd_json escape=json "{\"h\":\"$host\",\"ua\":\"$upstream_addr\",\"s\":\"$status\",\"us\":\"$upstream_status\",\"urt\":\"$upstream_response_time\",\"rt\":\"$request_time\"}";"#;

/// The traffic log's path inside the router's directory.
pub const TRAFFIC_LOG: &str = "logs/traffic.log";

/// Where the router's nginx is, and how it logs.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `IP:PORT` nginx listens on.
    pub listen: &'a str,
    /// The router's state directory: pid, logs and temp paths live there.
    pub dir: &'a Path,
    pub log: AccessLog,
}

/// Renders the whole nginx.conf.
pub fn render(fleet: &Fleet, target: Target) -> Rendered {
    render_without(fleet, target, &BTreeSet::new())
}

/// [`render`], leaving out the apps in `left_out` (their server would fail `nginx -t`).
pub fn render_without(fleet: &Fleet, target: Target, left_out: &BTreeSet<String>) -> Rendered {
    let (listen, dir) = (target.listen, target.dir);
    let mut refused = Vec::new();
    let upstreams = upstreams_of(fleet, left_out, &mut refused);
    // Counted once the file's apps are settled: an app refused for its domain serves none.
    let backends = upstreams.values().map(|u| u.servers.len()).sum();
    let mut c = String::new();
    write_http_head(&mut c, fleet.revision, dir, &upstreams);
    write_access_log(&mut c, dir, target.log);
    let blocks = write_apps(&mut c, listen, &upstreams);
    let _ = writeln!(c, "    server {{");
    let _ = writeln!(c, "        listen {listen} default_server;");
    let _ = writeln!(c, "        location / {{ return 404 \"no app has this domain\\n\"; }}");
    let _ = writeln!(c, "    }}");
    let _ = writeln!(c, "}}");
    Rendered { config: c, backends, refused, blocks }
}

/// Each app's upstream, with the routes that serve, from valid values only: what is not
/// valid is said in `refused`, and so is a second app on a domain already served (nginx
/// would pick one silently; the first is kept).
fn upstreams_of(
    fleet: &Fleet,
    left_out: &BTreeSet<String>,
    refused: &mut Vec<String>,
) -> BTreeMap<String, Upstream> {
    let mut upstreams: BTreeMap<String, Upstream> = BTreeMap::new();
    for app in fleet.apps.values().filter(|a| !left_out.contains(&a.name)) {
        match (validate::name("app", &app.name), validate::domain(&app.domain)) {
            (Ok(()), Ok(())) => {
                upstreams
                    .insert(app.name.clone(), Upstream { domain: app.domain.clone(), servers: Vec::new() });
            }
            (Err(e), _) | (_, Err(e)) => refused.push(e),
        }
    }
    for route in fleet.routes.values().filter(|r| r.serves()) {
        let Some(up) = upstreams.get_mut(&route.app) else { continue };
        if let Err(e) = validate::backend(&route.backend) {
            refused.push(e);
            continue;
        }
        if !validate::WEIGHTS.contains(&route.weight) {
            refused.push(format!(
                "route {} -> {}: weight {} out of 1..1000",
                route.app, route.backend, route.weight
            ));
            continue;
        }
        up.servers.push((route.backend.clone(), route.weight));
    }
    let mut seen_domains = BTreeMap::new();
    upstreams.retain(|app, up| match seen_domains.insert(up.domain.clone(), app.clone()) {
        None => true,
        Some(first) => {
            refused.push(format!("app {app} uses domain {} already served by {first}", up.domain));
            seen_domains.insert(up.domain.clone(), first);
            false
        }
    });
    upstreams
}

/// The file's head, up to the apps: the process, its paths under `dir`, the server names'
/// hash and how a request moves past a backend that fails.
fn write_http_head(c: &mut String, revision: u64, dir: &Path, upstreams: &BTreeMap<String, Upstream>) {
    let d = dir.display();
    let _ = writeln!(
        c,
        "# Written by quarterdeck router at revision {revision}. Do not edit: it is rewritten on every change."
    );
    let _ = writeln!(c, "worker_processes 1;");
    let _ = writeln!(c, "pid {d}/nginx.pid;");
    let _ = writeln!(c, "error_log {d}/logs/error.log warn;");
    let _ = writeln!(c, "events {{ worker_connections 1024; }}");
    let _ = writeln!(c, "http {{");
    // Sized for the names in use: with the default buckets (64 bytes) a valid 72-character
    // domain fails `nginx -t`, and then no later change would be applied.
    let (bucket, max_size) = names_hash(upstreams.values().map(|u| u.domain.len()));
    let _ = writeln!(c, "    server_names_hash_bucket_size {bucket};");
    let _ = writeln!(c, "    server_names_hash_max_size {max_size};");
    for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = writeln!(c, "    {t}_temp_path {d}/tmp/{t};");
    }
    // A backend that is going away, or whose host is cut off the network, is skipped for
    // the next one rather than failing the request: rolling deploys, restarts and
    // partitions cost latency, not errors. A connect that does not complete in
    // CONNECT_TIMEOUT is a partitioned host (a backend on a live host accepts at once);
    // the tries and the time spent on them are bounded, so a request never walks a whole
    // large upstream when every backend is gone.
    let _ = writeln!(c, "    proxy_connect_timeout {CONNECT_TIMEOUT};");
    let _ = writeln!(c, "    proxy_next_upstream error timeout http_502 http_503;");
    let _ = writeln!(c, "    proxy_next_upstream_tries {NEXT_UPSTREAM_TRIES};");
    let _ = writeln!(c, "    proxy_next_upstream_timeout {NEXT_UPSTREAM_TIMEOUT};");
}

fn write_access_log(c: &mut String, dir: &Path, log: AccessLog) {
    match log {
        AccessLog::File => {
            let _ = writeln!(c, "    access_log {}/logs/access.log;", dir.display());
        }
        AccessLog::Traffic => {
            let _ = writeln!(c, "    {LOG_FORMAT}");
            let _ =
                writeln!(c, "    access_log {}/{TRAFFIC_LOG} qd_json buffer=64k flush=1s;", dir.display());
        }
    }
}

/// Each app's upstream (when it has backends) and server block; returns where each block
/// is in the file, by app, so one that `nginx -t` refuses can be left out.
fn write_apps(
    c: &mut String,
    listen: &str,
    upstreams: &BTreeMap<String, Upstream>,
) -> Vec<(std::ops::Range<usize>, String)> {
    let mut blocks = Vec::new();
    for (app, up) in upstreams {
        if up.servers.is_empty() {
            continue;
        }
        let start = c.len();
        let _ = writeln!(c, "    upstream qd_{} {{", app.replace('-', "_"));
        for (backend, weight) in &up.servers {
            let _ = writeln!(c, "        server {backend} weight={weight} max_fails=1 fail_timeout=2s;");
        }
        let _ = writeln!(c, "    }}");
        blocks.push((start..c.len(), app.clone()));
    }
    for (app, up) in upstreams {
        let start = c.len();
        let _ = writeln!(c, "    server {{");
        let _ = writeln!(c, "        listen {listen};");
        let _ = writeln!(c, "        server_name {};", up.domain);
        if up.servers.is_empty() {
            let _ =
                writeln!(c, "        location / {{ return 503 \"no backend of {app} is in service\\n\"; }}");
        } else {
            let _ = writeln!(c, "        location / {{");
            let _ = writeln!(c, "            proxy_set_header Host $host;");
            // Which backend answered: the first thing an operator asks when one misbehaves.
            let _ = writeln!(c, "            add_header X-Quarterdeck-Backend $upstream_addr always;");
            let _ = writeln!(c, "            proxy_pass http://qd_{};", app.replace('-', "_"));
            let _ = writeln!(c, "        }}");
        }
        let _ = writeln!(c, "    }}");
        blocks.push((start..c.len(), app.clone()));
    }
    blocks
}

/// `server_names_hash_bucket_size` and `_max_size` for server names of these lengths. A
/// name takes a pointer plus its length and 2 bytes, pointer-aligned, and a bucket needs a
/// pointer more (nginx's `NGX_HASH_ELT_SIZE`); sizes are powers of two, at least nginx's
/// defaults (64 and 512).
fn names_hash(lengths: impl Iterator<Item = usize>) -> (usize, usize) {
    let (mut longest, mut count) = (0usize, 0usize);
    for len in lengths {
        longest = longest.max(len);
        count += 1;
    }
    let element = 8 + (longest + 2).div_ceil(8) * 8;
    let bucket = (element + 8).next_power_of_two().max(64);
    let max_size = (count * 2).next_power_of_two().max(512);
    (bucket, max_size)
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn the_names_hash_fits_the_longest_domain() {
        assert_eq!(super::names_hash([].into_iter()), (64, 512));
        assert_eq!(super::names_hash([10, 40].into_iter()), (64, 512));
        // 72 characters: 8 + 80 + 8 = 96 bytes, over nginx's default of 64.
        assert_eq!(super::names_hash([72].into_iter()).0, 128);
        assert_eq!(super::names_hash([253].into_iter()).0, 512);
        assert_eq!(super::names_hash(std::iter::repeat_n(20, 1000)).1, 2048);
    }

    use super::*;
    use crate::protocol::{AppSpec, Route, RouteState, RunSpec};

    pub(crate) fn app(name: &str, domain: &str) -> AppSpec {
        AppSpec {
            name: name.into(),
            version: "1".into(),
            instances: 1,
            image: "img".into(),
            port: 80,
            constraints: Default::default(),
            domain: domain.into(),
            tags: vec![],
            run: RunSpec::default(),
            shortfall: None,
            digest: None,
        }
    }

    fn route(app: &str, backend: &str, state: RouteState) -> Route {
        Route {
            app: app.into(),
            domain: String::new(),
            backend: backend.into(),
            state,
            weight: 2,
            stale: false,
        }
    }

    pub(crate) fn target() -> Target<'static> {
        Target { listen: "127.0.0.1:8080", dir: Path::new("/tmp/qd"), log: AccessLog::File }
    }

    pub(crate) fn fleet(apps: Vec<AppSpec>, routes: Vec<Route>) -> Fleet {
        let mut f = Fleet::default();
        for a in apps {
            f.apps.insert(a.name.clone(), a);
        }
        for r in routes {
            f.routes.insert(r.key(), r);
        }
        f
    }

    #[test]
    fn upstreams_hold_only_serving_backends() {
        let mut stale = route("shop-web", "127.0.0.1:3003", RouteState::Enabled);
        stale.stale = true;
        let f = fleet(
            vec![app("shop-web", "shop.local"), app("api", "api.local")],
            vec![
                route("shop-web", "127.0.0.1:3001", RouteState::Enabled),
                route("shop-web", "127.0.0.1:3002", RouteState::Disabled),
                stale,
                route("api", "127.0.0.1:4001", RouteState::Disabled),
            ],
        );
        let r = render(&f, target());
        assert!(r.config.contains("server 127.0.0.1:3001 weight=2"), "{}", r.config);
        assert!(!r.config.contains("3002") && !r.config.contains("3003"));
        assert!(r.config.contains("server_name shop.local;"));
        assert!(r.config.contains("return 503"), "an app with no backend answers 503");
        assert_eq!(r.backends, 1);
        assert!(r.refused.is_empty());
    }

    #[test]
    fn a_backend_that_does_not_answer_costs_a_retry_not_a_failed_request() {
        let f =
            fleet(vec![app("web", "web.local")], vec![route("web", "127.0.0.1:3001", RouteState::Enabled)]);
        let c = render(&f, target()).config;
        let directive = |name: &str| -> Vec<String> {
            c.lines()
                .map(str::trim)
                .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.strip_suffix(';'))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        let next = directive("proxy_next_upstream");
        assert_eq!(next.len(), 1, "one proxy_next_upstream in http: {c}");
        let on: Vec<&str> = next[0].split(' ').collect();
        assert!(
            on.contains(&"error") && on.contains(&"timeout"),
            "retries on connect errors and timeouts: {c}"
        );
        assert_eq!(directive("proxy_connect_timeout"), ["1s"], "a short connect timeout: {c}");
        // Bounded: 0 would mean as many tries as the upstream has servers, and no time limit.
        assert_eq!(directive("proxy_next_upstream_tries"), ["4"], "{c}");
        assert_eq!(directive("proxy_next_upstream_timeout"), ["10s"], "{c}");
    }

    #[test]
    fn no_value_can_inject_directives() {
        let evil_domains =
            ["a.local; include /etc/passwd", "a{b}.local", "x.local\nserver", "a b.local", "$host"];
        for d in evil_domains {
            let r = render(&fleet(vec![app("web", d)], vec![]), target());
            assert!(!r.config.contains(d), "{d:?} reached the config");
            assert_eq!(r.refused.len(), 1, "{d:?} must be refused");
        }
        let evil_backends = ["1.2.3.4:80; deny all", "1.2.3.4:0", "evil.host:80", "1.2.3.4:80}", "1.2.3.4"];
        for b in evil_backends {
            let f = fleet(vec![app("web", "web.local")], vec![route("web", b, RouteState::Enabled)]);
            let r = render(&f, target());
            assert!(!r.config.contains(b), "{b:?} reached the config");
            assert_eq!(r.refused.len(), 1, "{b:?} must be refused");
        }
        let bad_app = app("web;evil", "web.local");
        let r = render(&fleet(vec![bad_app], vec![]), target());
        assert!(!r.config.contains("evil"));
    }

    #[test]
    fn the_same_table_renders_the_same_file() {
        let f =
            fleet(vec![app("web", "web.local")], vec![route("web", "127.0.0.1:3001", RouteState::Enabled)]);
        let a = render(&f, target());
        let b = render(&f.clone(), target());
        assert_eq!(a, b);
    }

    #[test]
    fn a_shared_domain_is_refused_not_silently_merged() {
        let f = fleet(vec![app("a", "same.local"), app("b", "same.local")], vec![]);
        let r = render(&f, target());
        assert_eq!(r.config.matches("server_name same.local;").count(), 1);
        assert!(r.refused[0].contains("already served by a"), "{:?}", r.refused);
    }

    /// Found by the `router_render` fuzz target: the backends of an app refused for its
    /// domain were counted (the router's status said 1 backend, the file held none).
    #[test]
    fn the_backends_counted_are_the_ones_written() {
        let f = fleet(
            vec![app("a", "same.local"), app("b", "same.local")],
            vec![
                route("b", "10.0.0.1:80", RouteState::Enabled),
                route("a", "10.0.0.2:80", RouteState::Enabled),
            ],
        );
        let r = render(&f, target());
        assert!(!r.config.contains("10.0.0.1:80"), "{}", r.config);
        assert_eq!(r.backends, r.config.matches(" weight=").count());
        assert_eq!(r.backends, 1);
    }

    #[test]
    fn the_access_log_goes_to_the_traffic_file_or_to_the_plain_file() {
        let f = fleet(vec![app("web", "web.local")], vec![]);
        let traffic = render(&f, Target { log: AccessLog::Traffic, ..target() }).config;
        assert!(traffic.contains("    access_log /tmp/qd/logs/traffic.log qd_json buffer=64k flush=1s;\n"));
        let format = traffic.lines().find(|l| l.trim_start().starts_with("log_format qd_json escape=json "));
        let format = format.expect("the format is defined");
        for var in [
            "$host",
            "$upstream_addr",
            "$status",
            "$upstream_status",
            "$upstream_response_time",
            "$request_time",
        ] {
            assert!(format.contains(var), "{var} missing: {format}");
        }
        assert!(!traffic.contains("access.log"), "{traffic}");
        let file = render(&f, target()).config;
        assert!(file.contains("access_log /tmp/qd/logs/access.log;") && !file.contains("qd_json"), "{file}");
    }
}
