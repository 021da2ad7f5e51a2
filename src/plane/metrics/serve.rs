//! The `/metrics` endpoint: HTTP/1 (hyper) on the address `--metrics-listen` names. `GET`
//! (or `HEAD`) `/metrics` answers the service's registry in the crate's text encoding;
//! another path is 404, another method 405. The server and the tasks it owns (the bus
//! reconnect counter) end when it is stopped or dropped, with the service that holds it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::Scrape;

/// Scrapes served at once; a connection past this is closed at once. Prometheus scrapes
/// one at a time per target.
const MAX_CONNECTIONS: usize = 32;

/// How long a client may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running metrics endpoint. Dropped or stopped, it stops serving and ends its tasks.
pub struct MetricsServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `scrape`'s registry. A port in use or an address that
    /// is not this machine's fails here, naming the address.
    pub async fn start(addr: SocketAddr, scrape: Arc<dyn Scrape>) -> Result<MetricsServer, String> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("--metrics-listen {addr}: cannot listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        log::info!("metrics on http://{addr}/metrics");
        Ok(MetricsServer { addr, tasks: vec![tokio::spawn(accept(listener, scrape))] })
    }

    /// Where it listens (the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `task` (a counter's watch) for as long as the server runs.
    pub fn own(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Stops serving, and waits until every task of the server has ended.
    pub async fn stop(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Accepts connections until aborted; the connections end with it (their set is dropped).
async fn accept(listener: TcpListener, scrape: Arc<dyn Scrape>) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                log::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            log::debug!("metrics: {peer} turned away, {MAX_CONNECTIONS} scrapes in progress");
            continue;
        }
        let scrape = scrape.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, scrape.clone()));
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                log::debug!("metrics: connection from {peer}: {e}");
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    scrape: Arc<dyn Scrape>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(respond(req.method(), req.uri().path(), scrape.as_ref()))
}

/// The answer to `method` on `path`.
fn respond(method: &Method, path: &str, scrape: &dyn Scrape) -> Response<Full<Bytes>> {
    if path != "/metrics" {
        return plain(StatusCode::NOT_FOUND, format!("{path} is not served here; metrics are at /metrics\n"));
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response =
            plain(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on /metrics; use GET\n"));
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match super::encode(scrape.registry()) {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
            response
        }
        Err(e) => {
            log::error!("metrics: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::plane::metrics::agent::AgentMetrics;

    /// One request over a fresh connection: the whole answer as text.
    async fn request(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(head.as_bytes()).await.expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.expect("read");
        raw
    }

    #[tokio::test]
    async fn get_metrics_answers_the_registry_other_paths_404_other_methods_405() {
        let metrics = Arc::new(AgentMetrics::new());
        metrics.sent();
        let server =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), metrics).await.expect("started");
        let addr = server.addr();
        assert_ne!(addr.port(), 0);
        let ok = request(addr, "GET", "/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains(&format!("content-type: {}", crate::plane::metrics::CONTENT_TYPE)), "{ok}");
        let body = ok.split("\r\n\r\n").nth(1).expect("a body");
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parsed");
        assert!(scrape.samples.iter().any(|s| s.metric == "quarterdeck_heartbeats_sent_total"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        let missing = request(addr, "GET", "/").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let posted = request(addr, "POST", "/metrics").await;
        assert!(posted.starts_with("HTTP/1.1 405"), "{posted}");
        assert!(posted.contains("allow: GET, HEAD"), "{posted}");
        server.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after stop");
    }

    #[tokio::test]
    async fn a_port_in_use_is_an_error_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = MetricsServer::start(addr, Arc::new(AgentMetrics::new())).await.err().expect("refused");
        assert!(err.contains(&format!("--metrics-listen {addr}")), "{err}");
        assert!(err.contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn a_dropped_server_ends_the_tasks_it_owns() {
        let mut server =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), Arc::new(AgentMetrics::new()))
                .await
                .expect("started");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        server.own(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        drop(server);
        assert!(rx.await.is_err(), "the owned task ended, and its sender with it");
    }
}
