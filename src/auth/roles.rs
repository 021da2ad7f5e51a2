//! The roles and their permissions, least privilege each. Subjects come from
//! `protocol::subjects`; JetStream's own API subjects are named for the streams and
//! buckets each role needs.

use std::fmt;
use std::str::FromStr;

use crate::protocol::{subjects, validate};

/// The event stream, the state and lease buckets, and the artifact store, by name.
const EVENTS: &str = "QD_EVENTS";
const STATE: &str = "qd_state";
const LEADER: &str = "qd_leader";
const ARTIFACTS: &str = "qd_artifacts";
const SESSIONS: &str = crate::protocol::exec::SESSIONS_BUCKET;
/// Secret values: written by the controller, read by agents, by nobody else (no operator
/// or viewer permission names it, and none of theirs is a wildcard over `$KV` or the JS API).
const SECRETS: &str = crate::protocol::SECRETS_BUCKET;
const RELEASES: &str = crate::protocol::release::BUCKET;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Controller,
    Agent,
    Router,
    Operator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Controller, Role::Agent, Role::Router, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Agent => "agent",
            Role::Router => "router",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("{} is not a role: use {}", validate::quoted(s), Role::ALL.map(Role::as_str).join(", "))
        })
    }
}

/// What an operator may do beyond its role, each given by name (`auth grant`): a shell in
/// a container and a port-forward to one are permissions of their own, never implied by
/// the operator role, since either reaches past the plane into a running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    /// `ctl exec`, the cockpit's `s`: a process in an instance's container.
    Exec,
    /// `ctl port-forward`, the cockpit's `F`: TCP to an instance's port.
    PortForward,
}

impl Grant {
    pub const ALL: [Grant; 2] = [Grant::Exec, Grant::PortForward];

    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Exec => "exec",
            Grant::PortForward => "port-forward",
        }
    }

    /// The session kind on the bus this grant opens.
    pub fn kind(self) -> subjects::SessionKind {
        match self {
            Grant::Exec => subjects::SessionKind::Exec,
            Grant::PortForward => subjects::SessionKind::Forward,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Grant {
    type Err = String;

    fn from_str(s: &str) -> Result<Grant, String> {
        Grant::ALL.into_iter().find(|g| g.as_str() == s).ok_or_else(|| {
            format!(
                "{} is not a grant: use {}",
                validate::quoted(s),
                Grant::ALL.map(Grant::as_str).join(", ")
            )
        })
    }
}

/// The grants of one user, in order.
pub type Grants = std::collections::BTreeSet<Grant>;

/// Only operators act, so only an operator may hold a grant.
pub fn check_grants(role: Role, grants: &Grants) -> Result<(), String> {
    match grants.iter().next() {
        Some(g) if role != Role::Operator => {
            Err(format!("a {role} cannot be granted {g}: only operators may act on instances"))
        }
        _ => Ok(()),
    }
}

/// One user: a role and a name (the host id of an agent, the router's id, an operator's
/// user name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub role: Role,
    pub name: String,
}

impl Identity {
    /// A name is a host id, router id or user name: the protocol's name rule, so it is one
    /// subject token and one file name.
    pub fn new(role: Role, name: &str) -> Result<Identity, String> {
        validate::name(role.as_str(), name)?;
        Ok(Identity { role, name: name.to_string() })
    }
}

/// What one user may publish and subscribe to. `responses`: it may answer the requests it
/// receives (once each), which is how services reply without a publish permission on
/// every client's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub responses: bool,
}

/// Where replies to this user's requests come: an inbox prefix of its own, so no other
/// user may subscribe to its answers. Derived from the public key, which both the client
/// (from its seed) and the config (from the same seed) know.
pub fn inbox_prefix(public_key: &str) -> String {
    format!("_INBOX.{public_key}")
}

fn js_api(verbs: &[&str], stream: &str) -> Vec<String> {
    verbs.iter().map(|v| format!("$JS.API.{v}.{stream}")).collect()
}

