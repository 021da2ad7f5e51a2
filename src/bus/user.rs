//! Who a connection acts as: the user name its commands carry in their subject
//! (`qd.v1.ctl.<user>.<verb>`). With roles on, nats-server lets each user publish only
//! under its own name, so the name is one the server vouches for; without auth the login
//! name stands in.

use std::path::Path;

use super::NatsOptions;
use crate::protocol::subjects;

/// The login name this process runs as: `USER`, `LOGNAME`, else from the uid.
pub fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(login_from_uid)
        .unwrap_or_else(|| "unknown".into())
}

/// The login of this process's user when the environment does not say (tmux, cron,
/// systemd): its uid from /proc, its name from /etc/passwd. Linux only; `None` elsewhere.
pub(crate) fn login_from_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let name = passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid-{uid}")))
}

/// The `name` claim of the user JWT in a NATS credentials file (the JWT sits between
/// `-----BEGIN NATS USER JWT-----` and its END line; its payload is base64url JSON).
pub fn jwt_name(creds: &str) -> Option<String> {
    use base64::Engine;
    let mut lines = creds.lines().map(str::trim);
    lines.find(|l| l.contains("BEGIN NATS USER JWT"))?;
    let jwt = lines.next()?;
    let payload = jwt.split('.').nth(1)?.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("name").and_then(|n| n.as_str()).filter(|n| !n.is_empty()).map(str::to_string)
}

/// The user an NKey seed file logs in as: its file name without `.nk`, which is how
/// `quarterdeck auth` names them (`DIR/operator/alice.nk` is alice).
fn nkey_name(file: &Path) -> Option<String> {
    file.file_stem().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}

impl NatsOptions {
    /// The NATS user these options log in as, when they name one: the NKey seed file's
    /// name, `--user`, or the `name` in the `--creds` JWT. A token names nobody.
    pub fn nats_user(&self) -> Option<String> {
        if let Some(name) = self.nkey.as_deref().and_then(nkey_name) {
            return Some(name);
        }
        if let Some(user) = self.user.clone().filter(|u| !u.is_empty()) {
            return Some(user);
        }
        jwt_name(&std::fs::read_to_string(self.creds.as_ref()?).ok()?)
    }

    /// The name this connection's commands carry: the NATS user, else the login name, as
    /// one subject token.
    pub fn acting_user(&self) -> String {
        subjects::token(&self.nats_user().unwrap_or_else(login_name))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_login_is_found_without_user_in_the_environment() {
        // tmux, cron and systemd may leave USER unset: /proc and /etc/passwd name the user.
        let name = login_from_uid().expect("a login on Linux");
        assert!(!name.is_empty());
    }

    #[test]
    fn the_creds_jwt_names_the_nats_user() {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"name":"ops-alice"}"#);
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\nhead.{claims}.sig\n------END NATS USER JWT------\n\nseed"
        );
        assert_eq!(jwt_name(&creds).as_deref(), Some("ops-alice"));
        assert_eq!(jwt_name("garbage"), None);
    }

    #[test]
    fn the_acting_user_is_the_nkey_files_name_then_the_nats_user_then_the_login() {
        let nkey = NatsOptions { nkey: Some(PathBuf::from("/auth/operator/alice.nk")), ..Default::default() };
        assert_eq!(nkey.acting_user(), "alice");
        let user = NatsOptions { user: Some("bob".into()), ..Default::default() };
        assert_eq!(user.acting_user(), "bob");
        let none = NatsOptions::default();
        assert_eq!(none.nats_user(), None);
        assert_eq!(none.acting_user(), subjects::token(&login_name()));
        let dotted = NatsOptions { user: Some("john.doe".into()), ..Default::default() };
        assert_eq!(dotted.acting_user(), "john_doe", "one subject token");
    }
}
