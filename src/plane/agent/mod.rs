//! An agent: one per Docker host. It heartbeats its full instance list and metrics every
//! period, reports instance changes at once, and carries out the controller's commands
//! idempotently through its runtime driver.

pub mod docker;
pub mod driver;
pub mod exec;
pub mod forward;
pub mod logs;
pub mod recording;
pub mod sim;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use futures_util::{Stream, StreamExt};

use crate::bus::{self, Bus, BusError, Message};
use crate::plane::replies::ReplyCache;
use crate::protocol::clock::now_ms;
use crate::protocol::exec::{ExecRequest, ExecVerb};
use crate::protocol::image::ImageRef;
use crate::protocol::subjects::{self, AgentVerb, LogsVerb, SessionKind};
use crate::protocol::{
    AgentAck, Envelope, ErrorCode, Heartbeat, HostInfo, ImageResolved, InstanceRef, InstanceReport,
    InstanceSpec, InstanceState, InstanceStatus, LogsRequest, LogsStreamRef, Reply, ResolveImage, StepState,
    WireError, decode, encode, validate,
};
use driver::{DriverError, RuntimeDriver, StepReport};

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub host_id: String,
    pub hostname: String,
    pub ip: String,
    pub az: String,
    pub tags: Vec<String>,
    pub heartbeat_period: Duration,
    /// How often the driver is asked for changes between heartbeats.
    pub poll_interval: Duration,
    /// The Prometheus metrics each heartbeat updates (`--metrics-listen`), when any.
    pub metrics: Option<Arc<crate::plane::metrics::agent::AgentMetrics>>,
}

impl AgentConfig {
    fn source(&self) -> String {
        format!("agent/{}", self.host_id)
    }
}

