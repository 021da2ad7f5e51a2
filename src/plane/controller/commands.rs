//! Requests on `qd.v1.ctl.*`: validated, answered at once with accepted-or-refused, and
//! remembered by command id so that a repeat gets the first answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::core::{Controller, Draft};
use super::paging;
use super::refusals::Refusals;
use super::{audit, deploy, notes, ops, releases, scale, secrets};
use crate::bus::{Message, Subscription};
use crate::protocol::audit::bounded_error;
use crate::protocol::clock::now_ms;
use crate::protocol::release::{Cause, ReleasesRequest, RollbackRequest};
use crate::protocol::subjects::{CtlSubject, CtlVerb, RouteVerb};
use crate::protocol::{
    Accepted, AlertAckRequest, AllocateRequest, Allocation, AppRemoveRequest, AppSpec, AuditRecord, Change,
    Constraints, DeployRequest, Envelope, ErrorCode, EventKind, HistoryRequest, HostRequest, NoteRequest,
    OperationKind, OperationState, Reply, RestartBody, RestartRequest, Route, RouteRequest, RouteState,
    ScaleRequest, SecretSetRequest, SilenceRequest, SnapshotRequest, Strategy, WhoAmI, WireError, decode,
    encode, validate,
};
use crate::repository;

/// Handles requests one at a time: each is quick (long work is spawned), and doing them in
/// order makes "same command id, same answer" hold even for duplicates sent together.
pub(crate) async fn serve(ctl: Controller, mut requests: Subscription) {
    let mut refusals = Refusals::default();
    let reads = Arc::new(Semaphore::new(MAX_HISTORY_READS));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING_REPLIES));
    // Summaries of counted refusals are recorded when their window ends, even if no other
    // request comes.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            msg = requests.next() => msg,
            _ = tick.tick() => {
                commit_records(&ctl, refusals.due(now_ms()));
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let Some(reply_to) = msg.reply.clone() else {
            log::warn!("ignoring {} without a reply subject", msg.subject);
            continue;
        };
        if ctl.fenced() {
            answer(&ctl, &reply_to, &msg.subject, fenced_refusal(&ctl)).await;
            continue;
        }
        let kind = CtlSubject::parse(&msg.subject);
        if kind == CtlSubject::History {
            read_history(&ctl, &reads, msg, &reply_to).await;
            continue;
        }
        // Reads change nothing: answered at once, whatever the backlog.
        let read = matches!(
            kind,
            CtlSubject::Snapshot | CtlSubject::Command { verb: CtlVerb::Whoami | CtlVerb::Releases, .. }
        );
        // A bounded queue: past it, new work is refused (retryable) rather than held in
        // memory until the store catches up.
        let backlog = ctl.backlog();
        if !read && backlog > MAX_BACKLOG {
            let why = format!("the controller has {backlog} events not yet durable; try again in a moment");
            answer(&ctl, &reply_to, &msg.subject, unavailable(&ctl, why)).await;
            continue;
        }
        let prepared = prepare(&ctl, &kind, &msg.payload).await;
        let reply = handle_checked(&ctl, &mut refusals, &msg, prepared);
        if read {
            answer(&ctl, &reply_to, &msg.subject, reply).await;
            continue;
        }
        // "ok" only once durable: the reply waits until the command's events (and any
        // before them) are in the stream and the state. One that cannot be made durable in
        // time gets no answer: its sender reports a timeout, and the audit trail the truth.
        // The wait runs beside the loop, so the next command is decided meanwhile: one at a
        // time, a flood's commands would each wait for a commit before the next was read.
        // A repeat of a command waits for a revision at or above the first's, so it is
        // never answered before the first is durable.
        let rev = ctl.revision();
        // The releases it recorded are durable too before it is answered.
        let release_write = ctl.releases().asked();
        let within = durable_within(&msg.payload, now_ms());
        let Ok(permit) = waiting.clone().acquire_owned().await else { break };
        let ctl2 = ctl.clone();
        ctl.spawn(async move {
            if ctl2.durable(rev, within).await && ctl2.releases().flushed(release_write, within).await {
                answer(&ctl2, &reply_to, &msg.subject, reply).await;
            } else {
                log::warn!("no answer on {}: revision {rev} not durable within {within:?}", msg.subject);
            }
            drop(permit);
        });
    }
    commit_records(&ctl, refusals.due(u64::MAX));
}

/// What a command needs done before it is decided. A rollback's artifact is looked up in
/// the repository (a round trip), so a missing one is refused up front; a secret's value is
/// written before any spec names it, so a controller killed in between leaves no dangling
/// reference.
async fn prepare(ctl: &Controller, kind: &CtlSubject<'_>, payload: &[u8]) -> Prepared {
    match kind {
        CtlSubject::Command { verb: CtlVerb::Rollback, .. } => {
            releases::precheck(ctl, payload).await.map_or(Prepared::Nothing, Prepared::Artifact)
        }
        CtlSubject::Command { verb: CtlVerb::SecretSet, .. } => {
            secrets::prewrite(ctl, payload).await.map_or(Prepared::Nothing, Prepared::Secret)
        }
        _ => Prepared::Nothing,
    }
}

/// A history read runs on its own: it reads the durable stream, which takes a while, and
/// changes nothing, so it must not hold up commands. At most `MAX_HISTORY_READS` at once;
/// past that it is refused, to be tried again.
async fn read_history(ctl: &Controller, reads: &Arc<Semaphore>, msg: crate::bus::Message, reply_to: &str) {
    match reads.clone().try_acquire_owned() {
        Ok(permit) => {
            let ctl2 = ctl.clone();
            ctl.spawn(async move {
                answer_history(ctl2, msg).await;
                drop(permit);
            });
        }
        Err(_) => {
            let why = format!("{MAX_HISTORY_READS} history reads are running already; try again in a moment");
            answer(ctl, reply_to, &msg.subject, unavailable(ctl, why)).await;
        }
    }
}

/// A refusal to try again later.
fn unavailable(ctl: &Controller, why: String) -> Vec<u8> {
    encode_reply::<()>(ctl, Reply::Error(WireError::new(ErrorCode::Unavailable, why)))
}

async fn answer(ctl: &Controller, reply_to: &str, subject: &str, reply: Vec<u8>) {
    if let Err(err) = ctl.bus().publish(reply_to, Bytes::from(reply)).await {
        log::warn!("could not answer {subject}: {err}");
    }
}

/// A fenced leader may have been superseded: it neither acts nor answers with state that
/// may be out of date. Not cached by command id, so a retry after the fence is carried out.
fn fenced_refusal(ctl: &Controller) -> Vec<u8> {
    encode_reply::<()>(
        ctl,
        Reply::Error(WireError::new(
            ErrorCode::NotReady,
            "the controller is fenced: it cannot renew its leader lease (is the bus down?); try again in a moment",
        )),
    )
}

