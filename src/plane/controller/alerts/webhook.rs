//! Webhooks: each alert transition POSTed as JSON to every `--webhook` URL. One queue and
//! one sender task per URL, so a slow receiver holds up only itself; pushing never waits
//! (the controller's lock and request loop must not), and a full queue drops its oldest.
//! A 2xx is delivered; anything else is retried with backoff, then given up with a log line.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::Notify;

use crate::protocol::Alert;

/// Payloads waiting per URL, at most.
const QUEUE: usize = 256;
/// Tries per payload before it is given up.
const TRIES: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One try's connect, TLS and answer, at most.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A checked `--webhook` URL: http or https, with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    uri: Uri,
    https: bool,
    host: String,
    port: u16,
}

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let bad = |why: &str| format!("--webhook {text:?}: {why}; expected http(s)://HOST[:PORT]/PATH");
        let uri: Uri = text.parse().map_err(|e| bad(&format!("{e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(bad(&format!("the scheme {other:?} is not http or https"))),
            None => return Err(bad("no scheme")),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?.to_string();
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(bad("credentials in the URL are not supported"));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(WebhookUrl { uri, https, host, port })
    }

    pub fn as_str(&self) -> String {
        self.uri.to_string()
    }
}

/// The JSON a receiver gets.
#[derive(Debug, Clone, Serialize)]
pub struct Payload<'a> {
    pub alert: &'a str,
    pub rule: &'a str,
    pub subject: String,
    pub state: &'a str,
    pub summary: &'a str,
    pub since: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<&'a str>,
    pub at: u64,
    pub controller: &'a str,
}

impl<'a> Payload<'a> {
    pub fn of(alert: &'a Alert, controller: &'a str) -> Payload<'a> {
        Payload {
            alert: &alert.id,
            rule: alert.rule.as_str(),
            subject: alert.subject.to_string(),
            state: alert.state.as_str(),
            summary: &alert.summary,
            since: alert.since,
            acked_by: alert.acked_by.as_deref(),
            at: alert.changed_at,
            controller,
        }
    }
}

struct Outbox {
    url: WebhookUrl,
    queue: Mutex<VecDeque<Bytes>>,
    ready: Notify,
}

/// The queues of every URL.
#[derive(Clone, Default)]
pub(crate) struct Webhooks {
    outboxes: Vec<Arc<Outbox>>,
}

impl Webhooks {
    pub fn new(urls: &[WebhookUrl]) -> Webhooks {
        let outboxes = urls
            .iter()
            .map(|url| Arc::new(Outbox { url: url.clone(), queue: Mutex::default(), ready: Notify::new() }))
            .collect();
        Webhooks { outboxes }
    }

    /// The sender tasks, one per URL, for the controller to own.
    pub fn senders(&self) -> Vec<impl std::future::Future<Output = ()> + Send + 'static> {
        self.outboxes.iter().map(|o| send_loop(o.clone())).collect()
    }

    /// Queues `body` for every URL; never waits.
    pub fn push(&self, body: &[u8]) {
        let body = Bytes::copy_from_slice(body);
        for o in &self.outboxes {
            let mut q = o.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= QUEUE {
                q.pop_front();
                log::warn!("webhook {}: {QUEUE} payloads waiting; the oldest is dropped", o.url.as_str());
            }
            q.push_back(body.clone());
            drop(q);
            o.ready.notify_one();
        }
    }
}

async fn send_loop(outbox: Arc<Outbox>) {
    let tls = tls_connector();
    loop {
        let next = outbox.queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(body) = next else {
            outbox.ready.notified().await;
            continue;
        };
        deliver(&outbox.url, &tls, body).await;
    }
}

/// Tries `body` up to `TRIES` times, 1 s doubling to 60 s between tries.
async fn deliver(url: &WebhookUrl, tls: &Option<tokio_rustls::TlsConnector>, body: Bytes) {
    let mut wait = FIRST_BACKOFF;
    for attempt in 1..=TRIES {
        let result = tokio::time::timeout(TRY_TIMEOUT, post(url, tls, body.clone())).await;
        let why = match result {
            Ok(Ok(status)) if status.is_success() => return,
            Ok(Ok(status)) => format!("answered {status}"),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {TRY_TIMEOUT:?}"),
        };
        if attempt == TRIES {
            log::warn!("webhook {}: given up after {TRIES} tries: {why}", url.as_str());
            return;
        }
        log::info!("webhook {}: try {attempt} failed ({why}); again in {wait:?}", url.as_str());
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

fn tls_connector() -> Option<tokio_rustls::TlsConnector> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::warn!("webhooks: a system certificate could not be read: {e}");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        log::warn!("webhooks: no system root certificate found; https webhooks will fail");
    }
    // ring, the provider async-nats already builds: rustls 0.23.48 deprecates it for lacking
    // post-quantum key exchange, but its replacement (aws-lc-rs) is a C build of its own, and
    // a webhook's POST is not a secret worth harvesting now to decrypt later.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| log::warn!("webhooks: no TLS: {e}"))
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn post(
    url: &WebhookUrl,
    tls: &Option<tokio_rustls::TlsConnector>,
    body: Bytes,
) -> Result<hyper::StatusCode, String> {
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if !url.https {
        return exchange(TokioIo::new(tcp), url, body).await;
    }
    let Some(tls) = tls else { return Err("TLS is not available".into()) };
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(url.host.clone())
        .map_err(|e| format!("server name {}: {e}", url.host))?;
    let stream = tls.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    exchange(TokioIo::new(stream), url, body).await
}

async fn exchange<T>(io: TokioIo<T>, url: &WebhookUrl, body: Bytes) -> Result<hyper::StatusCode, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP: {e}"))?;
    let path = url.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = url.uri.authority().map_or(url.host.clone(), |a| a.to_string());
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "quarterdeck-controller")
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    // The connection is driven beside the request, in this task: it ends with it. It may
    // end (the receiver closes) in the same poll that hands over the answer, so an end
    // without an error still waits for the answer.
    let send = sender.send_request(request);
    tokio::pin!(conn, send);
    let answer = tokio::select! {
        biased;
        answer = &mut send => answer,
        ended = &mut conn => match ended {
            Ok(()) => send.await,
            Err(e) => return Err(format!("HTTP: {e}")),
        },
    };
    answer.map(|r| r.status()).map_err(|e| format!("HTTP: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        let u = WebhookUrl::parse("http://127.0.0.1:9000/hook?x=1").expect("http");
        assert_eq!((u.https, u.host.as_str(), u.port), (false, "127.0.0.1", 9000));
        let s = WebhookUrl::parse("https://hooks.example.com/a").expect("https");
        assert_eq!((s.https, s.port), (true, 443));
        for bad in ["ftp://x/y", "127.0.0.1:9000/x", "http:///x", "not a url", "http://u:p@h/x"] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(WebhookUrl::parse("ftp://x/y").unwrap_err().contains("not http or https"));
    }

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let hooks = Webhooks::new(&[WebhookUrl::parse("http://127.0.0.1:1/x").expect("url")]);
        for n in 0..QUEUE + 5 {
            hooks.push(n.to_string().as_bytes());
        }
        let q = hooks.outboxes[0].queue.lock().expect("queue");
        assert_eq!(q.len(), QUEUE);
        assert_eq!(q.front().map(|b| b.as_ref()), Some(b"5".as_ref()));
    }
}
