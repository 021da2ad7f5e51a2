//! What a client of the plane asks for, before it becomes messages: a command for the
//! controller, a log stream from an agent, an artifact upload. The cockpit's actions make
//! these and its backend carries them out; both read them from here, so neither imports
//! the other.

use std::path::PathBuf;

use super::release::RollbackRequest;
use super::subjects::{CtlVerb, HostVerb, RouteVerb};
use super::{
    AlertAckRequest, DeployRequest, HostRequest, NoteRequest, RestartBody, RestartRequest, RouteRequest,
    ScaleRequest, SilenceRequest,
};

/// A command for the controller.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlCommand {
    Deploy(Box<DeployRequest>),
    /// A restart target and its batch size.
    Restart(RestartBody),
    Route(RouteVerb, RouteRequest),
    /// Cordon, drain or uncordon a host.
    Host(HostVerb, HostRequest),
    Rollback(RollbackRequest),
    Scale(ScaleRequest),
    /// Acknowledge an alert: the operator owns it.
    AlertAck(AlertAckRequest),
    /// Silence a subject's alerts for a while (0 lifts the silence).
    AlertSilence(SilenceRequest),
    /// A line for the incident's timeline.
    Note(NoteRequest),
}

impl ControlCommand {
    /// The verb it is sent as: where it goes.
    pub fn verb(&self) -> CtlVerb {
        match self {
            ControlCommand::Deploy(_) => CtlVerb::Deploy,
            ControlCommand::Restart(_) => CtlVerb::Restart,
            ControlCommand::Route(verb, _) => verb.ctl(),
            ControlCommand::Host(verb, _) => CtlVerb::Host(*verb),
            ControlCommand::Rollback(_) => CtlVerb::Rollback,
            ControlCommand::Scale(_) => CtlVerb::Scale,
            ControlCommand::AlertAck(_) => CtlVerb::AlertAck,
            ControlCommand::AlertSilence(_) => CtlVerb::AlertSilence,
            ControlCommand::Note(_) => CtlVerb::Note,
        }
    }

    /// A short description for the status line and logs.
    pub fn describe(&self) -> String {
        match self {
            ControlCommand::Deploy(r) => format!("deploy {}@{} x{}", r.app, r.version, r.instances),
            ControlCommand::Restart(body) => {
                let target = match &body.target {
                    RestartRequest::Instance(i) => format!("instance {i}"),
                    RestartRequest::App(a) => format!("app {a}"),
                    RestartRequest::Host(h) => format!("host {h}"),
                    RestartRequest::Instances(ids) => format!("{} marked instances", ids.len()),
                };
                match body.batch {
                    Some(b) if b > 1 => format!("restart {target} ({b} at a time)"),
                    _ => format!("restart {target}"),
                }
            }
            ControlCommand::Route(RouteVerb::Weight, r) => {
                format!("route weight {} {} {}", r.app, r.backend, r.weight.unwrap_or(1))
            }
            ControlCommand::Route(v, r) => format!("route {} {} {}", v.word(), r.app, r.backend),
            ControlCommand::Host(v, r) => format!("{} host {}", v.word(), r.host),
            ControlCommand::Rollback(r) => match r.release {
                Some(n) => format!("rollback {} to release {n}", r.app),
                None => format!("rollback {} to the release before", r.app),
            },
            ControlCommand::Scale(r) => format!("scale {} to {}", r.app, r.instances),
            ControlCommand::AlertAck(r) => format!("ack alert {}", r.id),
            ControlCommand::AlertSilence(r) if r.for_ms == 0 => format!("lift the silence on {}", r.subject),
            ControlCommand::AlertSilence(r) => {
                format!("silence {} for {}", r.subject, super::clock::age(r.for_ms))
            }
            ControlCommand::Note(_) => "note".into(),
        }
    }
}

/// The logs of one instance on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsStart {
    /// Tells this stream's updates from an earlier one's.
    pub session: u64,
    pub host: String,
    pub instance: String,
    pub tail: u32,
    pub follow: bool,
    /// Only lines from this time on (ms since epoch).
    pub since: Option<u64>,
}

/// A port-forward to one instance's port (the cockpit's `F`): a listener on 127.0.0.1
/// whose connections are tunnelled through the instance's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardStart {
    /// Tells this forward's updates from another's.
    pub session: u64,
    pub host: String,
    pub instance: String,
    pub port: u16,
}

/// A shell (or `cmd`, when not empty) in an instance's container, on the cockpit's
/// terminal (`s`, `:exec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStart {
    pub host: String,
    pub instance: String,
    pub cmd: Vec<String>,
}

/// The handover timeline of `since..=until` written as Markdown to `path` (the cockpit's
/// `:export`): its history is asked of the controller, as `ctl timeline` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineExport {
    pub since: u64,
    pub until: u64,
    pub path: PathBuf,
    /// The plane the title names.
    pub plane: String,
}

/// An artifact file to put in the repository, for `app@version` (the wizard, before its
/// deploy).
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRequest {
    pub app: String,
    pub version: String,
    pub path: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_goes_where_its_verb_says() {
        let req = RouteRequest { app: "shop".into(), backend: "10.0.0.1:80".into(), weight: Some(3) };
        for verb in RouteVerb::ALL {
            let cmd = ControlCommand::Route(verb, req.clone());
            assert_eq!(cmd.verb(), CtlVerb::Route(verb));
            assert_eq!(cmd.verb().as_str(), format!("route.{}", verb.word()));
        }
        let restart = ControlCommand::Restart(RestartBody {
            target: RestartRequest::App("shop".into()),
            batch: Some(2),
        });
        assert_eq!(restart.verb(), CtlVerb::Restart);
        assert_eq!(restart.describe(), "restart app shop (2 at a time)");
        assert_eq!(
            ControlCommand::Route(RouteVerb::Weight, req).describe(),
            "route weight shop 10.0.0.1:80 3"
        );
    }
}
