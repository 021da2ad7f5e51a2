//! A webhook receiver for the alert tests: a tiny HTTP server on 127.0.0.1 that records each
//! POSTed JSON body and answers 200, or 500 to its first `fail_first` requests (to prove the
//! controller retries).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    /// Requests answered (500s included).
    pub requests: Arc<AtomicUsize>,
}

impl Receiver {
    pub fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let requests: Arc<AtomicUsize> = Arc::default();
        let (b, r) = (bodies.clone(), requests.clone());
        // Ends with the test process: the listener is never closed before.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let n = r.fetch_add(1, Ordering::SeqCst);
                if let Some(body) = serve(conn, n < fail_first) {
                    b.lock().expect("bodies").push(body);
                }
            }
        });
        Receiver { url, bodies, requests }
    }

    /// The bodies answered 200, in order.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().expect("bodies").clone()
    }

    /// The bodies for alert `id` in `state`.
    pub fn got(&self, id: &str, state: &str) -> Vec<Value> {
        self.bodies().into_iter().filter(|b| b["alert"] == id && b["state"] == state).collect()
    }
}

/// Reads one request; answers 500 when `fail`, else 200 and returns its JSON body.
fn serve(conn: TcpStream, fail: bool) -> Option<Value> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let status = if fail { "500 Internal Server Error" } else { "200 OK" };
    let mut conn = conn;
    let _ = write!(conn, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    if fail {
        return None;
    }
    serde_json::from_slice(&body).ok()
}