/// Reading a stream through an ordered consumer: its info, consumers created and deleted
/// (ephemeral), the last message by subject, and the consumer's flow control replies.
fn stream_reader(stream: &str) -> Vec<String> {
    let mut p = js_api(&["STREAM.INFO", "STREAM.MSG.GET", "CONSUMER.CREATE", "CONSUMER.DELETE"], stream);
    p.push(format!("$JS.API.CONSUMER.CREATE.{stream}.>"));
    // Pull consumers (a history read) ask for their next batch here.
    p.push(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"));
    p.push(format!("$JS.API.DIRECT.GET.{stream}.>"));
    p.push(format!("$JS.API.DIRECT.GET.{stream}"));
    p.push("$JS.API.INFO".into());
    p.push("$JS.FC.>".into());
    p
}

/// A history reader opens the event store, which looks the state bucket up too (read
/// only: its info, never a create).
fn history_reader() -> Vec<String> {
    let mut p = stream_reader(EVENTS);
    p.push(format!("$JS.API.STREAM.INFO.KV_{STATE}"));
    p
}

/// Log streams of `name`'s own, started, kept alive and stopped on any host under its
/// name: the agent takes the user from the subject, so nobody acts on another's streams.
fn log_requests(name: &str) -> Vec<String> {
    vec![subjects::logs_requests_by(name)]
}

/// What a cockpit or ctl reads: events, heartbeats, router statuses, the beacon, the log
/// batches of `name`'s own streams (never another user's), and its own inbox.
fn reader_subscriptions(name: &str, inbox: &str) -> Vec<String> {
    vec![
        subjects::EVT_ALL.into(),
        subjects::HB_ALL.into(),
        subjects::ROUTER_STATUS_ALL.into(),
        subjects::CONTROLLER_HB.into(),
        subjects::logs_streams_of(name),
        format!("{inbox}.>"),
    ]
}

/// The permissions of `who`, whose public key is `public_key`, with its `grants` (which
/// only an operator holds: `check_grants`).
pub fn permissions(who: &Identity, grants: &Grants, public_key: &str) -> Permissions {
    let inbox = inbox_prefix(public_key);
    let mut p = match who.role {
        Role::Controller => controller(&inbox),
        Role::Agent => agent(who, &inbox),
        Role::Router => router(who, &inbox),
        Role::Operator => operator(who, &inbox),
        Role::Viewer => viewer(who, &inbox),
    };
    if who.role == Role::Operator {
        for grant in grants {
            p.publish.push(subjects::session_requests_by(grant.kind(), &who.name));
            p.subscribe.push(subjects::session_streams_of(grant.kind(), &who.name));
        }
        // Exec sessions' recordings (`ctl exec-replay`) are read by those who may exec.
        if grants.contains(&Grant::Exec) {
            p.publish.extend(stream_reader(&format!("OBJ_{SESSIONS}")));
        }
    }
    p
}

/// Everything the controller needs, and the only user that may publish events,
/// write the state, the lease and the history stream, send agent commands and
/// receive the commands it answers.
fn controller(inbox: &str) -> Permissions {
    let prefix = subjects::PREFIX;
    Permissions {
        publish: vec![
            subjects::EVT_ALL.into(),
            subjects::CONTROLLER_HB.into(),
            format!("{prefix}.agent.*.cmd.>"),
            "$JS.API.>".into(),
            format!("$KV.{STATE}.>"),
            format!("$KV.{LEADER}.>"),
            format!("$KV.{SECRETS}.>"),
            format!("$KV.{RELEASES}.>"),
            "$JS.FC.>".into(),
            "$JS.ACK.>".into(),
        ],
        subscribe: vec![
            subjects::CTL_ALL.into(),
            subjects::HB_ALL.into(),
            subjects::STATUS_ALL.into(),
            subjects::ROUTER_STATUS_ALL.into(),
            subjects::SESSION_ALL.into(),
            format!("{inbox}.>"),
        ],
        responses: true,
    }
}

/// Its own reports only; its own commands and log requests only (any user's: it
/// takes the user from the subject); the artifact store read-only.
fn agent(who: &Identity, inbox: &str) -> Permissions {
    let prefix = subjects::PREFIX;
    let name = subjects::token(&who.name);
    Permissions {
        publish: [
            vec![
                subjects::heartbeat(&who.name),
                subjects::status(&who.name),
                subjects::session_report(&who.name),
                format!("{prefix}.logs.>"),
                // Recordings of the sessions it runs (the controller makes the bucket).
                format!("$O.{SESSIONS}.>"),
            ],
            subjects::SessionKind::ALL.map(subjects::session_streams_all).to_vec(),
            stream_reader(&format!("OBJ_{ARTIFACTS}")),
            stream_reader(&format!("OBJ_{SESSIONS}")),
            // The values of the secrets a container it creates is given.
            stream_reader(&format!("KV_{SECRETS}")),
        ]
        .concat(),
        subscribe: [
            vec![
                format!("{prefix}.agent.{name}.cmd.>"),
                subjects::logs_requests_to(&who.name),
                format!("{inbox}.>"),
            ],
            subjects::SessionKind::ALL.map(|k| subjects::session_requests_to(k, &who.name)).to_vec(),
        ]
        .concat(),
        responses: true,
    }
}

/// Reads the route table (snapshot, then the history), publishes its own status.
fn router(who: &Identity, inbox: &str) -> Permissions {
    Permissions {
        publish: [
            vec![subjects::router_status(&who.name), subjects::CTL_SNAPSHOT.into()],
            stream_reader(EVENTS),
        ]
        .concat(),
        subscribe: vec![subjects::EVT_ALL.into(), subjects::CONTROLLER_HB.into(), format!("{inbox}.>")],
        responses: false,
    }
}

/// Sends commands under its own name only (`qd.v1.ctl.<name>.>`: the controller
/// records that name), reads everything, starts log streams, uploads artifacts.
fn operator(who: &Identity, inbox: &str) -> Permissions {
    let name = subjects::token(&who.name);
    Permissions {
        publish: [
            vec![
                subjects::commands_of(&who.name),
                subjects::CTL_SNAPSHOT.into(),
                subjects::CTL_HISTORY.into(),
                format!("$O.{ARTIFACTS}.>"),
            ],
            log_requests(&name),
            history_reader(),
            stream_reader(&format!("OBJ_{ARTIFACTS}")),
            // Creating the bucket (when missing: a create never changes an existing
            // stream) and, for a re-upload into a slot, purging the old object's
            // chunks. Never an update: an operator who could update the bucket could
            // set a retention that drops every app's artifacts.
            js_api(&["STREAM.CREATE", "STREAM.PURGE"], &format!("OBJ_{ARTIFACTS}")),
        ]
        .concat(),
        subscribe: reader_subscriptions(&name, inbox),
        responses: false,
    }
}

/// Reads only. Its reads are requests (snapshot, history, its log streams), so it
/// may publish those and nothing else that would act.
fn viewer(who: &Identity, inbox: &str) -> Permissions {
    let name = subjects::token(&who.name);
    Permissions {
        publish: [
            vec![
                subjects::CTL_SNAPSHOT.into(),
                subjects::CTL_HISTORY.into(),
                // An app's releases (a read: the controller audits nothing for it), asked
                // under its own name, as an operator asks.
                subjects::command(&who.name, subjects::CtlVerb::Releases),
            ],
            log_requests(&name),
            history_reader(),
        ]
        .concat(),
        subscribe: reader_subscriptions(&name, inbox),
        responses: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::subjects::{CtlVerb, matches};

    fn may_publish(p: &Permissions, subject: &str) -> bool {
        p.publish.iter().any(|allow| matches(allow, subject))
    }

    fn may_subscribe(p: &Permissions, subject: &str) -> bool {
        p.subscribe.iter().any(|allow| matches(allow, subject))
    }

    fn of(role: Role, name: &str) -> Permissions {
        permissions(&Identity::new(role, name).unwrap(), &Grants::new(), "UKEY")
    }

    fn granted(name: &str, grants: &[Grant]) -> Permissions {
        permissions(&Identity::new(Role::Operator, name).unwrap(), &grants.iter().copied().collect(), "UKEY")
    }

    /// A shell and a port-forward are each a grant of their own: an operator without one
    /// may neither ask an agent for that session nor read its stream, and one grant does
    /// not open the other.
    #[test]
    fn exec_and_port_forward_are_each_a_grant_of_their_own() {
        use subjects::SessionKind::{Exec, Forward};
        let plain = of(Role::Operator, "alice");
        let exec = granted("alice", &[Grant::Exec]);
        let both = granted("alice", &Grant::ALL);
        for (p, may_exec, may_forward) in [(&plain, false, false), (&exec, true, false), (&both, true, true)]
        {
            for (kind, may) in [(Exec, may_exec), (Forward, may_forward)] {
                let own = subjects::session_request(kind, "h1", "alice", "start");
                assert_eq!(may_publish(p, &own), may, "{own}");
                assert_eq!(may_subscribe(p, &subjects::session_stream(kind, "alice", "s1")), may, "{kind:?}");
                assert!(!may_publish(p, &subjects::session_request(kind, "h1", "bob", "start")), "as bob");
                assert!(!may_subscribe(p, &subjects::session_stream(kind, "bob", "s1")), "bob's stream");
                assert!(
                    !may_publish(p, &subjects::session_stream(kind, "alice", "s1")),
                    "the agent's to send"
                );
            }
        }
        for role in [Role::Viewer, Role::Router, Role::Agent, Role::Controller] {
            assert!(check_grants(role, &[Grant::Exec].into_iter().collect()).is_err(), "{role}");
        }
        assert!(check_grants(Role::Operator, &Grant::ALL.into_iter().collect()).is_ok());
        assert_eq!("port-forward".parse::<Grant>(), Ok(Grant::PortForward));
        assert!("shell".parse::<Grant>().unwrap_err().contains("exec, port-forward"));
    }

    #[test]
    fn session_reports_go_from_an_agent_for_its_own_host_to_the_controller() {
        let agent = of(Role::Agent, "h1");
        assert!(may_publish(&agent, &subjects::session_report("h1")));
        assert!(!may_publish(&agent, &subjects::session_report("h2")), "as another host");
        assert!(may_publish(&agent, "$O.qd_sessions.M.xabc"), "its recordings");
        assert!(may_subscribe(&of(Role::Controller, "c1"), &subjects::session_report("h2")));
        assert!(!may_publish(&of(Role::Operator, "alice"), &subjects::session_report("h1")));
        let reads = "$JS.API.STREAM.INFO.OBJ_qd_sessions";
        assert!(may_publish(&granted("alice", &[Grant::Exec]), reads), "replays need the exec grant");
        assert!(!may_publish(&of(Role::Operator, "alice"), reads));
        assert!(!may_publish(&granted("alice", &[Grant::Exec]), "$O.qd_sessions.M.xabc"), "nor writes");
    }

    #[test]
    fn an_agent_serves_sessions_for_its_own_host_only() {
        use subjects::SessionKind::{Exec, Forward};
        let p = of(Role::Agent, "h1");
        for kind in [Exec, Forward] {
            assert!(may_subscribe(&p, &subjects::session_request(kind, "h1", "alice", "start")));
            assert!(!may_subscribe(&p, &subjects::session_request(kind, "h2", "alice", "start")));
            assert!(may_publish(&p, &subjects::session_stream(kind, "alice", "s1")));
            assert!(!may_publish(&p, &subjects::session_request(kind, "h1", "alice", "start")));
        }
    }

    #[test]
    fn only_the_controller_publishes_events_and_agent_commands_and_answers_commands() {
        let evt = subjects::event("deploy", Some("shop"));
        for role in Role::ALL {
            let p = of(role, "x");
            let controller = role == Role::Controller;
            assert_eq!(may_publish(&p, &evt), controller, "{role} on {evt}");
            assert_eq!(may_publish(&p, "qd.v1.agent.h1.cmd.deploy"), controller, "{role}");
            assert_eq!(may_subscribe(&p, &subjects::command("x", CtlVerb::Deploy)), controller, "{role}");
            assert_eq!(may_publish(&p, "$KV.qd_state.app.shop"), controller, "{role}");
        }
    }

    #[test]
    fn an_agent_speaks_and_listens_only_for_its_own_host() {
        let p = of(Role::Agent, "h1");
        assert!(may_publish(&p, &subjects::heartbeat("h1")));
        assert!(!may_publish(&p, &subjects::heartbeat("h2")));
        assert!(may_subscribe(&p, "qd.v1.agent.h1.cmd.deploy"));
        assert!(!may_subscribe(&p, "qd.v1.agent.h2.cmd.deploy"));
        assert!(!may_publish(&p, &subjects::command("h1", CtlVerb::Deploy)));
        assert!(!may_publish(&p, "$O.qd_artifacts.chunks.x"), "the artifact store is read-only");
        assert!(may_publish(&p, "$JS.API.CONSUMER.CREATE.OBJ_qd_artifacts.c1.$O.qd_artifacts.chunks.x"));
    }

    /// The bucket is made by its writers (the controller at its start, an operator's
    /// upload); an agent only looks it up, so it opens it with `ObjectStoreRepository::reader`.
    #[test]
    fn only_writers_create_the_artifact_bucket() {
        let create = "$JS.API.STREAM.CREATE.OBJ_qd_artifacts";
        assert!(may_publish(&of(Role::Controller, "c1"), create));
        assert!(may_publish(&of(Role::Operator, "alice"), create));
        for role in [Role::Agent, Role::Router, Role::Viewer] {
            assert!(!may_publish(&of(role, "x"), create), "{role}");
        }
        assert!(may_publish(&of(Role::Agent, "h1"), "$JS.API.STREAM.INFO.OBJ_qd_artifacts"), "the lookup");
    }

    #[test]
    fn a_viewer_may_read_and_ask_but_never_act() {
        let p = of(Role::Viewer, "carol");
        assert!(may_publish(&p, subjects::CTL_SNAPSHOT) && may_publish(&p, subjects::CTL_HISTORY));
        for verb in CtlVerb::ALL.into_iter().filter(|v| *v != CtlVerb::Releases) {
            let acting = subjects::command("carol", verb);
            assert!(!may_publish(&p, &acting), "{acting}");
        }
        // Releases are a read: under its own name only, as an operator's commands.
        assert!(may_publish(&p, &subjects::command("carol", CtlVerb::Releases)));
        assert!(!may_publish(&p, &subjects::command("dave", CtlVerb::Releases)));
        assert!(!may_publish(&p, "$KV.qd_releases.shop"), "the bucket is the controller's");
        assert!(!may_publish(&p, "$O.qd_artifacts.chunks.x"));
        assert!(may_subscribe(&p, subjects::EVT_ALL) && may_subscribe(&p, "_INBOX.UKEY.abc"));
        assert!(!may_subscribe(&p, "_INBOX.UOTHER.abc"), "another user's answers");
    }

    #[test]
    fn an_operator_sends_commands_under_its_own_name_only() {
        let p = of(Role::Operator, "alice");
        for verb in CtlVerb::ALL {
            assert!(may_publish(&p, &subjects::command("alice", verb)), "{}", verb.as_str());
            assert!(!may_publish(&p, &subjects::command("bob", verb)), "{}", verb.as_str());
        }
        assert!(may_publish(&p, subjects::CTL_SNAPSHOT) && may_publish(&p, subjects::CTL_HISTORY));
        assert!(!may_publish(&p, "qd.v1.ctl.deploy"), "a command without a user");
    }

    #[test]
    fn operators_and_viewers_ask_for_and_read_their_own_log_streams_only() {
        for role in [Role::Operator, Role::Viewer] {
            let p = of(role, "alice");
            for verb in [subjects::LogsVerb::Start, subjects::LogsVerb::Stop, subjects::LogsVerb::Keepalive] {
                let own = subjects::logs_request("h1", "alice", verb);
                let other = subjects::logs_request("h1", "bob", verb);
                assert!(may_publish(&p, &own), "{role} on {own}");
                assert!(!may_publish(&p, &other), "{role} on {other}");
            }
            assert!(may_subscribe(&p, &subjects::logs_stream("alice", "v1")), "{role}");
            assert!(!may_subscribe(&p, &subjects::logs_stream("bob", "v1")), "{role}: another user's stream");
            assert!(!may_subscribe(&p, "qd.v1.logs.>"), "{role}: every stream");
            assert!(!may_publish(&p, "qd.v1.agent.h1.cmd.logs"), "{role}: the old unscoped request");
            assert!(
                !may_publish(&p, &subjects::logs_stream("alice", "v1")),
                "{role}: batches are the agent's"
            );
        }
    }

    #[test]
    fn an_agent_takes_log_requests_for_its_own_host_and_publishes_the_batches() {
        let p = of(Role::Agent, "h1");
        assert!(may_subscribe(&p, &subjects::logs_request("h1", "alice", subjects::LogsVerb::Start)));
        assert!(!may_subscribe(&p, &subjects::logs_request("h2", "alice", subjects::LogsVerb::Start)));
        assert!(may_publish(&p, &subjects::logs_stream("alice", "v1")));
        assert!(!may_publish(&p, &subjects::logs_request("h1", "alice", subjects::LogsVerb::Stop)));
    }

    #[test]
    fn the_artifact_store_is_uploaded_to_by_operators_and_read_by_agents() {
        let chunk = "$O.qd_artifacts.C.abc";
        let get = "$JS.API.STREAM.MSG.GET.OBJ_qd_artifacts";
        let op = of(Role::Operator, "alice");
        assert!(may_publish(&op, chunk) && may_publish(&op, get));
        assert!(may_publish(&op, "$JS.API.STREAM.PURGE.OBJ_qd_artifacts"), "a re-upload purges old chunks");
        assert!(
            !may_publish(&op, "$JS.API.STREAM.UPDATE.OBJ_qd_artifacts"),
            "its retention is not an operator's"
        );
        let agent = of(Role::Agent, "h1");
        assert!(may_publish(&agent, get) && !may_publish(&agent, chunk));
        assert!(!may_publish(&agent, "$JS.API.STREAM.PURGE.OBJ_qd_artifacts"));
        for role in [Role::Viewer, Role::Router] {
            let p = of(role, "x");
            assert!(!may_publish(&p, chunk) && !may_publish(&p, get), "{role}");
            assert!(!may_subscribe(&p, "$O.qd_artifacts.C.abc"), "{role}");
        }
    }

    #[test]
    fn roles_and_names_are_checked() {
        assert_eq!("agent".parse::<Role>(), Ok(Role::Agent));
        assert!("admin".parse::<Role>().unwrap_err().contains("controller, agent, router, operator, viewer"));
        assert!(Identity::new(Role::Agent, "h1.evil").is_err());
        assert!(Identity::new(Role::Operator, "").is_err());
    }

    /// Only the controller writes secret values and only it and the agents read them: an
    /// operator (even with every grant), a viewer and a router may neither read the bucket
    /// (a get, a direct get, a consumer on its stream) nor write it.
    #[test]
    fn only_the_controller_and_agents_touch_the_secrets_bucket() {
        let reads = [
            "$JS.API.STREAM.INFO.KV_qd_secrets",
            "$JS.API.STREAM.MSG.GET.KV_qd_secrets",
            "$JS.API.DIRECT.GET.KV_qd_secrets.$KV.qd_secrets.web.DB_PASS.1",
            "$JS.API.CONSUMER.CREATE.KV_qd_secrets",
        ];
        let write = "$KV.qd_secrets.web.DB_PASS.1";
        for p in [of(Role::Controller, "c1"), of(Role::Agent, "h1")] {
            assert!(reads.iter().all(|r| may_publish(&p, r)));
        }
        assert!(may_publish(&of(Role::Controller, "c1"), write));
        assert!(!may_publish(&of(Role::Agent, "h1"), write), "an agent only reads");
        let everyone_else = [
            of(Role::Operator, "alice"),
            granted("alice", &Grant::ALL),
            of(Role::Viewer, "v"),
            of(Role::Router, "r"),
        ];
        for p in everyone_else {
            for r in reads.iter().chain([&write]) {
                assert!(!may_publish(&p, r), "{r}");
            }
            assert!(!may_subscribe(&p, write));
        }
    }
}