/// Events decided but not yet durable past which commands are refused as `unavailable`.
const MAX_BACKLOG: u64 = 10_000;

/// Replies waiting for their command's events to be durable, at most. Past it the loop
/// waits before reading the next request, so a flood is held in the bus, not in memory.
const MAX_WAITING_REPLIES: usize = 4096;

/// How long a reply waits for its command's events to be durable when the command
/// carries no deadline (an older client): the usual client timeout.
const DURABLE_WITHIN: Duration = Duration::from_secs(5);

/// The longest a reply waits for durability, whatever deadline a command carries.
const DURABLE_WITHIN_MAX: Duration = Duration::from_secs(60);

/// How long a command's reply may wait to be durable: until its sender stops waiting (its
/// envelope's deadline), so a sender that waits longer behind a backlog still gets its
/// answer, and one that has given up is not answered.
fn durable_within(payload: &[u8], now: u64) -> Duration {
    let deadline = decode::<serde::de::IgnoredAny>(payload).ok().and_then(|env| env.deadline);
    match deadline {
        Some(d) => Duration::from_millis(d.saturating_sub(now)).min(DURABLE_WITHIN_MAX),
        None => DURABLE_WITHIN,
    }
}

/// How many `ctl.history` reads run at once. Each reads up to [`MAX_HISTORY`] events from
/// the stream; more at once would only make all of them slow (and nats-server's memory
/// grow), so the next is refused as `unavailable` and its client may try again.
const MAX_HISTORY_READS: usize = 4;

fn commit_records(ctl: &Controller, records: Vec<AuditRecord>) {
    if !records.is_empty() {
        ctl.commit(records.into_iter().map(audit::draft_of).collect());
    }
}

#[cfg(test)]
pub(super) fn handle(ctl: &Controller, refusals: &mut Refusals, msg: &Message) -> Vec<u8> {
    handle_checked(ctl, refusals, msg, Prepared::Nothing)
}

/// What the request loop did for a command before deciding it (a round trip each).
pub(super) enum Prepared {
    Nothing,
    /// A rollback's artifact, looked up in the repository.
    Artifact(releases::ArtifactCheck),
    /// A secret's value, written to its bucket.
    Secret(secrets::Written),
}

/// `handle`, with what was prepared for the command beforehand.
fn handle_checked(ctl: &Controller, refusals: &mut Refusals, msg: &Message, prepared: Prepared) -> Vec<u8> {
    let (user, verb) = match CtlSubject::parse(&msg.subject) {
        CtlSubject::Snapshot => return snapshot(ctl, msg),
        CtlSubject::Command { user, verb } => (user, verb),
        CtlSubject::History | CtlSubject::Unknown(_) => {
            log::warn!("refused request on unknown subject {}", msg.subject);
            return encode_reply::<()>(
                ctl,
                Reply::Error(WireError::bad_request(format!(
                    "unknown controller request {}: commands go to qd.v1.ctl.<user>.<verb> (verbs: {})",
                    validate::quoted(&msg.subject),
                    CtlVerb::ALL.map(CtlVerb::as_str).join(", ")
                ))),
            );
        }
    };
    let cmd = Command { user, verb, msg };
    match verb {
        CtlVerb::Whoami => encode_reply(ctl, Reply::Ok(WhoAmI { user: user.to_string() })),
        CtlVerb::RepoAllocate => {
            command(ctl, refusals, cmd, |ctl, req: AllocateRequest, _| allocate(ctl, req))
        }
        CtlVerb::Deploy => {
            command(ctl, refusals, cmd, |ctl, req: DeployRequest, id| start_deploy(ctl, req, id, user))
        }
        CtlVerb::Restart => {
            command(ctl, refusals, cmd, |ctl, req: RestartBody, id| start_restart(ctl, req, id))
        }
        CtlVerb::Route(rv) => {
            command(ctl, refusals, cmd, move |ctl, req: RouteRequest, _| route(ctl, rv, req))
        }
        CtlVerb::SecretSet => {
            let written = match prepared {
                Prepared::Secret(w) => Some(w),
                _ => None,
            };
            command(ctl, refusals, cmd, |ctl, req: SecretSetRequest, id| {
                secrets::start_secret_set(ctl, req, id, user, written)
            })
        }
        CtlVerb::Host(hv) => command(ctl, refusals, cmd, move |ctl, req: HostRequest, id| {
            super::drain::host_command(ctl, hv, req, id)
        }),
        // A read like a snapshot: not audited, and open to viewers (their own subject).
        CtlVerb::Releases => match decode::<ReleasesRequest>(&msg.payload) {
            Ok(env) => encode_reply(ctl, Reply::from(releases::answer(ctl, env.body).map_err(bounded_error))),
            Err(err) => {
                log::warn!(
                    "rejected malformed request on {}: {}",
                    msg.subject,
                    validate::cut(&err.to_string(), 512)
                );
                encode_reply::<()>(ctl, Reply::Error(bounded_error(bad(err.to_string()))))
            }
        },
        CtlVerb::Rollback => {
            let checked = match prepared {
                Prepared::Artifact(c) => Some(c),
                _ => None,
            };
            command(ctl, refusals, cmd, |ctl, req: RollbackRequest, id| {
                start_rollback(ctl, req, id, user, checked)
            })
        }
        CtlVerb::Scale => {
            command(ctl, refusals, cmd, |ctl, req: ScaleRequest, id| scale::start_scale(ctl, req, id, user))
        }
        CtlVerb::AppRemove => command(ctl, refusals, cmd, |ctl, req: AppRemoveRequest, id| {
            scale::start_app_remove(ctl, req, id)
        }),
        CtlVerb::AlertAck | CtlVerb::AlertSilence => alert_command(ctl, refusals, cmd),
        CtlVerb::Note => command(ctl, refusals, cmd, |ctl, req: NoteRequest, _| notes::accept(ctl, &req)),
    }
}

/// `alert.ack` and `alert.silence`: the alert records who sent them.
fn alert_command(ctl: &Controller, refusals: &mut Refusals, cmd: Command<'_>) -> Vec<u8> {
    let by = operator_of(cmd.msg, cmd.user);
    if cmd.verb == CtlVerb::AlertAck {
        command(ctl, refusals, cmd, |ctl, req: AlertAckRequest, _| super::alerts::ack(ctl, req, &by))
    } else {
        command(ctl, refusals, cmd, |ctl, req: SilenceRequest, _| super::alerts::silence(ctl, req, &by))
    }
}