/// A running agent. Dropping the handle leaves it running; `stop` ends it, as if the
/// process had died.
pub struct AgentHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl AgentHandle {
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Agent {
    bus: Arc<dyn Bus>,
    driver: Arc<dyn RuntimeDriver>,
    config: AgentConfig,
    /// Replies already given, by command id.
    replies: Mutex<ReplyCache>,
    steps: mpsc::Sender<StepReport>,
    /// The operation each instance is part of, for the steps it reports.
    operations: Mutex<HashMap<String, String>>,
    /// Log streams to viewers.
    logs: logs::LogStreams,
    /// Exec sessions of users.
    exec: exec::ExecSessions,
}

const REPLIES_KEPT: usize = 4096;

/// Starts an agent's loops on the current runtime.
pub async fn start(
    bus: Arc<dyn Bus>,
    driver: Arc<dyn RuntimeDriver>,
    config: AgentConfig,
) -> Result<AgentHandle, BusError> {
    start_with_recordings(bus, driver, config, None).await
}

/// `start`, with the store exec sessions are recorded into (the sessions bucket).
pub async fn start_with_recordings(
    bus: Arc<dyn Bus>,
    driver: Arc<dyn RuntimeDriver>,
    config: AgentConfig,
    recordings: Option<Arc<dyn crate::repository::Repository>>,
) -> Result<AgentHandle, BusError> {
    validate::name("host id", &config.host_id).map_err(BusError::Other)?;
    // Log requests come on subjects of their own, which carry the viewer's user; one loop
    // serves both, so a log start has the same deadline and reply cache as a command.
    let commands = futures_util::stream::select(
        futures_util::stream::select(
            bus.subscribe(&subjects::agent_cmd_all(&config.host_id)).await?,
            bus.subscribe(&subjects::logs_requests_to(&config.host_id)).await?,
        ),
        bus.subscribe(&subjects::session_requests_to(SessionKind::Exec, &config.host_id)).await?,
    );
    let (steps, step_rx) = mpsc::channel(driver::STEP_CHANNEL);
    let agent = Arc::new(Agent {
        bus,
        driver,
        config,
        replies: Mutex::new(ReplyCache::new(REPLIES_KEPT)),
        steps,
        operations: Mutex::new(HashMap::new()),
        logs: logs::LogStreams::default(),
        exec: exec::ExecSessions::with_recordings(recordings),
    });
    let forwards = Arc::new(forward::Forwards::new(
        agent.config.host_id.clone(),
        agent.config.source(),
        agent.bus.clone(),
        agent.driver.clone(),
    ));
    let forward_requests = agent
        .bus
        .subscribe(&subjects::session_requests_to(subjects::SessionKind::Forward, &agent.config.host_id))
        .await?;
    let tasks = vec![
        tokio::spawn(forwards.serve(forward_requests)),
        tokio::spawn(serve_commands(agent.clone(), commands)),
        tokio::spawn(forward_steps(agent.clone(), step_rx)),
        tokio::spawn(heartbeat(agent.clone())),
        tokio::spawn(watch_changes(agent.clone())),
    ];
    Ok(AgentHandle { tasks })
}

async fn heartbeat(agent: Arc<Agent>) {
    let mut ticker = tokio::time::interval(agent.config.heartbeat_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let instances = match agent.driver.list().await {
            Ok(list) => list,
            Err(err) => {
                log::warn!("{}: cannot list instances: {err}", agent.config.host_id);
                continue;
            }
        };
        let (cores, memory) = agent.driver.capacity();
        let c = &agent.config;
        let hb = Heartbeat {
            host: HostInfo {
                id: c.host_id.clone(),
                hostname: c.hostname.clone(),
                ip: c.ip.clone(),
                az: c.az.clone(),
                tags: c.tags.clone(),
                cpu_cores: cores,
                memory_total_mb: memory,
                agent_version: format!("{}/{}", env!("CARGO_PKG_VERSION"), agent.driver.name()),
                warnings: agent.driver.warnings().await,
            },
            metrics: agent.driver.host_metrics().await,
            instances,
            period_ms: c.heartbeat_period.as_millis() as u64,
            unmanaged: agent.driver.unmanaged().await,
        };
        if let Some(m) = &c.metrics {
            m.observe(&hb);
        }
        let env = Envelope::new(c.source(), hb);
        match bus::publish(agent.bus.as_ref(), &subjects::heartbeat(&c.host_id), &env).await {
            Ok(()) => c.metrics.iter().for_each(|m| m.sent()),
            Err(err) => log::warn!("{}: heartbeat not sent: {err}", c.host_id),
        }
    }
}

/// Polls the driver between heartbeats and reports any instance whose state changed, so a
/// crash reaches the controller in well under a heartbeat period.
async fn watch_changes(agent: Arc<Agent>) {
    let mut known: HashMap<String, InstanceState> = HashMap::new();
    let mut ticker = tokio::time::interval(agent.config.poll_interval);
    loop {
        ticker.tick().await;
        let Ok(list) = agent.driver.list().await else { continue };
        for report in &list {
            if known.get(&report.id) != Some(&report.state) {
                known.insert(report.id.clone(), report.state);
                send_status(&agent, report.clone(), None, String::new(), None).await;
            }
        }
        known.retain(|id, _| list.iter().any(|r| &r.id == id));
    }
}

async fn forward_steps(agent: Arc<Agent>, mut rx: mpsc::Receiver<StepReport>) {
    while let Some(step) = rx.recv().await {
        let state = step.running.then_some(StepState::Running);
        send_status(&agent, step.instance, Some(step.step), step.detail, state).await;
    }
}

async fn send_status(
    agent: &Agent,
    instance: InstanceReport,
    step: Option<crate::protocol::StepName>,
    detail: String,
    step_state: Option<StepState>,
) {
    let operation_id = match step {
        Some(_) => agent.operations.lock().ok().and_then(|ops| ops.get(&instance.id).cloned()),
        None => None,
    };
    let status = InstanceStatus {
        host: agent.config.host_id.clone(),
        instance,
        step,
        operation_id,
        detail,
        step_state,
    };
    let env = Envelope::new(agent.config.source(), status);
    if let Err(err) = bus::publish(agent.bus.as_ref(), &subjects::status(&agent.config.host_id), &env).await {
        log::warn!("{}: status not sent: {err}", agent.config.host_id);
    }
}

async fn serve_commands(agent: Arc<Agent>, mut commands: impl Stream<Item = Message> + Unpin) {
    while let Some(msg) = commands.next().await {
        // A registry may take its time: the answer comes from its own task, so deploys
        // and removes are not held up behind it.
        if msg.subject.rsplit('.').next().and_then(AgentVerb::parse) == Some(AgentVerb::Resolve) {
            tokio::spawn(resolve(agent.clone(), msg));
            continue;
        }
        let answer = handle_command(&agent, &msg).await;
        let Some(to) = &msg.reply else { continue };
        if let Err(err) = agent.bus.publish(to, Bytes::from(answer)).await {
            log::warn!("{}: could not answer {}: {err}", agent.config.host_id, msg.subject);
        }
    }
}

/// The most an agent waits for its registry's answer to `cmd.resolve`.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The most one image pull may take before its `PULL_IMAGE` step fails. The controller
/// waits for an instance while its pull runs, up to this, beyond its step timeout.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// `cmd.resolve`: a read, so neither cached nor remembered; late is still refused.
async fn resolve(agent: Arc<Agent>, msg: Message) {
    let result = match decode::<ResolveImage>(&msg.payload) {
        Err(err) => Err(WireError::bad_request(err.to_string())),
        Ok(env) => match env.check_deadline(now_ms()) {
            Err(expired) => Err(expired),
            Ok(()) => resolve_image(&agent, &env.body.image).await,
        },
    };
    if let Err(err) = &result {
        log::warn!("{}: resolve refused: {}", agent.config.host_id, err.reason);
    }
    let answer = encode(&Envelope::new(agent.config.source(), Reply::from(result))).unwrap_or_default();
    if let Some(to) = &msg.reply
        && let Err(err) = agent.bus.publish(to, Bytes::from(answer)).await
    {
        log::warn!("{}: could not answer {}: {err}", agent.config.host_id, msg.subject);
    }
}

async fn resolve_image(agent: &Agent, image: &str) -> Result<ImageResolved, WireError> {
    let parsed = ImageRef::parse(image).map_err(WireError::bad_request)?;
    if !parsed.from_registry() {
        return Err(WireError::bad_request(format!("image {image} names no registry: nothing to resolve")));
    }
    let asked = tokio::time::timeout(RESOLVE_TIMEOUT, agent.driver.resolve(image)).await;
    let digest = match asked {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return Err(WireError::new(ErrorCode::NotFound, e.to_string())),
        Err(_) => {
            return Err(WireError::new(
                ErrorCode::Unavailable,
                format!("the registry did not answer for {image} within {RESOLVE_TIMEOUT:?}"),
            ));
        }
    };
    // A runtime's answer goes into every instance's spec: checked like input.
    crate::protocol::image::check_digest(&digest).map_err(|e| WireError::new(ErrorCode::Internal, e))?;
    Ok(ImageResolved { digest })
}

fn encode_reply(agent: &Agent, reply: Reply<AgentAck>) -> Vec<u8> {
    encode(&Envelope::new(agent.config.source(), reply)).unwrap_or_default()
}

/// What a message on one of the agent's subjects asks for.
enum Request<'a> {
    Command(Option<AgentVerb>),
    /// A log request, with the user its subject names (the server checked it).
    Logs(&'a str, LogsVerb),
    /// On the log requests' subjects, but not one.
    BadLogs(String),
    /// An exec request, with the user its subject names (the server checked it).
    Exec(&'a str, ExecVerb),
    /// On the exec requests' subjects, but not one.
    BadExec(String),
}

fn request_of<'a>(agent: &Agent, subject: &'a str) -> Request<'a> {
    if subjects::matches(&subjects::logs_requests_to(&agent.config.host_id), subject) {
        return match subjects::parse_logs_request(&agent.config.host_id, subject) {
            Ok((user, verb)) => Request::Logs(user, verb),
            Err(reason) => Request::BadLogs(reason),
        };
    }
    if subjects::matches(&subjects::session_requests_to(SessionKind::Exec, &agent.config.host_id), subject) {
        return match subjects::parse_session_request(SessionKind::Exec, &agent.config.host_id, subject) {
            Ok((user, verb)) => match ExecVerb::parse(verb) {
                Some(v) => Request::Exec(user, v),
                None => Request::BadExec(format!("{subject}: no exec verb {}", validate::quoted(verb))),
            },
            Err(reason) => Request::BadExec(reason),
        };
    }
    Request::Command(subject.rsplit('.').next().and_then(AgentVerb::parse))
}

