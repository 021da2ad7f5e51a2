//! Sessions into instances (exec, port-forward): their agents report each one's start and
//! end on `qd.v1.agent.<host>.session`, and the controller, the only writer of history,
//! records each report as an `AUDIT` event: who, which instance, when, how long, the exit
//! code and the recording's name. Generic over the session's kind.

use super::audit;
use super::core::Controller;
use crate::bus::Subscription;
use crate::protocol::exec::SessionReport;
use crate::protocol::{AuditOutcome, AuditRecord, decode, subjects};

pub(crate) async fn serve(ctl: Controller, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        if ctl.fenced() {
            continue;
        }
        let report = match decode::<SessionReport>(&msg.payload) {
            Ok(env) => env.body,
            Err(err) => {
                log::warn!("rejected session report on {}: {err}", msg.subject);
                continue;
            }
        };
        // The host is the subject's: with roles on, only that host's agent publishes there.
        let Some(host) = host_of(&msg.subject) else {
            log::warn!("rejected session report on {}: not qd.v1.agent.<host>.session", msg.subject);
            continue;
        };
        if let Err(reason) = report.check() {
            log::warn!("rejected session report from {host}: {reason}");
            continue;
        }
        let app = ctl.read(|core| core.fleet.instances.get(&report.instance).map(|i| i.app.clone()));
        ctl.commit(vec![audit::draft_of(record(host, app, &report))]);
    }
}

fn host_of(subject: &str) -> Option<&str> {
    let host = subject.strip_prefix(&format!("{}.agent.", subjects::PREFIX))?.strip_suffix(".session")?;
    (!host.is_empty() && !host.contains('.')).then_some(host)
}

/// The record of one report: `request` holds the session's facts, `outcome.detail` them
/// in words.
pub fn record(host: &str, app: Option<String>, r: &SessionReport) -> AuditRecord {
    let mut request = serde_json::json!({
        "instance": r.instance,
        "host": host,
        "session": r.session,
        "command": r.what,
        "started_at": r.started_at,
    });
    if let (Some(app), Some(obj)) = (app, request.as_object_mut()) {
        obj.insert("app".into(), app.into());
    }
    let detail = match &r.end {
        None => format!("started (session {})", r.session),
        Some(end) => {
            if let Some(obj) = request.as_object_mut() {
                obj.insert("ended_at".into(), end.ended_at.into());
                obj.insert("duration_ms".into(), end.ended_at.saturating_sub(r.started_at).into());
                obj.insert("exit_code".into(), end.exit_code.into());
                obj.insert("reason".into(), end.reason.clone().into());
                obj.insert("recording".into(), end.recording.clone().into());
                if !end.detail.is_empty() {
                    obj.insert("detail".into(), end.detail.clone().into());
                }
            }
            let secs = end.ended_at.saturating_sub(r.started_at) as f64 / 1000.0;
            let how = match end.exit_code {
                Some(code) if end.reason == "exited" => format!("exited {code}"),
                Some(code) => format!("{} (exit {code})", end.reason),
                None => end.reason.clone(),
            };
            let recording = end.recording.as_deref().map(|n| format!(", recording {n}")).unwrap_or_default();
            // A forward's bytes each way, said by its agent.
            let detail = match end.detail.is_empty() {
                true => String::new(),
                false => format!(": {}", end.detail),
            };
            format!("{how} after {secs:.1} s{recording}{detail}")
        }
    };
    AuditRecord {
        verb: r.kind.as_str().to_string(),
        by: Some(r.user.clone()),
        command_id: r.session.clone(),
        source: format!("agent/{host}"),
        operator: None,
        request,
        outcome: AuditOutcome { accepted: true, operation_id: None, detail: Some(detail), error: None },
        repeated: None,
    }
    .bounded()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::exec::SessionEnd;
    use crate::protocol::subjects::SessionKind;

    #[test]
    fn a_session_is_recorded_with_who_where_how_long_and_how_it_ended() {
        let mut r = SessionReport {
            kind: SessionKind::Exec.into(),
            user: "alice".into(),
            session: "xabc".into(),
            instance: "site-0-abcd".into(),
            what: "sh -c 'exit 3'".into(),
            started_at: 10_000,
            end: None,
        };
        let start = record("h1", Some("site".into()), &r);
        assert_eq!(start.result(), "accepted: started (session xabc)");
        assert_eq!(start.what(), "exec site-0-abcd: sh -c 'exit 3'");
        r.end = Some(SessionEnd {
            ended_at: 12_500,
            exit_code: Some(3),
            reason: "exited".into(),
            detail: String::new(),
            recording: Some("xabc".into()),
        });
        let end = record("h1", Some("site".into()), &r);
        assert_eq!(end.user(), "alice");
        assert_eq!(end.result(), "accepted: exited 3 after 2.5 s, recording xabc");
        assert_eq!(end.request["exit_code"], 3);
        assert_eq!(end.request["duration_ms"], 2500);
        assert_eq!(end.request["app"], "site");
        let d = audit::draft_of(end);
        assert_eq!((d.app.as_deref(), d.instance.as_deref()), (Some("site"), Some("site-0-abcd")));
        assert_eq!(host_of("qd.v1.agent.h1.session"), Some("h1"));
        assert_eq!(host_of("qd.v1.agent.h1.status"), None);
    }
}
