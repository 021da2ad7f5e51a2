//! Subjects. Hierarchical and addressed; no subject serves two verbs.

/// Every subject starts with this.
pub const PREFIX: &str = "qd.v1";

/// Reads, open to every reader (viewers too): they change nothing, so they name no user.
pub const CTL_SNAPSHOT: &str = "qd.v1.ctl.snapshot";
pub const CTL_HISTORY: &str = "qd.v1.ctl.history";

/// What a route command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteVerb {
    Add,
    Remove,
    Enable,
    Disable,
    Weight,
}

impl RouteVerb {
    pub const ALL: [RouteVerb; 5] =
        [RouteVerb::Add, RouteVerb::Remove, RouteVerb::Enable, RouteVerb::Disable, RouteVerb::Weight];

    pub fn word(self) -> &'static str {
        match self {
            RouteVerb::Add => "add",
            RouteVerb::Remove => "remove",
            RouteVerb::Enable => "enable",
            RouteVerb::Disable => "disable",
            RouteVerb::Weight => "weight",
        }
    }
}

/// An operator's command to the controller, sent on `qd.v1.ctl.<user>.<verb>`
/// ([`command`]). With roles on, a user may publish only under its own name, so the user
/// in the subject is one nats-server vouches for; the controller records that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtlVerb {
    /// `ALLOCATE_REPOSITORY_REQUEST`: a slot for an artifact of `app@version`.
    RepoAllocate,
    Deploy,
    Restart,
    Route(RouteVerb),
    /// Who the controller sees the sender as. Changes nothing and is not audited, but needs
    /// the permission to act: a client learns from it whether it may (a viewer may not).
    Whoami,
}

impl CtlVerb {
    pub const ALL: [CtlVerb; 9] = [
        CtlVerb::RepoAllocate,
        CtlVerb::Deploy,
        CtlVerb::Restart,
        CtlVerb::Route(RouteVerb::Add),
        CtlVerb::Route(RouteVerb::Remove),
        CtlVerb::Route(RouteVerb::Enable),
        CtlVerb::Route(RouteVerb::Disable),
        CtlVerb::Route(RouteVerb::Weight),
        CtlVerb::Whoami,
    ];

