//! Permission violations: nats-server refuses a publish or a subscription this user may
//! not make by sending `-ERR 'Permissions Violation for Publish to "SUBJECT"'`, which
//! async-nats hands to the event callback as `ServerError::Other`, apart from the request
//! or subscription it refused. Read here, then announced to whatever waits on that
//! subject, so a refused request fails at once as refused instead of timing out.

use tokio::sync::broadcast;

use super::BusError;

/// What the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A publish (a request's too) on the subject.
    Publish,
    /// A subscription on the pattern.
    Subscribe,
}

/// One refusal by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub refused: Refused,
    /// The subject or pattern the server named.
    pub subject: String,
}

impl Violation {
    /// The error a refused request or subscription of `user` fails with.
    pub fn denied(self, user: &str) -> BusError {
        BusError::PermissionDenied { subject: self.subject, user: user.to_string() }
    }
}

/// Reads a server error as a permission violation, or `None` for any other error. The
/// forms nats-server sends: `Permissions Violation for Publish to "S"`,
/// `... for Subscription to "S"` (with ` using queue "Q"` for a queue subscription) and
/// `... for Publish with Reply of "S"` (a reply subject this user may not be answered on).
pub fn parse(error: &str) -> Option<Violation> {
    let rest = error.trim().trim_matches('\'').strip_prefix("Permissions Violation for ")?;
    let (refused, quoted) = if let Some(q) = rest.strip_prefix("Publish to ") {
        (Refused::Publish, q)
    } else if let Some(q) = rest.strip_prefix("Publish with Reply of ") {
        (Refused::Publish, q)
    } else if let Some(q) = rest.strip_prefix("Subscription to ") {
        (Refused::Subscribe, q)
    } else {
        return None;
    };
    let subject = quoted.strip_prefix('"')?.split('"').next()?;
    (!subject.is_empty()).then(|| Violation { refused, subject: subject.to_string() })
}

/// Refusals announced as they arrive. A waiter listens from before it sends, so a refusal
/// cannot slip by between the send and the wait.
#[derive(Debug, Clone)]
pub struct Denials {
    tx: broadcast::Sender<Violation>,
}

/// How many refusals a slow waiter may miss before it is told it lagged; a waiter only
/// looks at its own subject, so one that lags keeps listening.
const BACKLOG: usize = 64;

impl Default for Denials {
    fn default() -> Self {
        Denials { tx: broadcast::channel(BACKLOG).0 }
    }
}

impl Denials {
    /// Tells every waiter of a refusal.
    pub fn announce(&self, violation: Violation) {
        // Nobody waiting is fine: the refusal was logged.
        let _ = self.tx.send(violation);
    }

    /// An error the server sent the connection `who`, logged into as `user`: a refusal is
    /// logged in the words its request gets, and announced; anything else is logged.
    pub fn server_error(&self, who: &str, user: &str, error: &str) {
        let Some(violation) = parse(error) else {
            log::warn!("{who}: NATS server error: {error}");
            return;
        };
        let verb = match violation.refused {
            Refused::Publish => "publish",
            Refused::Subscribe => "subscribe",
        };
        log::error!("{who}: the server refused to {verb}: {}", violation.clone().denied(user));
        self.announce(violation);
    }

    /// A listener for the refusals from now on.
    pub fn listen(&self) -> Listener {
        Listener { rx: self.tx.subscribe() }
    }
}

pub struct Listener {
    rx: broadcast::Receiver<Violation>,
}

impl Listener {
    /// Waits for a refusal that `refused` names; never, if none comes.
    pub async fn refused(&mut self, refused: impl Fn(&Violation) -> bool) -> Violation {
        loop {
            match self.rx.recv().await {
                Ok(v) if refused(&v) => return v,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }

    /// A refusal that `refused` names among those already announced, without waiting.
    pub fn already(&mut self, refused: impl Fn(&Violation) -> bool) -> Option<Violation> {
        loop {
            match self.rx.try_recv() {
                Ok(v) if refused(&v) => return Some(v),
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(s: &str) -> Option<Violation> {
        Some(Violation { refused: Refused::Publish, subject: s.into() })
    }

    #[test]
    fn the_servers_refusals_are_read_with_their_subject() {
        assert_eq!(
            parse(r#"Permissions Violation for Publish to "qd.v1.ctl.deploy""#),
            publish("qd.v1.ctl.deploy")
        );
        // As the wire has it, before async-nats takes the quotes off.
        assert_eq!(parse(r#"'Permissions Violation for Publish to "a.b"'"#), publish("a.b"));
        assert_eq!(
            parse(r#"Permissions Violation for Publish with Reply of "_INBOX.x.y""#),
            publish("_INBOX.x.y")
        );
        let sub = Some(Violation { refused: Refused::Subscribe, subject: "qd.v1.agent.h2.cmd.>".into() });
        assert_eq!(parse(r#"Permissions Violation for Subscription to "qd.v1.agent.h2.cmd.>""#), sub);
        let queued = parse(r#"Permissions Violation for Subscription to "q.*" using queue "workers""#);
        assert_eq!(queued.map(|v| v.subject), Some("q.*".to_string()));
    }

    #[test]
    fn other_server_errors_are_not_refusals() {
        for other in [
            "authorization violation",
            "Maximum Payload Violation",
            "Permissions Violation for Publish to ",
            r#"Permissions Violation for Publish to """#,
            r#"Permissions Violation for Teleport to "a""#,
            "",
        ] {
            assert_eq!(parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_refusal_from_the_server_is_announced_and_other_errors_are_not() {
        let denials = Denials::default();
        let mut listener = denials.listen();
        denials.server_error("ctl", "carol", "Maximum Payload Violation");
        assert_eq!(listener.already(|_| true), None);
        denials.server_error(
            "ctl",
            "carol",
            r#"Permissions Violation for Publish to "qd.v1.ctl.carol.deploy""#,
        );
        let got = listener.already(|_| true).expect("announced");
        assert_eq!(
            got.clone().denied("carol").to_string(),
            "permission denied on qd.v1.ctl.carol.deploy for user carol"
        );
    }

    #[tokio::test]
    async fn a_listener_hears_only_refusals_after_it_started_and_picks_its_own() {
        let denials = Denials::default();
        denials.announce(Violation { refused: Refused::Publish, subject: "before".into() });
        let mut listener = denials.listen();
        denials.announce(Violation { refused: Refused::Publish, subject: "other".into() });
        denials.announce(Violation { refused: Refused::Publish, subject: "mine".into() });
        let got = listener.refused(|v| v.subject == "mine").await;
        assert_eq!(got.subject, "mine");
        assert_eq!(listener.already(|v| v.subject == "before"), None);
        denials.announce(Violation { refused: Refused::Subscribe, subject: "sub".into() });
        assert_eq!(
            listener.already(|v| v.refused == Refused::Subscribe).map(|v| v.subject),
            Some("sub".into())
        );
    }
}