/// Who sent a command, as alerts record it: the operator's `login@host` from the envelope,
/// else the user its subject names.
fn operator_of(msg: &Message, user: &str) -> String {
    decode::<serde::de::IgnoredAny>(&msg.payload)
        .ok()
        .and_then(|env| env.operator)
        .map_or_else(|| user.to_string(), |o| o.user)
}

/// A command as it arrived: the user its subject names (with roles on, the one nats-server
/// let publish there), its verb, and the message.
struct Command<'a> {
    user: &'a str,
    verb: CtlVerb,
    msg: &'a Message,
}

async fn answer_history(ctl: Controller, msg: Message) {
    let answer = match decode::<HistoryRequest>(&msg.payload) {
        Ok(env) => {
            let limit = env.body.limit.unwrap_or(MAX_HISTORY).min(MAX_HISTORY);
            match ctl.store().history(env.body.since_ts.unwrap_or(0), limit).await {
                Ok(mut events) => {
                    // A long history can outgrow the server's max_payload (5 000 events are
                    // ~2 MB); the newest events matter most, so the oldest give way.
                    let dropped =
                        paging::fit_history(&mut events, paging::history_budget(ctl.bus().max_payload()));
                    if dropped > 0 {
                        log::warn!(
                            "history answer: left out the {dropped} oldest events to fit the bus's max_payload; {} sent",
                            events.len()
                        );
                    }
                    encode_reply(&ctl, Reply::Ok(events))
                }
                Err(e) => encode_reply::<()>(
                    &ctl,
                    Reply::Error(WireError::new(ErrorCode::Unavailable, e.to_string())),
                ),
            }
        }
        Err(err) => {
            log::warn!("rejected malformed request on {}: {err}", msg.subject);
            encode_reply::<()>(&ctl, Reply::Error(WireError::bad_request(err.to_string())))
        }
    };
    if let Some(to) = &msg.reply
        && let Err(err) = ctl.bus().publish(to, Bytes::from(answer)).await
    {
        log::warn!("could not answer {}: {err}", msg.subject);
    }
}

/// A snapshot: the whole fleet in one reply for a request without `page` (as before
/// paging), else one page of its kept encoding. The payload used to be ignored, so one
/// that does not decode still gets the whole fleet, as it always did.
fn snapshot(ctl: &Controller, msg: &Message) -> Vec<u8> {
    let req = decode::<SnapshotRequest>(&msg.payload).map(|env| env.body).unwrap_or_default();
    let max_payload = ctl.bus().max_payload();
    if req.page.is_none() {
        let answer = encode_reply(ctl, Reply::Ok(ctl.snapshot()));
        if answer.len() <= max_payload {
            return answer;
        }
        // Too big to publish: without this the client would only see a timeout.
        log::warn!(
            "a whole snapshot is {} bytes, more than the bus's max_payload {max_payload}; refused",
            answer.len()
        );
        return encode_reply::<()>(
            ctl,
            Reply::Error(WireError::new(
                ErrorCode::Unavailable,
                format!(
                    "the snapshot is {} bytes, more than the server's max_payload {max_payload}: \
                     ask for it by pages (`page` in SnapshotRequest)",
                    answer.len()
                ),
            )),
        );
    }
    let answer = ctl.pages().page(&req, paging::part_size(max_payload), |newest| {
        ctl.read(|core| {
            let rev = core.fleet.revision;
            if Some(rev) == newest {
                return Ok((rev, None));
            }
            // Encoded under the lock: the text is exactly the fleet at `rev`.
            paging::fleet_text(&core.fleet).map(|text| (rev, Some(text)))
        })
    });
    encode_reply(ctl, Reply::from(answer))
}

/// The most events one history answer carries.
const MAX_HISTORY: usize = 10_000;

fn encode_reply<T: Serialize>(ctl: &Controller, reply: Reply<T>) -> Vec<u8> {
    let envelope = Envelope::new(ctl.config().source.clone(), reply);
    encode(&envelope).unwrap_or_else(|err| {
        log::error!("could not encode a reply: {err}");
        b"{}".to_vec()
    })
}

/// Decodes a command, refuses it if it is past its deadline, answers a repeat from the
/// cache, runs a new one and caches its answer.
/// Every new command, accepted or refused, is recorded in the audit trail with the
/// operator's identity; identical refusals from one client are counted (`refusals`).
fn command<T: DeserializeOwned + Serialize, R: Serialize + audit::Answer>(
    ctl: &Controller,
    refusals: &mut Refusals,
    cmd: Command<'_>,
    run: impl FnOnce(&Controller, T, &str) -> Result<R, WireError>,
) -> Vec<u8> {
    let msg = cmd.msg;
    let envelope: Envelope<T> = match decode(&msg.payload) {
        Ok(env) => env,
        Err(err) => {
            let err = audit::decode_error(cmd.verb, &err);
            log::warn!("rejected malformed request on {}: {}", msg.subject, validate::cut(&err, 512));
            let refusal = WireError::bad_request(err);
            // Who sent it is still worth recording when the envelope itself is readable.
            return match decode::<serde_json::Value>(&msg.payload) {
                Ok(raw) => refuse_on_record(ctl, refusals, &cmd, &raw, &raw.body, refusal),
                Err(_) => encode_reply::<()>(ctl, Reply::Error(bounded_error(refusal))),
            };
        }
    };
    // Before the reply cache and before anything runs: the sender has given up on a late
    // command and told its operator it failed. The refusal is not cached, so a retry with
    // the same id and a fresh deadline can still run.
    if let Err(expired) = envelope.check_deadline(now_ms()) {
        log::warn!("refused {} from {}: {}", msg.subject, validate::quoted(&envelope.source), expired.reason);
        let request = serde_json::to_value(&envelope.body).unwrap_or(serde_json::Value::Null);
        return refuse_on_record(ctl, refusals, &cmd, &envelope, &request, expired);
    }
    // The id is kept (in the reply cache, in the operation a command starts): bounded.
    if let Err(reason) = validate::command_id(&envelope.id) {
        let request = serde_json::to_value(&envelope.body).unwrap_or(serde_json::Value::Null);
        return refuse_on_record(ctl, refusals, &cmd, &envelope, &request, bad(reason));
    }
    if let Some(earlier) = answered_before(ctl, &envelope.id) {
        return earlier;
    }
    let request = serde_json::to_value(&envelope.body).unwrap_or(serde_json::Value::Null);
    let result = run(ctl, envelope.body, &envelope.id).map_err(bounded_error);
    if let Err(err) = &result {
        log::info!("refused {} from {}: {}", msg.subject, validate::quoted(&envelope.source), err.reason);
    }
    // An accepted note is its own record: its NOTE event instead of an AUDIT event.
    let mut note = match (cmd.verb, &result) {
        (CtlVerb::Note, Ok(_)) => notes::text_of(&request),
        _ => None,
    };
    let record = audit::record(
        cmd.verb,
        cmd.user,
        &envelope.id,
        &envelope.source,
        envelope.operator,
        request,
        audit::outcome(&result),
    );
    let records = match &result {
        Ok(_) => vec![record],
        Err(_) => refusals.refused(record, now_ms()),
    };
    let answer = encode_reply(ctl, Reply::from(result));
    ctl.mutate(|core| {
        core.replies.insert(&envelope.id, answer.clone());
        let draft = |r| match note.take() {
            Some(text) => notes::draft_of(text, r),
            None => audit::draft_of(r),
        };
        (records.into_iter().map(draft).collect(), ())
    });
    answer
}

