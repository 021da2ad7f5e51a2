//! Issue 20's traffic per route, end to end: a controller, a docker agent and a router on
//! real nats-server, dockerd and nginx. Requests go through the router's nginx on
//! 127.0.0.1; nginx logs each to the router, whose status carries the numbers `ctl routes
//! --json` shows.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::docker_support::site;
use crate::nats_support::{alert_of, ctl, ctl_ok, eventually};
use crate::stack_support::{Stack, StackConfig, get, site_cmd_deploy_args};

const WAIT: Duration = Duration::from_secs(40);

/// `ctl routes --json`, parsed: one object per route, with `traffic` (its backend's) and
/// `app_traffic` (every request for its app's domain) once a router reports traffic.
pub fn routes_json(url: &str) -> Value {
    let out = ctl_ok(url, &["routes", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl routes --json: {e}: {out}"))
}

/// The routes of `app` in `routes_json`.
pub fn routes_of(routes: &Value, app: &str) -> Vec<Value> {
    routes.as_array().map(|r| r.iter().filter(|r| r["app"] == app).cloned().collect()).unwrap_or_default()
}

/// One request for `path` on `host` through the router; its status.
fn status_of(port: u16, host: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad answer {raw:?}"))
}

/// Requests (host, path) through the router every 20 ms until dropped, so the routers'
/// window always holds some while a test polls.
struct Load(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Load {
    fn start(port: u16, targets: Vec<(&'static str, &'static str)>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                for (host, path) in &targets {
                    let _ = status_of(port, host, path);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Load(stop, Some(thread))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// Deploys `bad` (domain `bad.test`): the test image's httpd with a CGI at `/cgi-bin/fail`
/// that answers 500 (index.html still serves, for the health check).
fn deploy_failing_app(stack: &Stack) {
    let cgi = "#!/bin/sh\necho 'Status: 500 Internal Server Error'\necho 'Content-Type: text/plain'\necho\necho boom\n";
    let path = stack.artifact("bad", "bad v1");
    std::fs::write(&path, site(&[("index.html", "bad v1"), ("cgi-bin/fail", cgi)])).expect("artifact");
    // The artifact's files are read-only where the agent puts them: the CGI runs from a copy.
    let cmd =
        "sh -c 'cp -r /app /tmp/www && chmod +x /tmp/www/cgi-bin/fail && exec httpd -f -p 8080 -h /tmp/www'";
    let image = std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into());
    let args: Vec<String> = site_cmd_deploy_args(&image, cmd, "1", "1", &path, &[])
        .into_iter()
        .map(|a| match a.as_str() {
            "site" => "bad".to_string(),
            "site.test" => "bad.test".to_string(),
            _ => a,
        })
        .collect();
    let out = ctl(&stack.url(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.ok(), "{out}");
}

/// Waits until the alert `id` is in `state` (`ctl alerts --all --json`).
fn wait_alert(url: &str, id: &str, state: &str) -> Value {
    eventually(WAIT, &format!("{id} {state}"), || {
        let a = alert_of(url, id).ok_or_else(|| format!("no {id} yet"))?;
        if a["state"] == state { Ok(a) } else { Err(a.to_string()) }
    })
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{what} is not a number: {v}"))
}

#[test]
fn router_traffic_shows_a_failing_backends_5xx_and_fires_route_5xx() {
    let Some(stack) = Stack::start("router_traffic_shows_a_failing_backends_5xx_and_fires_route_5xx") else {
        return;
    };
    let url = stack.url();
    assert!(stack.deploy("1", "1", "site v1", &[]).ok());
    deploy_failing_app(&stack);
    let port = stack.port;
    eventually(WAIT, "bad.test answers 500 and site.test 200", || {
        match (status_of(port, "bad.test", "/cgi-bin/fail")?, get(port, "site.test")?.0) {
            (500, 200) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let _load = Load::start(port, vec![("bad.test", "/cgi-bin/fail"), ("site.test", "/index.html")]);
    let (bad, good) = eventually(WAIT, "ctl routes --json shows the traffic of both", || {
        let routes = routes_json(&url);
        let (bad, good) = (routes_of(&routes, "bad"), routes_of(&routes, "site"));
        let (Some(bad), Some(good)) = (bad.first(), good.first()) else { return Err(routes.to_string()) };
        let enough = |r: &Value| r["traffic"]["requests"].as_u64().is_some_and(|n| n >= 20);
        if enough(bad) && enough(good) { Ok((bad.clone(), good.clone())) } else { Err(routes.to_string()) }
    });
    let t = &bad["traffic"];
    assert!(number(&t["pct_5xx"], "bad's pct_5xx").expect("a share") > 50.0, "{bad}");
    assert!(number(&t["errors_per_second"], "bad's 5xx/s").expect("a rate") > 0.0, "{bad}");
    // The load sends under 50 requests/s per app: a sane rate is within it.
    let rps = number(&t["rps"], "bad's rps").expect("a rate");
    assert!(rps > 0.5 && rps < 60.0, "{bad}");
    assert!(t["p99_ms"].as_f64().is_some() && t["window_ms"].as_u64().is_some_and(|w| w > 0), "{bad}");
    assert_eq!(good["traffic"]["pct_5xx"].as_f64(), Some(0.0), "{good}");
    assert_eq!(good["traffic"]["errors_per_second"].as_f64(), Some(0.0), "{good}");
    assert!(number(&good["traffic"]["rps"], "site's rps").expect("a rate") > 0.5, "{good}");
    // The table too.
    let table = ctl_ok(&url, &["routes"]);
    assert!(
        table.lines().next().is_some_and(|h| h.contains("RPS") && h.contains("5XX%") && h.contains("P99"))
    );
    let bad_row = table.lines().find(|l| l.starts_with("bad ")).unwrap_or_default().to_string();
    assert!(bad_row.contains("100.0%"), "{table}");
    // --no-traffic: no wait, no numbers.
    let quick = ctl_ok(&url, &["routes", "--json", "--no-traffic"]);
    assert!(!quick.contains("\"traffic\""), "{quick}");
    // The controller reads the same numbers: the failing backend's 5xx share fires its
    // alert, with the share in its summary; the healthy backend has none.
    let backend = |r: &Value| r["backend"].as_str().unwrap_or_default().to_string();
    let alert = wait_alert(&url, &format!("route_5xx:route/bad/{}", backend(&bad)), "firing");
    assert!(alert["summary"].as_str().is_some_and(|s| s.contains('%')), "{alert}");
    assert!(alert_of(&url, &format!("route_5xx:route/site/{}", backend(&good))).is_none());
}

#[test]
fn router_traffic_with_every_route_disabled_counts_the_requests_and_fires_no_serving_route() {
    // A rule that would wait 10 minutes for a route-less app: the alert below can only come
    // from the routers' traffic, at once.
    let config = StackConfig {
        liveness: vec![
            "--stale-after",
            "5",
            "--lost-after",
            "100",
            "--alert-no-route-after",
            "10m",
            "--alert-resolve-after",
            "1s",
        ],
        ..StackConfig::default()
    };
    let name = "router_traffic_with_every_route_disabled_counts_the_requests_and_fires_no_serving_route";
    let Some(stack) = Stack::start_config(name, config) else {
        return;
    };
    let url = stack.url();
    assert!(stack.deploy("1", "1", "site v1", &[]).ok());
    let port = stack.port;
    eventually(WAIT, "site.test serves", || match get(port, "site.test")?.0 {
        200 => Ok(()),
        s => Err(s.to_string()),
    });
    const NO_ROUTE: &str = "no_serving_route:app/site";
    let routes = routes_json(&url);
    assert!(alert_of(&url, NO_ROUTE).is_none(), "site serves: no alert yet");
    let backends: Vec<String> =
        routes_of(&routes, "site").iter().filter_map(|r| r["backend"].as_str().map(String::from)).collect();
    for backend in &backends {
        ctl_ok(&url, &["route", "disable", "--app", "site", "--backend", backend]);
    }
    eventually(WAIT, "nginx answers for site itself", || match get(port, "site.test")?.0 {
        503 | 502 => Ok(()),
        s => Err(s.to_string()),
    });
    let _load = Load::start(port, vec![("site.test", "/index.html")]);
    let route = eventually(WAIT, "the app's 5xx in ctl routes --json", || {
        let routes = routes_json(&url);
        let site = routes_of(&routes, "site");
        let Some(route) = site.first() else { return Err(routes.to_string()) };
        let app = &route["app_traffic"];
        // Once the requests it served before are out of the window (10 s), the disabled
        // route shows none: no backend serves.
        let served = route["traffic"]["requests"].as_u64();
        match (app["requests"].as_u64(), app["pct_5xx"].as_f64(), served) {
            (Some(n), Some(p), Some(0)) if n >= 20 && p > 50.0 => Ok(route.clone()),
            _ => Err(routes.to_string()),
        }
    });
    assert_eq!(route["state"], "disabled", "{route}");
    assert!(number(&route["app_traffic"]["errors_per_second"], "5xx/s").expect("a rate") > 0.5, "{route}");
    // Traffic and no serving route: "no serving route" fires at once (the rule's own wait
    // is 10 minutes), and resolves once a route serves again.
    let alert = wait_alert(&url, NO_ROUTE, "firing");
    assert!(alert["causes"].is_array(), "{alert}");
    for backend in &backends {
        ctl_ok(&url, &["route", "enable", "--app", "site", "--backend", backend]);
    }
    wait_alert(&url, NO_ROUTE, "resolved");
}
