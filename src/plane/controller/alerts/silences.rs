//! The operators' side of alerts: `alert.ack` and `alert.silence`, each checked in full
//! before anything changes, and the expiry of silences (from the rules' task).

use std::time::Duration;

use super::state::subject_exists;
use crate::protocol::alert::SILENCE_MAX_MS;
use crate::protocol::{
    Alert, AlertAckRequest, AlertState, AlertSubject, Change, ErrorCode, EventKind, Fleet, Silence,
    SilenceRequest, WireError, validate,
};

/// The longest reason, in characters.
pub(crate) const MAX_REASON: usize = 200;

/// What an ack does: the alert as it becomes, and the event's message.
pub(crate) fn ack(
    fleet: &Fleet,
    req: &AlertAckRequest,
    by: &str,
    now: u64,
) -> Result<(Alert, String), WireError> {
    let Some(alert) = fleet.alerts.get(&req.id) else {
        return Err(WireError::new(
            ErrorCode::NotFound,
            format!("no alert {} (`ctl alerts --all` lists them)", validate::quoted(&req.id)),
        ));
    };
    match (alert.state, &alert.acked_by) {
        (AlertState::Resolved, _) => {
            return Err(WireError::new(ErrorCode::Conflict, format!("alert {} is already resolved", req.id)));
        }
        (AlertState::Acknowledged, Some(who)) => {
            return Err(WireError::new(
                ErrorCode::Conflict,
                format!("alert {} is already acknowledged by {who}", req.id),
            ));
        }
        _ => {}
    }
    let mut acked = alert.clone();
    acked.state = AlertState::Acknowledged;
    acked.acked_by = Some(by.to_string());
    acked.changed_at = now;
    let message = format!("{by} acknowledged {}: {}", acked.id, acked.summary);
    Ok((acked, message))
}

/// What a silence request does: the change and the event's message.
pub(crate) fn silence(
    fleet: &Fleet,
    req: &SilenceRequest,
    by: &str,
    now: u64,
) -> Result<(Change, String), WireError> {
    let subject = req.subject.to_string();
    if req.for_ms == 0 {
        if !fleet.silences.contains_key(&subject) {
            return Err(WireError::new(
                ErrorCode::NotFound,
                format!("{subject} is not silenced: nothing to lift"),
            ));
        }
        return Ok((
            Change::SilenceRemoved { subject: subject.clone() },
            format!("{by} lifted the silence on {subject}"),
        ));
    }
    if req.for_ms > SILENCE_MAX_MS {
        return Err(WireError::bad_request(format!(
            "a silence of {} ms is too long: at most 7 days ({SILENCE_MAX_MS} ms)",
            req.for_ms
        )));
    }
    let reason = checked_reason(req.reason.as_deref())?;
    let known =
        subject_exists(fleet, &req.subject) || fleet.alerts.values().any(|a| a.subject == req.subject);
    if !known || req.subject == AlertSubject::Controller {
        return Err(WireError::new(
            ErrorCode::NotFound,
            format!("no {subject} in the fleet or its alerts: nothing to silence"),
        ));
    }
    let until = now.saturating_add(req.for_ms);
    let silence = Silence { subject: req.subject.clone(), until, by: by.to_string(), reason: reason.clone() };
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    let message = format!(
        "{by} silenced {subject} for {}{why}",
        super::rules::words(Duration::from_millis(req.for_ms))
    );
    Ok((Change::Silence(silence), message))
}

fn checked_reason(reason: Option<&str>) -> Result<Option<String>, WireError> {
    let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    if r.chars().count() > MAX_REASON {
        return Err(WireError::bad_request(format!(
            "the reason is {} characters long: at most {MAX_REASON}",
            r.chars().count()
        )));
    }
    if r.chars().any(char::is_control) {
        return Err(WireError::bad_request("the reason has a control character: one line of text, please"));
    }
    Ok(Some(r.to_string()))
}

/// The silences past their end: each is removed with an `ALERT_SILENCED` event.
pub(crate) fn expired(fleet: &Fleet, now: u64) -> Vec<(EventKind, String, Change)> {
    fleet
        .silences
        .iter()
        .filter(|(_, s)| s.until <= now)
        .map(|(subject, s)| {
            (
                EventKind::AlertSilenced,
                format!("the silence on {subject} set by {} expired", s.by),
                Change::SilenceRemoved { subject: subject.clone() },
            )
        })
        .collect()
}