fn exec_agent(agent: &Agent) -> exec::Agent {
    exec::Agent {
        bus: agent.bus.clone(),
        driver: agent.driver.clone(),
        source: agent.config.source(),
        host: agent.config.host_id.clone(),
    }
}

/// The answer to a session's frequent, stateless request (a log stream's stop or
/// keep-alive, an exec session's control), which skips the reply cache; `None` for others.
fn uncached(agent: &Agent, request: &Request, msg: &Message) -> Option<Vec<u8>> {
    // Stop and keep-alive change no state worth remembering and come every few seconds:
    // answered (when asked) without the reply cache.
    if let Request::Logs(user, verb @ (LogsVerb::Stop | LogsVerb::Keepalive)) = *request {
        let result = match decode::<LogsStreamRef>(&msg.payload) {
            Ok(env) => agent.logs.touch(user, &env.body, verb == LogsVerb::Stop),
            Err(err) => Err(WireError::bad_request(err.to_string())),
        };
        return Some(encode_reply(agent, Reply::from(result)));
    }
    // Input, resizes, keep-alives and stops are publishes, in order and often: neither
    // cached nor answered unless asked.
    if let Request::Exec(user, verb) = *request
        && verb != ExecVerb::Start
    {
        let result = agent.exec.control(user, verb, &msg.payload);
        if let Err(err) = &result {
            log::info!("{}: {} refused: {}", agent.config.host_id, msg.subject, err.reason);
        }
        return Some(encode_reply(
            agent,
            Reply::from(result.map(|()| AgentAck { instance_id: String::new() })),
        ));
    }
    None
}

