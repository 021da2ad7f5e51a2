//! The socket nginx's access log comes in on: a UDP socket on 127.0.0.1 that nginx's
//! `access_log syslog:` sends one datagram per request to. Each line goes into the shared
//! traffic window; a line that is not `qd_json` is counted and logged at most once a
//! minute, never fatal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::traffic::Window;
use crate::protocol::clock::now_ms;

/// How often a bad line is logged at most.
const BAD_LINE_LOG_EVERY: Duration = Duration::from_secs(60);

/// The traffic reading: the port nginx sends to and the window its lines go into.
#[derive(Clone)]
pub struct TrafficFeed {
    pub port: u16,
    window: Arc<Mutex<Window>>,
}

impl TrafficFeed {
    /// Binds 127.0.0.1 and reads it until the process ends. The port is kept in
    /// `DIR/traffic.port` and taken again after a restart when it is free, so an nginx left
    /// running by a router that died sends to the new one at once (until then nginx logs a
    /// refused send per request in its error log).
    pub async fn start(dir: &Path) -> Result<TrafficFeed, String> {
        let file = dir.join("traffic.port");
        let before = std::fs::read_to_string(&file).ok().and_then(|p| p.trim().parse::<u16>().ok());
        let socket = match before {
            Some(port) => match UdpSocket::bind(("127.0.0.1", port)).await {
                Ok(s) => Ok(s),
                Err(_) => UdpSocket::bind("127.0.0.1:0").await,
            },
            None => UdpSocket::bind("127.0.0.1:0").await,
        }
        .map_err(|e| format!("cannot bind the access log socket on 127.0.0.1: {e}"))?;
        let port = socket.local_addr().map_err(|e| format!("the access log socket: {e}"))?.port();
        std::fs::write(&file, format!("{port}\n"))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let window = Arc::new(Mutex::new(Window::default()));
        tokio::spawn(read(socket, window.clone()));
        Ok(TrafficFeed { port, window })
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        // A panic while holding it cannot leave the counts unusable: take them as they are.
        self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Which app each domain is (lower case) after an apply.
    pub fn set_domains(&self, domains: HashMap<String, String>) {
        self.window().set_domains(domains);
    }

    /// The traffic over the window up to now.
    pub fn traffic(&self) -> crate::protocol::Traffic {
        self.window().traffic(now_ms())
    }
}

async fn read(socket: UdpSocket, window: Arc<Mutex<Window>>) {
    let mut buf = vec![0u8; 65536];
    let mut last_logged: Option<Instant> = None;
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                // A refused earlier send reported late, or the like: the socket still reads.
                log::debug!("access log socket: {e}");
                continue;
            }
        };
        let line = String::from_utf8_lossy(&buf[..n]);
        let result = window.lock().unwrap_or_else(|p| p.into_inner()).add_line(&line, now_ms());
        if let Err(e) = result
            && last_logged.is_none_or(|at| at.elapsed() >= BAD_LINE_LOG_EVERY)
        {
            last_logged = Some(Instant::now());
            let total = window.lock().unwrap_or_else(|p| p.into_inner()).bad_lines;
            log::warn!("access log line not counted ({total} so far): {e}: {:.200}", line.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_sent_to_the_socket_are_counted_and_the_port_is_kept_in_the_dir() {
        let dir = std::env::temp_dir().join(format!("qd-access-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let feed = TrafficFeed::start(&dir).await.expect("binds");
        let kept = std::fs::read_to_string(dir.join("traffic.port")).expect("the port file");
        assert_eq!(kept.trim(), feed.port.to_string());
        feed.set_domains([("shop.test".to_string(), "shop".to_string())].into_iter().collect());
        let nginx = UdpSocket::bind("127.0.0.1:0").await.expect("a sender");
        let line = r#"<190>Dec  6 15:51:33 qd: {"h":"shop.test","ua":"127.0.0.1:1","s":"500","us":"500","urt":"0.002","rt":"0.002"}"#;
        for datagram in [line, "garbage", line] {
            nginx.send_to(datagram.as_bytes(), ("127.0.0.1", feed.port)).await.expect("sent");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let t = feed.traffic();
            if t.apps.get("shop").is_some_and(|s| s.requests == 2) {
                assert_eq!(t.backends["shop"]["127.0.0.1:1"].errors_5xx, 2);
                assert_eq!(feed.window().bad_lines, 1);
                break;
            }
            assert!(Instant::now() < deadline, "the lines were not counted: {t:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The port is taken (by the first): a second reader takes another and keeps that.
        let second = TrafficFeed::start(&dir).await.expect("binds");
        assert_ne!(second.port, feed.port);
        let kept = std::fs::read_to_string(dir.join("traffic.port")).expect("the port file");
        assert_eq!(kept.trim(), second.port.to_string());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
