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

    /// The verb named by its word (`ctl route add`, the palette's `:route add`).
    pub fn parse(word: &str) -> Option<RouteVerb> {
        RouteVerb::ALL.into_iter().find(|v| v.word() == word)
    }

    /// The controller's verb it is sent as, which names its subject ([`command`]).
    pub fn ctl(self) -> CtlVerb {
        CtlVerb::Route(self)
    }
}

/// What a host command does (`ctl host cordon|drain|uncordon HOST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostVerb {
    /// No new placements on the host.
    Cordon,
    /// Cordon, then move every instance off the host, one at a time.
    Drain,
    /// Placements allowed again.
    Uncordon,
}

impl HostVerb {
    pub const ALL: [HostVerb; 3] = [HostVerb::Cordon, HostVerb::Drain, HostVerb::Uncordon];

    pub fn word(self) -> &'static str {
        match self {
            HostVerb::Cordon => "cordon",
            HostVerb::Drain => "drain",
            HostVerb::Uncordon => "uncordon",
        }
    }

    /// The verb named by its word (`ctl host drain`).
    pub fn parse(word: &str) -> Option<HostVerb> {
        HostVerb::ALL.into_iter().find(|v| v.word() == word)
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
    /// A secret's new value (`SecretSetRequest`): stored in `qd_secrets`, then a deploy.
    SecretSet,
    /// `host.cordon`, `host.drain`, `host.uncordon`.
    Host(HostVerb),
    /// An app's releases: a read, not audited; a viewer may send it under its own name.
    Releases,
    /// A rolling deploy back to an earlier release's spec.
    Rollback,
    /// Change an app's instance count (`ScaleRequest`): an operation of kind `scale`.
    Scale,
    /// Remove an app, its instances and routes first (`AppRemoveRequest`).
    AppRemove,
    /// Acknowledge an alert (`AlertAckRequest`).
    AlertAck,
    /// Silence a subject's alerts for a while, or lift it (`SilenceRequest`).
    AlertSilence,
    /// A note for the timeline (`NoteRequest`).
    Note,
}