/// The answer of a command already decided with this id: a repeat runs nothing again.
pub(super) fn answered_before(ctl: &Controller, id: &str) -> Option<Vec<u8>> {
    if let Some(cached) = ctl.read(|core| core.replies.get(id)) {
        return Some(cached);
    }
    // The reply cache is lost with a restart; the operation a command started is not.
    let started = ctl.read(|core| {
        core.fleet
            .operations
            .values()
            .find(|o| o.command_id.as_deref() == Some(id))
            .map(|o| Accepted { operation_id: Some(o.id.clone()), rev: core.fleet.revision })
    });
    started.map(|accepted| encode_reply(ctl, Reply::Ok(accepted)))
}

/// Records a refusal made before the command could run (malformed, expired) in the audit
/// trail (or counts it, [`Refusals`]) and answers it. Not cached: nothing ran, so a later
/// copy is judged afresh.
fn refuse_on_record<T>(
    ctl: &Controller,
    refusals: &mut Refusals,
    cmd: &Command<'_>,
    envelope: &Envelope<T>,
    request: &serde_json::Value,
    refusal: WireError,
) -> Vec<u8> {
    let refusal = bounded_error(refusal);
    let outcome = audit::outcome::<Accepted>(&Err(refusal.clone()));
    let operator = envelope.operator.clone();
    let record =
        audit::record(cmd.verb, cmd.user, &envelope.id, &envelope.source, operator, request.clone(), outcome);
    commit_records(ctl, refusals.refused(record, now_ms()));
    encode_reply::<()>(ctl, Reply::Error(refusal))
}

fn bad(reason: String) -> WireError {
    WireError::bad_request(reason)
}

/// Checks a deploy request and merges it with the app's current spec. Pure, so the fuzz
/// target holds the controller's own rule.
pub fn build_app(existing: Option<&AppSpec>, req: &DeployRequest) -> Result<AppSpec, WireError> {
    validate::name("app", &req.app).map_err(bad)?;
    validate::version(&req.version).map_err(bad)?;
    validate::instances(req.instances).map_err(bad)?;
    let image = match (&req.image, existing) {
        (Some(i), _) => i.clone(),
        (None, Some(app)) => app.image.clone(),
        (None, None) => return Err(bad(format!("{} is a new app: an image is required", req.app))),
    };
    validate::image(&image).map_err(bad)?;
    let port = match (req.port, existing) {
        (Some(p), _) => p,
        (None, Some(app)) => app.port,
        (None, None) => return Err(bad(format!("{} is a new app: a port is required", req.app))),
    };
    if port == 0 {
        return Err(bad("port must be 1 to 65535, not 0".into()));
    }
    let constraints = match (&req.constraints, existing) {
        (Some(c), _) => c.clone(),
        (None, Some(app)) => app.constraints.clone(),
        (None, None) => Constraints { azs: vec![], tags: vec![], cpu: 0.25, memory_mb: 256 },
    };
    validate::names("AZ", &constraints.azs).map_err(bad)?;
    validate::names("tag", &constraints.tags).map_err(bad)?;
    validate::limits(constraints.cpu, constraints.memory_mb).map_err(bad)?;
    let domain = req
        .domain
        .clone()
        .or_else(|| existing.map(|a| a.domain.clone()))
        .unwrap_or_else(|| format!("{}.local", req.app));
    validate::domain(&domain).map_err(bad)?;
    let tags = req.tags.clone().or_else(|| existing.map(|a| a.tags.clone())).unwrap_or_default();
    // A redeploy with a new artifact keeps the command and health check it does not name.
    let base = existing.map(|a| a.run.clone()).unwrap_or_default();
    let run = req.run.as_ref().map(|patch| base.patched(patch)).unwrap_or(base);
    validate::run(&run).map_err(bad)?;
    validate::names("tag", &tags).map_err(bad)?;
    Ok(AppSpec {
        name: req.app.clone(),
        version: req.version.clone(),
        instances: req.instances,
        port,
        constraints,
        domain,
        tags,
        run,
        shortfall: None,
        // Scaling the same version of the same image keeps the digest it runs; anything
        // else is resolved afresh by the deploy.
        digest: existing
            .filter(|a| a.image == image && a.version == req.version)
            .and_then(|a| a.digest.clone()),
        image,
    })
}

/// `ALLOCATE_REPOSITORY_REQUEST`: names the slot; the client uploads there.
fn allocate(ctl: &Controller, req: AllocateRequest) -> Result<Allocation, WireError> {
    validate::name("app", &req.app).map_err(bad)?;
    validate::version(&req.version).map_err(bad)?;
    if ctl.repository().is_none() {
        return Err(WireError::new(ErrorCode::Unavailable, "this controller has no artifact repository"));
    }
    Ok(Allocation { slot: repository::slot(&req.app, &req.version), bucket: repository::BUCKET.into() })
}

fn busy_with(ctl: &Controller, app: &str) -> Option<String> {
    ctl.read(|core| {
        core.fleet
            .operations
            .values()
            .find(|o| o.app == app && o.state == OperationState::Running && o.kind != OperationKind::Replace)
            .map(|o| o.id.clone())
            .or_else(|| super::drain::moving(&core.fleet, app))
    })
}

/// A deploy: every change of an app's spec by request goes through here (a deploy, an env
/// change, a secret's new version, whose value is stored before its command is decided).
pub(super) fn start_deploy(
    ctl: &Controller,
    req: DeployRequest,
    command_id: &str,
    user: &str,
) -> Result<Accepted, WireError> {
    let existing = ctl.read(|core| core.fleet.apps.get(&req.app).cloned());
    let app = build_app(existing.as_ref(), &req)?;
    let cause = cause_of(existing.as_ref(), &app);
    let started = Started { command_id, user, cause, strategy: req.strategy };
    begin_deploy(ctl, app, existing, started)
}

