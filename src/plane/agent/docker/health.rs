//! The health probe: one HTTP/1.0 GET or one TCP check against the instance's published
//! endpoint. Probes go only to the address the agent publishes on, never to a container
//! or bridge address.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::protocol::HealthCheck;

/// One attempt's budget.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long a TCP check waits to see whether the connection is dropped at once.
const SETTLE: Duration = Duration::from_millis(300);

/// One probe. `Ok` carries a short description for the HEALTH_CHECK step.
pub async fn probe(addr: SocketAddr, check: &HealthCheck) -> Result<String, String> {
    let mut stream = tokio::time::timeout(ATTEMPT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr} timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    match check {
        HealthCheck::Tcp => {
            // Docker's userland proxy accepts on the published port even when nothing
            // listens in the container, then closes at once. An app that listens keeps the
            // connection open (or greets us), so wait briefly for either.
            let mut buf = [0u8; 64];
            match tokio::time::timeout(SETTLE, stream.read(&mut buf)).await {
                Err(_) | Ok(Ok(1..)) => Ok(format!("tcp {addr} accepts connections")),
                Ok(Ok(0)) => Err(format!("tcp {addr}: connection closed at once (nothing listening?)")),
                Ok(Err(e)) => Err(format!("tcp {addr}: {e}")),
            }
        }
        HealthCheck::Http { path } => {
            let request = format!(
                "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: quarterdeck-agent\r\nConnection: close\r\n\r\n"
            );
            let exchange = async {
                stream.write_all(request.as_bytes()).await?;
                let mut head = Vec::with_capacity(256);
                let mut buf = [0u8; 512];
                // The status line is all we need; stop reading once we have it.
                while !head.contains(&b'\n') && head.len() < 4096 {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                Ok::<_, std::io::Error>(head)
            };
            let head = tokio::time::timeout(ATTEMPT, exchange)
                .await
                .map_err(|_| format!("GET {path} on {addr} timed out"))?
                .map_err(|e| format!("GET {path} on {addr}: {e}"))?;
            let line = String::from_utf8_lossy(&head);
            let line = line.lines().next().unwrap_or("").trim();
            match parse_status(line) {
                Some(code) if (200..400).contains(&code) => Ok(format!("GET {path} on {addr}: {line}")),
                Some(_) => Err(format!("GET {path} on {addr} answered {line:?}")),
                None if line.is_empty() => {
                    Err(format!("GET {path} on {addr}: connection closed without an answer"))
                }
                None => Err(format!("GET {path} on {addr}: not an HTTP answer: {line:?}")),
            }
        }
    }
}

/// The status code of an HTTP status line such as `HTTP/1.0 200 OK`.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.0 200 OK"), Some(200));
        assert_eq!(parse_status("HTTP/1.1 503 Service Unavailable"), Some(503));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(""), None);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_local_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let answer = if req.starts_with("GET /ok ") { "200 OK" } else { "404 Not Found" };
                    let _ = s.write_all(format!("HTTP/1.0 {answer}\r\n\r\n").as_bytes()).await;
                });
            }
        });
        let ok = probe(addr, &HealthCheck::Http { path: "/ok".into() }).await.unwrap();
        assert!(ok.contains("200"), "{ok}");
        let err = probe(addr, &HealthCheck::Http { path: "/missing".into() }).await.unwrap_err();
        assert!(err.contains("404"), "{err}");
        // Nothing listens on a port we just closed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(probe(closed, &HealthCheck::Tcp).await.is_err());
    }
}