    /// The verb's part of the subject, and its name in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            CtlVerb::RepoAllocate => "repo.allocate",
            CtlVerb::Deploy => "deploy",
            CtlVerb::Restart => "restart",
            CtlVerb::Route(RouteVerb::Add) => "route.add",
            CtlVerb::Route(RouteVerb::Remove) => "route.remove",
            CtlVerb::Route(RouteVerb::Enable) => "route.enable",
            CtlVerb::Route(RouteVerb::Disable) => "route.disable",
            CtlVerb::Route(RouteVerb::Weight) => "route.weight",
            CtlVerb::Whoami => "whoami",
        }
    }

    pub fn parse(s: &str) -> Option<CtlVerb> {
        CtlVerb::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// `qd.v1.ctl.<user>.<verb>`: where `user` sends `verb`.
pub fn command(user: &str, verb: CtlVerb) -> String {
    format!("{PREFIX}.ctl.{}.{}", token(user), verb.as_str())
}

/// Every command `user` may send: what its permission allows.
pub fn commands_of(user: &str) -> String {
    format!("{PREFIX}.ctl.{}.>", token(user))
}

/// A request on `qd.v1.ctl.>`, as the controller reads its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtlSubject<'a> {
    Snapshot,
    History,
    /// A command, and the user its subject names.
    Command {
        user: &'a str,
        verb: CtlVerb,
    },
    /// Anything else: an unknown read or verb, or a command without a user (the subjects
    /// before users were named, `qd.v1.ctl.deploy`).
    Unknown(&'a str),
}

impl<'a> CtlSubject<'a> {
    pub fn parse(subject: &'a str) -> CtlSubject<'a> {
        let Some(rest) = subject.strip_prefix("qd.v1.ctl.") else { return CtlSubject::Unknown(subject) };
        match rest.split_once('.') {
            None if subject == CTL_SNAPSHOT => CtlSubject::Snapshot,
            None if subject == CTL_HISTORY => CtlSubject::History,
            Some((user, verb)) if !user.is_empty() => match CtlVerb::parse(verb) {
                Some(verb) => CtlSubject::Command { user, verb },
                None => CtlSubject::Unknown(rest),
            },
            _ => CtlSubject::Unknown(rest),
        }
    }
}

/// The active controller's beacon: its revision, every heartbeat period, so a quiet
/// replica that missed the last event still finds out.
pub const CONTROLLER_HB: &str = "qd.v1.controller.hb";
/// Every router's status.
pub const ROUTER_STATUS_ALL: &str = "qd.v1.router.*.status";

pub fn router_status(id: &str) -> String {
    format!("{PREFIX}.router.{}.status", token(id))
}

/// Everything the controller answers.
pub const CTL_ALL: &str = "qd.v1.ctl.>";

/// Every event, for subscribers.
pub const EVT_ALL: &str = "qd.v1.evt.>";
/// Every heartbeat, for the controller and the cockpit.
pub const HB_ALL: &str = "qd.v1.agent.*.hb";
/// Every immediate instance status, for the controller.
pub const STATUS_ALL: &str = "qd.v1.agent.*.status";

/// `qd.v1.evt.<kind>.<app>`; `_` stands for "no app".
pub fn event(kind_token: &str, app: Option<&str>) -> String {
    format!("{PREFIX}.evt.{kind_token}.{}", app.map(token).unwrap_or_else(|| "_".into()))
}

pub fn heartbeat(host: &str) -> String {
    format!("{PREFIX}.agent.{}.hb", token(host))
}

pub fn status(host: &str) -> String {
    format!("{PREFIX}.agent.{}.status", token(host))
}

/// `qd.v1.agent.<host>.cmd.<verb>`.
pub fn agent_cmd(host: &str, verb: AgentVerb) -> String {
    format!("{PREFIX}.agent.{}.cmd.{}", token(host), verb.as_str())
}

/// The wildcard an agent subscribes to for its commands.
pub fn agent_cmd_all(host: &str) -> String {
    format!("{PREFIX}.agent.{}.cmd.*", token(host))
}

/// Where log streams go: `qd.v1.logs.<viewer id>`.
pub const LOGS_PREFIX: &str = "qd.v1.logs.";

/// A viewer's log stream subject.
pub fn logs_stream(viewer: &str) -> String {
    format!("{LOGS_PREFIX}{}", token(viewer))
}

/// Whether `subject` is a valid log stream subject: exactly one token, no wildcard, under
/// `qd.v1.logs.`. An agent publishes nowhere else for a viewer, so a request cannot make
/// it write into events or commands.
pub fn is_logs_stream(subject: &str) -> bool {
    subject.strip_prefix(LOGS_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// A viewer sends a keep-alive this often while its logs view is open.
pub const LOGS_KEEPALIVE_EVERY_MS: u64 = 5_000;
/// An agent ends a stream whose viewer has been silent this long.
pub const LOGS_KEEPALIVE_TIMEOUT_MS: u64 = 15_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentVerb {
    /// `NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST`.
    Deploy,
    Restart,
    Remove,
    /// Start streaming an instance's logs to a viewer.
    Logs,
    /// Stop a viewer's log stream.
    LogsStop,
    /// A viewer's log stream is still wanted; without one for `LOGS_KEEPALIVE_TIMEOUT`
    /// the agent ends the stream.
    LogsKeepalive,
    /// Which digest an image's tag names now (the controller's deploy asks one agent).
    Resolve,
}

impl AgentVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentVerb::Deploy => "deploy",
            AgentVerb::Restart => "restart",
            AgentVerb::Remove => "remove",
            AgentVerb::Logs => "logs",
            AgentVerb::LogsStop => "logs_stop",
            AgentVerb::LogsKeepalive => "logs_keepalive",
            AgentVerb::Resolve => "resolve",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deploy" => Some(AgentVerb::Deploy),
            "restart" => Some(AgentVerb::Restart),
            "remove" => Some(AgentVerb::Remove),
            "logs" => Some(AgentVerb::Logs),
            "logs_stop" => Some(AgentVerb::LogsStop),
            "logs_keepalive" => Some(AgentVerb::LogsKeepalive),
            "resolve" => Some(AgentVerb::Resolve),
            _ => None,
        }
    }
}

/// Makes a name safe as one subject token: NATS tokens may not hold `.`, `*`, `>` or
/// whitespace. Names are validated before they get here; this is the last line of defence.
pub fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() { '_' } else { c })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// Whether `subject` matches `pattern`, with NATS wildcards: `*` is one token, `>` is one or
/// more trailing tokens.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut pat = pattern.split('.');
    let mut sub = subject.split('.');
    loop {
        match (pat.next(), sub.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_nats_rules() {
        assert!(matches("qd.v1.evt.>", "qd.v1.evt.instance_deployed.shop-web"));
        assert!(!matches("qd.v1.evt.>", "qd.v1.evt"));
        assert!(matches("qd.v1.agent.*.hb", "qd.v1.agent.host-01.hb"));
        assert!(!matches("qd.v1.agent.*.hb", "qd.v1.agent.host-01.cmd.hb"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
    }

    #[test]
    fn tokens_never_carry_separators_or_wildcards() {
        assert_eq!(token("a.b *>"), "a_b___");
        assert_eq!(token(""), "_");
        assert_eq!(event("instance_deployed", None), "qd.v1.evt.instance_deployed._");
    }

    #[test]
    fn commands_name_their_user_and_reads_name_none() {
        for verb in CtlVerb::ALL {
            let subject = command("alice", verb);
            assert!(matches(&commands_of("alice"), &subject), "{subject}");
            assert!(!matches(&commands_of("bob"), &subject), "{subject}");
            assert!(matches(CTL_ALL, &subject), "{subject}");
            assert_eq!(CtlSubject::parse(&subject), CtlSubject::Command { user: "alice", verb });
        }
        assert_eq!(command("john.doe", CtlVerb::Route(RouteVerb::Weight)), "qd.v1.ctl.john_doe.route.weight");
        assert_eq!(CtlSubject::parse(CTL_SNAPSHOT), CtlSubject::Snapshot);
        assert_eq!(CtlSubject::parse(CTL_HISTORY), CtlSubject::History);
        // A user may be called "snapshot": its commands have a verb after the name.
        assert_eq!(
            CtlSubject::parse("qd.v1.ctl.snapshot.deploy"),
            CtlSubject::Command { user: "snapshot", verb: CtlVerb::Deploy }
        );
        for unknown in ["qd.v1.ctl.deploy", "qd.v1.ctl.route.add", "qd.v1.ctl.alice.fly", "qd.v1.ctl..deploy"]
        {
            assert!(matches!(CtlSubject::parse(unknown), CtlSubject::Unknown(_)), "{unknown}");
        }
    }

    #[test]
    fn log_streams_stay_under_their_prefix() {
        assert_eq!(logs_stream("cockpit-1a2b"), "qd.v1.logs.cockpit-1a2b");
        assert!(is_logs_stream("qd.v1.logs.cockpit-1a2b"));
        assert!(!is_logs_stream("qd.v1.logs."));
        assert!(!is_logs_stream("qd.v1.logs.a.b"));
        assert!(!is_logs_stream("qd.v1.logs.>"));
        assert!(!is_logs_stream("qd.v1.evt.x._"));
        for v in [AgentVerb::Logs, AgentVerb::LogsStop, AgentVerb::LogsKeepalive] {
            assert_eq!(AgentVerb::parse(v.as_str()), Some(v));
        }
        assert_eq!(agent_cmd("h1", AgentVerb::LogsStop), "qd.v1.agent.h1.cmd.logs_stop");
    }
}