impl CtlVerb {
    pub const ALL: [CtlVerb; 20] = [
        CtlVerb::RepoAllocate,
        CtlVerb::Deploy,
        CtlVerb::Restart,
        CtlVerb::Route(RouteVerb::Add),
        CtlVerb::Route(RouteVerb::Remove),
        CtlVerb::Route(RouteVerb::Enable),
        CtlVerb::Route(RouteVerb::Disable),
        CtlVerb::Route(RouteVerb::Weight),
        CtlVerb::Whoami,
        CtlVerb::SecretSet,
        CtlVerb::Host(HostVerb::Cordon),
        CtlVerb::Host(HostVerb::Drain),
        CtlVerb::Host(HostVerb::Uncordon),
        CtlVerb::Releases,
        CtlVerb::Rollback,
        CtlVerb::Scale,
        CtlVerb::AppRemove,
        CtlVerb::AlertAck,
        CtlVerb::AlertSilence,
        CtlVerb::Note,
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
            CtlVerb::SecretSet => "secret.set",
            CtlVerb::Host(HostVerb::Cordon) => "host.cordon",
            CtlVerb::Host(HostVerb::Drain) => "host.drain",
            CtlVerb::Host(HostVerb::Uncordon) => "host.uncordon",
            CtlVerb::Releases => "releases",
            CtlVerb::Rollback => "rollback",
            CtlVerb::Scale => "scale",
            CtlVerb::AppRemove => "app.remove",
            CtlVerb::AlertAck => "alert.ack",
            CtlVerb::AlertSilence => "alert.silence",
            CtlVerb::Note => "note",
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
/// Every session report (exec, port-forward start and end), for the controller's audit.
pub const SESSION_ALL: &str = "qd.v1.agent.*.session";

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

/// `qd.v1.agent.<host>.session`: the host's agent reports a session's start and end.
pub fn session_report(host: &str) -> String {
    format!("{PREFIX}.agent.{}.session", token(host))
}

/// `qd.v1.agent.<host>.cmd.<verb>`.
pub fn agent_cmd(host: &str, verb: AgentVerb) -> String {
    format!("{PREFIX}.agent.{}.cmd.{}", token(host), verb.as_str())
}

/// The wildcard an agent subscribes to for its commands.
pub fn agent_cmd_all(host: &str) -> String {
    format!("{PREFIX}.agent.{}.cmd.*", token(host))
}

/// Where log streams go: `qd.v1.logs.<user>.<viewer id>`.
pub const LOGS_PREFIX: &str = "qd.v1.logs.";

/// A viewer's log stream subject, under its user's name: with roles on, only that user
/// may subscribe to it.
pub fn logs_stream(user: &str, viewer: &str) -> String {
    format!("{}{}", logs_streams_prefix(user), token(viewer))
}

/// Every stream of `user`: `qd.v1.logs.<user>.`.
fn logs_streams_prefix(user: &str) -> String {
    format!("{LOGS_PREFIX}{}.", token(user))
}

/// The pattern of every stream of `user`, for its permissions.
pub fn logs_streams_of(user: &str) -> String {
    format!("{}>", logs_streams_prefix(user))
}

/// Whether `subject` is a stream of `user`: `qd.v1.logs.<user>.` and exactly one token of
/// letters, digits, `-` and `_` (at most 64). An agent publishes nowhere else for a viewer,
/// so a request cannot make it write into events, commands or another user's stream.
pub fn is_logs_stream_of(user: &str, subject: &str) -> bool {
    subject.strip_prefix(&logs_streams_prefix(user)).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// What a viewer asks an agent about its log streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogsVerb {
    /// Start streaming an instance's logs to one of the user's streams.
    Start,
    /// End one of the user's streams.
    Stop,
    /// One of the user's streams is still wanted; without one for
    /// `LOGS_KEEPALIVE_TIMEOUT_MS` the agent ends it.
    Keepalive,
}

impl LogsVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            LogsVerb::Start => "start",
            LogsVerb::Stop => "stop",
            LogsVerb::Keepalive => "keepalive",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [LogsVerb::Start, LogsVerb::Stop, LogsVerb::Keepalive].into_iter().find(|v| v.as_str() == s)
    }
}

/// `qd.v1.agent.<host>.logs.<user>.<verb>`: the user sits in the subject, where the server
/// checks it (with roles on, each user may publish only under its own name).
pub fn logs_request(host: &str, user: &str, verb: LogsVerb) -> String {
    format!("{PREFIX}.agent.{}.logs.{}.{}", token(host), token(user), verb.as_str())
}

/// The pattern of every log request to `host`'s agent.
pub fn logs_requests_to(host: &str) -> String {
    format!("{PREFIX}.agent.{}.logs.>", token(host))
}

/// The pattern of every log request `user` may send, to any host.
pub fn logs_requests_by(user: &str) -> String {
    format!("{PREFIX}.agent.*.logs.{}.>", token(user))
}

/// The user and verb of a log request to `host`, or why the subject is not one.
pub fn parse_logs_request<'a>(host: &str, subject: &'a str) -> Result<(&'a str, LogsVerb), String> {
    let head = format!("{PREFIX}.agent.{}.logs.", token(host));
    let not_one =
        || format!("{subject} is not a log request (qd.v1.agent.<host>.logs.<user>.<start|stop|keepalive>)");
    let rest = subject.strip_prefix(&head).ok_or_else(not_one)?;
    match rest.split_once('.') {
        Some((user, verb)) if !user.is_empty() && !user.contains(['*', '>']) => {
            LogsVerb::parse(verb).map(|v| (user, v)).ok_or_else(not_one)
        }
        _ => Err(not_one()),
    }
}

