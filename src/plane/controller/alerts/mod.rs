//! Alerts, raised by the controller: the rules (`rules.rs`, pure) judged every second from
//! the fleet, the events `seen.rs` kept and the routers' traffic; their transitions
//! (`state.rs`) committed as `ALERT_*` events carrying `Change::Alert`; ack and silence
//! (`silences.rs`); each transition POSTed to the webhooks (`webhook.rs`). Like the health
//! manager, nothing is judged while the bus is down or the controller fenced.

mod config;
mod rules;
mod seen;
mod silences;
mod state;
pub mod webhook;

use std::time::Duration;

pub use config::{AlertConfig, CrashLoop, parse_crash_loop, parse_pct};
pub(crate) use seen::Seen;
pub(crate) use webhook::Webhooks;

use super::core::{Controller, Draft};
use crate::protocol::clock::now_ms;
use crate::protocol::{
    Accepted, Alert, AlertAckRequest, AlertSubject, Change, EventKind, Fleet, SilenceRequest, WireError,
};

const TICK: Duration = Duration::from_secs(1);

pub(crate) async fn run(ctl: Controller) {
    let mut connection = ctl.bus().connection();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tracker = state::Tracker::default();
    loop {
        ticker.tick().await;
        ctl.room().await;
        // The guard is let go before the lease is read (see health.rs).
        let on_bus = connection.borrow_and_update().is_connected();
        if !on_bus || ctl.fenced() {
            tracker.reset();
            continue;
        }
        tick(&ctl, &mut tracker);
    }
}

/// One judgement: transitions and expired silences committed, then their webhooks queued.
fn tick(ctl: &Controller, tracker: &mut state::Tracker) {
    let cfg = &ctl.config().alerts;
    let source = ctl.config().source.as_str();
    let payloads = ctl.mutate(|core| {
        let now = now_ms();
        core.alerts.prune(&core.fleet, cfg.crash_loop.window, cfg.router_status_period, now);
        let traffic = core.alerts.fresh_traffic(cfg.router_status_period, now);
        let eval = rules::evaluate(&core.fleet, &core.alerts, &traffic, cfg, now);
        let transitions = state::decide(&core.fleet, eval, tracker, cfg, now);
        let mut drafts = Vec::new();
        let mut payloads = Vec::new();
        for t in transitions {
            payloads.extend(payload(&core.fleet, &t.alert, source, now));
            let mut draft = subject_draft(&core.fleet, t.kind, t.message.clone(), &t.alert.subject);
            draft.changes = state::changes(&t);
            drafts.push(draft);
        }
        for (kind, message, change) in silences::expired(&core.fleet, now) {
            drafts.push(Draft::new(kind, message).change(change));
        }
        (drafts, payloads)
    });
    for p in payloads {
        ctl.webhooks().push(&p);
    }
}

/// The webhook body for `alert`, unless its subject is silenced.
fn payload(fleet: &Fleet, alert: &Alert, source: &str, now: u64) -> Option<Vec<u8>> {
    if silences::is_silenced(fleet, &alert.subject, now) {
        return None;
    }
    serde_json::to_vec(&webhook::Payload::of(alert, source))
        .map_err(|e| log::error!("a webhook payload did not encode: {e}"))
        .ok()
}

/// A draft naming the subject's app, host or instance, so the event shows with it.
fn subject_draft(fleet: &Fleet, kind: EventKind, message: String, subject: &AlertSubject) -> Draft {
    let draft = Draft::new(kind, message);
    match subject {
        AlertSubject::Host(h) => draft.host(h.clone()),
        AlertSubject::App(a) | AlertSubject::Route { app: a, .. } => draft.app(a.clone()),
        AlertSubject::Instance(i) => match fleet.instances.get(i) {
            Some(inst) => draft.app(inst.app.clone()).host(inst.host.clone()).instance(i.clone()),
            None => draft.instance(i.clone()),
        },
        AlertSubject::Controller => draft,
    }
}

/// `alert.ack`, by `by` (login@host).
pub(crate) fn ack(ctl: &Controller, req: AlertAckRequest, by: &str) -> Result<Accepted, WireError> {
    let source = ctl.config().source.as_str();
    let body = ctl.mutate(|core| {
        let now = now_ms();
        match silences::ack(&core.fleet, &req, by, now) {
            Err(e) => (vec![], Err(e)),
            Ok((alert, message)) => {
                let body = payload(&core.fleet, &alert, source, now);
                let mut draft =
                    subject_draft(&core.fleet, EventKind::AlertAcknowledged, message, &alert.subject);
                draft.changes.push(Change::Alert(alert));
                (vec![draft], Ok(body))
            }
        }
    })?;
    if let Some(body) = body {
        ctl.webhooks().push(&body);
    }
    Ok(Accepted { operation_id: None, rev: ctl.revision() })
}

/// `alert.silence`, by `by`: sets, or with `for_ms: 0` lifts, a subject's silence.
pub(crate) fn silence(ctl: &Controller, req: SilenceRequest, by: &str) -> Result<Accepted, WireError> {
    ctl.mutate(|core| match silences::silence(&core.fleet, &req, by, now_ms()) {
        Err(e) => (vec![], Err(e)),
        Ok((change, message)) => {
            let draft = subject_draft(&core.fleet, EventKind::AlertSilenced, message, &req.subject);
            (vec![draft.change(change)], Ok(()))
        }
    })?;
    Ok(Accepted { operation_id: None, rev: ctl.revision() })
}