/// Keeps a command's answer for its repeats (`id` empty: the command had no id to key it).
fn remember(agent: &Agent, id: &str, answer: &[u8]) {
    if let (false, Ok(mut replies)) = (id.is_empty(), agent.replies.lock()) {
        replies.insert(id, answer.to_vec());
    }
}

/// Starts an exec session; its answer is its own type, encoded here.
async fn start_exec(agent: &Agent, user: &str, msg: &Message) -> Result<Vec<u8>, WireError> {
    let env = decode::<ExecRequest>(&msg.payload).map_err(|err| WireError::bad_request(err.to_string()))?;
    let started = agent.exec.start(exec_agent(agent), user, env.body).await?;
    Ok(encode(&Envelope::new(agent.config.source(), Reply::Ok(started))).unwrap_or_default())
}

async fn handle_command(agent: &Arc<Agent>, msg: &Message) -> Vec<u8> {
    let request = request_of(agent, &msg.subject);
    if let Some(answer) = uncached(agent, &request, msg) {
        return answer;
    }
    // The command id comes first: a repeat is answered from the cache and never run again.
    // Keyed by subject too: the same id sent to another verb (or by another user) is
    // another command.
    let head = decode::<serde::de::IgnoredAny>(&msg.payload);
    // A command past its deadline is refused before the cache and before it runs: its
    // sender (the controller) has already counted it failed. Not cached, so a retry with a
    // fresh deadline still runs.
    if let Ok(env) = &head
        && let Err(expired) = env.check_deadline(now_ms())
    {
        log::warn!("{}: refused {}: {}", agent.config.host_id, msg.subject, expired.reason);
        return encode_reply(agent, Reply::Error(expired));
    }
    let id = head.map(|env| format!("{}/{}", msg.subject, env.id)).unwrap_or_default();
    if let Some(cached) = agent.replies.lock().ok().and_then(|r| r.get(&id)).filter(|_| !id.is_empty()) {
        return cached;
    }
    let result = match request {
        Request::Command(Some(AgentVerb::Deploy)) => match decode::<InstanceSpec>(&msg.payload) {
            Ok(env) => deploy(agent, env.body).await,
            Err(err) => Err(WireError::bad_request(err.to_string())),
        },
        Request::Command(Some(verb @ (AgentVerb::Restart | AgentVerb::Remove))) => {
            match decode::<InstanceRef>(&msg.payload) {
                Ok(env) => instance_command(agent, verb, env.body).await,
                Err(err) => Err(WireError::bad_request(err.to_string())),
            }
        }
        Request::Logs(user, LogsVerb::Start) => match decode::<LogsRequest>(&msg.payload) {
            Ok(env) => {
                let (bus, source) = (agent.bus.clone(), agent.config.source());
                agent.logs.start(bus, agent.driver.clone(), source, user, env.body).await
            }
            Err(err) => Err(WireError::bad_request(err.to_string())),
        },
        // Answered above, before the reply cache, or in their own task.
        Request::Logs(_, LogsVerb::Stop | LogsVerb::Keepalive)
        | Request::Command(Some(AgentVerb::Resolve)) => {
            Err(WireError::bad_request(format!("unexpected {}", msg.subject)))
        }
        Request::BadLogs(reason) | Request::BadExec(reason) => Err(WireError::bad_request(reason)),
        Request::Exec(user, _) => match start_exec(agent, user, msg).await {
            // Its own answer type: cached as any other.
            Ok(answer) => {
                remember(agent, &id, &answer);
                return answer;
            }
            Err(e) => Err(e),
        },
        Request::Command(None) => {
            Err(WireError::bad_request(format!("unknown agent command {}", msg.subject)))
        }
    };
    if let Err(err) = &result {
        log::warn!("{}: refused {}: {}", agent.config.host_id, msg.subject, err.reason);
    }
    let answer = encode_reply(agent, Reply::from(result));
    remember(agent, &id, &answer);
    answer
}