/// Whether webhooks for `subject` are held back now.
pub(crate) fn is_silenced(fleet: &Fleet, subject: &AlertSubject, now: u64) -> bool {
    fleet.silences.get(&subject.to_string()).is_some_and(|s| s.until > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AlertRule, AppSpec};

    fn fleet_with_alert(state: AlertState) -> Fleet {
        let mut fleet = Fleet::default();
        fleet.apps.insert("shop".into(), AppSpec::for_test("shop", 1, 0.1));
        let subject = AlertSubject::App("shop".into());
        let id = Alert::id_of(AlertRule::DeployFailed, &subject);
        let alert = Alert {
            id: id.clone(),
            rule: AlertRule::DeployFailed,
            subject,
            state,
            since: 1,
            changed_at: 1,
            resolved_at: None,
            summary: "deploy failed".into(),
            causes: vec![],
            acked_by: None,
        };
        fleet.alerts.insert(id, alert);
        fleet
    }

    #[test]
    fn ack_names_who_and_refuses_unknown_resolved_and_owned_alerts() {
        let fleet = fleet_with_alert(AlertState::Firing);
        let req = AlertAckRequest { id: "deploy_failed:app/shop".into() };
        let (acked, message) = ack(&fleet, &req, "alice@bastion", 5).expect("acked");
        assert_eq!(
            (acked.state, acked.acked_by.as_deref()),
            (AlertState::Acknowledged, Some("alice@bastion"))
        );
        assert!(message.contains("alice@bastion"), "{message}");
        let unknown = ack(&fleet, &AlertAckRequest { id: "nope".into() }, "a", 5).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::NotFound);
        let resolved = ack(&fleet_with_alert(AlertState::Resolved), &req, "a", 5).unwrap_err();
        assert!(resolved.reason.contains("already resolved"), "{}", resolved.reason);
        let mut owned = fleet.clone();
        owned.alerts.insert(acked.id.clone(), acked);
        assert!(ack(&owned, &req, "bob@x", 6).unwrap_err().reason.contains("by alice@bastion"));
    }

    #[test]
    fn silences_are_bounded_and_name_a_known_subject() {
        let fleet = fleet_with_alert(AlertState::Firing);
        let app = AlertSubject::App("shop".into());
        let req = |subject: AlertSubject, for_ms: u64, reason: Option<&str>| SilenceRequest {
            subject,
            for_ms,
            reason: reason.map(str::to_string),
        };
        let (change, _) =
            silence(&fleet, &req(app.clone(), 600_000, Some("deploying")), "a@h", 1_000).expect("ok");
        let Change::Silence(s) = change else { panic!("a silence") };
        assert_eq!((s.until, s.by.as_str(), s.reason.as_deref()), (601_000, "a@h", Some("deploying")));
        let long = silence(&fleet, &req(app.clone(), 8 * 86_400_000, None), "a", 0).unwrap_err();
        assert!(long.reason.contains("at most 7 days"), "{}", long.reason);
        let reason = "x".repeat(MAX_REASON + 1);
        assert!(
            silence(&fleet, &req(app.clone(), 1000, Some(&reason)), "a", 0)
                .unwrap_err()
                .reason
                .contains("at most 200")
        );
        assert!(silence(&fleet, &req(app.clone(), 1000, Some("a\nb")), "a", 0).is_err());
        let unknown =
            silence(&fleet, &req(AlertSubject::App("shpo".into()), 1000, None), "a", 0).unwrap_err();
        assert!(unknown.reason.contains("no app/shpo"), "{}", unknown.reason);
        assert!(silence(&fleet, &req(app, 0, None), "a", 0).unwrap_err().reason.contains("nothing to lift"));
    }

    #[test]
    fn expired_silences_go_and_live_ones_hold_webhooks_back() {
        let mut fleet = Fleet::default();
        let subject = AlertSubject::Host("h1".into());
        let s = Silence { subject: subject.clone(), until: 100, by: "a@h".into(), reason: None };
        fleet.silences.insert(subject.to_string(), s);
        assert!(is_silenced(&fleet, &subject, 99));
        assert!(!is_silenced(&fleet, &subject, 100));
        assert!(expired(&fleet, 99).is_empty());
        let gone = expired(&fleet, 100);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].2, Change::SilenceRemoved { subject: "host/h1".into() });
    }
}
