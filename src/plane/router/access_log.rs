//! The socket nginx's access log comes in on: a UDP socket on 127.0.0.1 that nginx's
//! `access_log syslog:` sends one datagram per request to. Each line goes into the shared
//! traffic window; a line that is not `qd_json` is counted and logged at most once a
//! minute, never fatal.

use std::collections::HashMap;
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
    /// Binds 127.0.0.1 on a port of the system's choosing and reads it until the process
    /// ends.
    pub async fn start() -> Result<TrafficFeed, String> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind the access log socket on 127.0.0.1: {e}"))?;
        let port = socket.local_addr().map_err(|e| format!("the access log socket: {e}"))?.port();
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