/// A session between one user and one agent, other than a log stream: a shell in a
/// container (`exec`) or a tunnelled TCP connection (`fwd`). Like log streams, the user
/// sits in every subject, so the server checks it, and each kind is a permission of its
/// own (`auth::Grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    Exec,
    Forward,
}

impl SessionKind {
    pub const ALL: [SessionKind; 2] = [SessionKind::Exec, SessionKind::Forward];

    /// The subject token: `qd.v1.agent.<host>.<token>.<user>.<verb>` and `qd.v1.<token>.<user>.<id>`.
    pub fn token(self) -> &'static str {
        match self {
            SessionKind::Exec => "exec",
            SessionKind::Forward => "fwd",
        }
    }
}

/// `qd.v1.agent.<host>.<kind>.<user>.<verb>`: what a user asks of an agent about one of its
/// sessions (the verbs are the kind's own; the payload names the session).
pub fn session_request(kind: SessionKind, host: &str, user: &str, verb: &str) -> String {
    format!("{PREFIX}.agent.{}.{}.{}.{}", token(host), kind.token(), token(user), token(verb))
}

/// The pattern of every request of `kind` to `host`'s agent.
pub fn session_requests_to(kind: SessionKind, host: &str) -> String {
    format!("{PREFIX}.agent.{}.{}.>", token(host), kind.token())
}

/// The pattern of every request of `kind` `user` may send, to any host.
pub fn session_requests_by(kind: SessionKind, user: &str) -> String {
    format!("{PREFIX}.agent.*.{}.{}.>", kind.token(), token(user))
}

/// The user and verb of a request of `kind` to `host`, or why the subject is not one.
pub fn parse_session_request<'a>(
    kind: SessionKind,
    host: &str,
    subject: &'a str,
) -> Result<(&'a str, &'a str), String> {
    let head = format!("{PREFIX}.agent.{}.{}.", token(host), kind.token());
    let not_one = || {
        format!(
            "{subject} is not a {} request (qd.v1.agent.<host>.{}.<user>.<verb>)",
            kind.token(),
            kind.token()
        )
    };
    let rest = subject.strip_prefix(&head).ok_or_else(not_one)?;
    match rest.split_once('.') {
        Some((user, verb))
            if !user.is_empty()
                && !verb.is_empty()
                && !user.contains(['*', '>'])
                && !verb.contains(['.', '*', '>']) =>
        {
            Ok((user, verb))
        }
        _ => Err(not_one()),
    }
}

/// A session's stream, agent to the one user that opened it: `qd.v1.<kind>.<user>.<id>`.
pub fn session_stream(kind: SessionKind, user: &str, id: &str) -> String {
    format!("{}{}", session_streams_prefix(kind, user), token(id))
}

fn session_streams_prefix(kind: SessionKind, user: &str) -> String {
    format!("{PREFIX}.{}.{}.", kind.token(), token(user))
}

/// The pattern of every stream of `kind` of `user`, for its permissions.
pub fn session_streams_of(kind: SessionKind, user: &str) -> String {
    format!("{}>", session_streams_prefix(kind, user))
}

/// The pattern of every stream of `kind`: an agent publishes any user's.
pub fn session_streams_all(kind: SessionKind) -> String {
    format!("{PREFIX}.{}.>", kind.token())
}

