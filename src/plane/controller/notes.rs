//! `qd.v1.ctl.<user>.note`: an operator's line for the incident's timeline. Accepted, it
//! commits one `NOTE` event whose message is the text and whose `audit` is the command's
//! record (who, from where, as which NATS user), instead of the `AUDIT` event other
//! commands make: the note is its own record, so the trail and the timeline show it once.
//! A refused note is an `AUDIT` event like any refused command.

use super::core::{Controller, Draft};
use crate::protocol::timeline::check_note;
use crate::protocol::{Accepted, AuditRecord, EventKind, NoteRequest, WireError};

/// Checks the note; it changes nothing but the history, so it is accepted at the
/// revision it arrived at (its event is committed with the command's record).
pub(super) fn accept(ctl: &Controller, req: &NoteRequest) -> Result<Accepted, WireError> {
    check_note(&req.text).map_err(WireError::bad_request)?;
    Ok(Accepted { operation_id: None, rev: ctl.revision() })
}

/// The text of an accepted note's request, whole: the record keeps a bounded copy (512
/// bytes a string), which a long note outgrows.
pub(super) fn text_of(request: &serde_json::Value) -> Option<String> {
    let text = request.get("text")?.as_str()?;
    check_note(text).ok().map(str::to_string)
}

/// The `NOTE` event of an accepted note: the text, and the command's record for who.
pub(super) fn draft_of(text: String, record: AuditRecord) -> Draft {
    let mut d = Draft::new(EventKind::Note, text);
    d.audit = Some(Box::new(record));
    d
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use crate::bus::{Bus, LocalBus, Message};
    use crate::plane::controller::ControllerConfig;
    use crate::plane::controller::commands::handle;
    use crate::plane::controller::core::Controller;
    use crate::plane::controller::refusals::Refusals;
    use crate::plane::controller::store::MemoryStore;
    use crate::protocol::subjects::CtlVerb;
    use crate::protocol::{Accepted, Envelope, EventKind, NoteRequest, Operator, Reply, decode, encode};

    fn note(id: &str, text: &str) -> Message {
        let op = Operator::from_parts("alice", "jump", None, Some("alice".into()));
        let env = Envelope::with_id(id, "ctl/alice@jump", NoteRequest { text: text.into() })
            .with_operator(Some(op));
        Message {
            subject: crate::protocol::subjects::command("alice", CtlVerb::Note),
            reply: Some("_INBOX.test".into()),
            payload: Bytes::from(encode(&env).expect("encode")),
        }
    }

    /// A note is one NOTE event with its record, no AUDIT event; a repeat of its id adds
    /// nothing; a bad one is refused with its reason and audited as a refusal.
    #[tokio::test]
    async fn a_note_is_one_event_with_who_and_a_bad_one_is_refused() {
        let (fleet, _) = crate::plane::fixture::fixture(1, 1, 0);
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, mut events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let mut refusals = Refusals::default();
        let text = format!("  failover done | {}  ", "é".repeat(1000));
        let reply = |bytes: Vec<u8>| decode::<Reply<Accepted>>(&bytes).expect("reply").body;
        assert!(matches!(reply(handle(&ctl, &mut refusals, &note("n-1", &text))), Reply::Ok(_)));
        let e = events.try_recv().expect("the note's event");
        assert_eq!(e.kind, EventKind::Note);
        assert_eq!(
            e.message,
            text.trim(),
            "the whole text, trimmed, though the record cuts strings at 512 bytes"
        );
        let record = e.audit.expect("who wrote it");
        assert_eq!((record.by.as_deref(), record.verb.as_str()), (Some("alice"), "note"));
        assert!(events.try_recv().is_err(), "no AUDIT event beside it");
        assert!(matches!(reply(handle(&ctl, &mut refusals, &note("n-1", &text))), Reply::Ok(_)));
        assert!(events.try_recv().is_err(), "the repeat adds nothing");
        for (id, bad, says) in [
            ("n-2", " ", "a note needs some text"),
            ("n-3", "a\nb", "one line"),
            ("n-4", &"x".repeat(2001), "at most 2000 characters"),
        ] {
            let Reply::Error(err) = reply(handle(&ctl, &mut refusals, &note(id, bad))) else {
                panic!("{bad:?}")
            };
            assert!(err.reason.contains(says), "{bad:?}: {}", err.reason);
            let e = events.try_recv().expect("the refusal is audited");
            assert_eq!(e.kind, EventKind::Audit, "{bad:?}");
        }
    }
}