/// Who and what starts a deploy, for its operation and its release.
struct Started<'a> {
    command_id: &'a str,
    user: &'a str,
    cause: Cause,
    strategy: Strategy,
}

/// A release's cause: `env` when only the app's env or secrets changed, else `deploy`.
fn cause_of(existing: Option<&AppSpec>, app: &AppSpec) -> Cause {
    let Some(before) = existing else { return Cause::Deploy };
    let mut rest = before.clone();
    rest.run.env.clone_from(&app.run.env);
    rest.run.secrets.clone_from(&app.run.secrets);
    rest.shortfall.clone_from(&app.shortfall);
    if deploy::env_changed(before, app) && rest == *app { Cause::Env } else { Cause::Deploy }
}

/// The one deploy path: checks that `app` may be deployed now, commits its new spec,
/// records its release and starts the rolling deploy.
fn begin_deploy(
    ctl: &Controller,
    app: AppSpec,
    existing: Option<AppSpec>,
    started: Started<'_>,
) -> Result<Accepted, WireError> {
    if let Some(op) = busy_with(ctl, &app.name) {
        return Err(WireError::new(
            ErrorCode::Conflict,
            format!("{} is busy with operation {op}; wait for it to finish", app.name),
        ));
    }
    if let Some(holder) = domain_holder(ctl, &app) {
        return Err(WireError::new(
            ErrorCode::Conflict,
            format!("domain {} is held by app {holder}; remove it there first", app.domain),
        ));
    }
    let Started { command_id, user, cause, strategy } = started;
    let target = match &cause {
        Cause::Rollback { to } => {
            format!("{}@{} x{} (rollback to {to})", app.name, app.version, app.instances)
        }
        _ => format!("{}@{} x{}", app.name, app.version, app.instances),
    };
    let (op_id, rev) = ctl.mutate(|core| {
        let (op_id, opened) = ops::open(OperationKind::Deploy, &app.name, target, Some(command_id));
        let updated = Draft::new(
            EventKind::AppUpdated,
            format!("desired {}@{} x{}", app.name, app.version, app.instances),
        )
        .app(app.name.clone())
        .op(Some(&op_id))
        .change(Change::App(app.clone()));
        let rev = core.fleet.revision + 2;
        (vec![opened, updated], (op_id, rev))
    });
    releases::record(ctl, &app, user, Some(&op_id), cause);
    ctl.spawn(deploy::run_deploy(ctl.clone(), op_id.clone(), app, strategy, existing));
    Ok(Accepted { operation_id: Some(op_id), rev })
}

/// A rollback: a deploy of an earlier release's whole spec (image pinned to its digest,
/// artifact, command, env, constraints, count), refused when the release is unknown, is
/// what runs now, or its artifact is gone. `checked`: its artifact, looked up beforehand.
fn start_rollback(
    ctl: &Controller,
    req: RollbackRequest,
    command_id: &str,
    user: &str,
    checked: Option<releases::ArtifactCheck>,
) -> Result<Accepted, WireError> {
    let (existing, release) = releases::target(ctl, &req)?;
    // Not looked up (a caller other than the request loop): the deploy checks it.
    if let Some(c) = checked.filter(|c| c.app == req.app && c.release == release.number)
        && let Some(why) = c.missing
    {
        return Err(WireError::new(ErrorCode::NotFound, why));
    }
    let started = Started {
        command_id,
        user,
        cause: Cause::Rollback { to: release.number },
        strategy: Strategy::Rolling,
    };
    begin_deploy(ctl, release.spec, Some(existing), started)
}

/// Another app that already serves `app`'s domain. nginx can route one domain to one app
/// only, and the router would keep whichever sorts first: a second app would take it.
fn domain_holder(ctl: &Controller, app: &AppSpec) -> Option<String> {
    if app.domain.is_empty() {
        return None;
    }
    ctl.read(|core| {
        core.fleet
            .apps
            .values()
            .find(|other| other.name != app.name && other.domain.eq_ignore_ascii_case(&app.domain))
            .map(|other| other.name.clone())
    })
}

/// The most instances one restart may take down together.
const MAX_BATCH: u32 = 100;

fn start_restart(ctl: &Controller, body: RestartBody, command_id: &str) -> Result<Accepted, WireError> {
    let RestartBody { target: req, batch } = body;
    let batch = batch.unwrap_or(1);
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(bad(format!("batch must be 1 to {MAX_BATCH}, not {batch}")));
    }
    let (app, targets, what) = ctl.read(|core| {
        let f = &core.fleet;
        match &req {
            RestartRequest::Instance(id) => match f.instances.get(id) {
                Some(i) => Ok((i.app.clone(), vec![id.clone()], format!("instance {id}"))),
                None => Err(WireError::not_found(format!("no instance {}", validate::quoted(id)))),
            },
            RestartRequest::App(name) => {
                let ids: Vec<String> = f.instances_of(name).map(|i| i.id.clone()).collect();
                if !f.apps.contains_key(name) {
                    Err(WireError::not_found(format!("no app {}", validate::quoted(name))))
                } else if ids.is_empty() {
                    Err(WireError::not_found(format!("app {name} has no instances to restart")))
                } else {
                    let what = format!("app {name} ({} instances, {})", ids.len(), at_a_time(batch));
                    Ok((name.clone(), ids, what))
                }
            }
            RestartRequest::Host(host) => {
                let ids: Vec<String> = f.instances_on(host).map(|i| i.id.clone()).collect();
                if !f.hosts.contains_key(host) {
                    Err(WireError::not_found(format!("no host {}", validate::quoted(host))))
                } else if ids.is_empty() {
                    Err(WireError::not_found(format!("host {host} has no instances to restart")))
                } else {
                    Ok(("-".to_string(), ids, format!("host {host}")))
                }
            }
            RestartRequest::Instances(ids) => {
                if ids.is_empty() {
                    return Err(bad("no instances given".into()));
                }
                if let Some(missing) = ids.iter().find(|id| !f.instances.contains_key(*id)) {
                    return Err(WireError::not_found(format!("no instance {}", validate::quoted(missing))));
                }
                // Each instance once, in the order asked.
                let mut seen = std::collections::HashSet::new();
                let ids: Vec<String> = ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
                let apps: std::collections::BTreeSet<&str> =
                    ids.iter().filter_map(|id| f.instances.get(id)).map(|i| i.app.as_str()).collect();
                // One app: the operation is that app's, so a deploy of it waits.
                let app = match apps.len() {
                    1 => apps.iter().next().map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                    _ => "-".into(),
                };
                let what = format!("{} marked instances, {}", ids.len(), at_a_time(batch));
                Ok((app, ids, what))
            }
        }
    })?;
    let (op_id, rev) = ctl.mutate(|core| {
        let (op_id, opened) = ops::open(OperationKind::Restart, &app, what, Some(command_id));
        (vec![opened], (op_id, core.fleet.revision + 1))
    });
    ctl.spawn(deploy::run_restart(ctl.clone(), op_id.clone(), targets, batch as usize));
    Ok(Accepted { operation_id: Some(op_id), rev })
}