/// Whether `subject` is a stream of `kind` of `user` (one token, as `is_logs_stream_of`):
/// an agent publishes nowhere else for a session.
pub fn is_session_stream_of(kind: SessionKind, user: &str, subject: &str) -> bool {
    subject.strip_prefix(&session_streams_prefix(kind, user)).is_some_and(|rest| {
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
    /// Which digest an image's tag names now (the controller's deploy asks one agent).
    Resolve,
}

impl AgentVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentVerb::Deploy => "deploy",
            AgentVerb::Restart => "restart",
            AgentVerb::Remove => "remove",
            AgentVerb::Resolve => "resolve",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deploy" => Some(AgentVerb::Deploy),
            "restart" => Some(AgentVerb::Restart),
            "remove" => Some(AgentVerb::Remove),
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
        for verb in RouteVerb::ALL {
            assert_eq!(RouteVerb::parse(verb.word()), Some(verb));
            assert_eq!(command("alice", verb.ctl()), format!("qd.v1.ctl.alice.route.{}", verb.word()));
        }
        assert_eq!(RouteVerb::parse("route.add"), None);
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
    fn log_streams_stay_under_their_users_prefix() {
        assert_eq!(
            session_request(SessionKind::Exec, "h1", "alice", "start"),
            "qd.v1.agent.h1.exec.alice.start"
        );
        assert_eq!(session_stream(SessionKind::Forward, "alice", "c1"), "qd.v1.fwd.alice.c1");
        assert_eq!(
            parse_session_request(SessionKind::Exec, "h1", "qd.v1.agent.h1.exec.alice.input"),
            Ok(("alice", "input"))
        );
        for bad in [
            "qd.v1.agent.h2.exec.alice.start",
            "qd.v1.agent.h1.fwd.alice.start",
            "qd.v1.agent.h1.exec.alice",
            "qd.v1.agent.h1.exec.alice.a.b",
            "qd.v1.agent.h1.exec..start",
        ] {
            assert!(parse_session_request(SessionKind::Exec, "h1", bad).is_err(), "{bad}");
        }
        assert!(is_session_stream_of(SessionKind::Exec, "alice", "qd.v1.exec.alice.s1"));
        assert!(!is_session_stream_of(SessionKind::Exec, "alice", "qd.v1.fwd.alice.s1"));
        assert!(!is_session_stream_of(SessionKind::Exec, "alice", "qd.v1.exec.bob.s1"));
        assert_eq!(logs_stream("alice", "v1a2b"), "qd.v1.logs.alice.v1a2b");
        assert_eq!(logs_streams_of("alice"), "qd.v1.logs.alice.>");
        assert!(is_logs_stream_of("alice", "qd.v1.logs.alice.v1a2b"));
        assert!(!is_logs_stream_of("bob", "qd.v1.logs.alice.v1a2b"), "another user's stream");
        assert!(!is_logs_stream_of("alice", "qd.v1.logs.alice."));
        assert!(!is_logs_stream_of("alice", "qd.v1.logs.alice.a.b"));
        assert!(!is_logs_stream_of("alice", "qd.v1.logs.alice.>"));
        assert!(!is_logs_stream_of("alice", "qd.v1.logs.alice"));
        assert!(!is_logs_stream_of("alice", "qd.v1.evt.x._"));
        assert!(!is_logs_stream_of("alice", &format!("qd.v1.logs.alice.{}", "v".repeat(65))));
    }

    #[test]
    fn log_requests_carry_their_user_and_verb() {
        for v in [LogsVerb::Start, LogsVerb::Stop, LogsVerb::Keepalive] {
            assert_eq!(LogsVerb::parse(v.as_str()), Some(v));
            let subject = logs_request("h1", "alice", v);
            assert_eq!(parse_logs_request("h1", &subject), Ok(("alice", v)));
            assert!(matches(&logs_requests_to("h1"), &subject));
            assert!(matches(&logs_requests_by("alice"), &subject));
            assert!(!matches(&logs_requests_by("bob"), &subject), "{subject}");
        }
        assert_eq!(logs_request("h1", "john.doe", LogsVerb::Stop), "qd.v1.agent.h1.logs.john_doe.stop");
        for bad in [
            "qd.v1.agent.h1.logs.alice",
            "qd.v1.agent.h1.logs.alice.tail",
            "qd.v1.agent.h1.logs..start",
            "qd.v1.agent.h1.logs.alice.start.more",
            "qd.v1.agent.h1.logs.*.start",
            "qd.v1.agent.h2.logs.alice.start",
            "qd.v1.agent.h1.cmd.deploy",
        ] {
            let err = parse_logs_request("h1", bad).unwrap_err();
            assert!(err.contains("is not a log request"), "{bad}: {err}");
        }
    }
}
