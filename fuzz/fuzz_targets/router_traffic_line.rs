//! nginx's access log lines as the router reads them (`qd_json`, alone or after a syslog
//! header): any bytes a client's `Host` header or a broken sender could put there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::router::traffic::{Window, parse_line};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let parsed = parse_line(&line);
    let mut window = Window::default();
    if let Ok(request) = &parsed {
        window.set_domains([(request.host.clone(), "app".to_string())].into_iter().collect());
        assert!(request.tries.iter().all(|t| t.backend.parse::<std::net::SocketAddr>().is_ok()));
    }
    let counted = window.add_line(&line, 5_000).is_ok();
    assert_eq!(counted, parsed.is_ok(), "the window takes exactly what the parser does");
    let t = window.traffic(5_500);
    let requests: u64 = t.apps.values().map(|s| s.requests).sum();
    assert_eq!(requests, u64::from(counted));
    for stats in t.apps.values().chain(t.backends.values().flat_map(|b| b.values())) {
        assert!(stats.errors_5xx <= stats.requests && stats.p50_us <= stats.p99_us);
    }
});
