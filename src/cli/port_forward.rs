//! `quarterdeck ctl port-forward INSTANCE [LOCAL:]REMOTE`: a listener on 127.0.0.1:LOCAL,
//! each connection tunnelled to the instance's port through its agent
//! (`client::forward`), until Ctrl-C or SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tokio::sync::mpsc;

use crate::bus::Bus;
use crate::client::forward::{self, ForwardNews, Target};
use crate::protocol::Fleet;

#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// The instance's id, e.g. shop-web-0-1a2b3c4d (see `ctl instances`).
    pub instance: String,
    /// `[LOCAL:]REMOTE`: REMOTE is the instance's port (its app's; no other is served),
    /// LOCAL the port on 127.0.0.1 to listen on (0 or left out: a free one).
    #[arg(value_name = "[LOCAL:]REMOTE", value_parser = parse_ports)]
    pub ports: Ports,
}

/// The local and the remote port of `[LOCAL:]REMOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub local: u16,
    pub remote: u16,
}

pub fn parse_ports(s: &str) -> Result<Ports, String> {
    let port = |what: &str, p: &str| {
        p.parse::<u16>().map_err(|_| format!("{what} port {p:?} is not a port number (0 to 65535)"))
    };
    let (local, remote) = match s.split_once(':') {
        Some((l, r)) => (port("local", l)?, port("remote", r)?),
        None => (0, port("remote", s)?),
    };
    if remote == 0 {
        return Err("remote port 0 is not a port an instance serves on".into());
    }
    Ok(Ports { local, remote })
}

pub async fn run(
    bus: Arc<dyn Bus>,
    source: String,
    fleet: Fleet,
    a: PortForwardArgs,
    json: bool,
) -> Result<ExitCode, String> {
    let target = Target::of(&fleet, &a.instance, Some(a.ports.remote))?;
    let (news_tx, mut news) = mpsc::channel(256);
    let fwd = forward::start(bus, source, target, a.ports.local, news_tx).await.map_err(|e| e.to_string())?;
    let line = match json {
        true => serde_json::json!({"local": fwd.local.to_string(), "instance": a.instance, "port": a.ports.remote})
            .to_string(),
        false => format!("forwarding {} -> {}:{}", fwd.local, a.instance, a.ports.remote),
    };
    // Scripts wait for this line before they connect: flushed at once.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|_| stdout.flush());
    drop(stdout);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    loop {
        tokio::select! {
            n = news.recv() => match n {
                Some(n) => eprintln!("{}", super::printable::printable(&describe(&n))),
                None => return Err("the forward stopped".into()),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    fwd.stop();
    Ok(ExitCode::SUCCESS)
}

/// One line of what happened to a connection, for stderr.
pub fn describe(n: &ForwardNews) -> String {
    match n {
        ForwardNews::Opened { conn, from } => format!("{conn}: connection from {from} opened"),
        ForwardNews::Refused { conn, why } => format!("{conn}: not forwarded: {why}"),
        ForwardNews::Closed { conn, ended } => format!(
            "{conn}: closed: {} ({} bytes sent, {} received)",
            ended.reason, ended.sent, ended.received
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_remote_or_local_colon_remote() {
        assert_eq!(parse_ports("8080"), Ok(Ports { local: 0, remote: 8080 }));
        assert_eq!(parse_ports("9000:8080"), Ok(Ports { local: 9000, remote: 8080 }));
        assert_eq!(parse_ports("0:8080"), Ok(Ports { local: 0, remote: 8080 }));
        assert!(parse_ports("x:8080").unwrap_err().contains("local port \"x\""));
        assert!(parse_ports("70000").unwrap_err().contains("remote port"));
        assert!(parse_ports("9000:").unwrap_err().contains("remote port"));
        assert!(parse_ports("0").unwrap_err().contains("port 0"));
    }
}
