//! How the status line words a failure across the client boundary. Each kind says what it
//! means for the operator: a command not sent never left, a refusal never ran (its code
//! says why), a timeout may have run (accepted just before its deadline, the answer late:
//! docs/protocol.md §7), which the Audit panel tells.

use crate::backend::CommandError;

/// The status line for `what` that failed with `err`.
pub fn failed(what: &str, err: &CommandError) -> String {
    match err {
        CommandError::NotLive(_) | CommandError::ReadOnly => format!("{what}: {err}"),
        CommandError::Timeout { subject, timeout } => format!(
            "no answer: {what}: nothing within {}s on {subject}; it may have run (see Audit)",
            timeout.as_secs_f32()
        ),
        CommandError::NoResponder { .. } => format!("not run: {what}: {err}"),
        CommandError::Refused(w) => format!("refused: {what}: {} ({})", w.reason, w.code.as_str()),
        CommandError::Denied { .. } => format!("refused: {what}: {err}"),
        CommandError::BadInput(_) => format!("not sent: {what}: {err}"),
        CommandError::Failed(_) => format!("failed: {what}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{ErrorCode, WireError};

    #[test]
    fn each_kind_of_failure_has_its_own_words() {
        let what = "restart app shop-web";
        let late = CommandError::Timeout {
            subject: "qd.v1.ctl.alice.restart".into(),
            timeout: Duration::from_secs(5),
        };
        let refused = CommandError::Refused(WireError::new(ErrorCode::NoCapacity, "no host fits"));
        let texts = [
            failed(what, &late),
            failed(what, &refused),
            failed(what, &CommandError::NoResponder { subject: "qd.v1.ctl.alice.restart".into() }),
            failed(what, &CommandError::NotLive("bus disconnected for 3s".into())),
            failed(what, &CommandError::BadInput("x.zip: an artifact is a .tar.gz, .tgz or .tar".into())),
            failed(what, &CommandError::Failed("bad answer".into())),
        ];
        assert!(texts[0].starts_with("no answer: restart app shop-web: nothing within 5s"), "{}", texts[0]);
        assert!(texts[0].contains("it may have run (see Audit)"), "{}", texts[0]);
        assert_eq!(texts[1], "refused: restart app shop-web: no host fits (no_capacity)");
        assert!(texts[2].starts_with("not run: "), "{}", texts[2]);
        assert_eq!(texts[3], "restart app shop-web: not live (bus disconnected for 3s), not sent");
        assert!(texts[4].starts_with("not sent: "), "{}", texts[4]);
        assert!(texts[5].starts_with("failed: "), "{}", texts[5]);
        let heads: std::collections::BTreeSet<&str> = texts.iter().map(|t| &t[..8]).collect();
        assert_eq!(heads.len(), texts.len(), "two kinds worded alike: {texts:#?}");
    }
}