/// What an agent checks of a spec before it runs anything: the id (it names the
/// instance's directory, which a failed deploy removes: `../..` would reach outside the
/// data directory), the names, the image, and limits on every container.
pub fn check_spec(spec: &InstanceSpec) -> Result<(), String> {
    validate::instance_id(&spec.id)?;
    validate::name("app", &spec.app)?;
    validate::version(&spec.version)?;
    validate::image(&spec.image)?;
    validate::limits(spec.cpu, spec.memory_mb)
}

async fn deploy(agent: &Arc<Agent>, spec: InstanceSpec) -> Result<AgentAck, WireError> {
    check_spec(&spec).map_err(WireError::bad_request)?;
    let ack = AgentAck { instance_id: spec.id.clone() };
    // Idempotent: an instance we already run is not started twice.
    if agent.driver.has(&spec.id).await {
        return Ok(ack);
    }
    if let Ok(mut ops) = agent.operations.lock() {
        ops.insert(spec.id.clone(), spec.operation_id.clone());
    }
    let (driver, steps, host) = (agent.driver.clone(), agent.steps.clone(), agent.config.host_id.clone());
    tokio::spawn(async move {
        let id = spec.id.clone();
        if let Err(err) = driver.deploy(spec, steps).await {
            log::warn!("{host}: deploy of {id} failed: {err}");
        }
    });
    Ok(ack)
}