fn at_a_time(batch: u32) -> String {
    match batch {
        1 => "one at a time".into(),
        n => format!("{n} at a time"),
    }
}

/// Checks a route command before the fleet is looked at: the weight it sets.
pub fn check_route(verb: RouteVerb, req: &RouteRequest) -> Result<u32, WireError> {
    validate::name("app", &req.app).map_err(bad)?;
    validate::backend(&req.backend).map_err(bad)?;
    validate::route_weight(verb, req.weight).map_err(bad)
}

fn route(ctl: &Controller, verb: RouteVerb, req: RouteRequest) -> Result<Accepted, WireError> {
    let weight = check_route(verb, &req)?;
    ctl.mutate(|core| {
        let f = &core.fleet;
        let Some(app) = f.apps.get(&req.app) else {
            return (vec![], Err(WireError::not_found(format!("no app {:?}", req.app))));
        };
        let key = (req.app.clone(), req.backend.clone());
        let existing = f.routes.get(&key);
        let draft = match (verb, existing) {
            (RouteVerb::Add, Some(_)) => {
                return (
                    vec![],
                    Err(WireError::new(
                        ErrorCode::Conflict,
                        format!("{} already routes to {}", req.app, req.backend),
                    )),
                );
            }
            (RouteVerb::Add, None) => {
                let route = Route {
                    app: req.app.clone(),
                    domain: app.domain.clone(),
                    backend: req.backend.clone(),
                    state: RouteState::Enabled,
                    weight,
                    stale: false,
                };
                Draft::new(
                    EventKind::RouteAdded,
                    format!("{} -> {} (weight {weight})", app.domain, req.backend),
                )
                .change(Change::Route(route))
            }
            (_, None) => {
                return (
                    vec![],
                    Err(WireError::not_found(format!("{} has no route to {}", req.app, req.backend))),
                );
            }
            (RouteVerb::Remove, Some(_)) => {
                Draft::new(EventKind::RouteRemoved, format!("{} -x- {}", app.domain, req.backend))
                    .change(Change::RouteRemoved { app: req.app.clone(), backend: req.backend.clone() })
            }
            (RouteVerb::Weight, Some(r)) => {
                let mut r = r.clone();
                let before = r.weight;
                r.weight = weight;
                Draft::new(
                    EventKind::RouteWeightChanged,
                    format!("{} -> {} weight {before} -> {weight}", app.domain, req.backend),
                )
                .change(Change::Route(r))
            }
            (RouteVerb::Enable | RouteVerb::Disable, Some(r)) => {
                let mut r = r.clone();
                let (state, kind) = match verb {
                    RouteVerb::Enable => (RouteState::Enabled, EventKind::RouteEnabled),
                    _ => (RouteState::Disabled, EventKind::RouteDisabled),
                };
                r.state = state;
                Draft::new(kind, format!("{} -> {} {}", app.domain, req.backend, state.as_str()))
                    .change(Change::Route(r))
            }
        };
        let rev = core.fleet.revision + 1;
        (vec![draft.app(req.app.clone())], Ok(Accepted { operation_id: None, rev }))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reply_waits_for_durability_until_its_sender_stops_waiting() {
        let mut env =
            Envelope::new("test", RouteRequest { app: "a".into(), backend: "b:1".into(), weight: None });
        let plain = encode(&env).expect("encode");
        assert_eq!(super::durable_within(&plain, 1_000), DURABLE_WITHIN, "no deadline: the usual timeout");
        env.deadline = Some(31_000);
        let stamped = encode(&env).expect("encode");
        assert_eq!(super::durable_within(&stamped, 1_000), Duration::from_secs(30));
        assert_eq!(super::durable_within(&stamped, 40_000), Duration::ZERO, "past its deadline");
        env.deadline = Some(u64::MAX);
        let far = encode(&env).expect("encode");
        assert_eq!(super::durable_within(&far, 1_000), DURABLE_WITHIN_MAX);
        assert_eq!(super::durable_within(b"not json", 1_000), DURABLE_WITHIN);
    }

    use super::*;
    use std::sync::Arc;

    use crate::bus::{Bus, LocalBus};
    use crate::plane::controller::ControllerConfig;
    use crate::plane::controller::refusals;
    use crate::plane::controller::store::MemoryStore;
    use crate::protocol::Event;

    fn controller() -> (Controller, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (fleet, _) = crate::plane::fixture::fixture(3, 4, 0);
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        Controller::new(bus, ControllerConfig::default(), fleet, store, None)
    }

    fn restart_msg(instance: &str, id: &str, deadline: Option<u64>) -> Message {
        let mut env = Envelope::with_id(
            id,
            "cockpit/alice@bastion",
            RestartBody::from(RestartRequest::Instance(instance.to_string())),
        );
        env.deadline = deadline;
        Message {
            subject: crate::protocol::subjects::command("alice", CtlVerb::Restart),
            reply: Some("_INBOX.test".into()),
            payload: Bytes::from(encode(&env).unwrap()),
        }
    }

    fn answer(bytes: &[u8]) -> Reply<Accepted> {
        decode::<Reply<Accepted>>(bytes).unwrap().body
    }

    /// A command past its deadline is refused as expired, audited as such, starts nothing,
    /// and is not cached: the same id with a fresh deadline still runs.
    #[tokio::test]
    async fn a_late_command_is_refused_as_expired_audited_and_never_run() {
        let (ctl, mut events) = controller();
        let mut refusals = Refusals::default();
        let (instance, restarts, rev, ops) = ctl.read(|core| {
            let i = core.fleet.instances.values().next().expect("an instance");
            (i.id.clone(), i.restarts, core.fleet.revision, core.fleet.operations.len())
        });
        let late = restart_msg(&instance, "cmd-late", Some(now_ms() - 3_000));
        let Reply::Error(err) = answer(&handle(&ctl, &mut refusals, &late)) else {
            panic!("a late command was accepted")
        };
        assert_eq!(err.code, ErrorCode::Expired, "{err:?}");
        let audit = events.try_recv().expect("the refusal is audited");
        assert_eq!(audit.kind, EventKind::Audit);
        let record = audit.audit.expect("an audit record");
        assert_eq!(record.command_id, "cmd-late");
        assert_eq!(record.outcome.error.map(|e| e.code), Some(ErrorCode::Expired));
        assert!(audit.message.contains("(expired)"), "{}", audit.message);
        assert!(events.try_recv().is_err(), "nothing but the audit record was committed");
        ctl.read(|core| {
            assert_eq!(core.fleet.revision, rev + 1);
            assert_eq!(core.fleet.operations.len(), ops, "no operation was opened");
            assert_eq!(core.fleet.instances[&instance].restarts, restarts);
        });
        // Late again: still refused, never answered from a cache.
        let Reply::Error(again) = answer(&handle(&ctl, &mut refusals, &late)) else {
            panic!("accepted on repeat")
        };
        assert_eq!(again.code, ErrorCode::Expired);
        // The same id in time runs.
        let in_time = restart_msg(&instance, "cmd-late", Some(now_ms() + 60_000));
        assert!(matches!(answer(&handle(&ctl, &mut refusals, &in_time)), Reply::Ok(_)));
        // And a command without a deadline (an older client) runs too.
        let old = restart_msg(&instance, "cmd-old", None);
        assert!(matches!(answer(&handle(&ctl, &mut refusals, &old)), Reply::Ok(_)));
    }

    fn alert_msg(verb: CtlVerb, id: &str, body: serde_json::Value) -> Message {
        let operator = crate::protocol::Operator::from_parts("alice", "bastion", None, None);
        let env = Envelope::with_id(id, "ctl/alice@bastion", body).with_operator(Some(operator));
        Message {
            subject: crate::protocol::subjects::command("alice", verb),
            reply: Some("_INBOX.test".into()),
            payload: Bytes::from(encode(&env).unwrap()),
        }
    }

    /// Ack records the operator, a repeat of its id gets the first answer, and the alert
    /// verbs' refusals say why, the malformed subject's in the decoder's words.
    #[tokio::test]
    async fn alert_ack_and_silence_are_served_with_specific_refusals() {
        use crate::protocol::{Alert, AlertRule, AlertState, AlertSubject};
        let (ctl, _events) = controller();
        let mut refusals = Refusals::default();
        let host = ctl.read(|core| core.fleet.hosts.keys().next().cloned().expect("a host"));
        let subject = AlertSubject::Host(host);
        let id = Alert::id_of(AlertRule::HostDown, &subject);
        let alert = Alert {
            id: id.clone(),
            rule: AlertRule::HostDown,
            subject,
            state: AlertState::Firing,
            since: 1,
            changed_at: 1,
            resolved_at: None,
            summary: "down".into(),
            causes: vec![],
            acked_by: None,
        };
        ctl.mutate(|core| {
            core.fleet.alerts.insert(id.clone(), alert);
            (vec![], ())
        });
        let ack = alert_msg(CtlVerb::AlertAck, "cmd-ack", serde_json::json!({ "id": id }));
        let first = handle(&ctl, &mut refusals, &ack);
        assert!(matches!(answer(&first), Reply::Ok(_)));
        assert_eq!(handle(&ctl, &mut refusals, &ack), first, "a repeat gets the first answer");
        let acked = ctl.read(|core| core.fleet.alerts[&id].clone());
        assert_eq!(
            (acked.state, acked.acked_by.as_deref()),
            (AlertState::Acknowledged, Some("alice@bastion"))
        );
        let refused = |verb, cmd: &str, body| match answer(&handle(
            &ctl,
            &mut Refusals::default(),
            &alert_msg(verb, cmd, body),
        )) {
            Reply::Error(e) => e,
            Reply::Ok(_) => panic!("{cmd} was accepted"),
        };
        let unknown = refused(CtlVerb::AlertAck, "c1", serde_json::json!({ "id": "crash_loop:instance/x" }));
        assert_eq!(unknown.code, ErrorCode::NotFound, "{unknown:?}");
        let bad =
            refused(CtlVerb::AlertSilence, "c2", serde_json::json!({ "subject": "shop", "for_ms": 1000 }));
        assert_eq!(bad.code, ErrorCode::BadRequest);
        assert!(bad.reason.contains("bad alert subject"), "{}", bad.reason);
        let long = refused(
            CtlVerb::AlertSilence,
            "c3",
            serde_json::json!({ "subject": "app/x", "for_ms": 900_000_000u64 }),
        );
        assert!(long.reason.contains("at most 7 days"), "{}", long.reason);
    }

    /// A request on `verb` whose envelope and body echo as much input as a message can
    /// carry: a source and an identity of 100 kB each, the longest valid id (or a 100 kB
    /// one), and `body`.
    fn raw_msg(verb: &str, n: usize, body: serde_json::Value) -> Message {
        // Control characters take six bytes each once escaped in JSON: the worst case.
        let big = "\u{1}".repeat(100_000);
        let id = match verb {
            "long-id" => big.clone(),
            _ => format!("{}{n:04}", "\"".repeat(validate::MAX_COMMAND_ID - 4)),
        };
        let verb = if verb == "long-id" { "deploy" } else { verb };
        let env = serde_json::json!({
            "v": 1, "id": id, "ts": now_ms(), "source": big,
            "operator": {"user": big, "ssh_client": big, "nats_user": big},
            "body": body,
        });
        Message {
            subject: format!("qd.v1.ctl.alice.{verb}"),
            reply: Some("_INBOX.test".into()),
            payload: Bytes::from(serde_json::to_vec(&env).unwrap()),
        }
    }

    /// Every event a command can cause fits far below max_payload, whatever it carried:
    /// the worst case of every verb, refused (with the longest reasons) or accepted (with
    /// the largest body that is valid).
    #[tokio::test]
    async fn every_audit_event_fits_the_bus_whatever_the_command_carried() {
        const BOUND: usize = 128 * 1024;
        let (ctl, mut events) = controller();
        let mut refusals = Refusals::default();
        let (instance, host) = ctl.read(|core| {
            let i = core.fleet.instances.values().next().expect("an instance");
            (i.id.clone(), i.host.clone())
        });
        let huge = "\u{1}\"".repeat(150_000);
        let many: Vec<String> = (0..20_000).map(|i| format!("i-{i}")).collect();
        let name63 = "a".repeat(63);
        let largest_valid_deploy = serde_json::json!({
            "app": name63, "version": "v".repeat(40), "instances": 500,
            "image": "i".repeat(255), "port": 8080, "domain": format!("{0}.{0}.{0}.{1}", "d".repeat(63), "d".repeat(61)),
            "tags": vec![name63.clone(); validate::MAX_LIST],
            "constraints": {"azs": vec![name63.clone(); validate::MAX_LIST], "tags": vec![name63.clone(); validate::MAX_LIST], "cpu": 1.0, "memory_mb": 512},
            "run": {"cmd": vec!["c".repeat(validate::MAX_CMD_ARG); 4], "mount": format!("/{}", "m".repeat(254)),
                    "health": {"type": "http", "path": format!("/{}", "p".repeat(254))},
                    "artifact": {"name": "n".repeat(128), "sha256": "0".repeat(64), "size": 1}},
        });
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("deploy", serde_json::json!({"app": huge, "version": huge, "instances": 2, "image": huge})),
            (
                "deploy",
                serde_json::json!({"app": "shop", "version": "1", "instances": 2, "image": "x:1", "port": 1,
                "run": {"cmd": [huge], "health": {"type": "http", "path": huge}, "mount": huge}}),
            ),
            ("deploy", largest_valid_deploy),
            ("deploy", serde_json::json!({"app": 1, "junk": many})),
            ("restart", serde_json::json!({"instance": huge})),
            ("restart", serde_json::json!({"app": huge, "batch": 2})),
            ("restart", serde_json::json!({"host": huge})),
            ("restart", serde_json::json!({"instances": many})),
            ("restart", serde_json::json!({"instances": [instance], "batch": 1})),
            ("restart", serde_json::json!({"host": host})),
            ("repo.allocate", serde_json::json!({"app": huge, "version": huge})),
            ("route.add", serde_json::json!({"app": huge, "backend": huge, "weight": 5})),
            ("route.weight", serde_json::json!({"app": "shop", "backend": huge, "weight": 5})),
            ("route.remove", serde_json::json!({"app": "shop", "backend": "1.2.3.4:80"})),
            ("route.enable", serde_json::json!({"app": huge})),
            ("route.disable", serde_json::json!([huge, huge])),
            ("no.such.verb", serde_json::json!({"app": huge})),
            ("long-id", serde_json::json!({"app": huge})),
        ];
        let mut audits = 0;
        let mut check = |verb: &str, events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>| {
            while let Ok(event) = events.try_recv() {
                let size = encode(&Envelope::new("controller", event.clone())).unwrap().len();
                assert!(size < BOUND, "{verb}: a {:?} event of {size} bytes", event.kind);
                if let Some(record) = &event.audit {
                    audits += record.repeated.map_or(1, |r| r.count);
                }
            }
        };
        for (n, (verb, body)) in cases.into_iter().enumerate() {
            let msg = raw_msg(verb, n, body);
            assert!(msg.payload.len() > 600_000, "{verb}: the input is large");
            let bytes = handle(&ctl, &mut refusals, &msg);
            assert!(bytes.len() < BOUND, "{verb}: the answer is {} bytes", bytes.len());
            // The largest valid deploy and the two valid restarts are accepted.
            if [2, 8, 9].contains(&n) {
                assert!(matches!(answer(&bytes), Reply::Ok(_)), "case {n} is accepted");
            }
            check(verb, &mut events);
        }
        commit_records(&ctl, refusals.due(u64::MAX));
        check("summaries", &mut events);
        // Every case is on record but the unknown verb's, the malformed bodies too.
        assert_eq!(audits, 17);
    }

    /// A flood of one bad command from one client makes one record at once and one summary
    /// when the window ends; a good command in the middle is recorded as itself.
    #[tokio::test]
    async fn identical_refusals_through_the_command_path_are_counted() {
        let (ctl, mut events) = controller();
        let mut refusals = Refusals::default();
        let app = ctl.read(|core| core.fleet.apps.keys().next().cloned().expect("an app"));
        let weight = |id: String, backend: &str| {
            let req = RouteRequest { app: app.clone(), backend: backend.into(), weight: Some(5) };
            let env = Envelope::with_id(id, "ctl/bob@host", req);
            Message {
                subject: crate::protocol::subjects::command("bob", CtlVerb::Route(RouteVerb::Weight)),
                reply: Some("_INBOX.test".into()),
                payload: Bytes::from(encode(&env).unwrap()),
            }
        };
        let audits = |events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>| {
            let mut out = vec![];
            while let Ok(e) = events.try_recv() {
                out.extend(e.audit.map(|r| *r));
            }
            out
        };
        for i in 0..50 {
            let bytes = handle(&ctl, &mut refusals, &weight(format!("bad-{i}"), "nope"));
            assert!(matches!(answer(&bytes), Reply::Error(_)), "every one is refused");
        }
        let first = audits(&mut events);
        assert_eq!(first.len(), 1, "only the first is recorded at once");
        assert_eq!(first[0].command_id, "bad-0");
        // Refused too, but for something else: recorded as itself (its backend is valid, the
        // route does not exist), after the summary of the first 49 repeats.
        handle(&ctl, &mut refusals, &weight("other".into(), "10.9.9.9:80"));
        let next = audits(&mut events);
        let counts: Vec<Option<u64>> = next.iter().map(|r| r.repeated.map(|x| x.count)).collect();
        assert_eq!(counts, vec![Some(49), None], "{next:?}");
        assert_eq!(next[0].command_id, "bad-49");
        commit_records(&ctl, refusals.due(now_ms() + refusals::WINDOW_MS));
        assert!(audits(&mut events).is_empty(), "nothing was repeated after 'other'");
    }

    fn req() -> DeployRequest {
        DeployRequest {
            app: "shop-web".into(),
            version: "1.0".into(),
            instances: 2,
            image: Some("tomcat:8".into()),
            port: Some(8080),
            ..DeployRequest::default()
        }
    }

    #[test]
    fn new_apps_need_image_and_port_and_get_a_default_domain() {
        let app = build_app(None, &req()).unwrap();
        assert_eq!(app.domain, "shop-web.local");
        let mut r = req();
        r.image = None;
        assert!(build_app(None, &r).unwrap_err().reason.contains("image is required"));
        let existing = build_app(None, &req()).unwrap();
        assert_eq!(build_app(Some(&existing), &r).unwrap().image, "tomcat:8");
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        type Mutation = Box<dyn Fn(&mut DeployRequest)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|r| r.app = "Shop Web".into()), "app"),
            (Box::new(|r| r.instances = 0), "instances"),
            (Box::new(|r| r.port = Some(0)), "port"),
            (Box::new(|r| r.domain = Some("a b".into())), "domain"),
            (Box::new(|r| r.version = "".into()), "version"),
            (
                Box::new(|r| {
                    r.constraints = Some(Constraints { azs: vec![], tags: vec![], cpu: 0.0, memory_mb: 64 })
                }),
                "cpu",
            ),
            (
                Box::new(|r| {
                    r.constraints = Some(Constraints { azs: vec![], tags: vec![], cpu: 1.0, memory_mb: 0 })
                }),
                "memory",
            ),
        ];
        for (mutate, word) in cases {
            let mut r = req();
            mutate(&mut r);
            let err = build_app(None, &r).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest);
            assert!(err.reason.contains(word), "{word}: {}", err.reason);
        }
    }
}