async fn instance_command(
    agent: &Arc<Agent>,
    verb: AgentVerb,
    req: InstanceRef,
) -> Result<AgentAck, WireError> {
    let ack = AgentAck { instance_id: req.id.clone() };
    match verb {
        AgentVerb::Restart => {
            if !agent.driver.has(&req.id).await {
                return Err(WireError::new(ErrorCode::NotFound, DriverError::NotFound(req.id).to_string()));
            }
            if let (Ok(mut ops), Some(op)) = (agent.operations.lock(), req.operation_id.clone()) {
                ops.insert(req.id.clone(), op);
            }
            let (driver, steps, host) =
                (agent.driver.clone(), agent.steps.clone(), agent.config.host_id.clone());
            tokio::spawn(async move {
                if let Err(err) = driver.restart(&req.id, steps).await {
                    log::warn!("{host}: restart of {} failed: {err}", req.id);
                }
            });
            Ok(ack)
        }
        _ => {
            if let Ok(mut ops) = agent.operations.lock() {
                ops.remove(&req.id);
            }
            agent
                .driver
                .remove(&req.id)
                .await
                .map_err(|e| WireError::new(ErrorCode::Internal, e.to_string()))?;
            Ok(ack)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use crate::protocol::subjects::agent_cmd;

    fn spec(id: &str) -> InstanceSpec {
        InstanceSpec {
            id: id.into(),
            app: "shop-web".into(),
            version: "1.0".into(),
            index: 0,
            image: "tomcat:8".into(),
            port: 8080,
            cpu: 0.5,
            memory_mb: 256,
            operation_id: "op-1".into(),
            run: Default::default(),
        }
    }

    async fn send(bus: &LocalBus, id: &str, deadline: Option<u64>) -> Reply<AgentAck> {
        let mut env = Envelope::with_id("cmd-1", "controller", spec(id));
        env.deadline = deadline;
        let payload = Bytes::from(encode(&env).unwrap());
        let answer = bus.request(&agent_cmd("h1", AgentVerb::Deploy), payload, Duration::from_secs(5)).await;
        decode::<Reply<AgentAck>>(&answer.unwrap()).unwrap().body
    }

    /// Found while writing the `agent_command` fuzz target, which now checks it: a spec
    /// whose id leaves the data directory was deployed, and a deploy that failed removed
    /// `<data dir>/instances/<id>`, any directory on the host. Refused before anything runs.
    #[tokio::test]
    async fn a_spec_whose_id_is_a_path_is_refused_before_anything_runs() {
        let bus = LocalBus::new();
        let (driver, config) = (sim_driver(), config());
        let handle = start(Arc::new(bus.clone()), driver.clone(), config).await.unwrap();
        // Each with its own command id: the reply cache answers a repeated one.
        let deploy = |n: usize, id: &str| {
            let payload =
                Bytes::from(encode(&Envelope::with_id(format!("cmd-{n}"), "controller", spec(id))).unwrap());
            let bus = bus.clone();
            async move {
                let answer =
                    bus.request(&agent_cmd("h1", AgentVerb::Deploy), payload, Duration::from_secs(5)).await;
                decode::<Reply<AgentAck>>(&answer.unwrap()).unwrap().body
            }
        };
        for (n, id) in ["../../../../tmp/victim", "..", "shop/web", ""].into_iter().enumerate() {
            let Reply::Error(err) = deploy(n, id).await else { panic!("a spec with id {id:?} was accepted") };
            assert_eq!(err.code, ErrorCode::BadRequest, "{err:?}");
            assert!(err.reason.contains("instance id"), "{err:?}");
            assert!(!driver.has(id).await, "{id:?} was deployed");
        }
        assert!(matches!(deploy(9, "shop-web-0-aaaa").await, Reply::Ok(_)));
        handle.stop();
    }

    /// `cmd.resolve` answers the runtime's digest, or says why not: a reference without a
    /// registry is bad input, the registry's refusal is `not_found` in its own words.
    #[tokio::test]
    async fn resolve_answers_a_digest_or_why_not() {
        let bus = LocalBus::new();
        let (driver, config) = (sim_driver(), config());
        let handle = start(Arc::new(bus.clone()), driver, config).await.unwrap();
        let ask = |image: &str| {
            let env = Envelope::new("controller", ResolveImage { image: image.into() });
            let payload = Bytes::from(encode(&env).unwrap());
            let bus = bus.clone();
            async move {
                let answer =
                    bus.request(&agent_cmd("h1", AgentVerb::Resolve), payload, Duration::from_secs(5)).await;
                decode::<Reply<ImageResolved>>(&answer.unwrap()).unwrap().body
            }
        };
        let image = "registry.test:5000/shop/web:1";
        let Reply::Ok(found) = ask(image).await else { panic!("no digest for {image}") };
        assert_eq!(found.digest, format!("sha256:{}", crate::repository::sha256_hex(image.as_bytes())));
        let Reply::Error(e) = ask("nginx:1").await else { panic!("nginx:1 resolved") };
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.reason.contains("names no registry"), "{e:?}");
        let Reply::Error(e) = ask("registry.test/shop/missing:1").await else {
            panic!("a missing tag resolved")
        };
        assert_eq!(e.code, ErrorCode::NotFound);
        assert!(e.reason.contains("manifest unknown"), "{e:?}");
        let Reply::Error(e) = ask("registry.test/Shop:1").await else { panic!("a bad reference resolved") };
        assert_eq!(e.code, ErrorCode::BadRequest);
        handle.stop();
    }

    /// Log requests name their user in the subject: a subject that is not one is refused
    /// with the form it should have, and one user's command id is not another's (the
    /// reply cache is keyed by the whole subject).
    #[tokio::test]
    async fn log_requests_are_read_from_their_subject_and_cached_per_user() {
        use crate::protocol::subjects::{LogsVerb, logs_request, logs_stream};
        let bus = LocalBus::new();
        let handle = start(Arc::new(bus.clone()), sim_driver(), config()).await.unwrap();
        let ask = |subject: String, stream: String| {
            let bus = bus.clone();
            async move {
                let req = LogsRequest {
                    instance: "web-0-none".into(),
                    tail: 1,
                    follow: false,
                    stream,
                    since: None,
                };
                let payload = Bytes::from(encode(&Envelope::with_id("same-id", "cockpit", req)).unwrap());
                let answer = bus.request(&subject, payload, Duration::from_secs(5)).await.unwrap();
                match decode::<Reply<AgentAck>>(&answer).unwrap().body {
                    Reply::Error(e) => e,
                    Reply::Ok(ack) => panic!("accepted: {ack:?}"),
                }
            }
        };
        let bad = ask("qd.v1.agent.h1.logs.alice.tail".into(), logs_stream("alice", "v1")).await;
        assert_eq!(bad.code, ErrorCode::BadRequest);
        assert!(bad.reason.contains("<user>.<start|stop|keepalive>"), "{bad:?}");
        let alices = ask(logs_request("h1", "alice", LogsVerb::Start), logs_stream("bob", "v1")).await;
        assert_eq!(alices.code, ErrorCode::BadRequest, "alice asked for a stream of bob's: {alices:?}");
        let bobs = ask(logs_request("h1", "bob", LogsVerb::Start), logs_stream("bob", "v1")).await;
        assert_eq!(bobs.code, ErrorCode::NotFound, "bob got alice's cached answer: {bobs:?}");
        handle.stop();
    }

    /// Exec requests name their user in the subject, as log requests do; the simulated
    /// runtime says it cannot exec.
    #[tokio::test]
    async fn exec_requests_are_read_from_their_subject_and_the_sim_cannot_exec() {
        use crate::protocol::exec::{ExecStarted, ExecVerb};
        let bus = LocalBus::new();
        let driver = sim_driver();
        let handle = start(Arc::new(bus.clone()), driver.clone(), config()).await.unwrap();
        let ask = |subject: String, instance: &str, user: &str| {
            let bus = bus.clone();
            let stream = subjects::session_stream(SessionKind::Exec, user, "s1");
            let req =
                ExecRequest { instance: instance.into(), cmd: vec![], tty: false, cols: 0, rows: 0, stream };
            async move {
                let payload = Bytes::from(encode(&Envelope::new("ctl", req)).unwrap());
                let answer = bus.request(&subject, payload, Duration::from_secs(5)).await.unwrap();
                match decode::<Reply<ExecStarted>>(&answer).unwrap().body {
                    Reply::Error(e) => e,
                    Reply::Ok(s) => panic!("started: {s:?}"),
                }
            }
        };
        let bad = ask("qd.v1.agent.h1.exec.alice.run".into(), "web-0-none", "alice").await;
        assert!(bad.code == ErrorCode::BadRequest && bad.reason.contains("no exec verb \"run\""), "{bad:?}");
        let theirs = ask(ExecVerb::Start.subject("h1", "alice"), "web-0-none", "bob").await;
        assert!(theirs.code == ErrorCode::BadRequest && theirs.reason.contains("alice's own"), "{theirs:?}");
        let none = ask(ExecVerb::Start.subject("h1", "alice"), "web-0-none", "alice").await;
        assert_eq!(none.code, ErrorCode::NotFound, "{none:?}");
        assert!(matches!(send(&bus, "shop-web-0-aaaa", None).await, Reply::Ok(_)));
        let started = tokio::time::Instant::now();
        while !driver.has("shop-web-0-aaaa").await {
            assert!(started.elapsed() < Duration::from_secs(5), "the sim runs the instance");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sim = ask(ExecVerb::Start.subject("h1", "alice"), "shop-web-0-aaaa", "alice").await;
        assert_eq!(sim.code, ErrorCode::Unavailable, "{sim:?}");
        assert!(sim.reason.contains("the sim runtime driver cannot exec"), "{sim:?}");
        handle.stop();
    }

    fn sim_driver() -> Arc<sim::SimDriver> {
        sim::SimDriver::new(sim::SimConfig {
            seed: 1,
            cpu_cores: 4,
            memory_mb: 8192,
            container_ips: vec!["127.0.9.31".into()],
            speed: 50.0,
            crashes_per_hour: 0.0,
        })
    }

    fn config() -> AgentConfig {
        AgentConfig {
            host_id: "h1".into(),
            hostname: "h1".into(),
            ip: "127.0.9.1".into(),
            az: "az-1".into(),
            tags: vec![],
            heartbeat_period: Duration::from_secs(60),
            poll_interval: Duration::from_secs(60),
            metrics: None,
        }
    }

    /// A deploy that reaches the agent after its deadline starts no container and is not
    /// cached: the same command id in time still runs.
    #[tokio::test]
    async fn a_late_command_is_refused_as_expired_and_never_run() {
        let bus = LocalBus::new();
        let driver = sim_driver();
        let handle = start(Arc::new(bus.clone()), driver.clone(), config()).await.unwrap();
        let Reply::Error(err) = send(&bus, "shop-web-0-aaaa", Some(now_ms() - 1_000)).await else {
            panic!("a late deploy was accepted")
        };
        assert_eq!(err.code, ErrorCode::Expired, "{err:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!driver.has("shop-web-0-aaaa").await, "a late deploy started a container");
        let in_time = send(&bus, "shop-web-0-aaaa", Some(now_ms() + 60_000)).await;
        assert!(matches!(in_time, Reply::Ok(_)), "{in_time:?}");
        handle.stop();
    }
}
