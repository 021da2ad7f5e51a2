//! The `authorization` block nats-server includes: one NKey user per identity, with the
//! role's permissions. Pure: the same users give the same text.

use std::fmt::Write;

use super::roles::{Grants, Identity, permissions};

/// The block for `users` (identity, grants and public key), in the order given.
pub fn render(users: &[(Identity, Grants, String)]) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# Written by `quarterdeck auth`; rewritten by `auth add` and `auth remove`.");
    let _ = writeln!(c, "# Include it in nats-server's config (`include \"nats-auth.conf\"`), then");
    let _ = writeln!(c, "# `nats-server --signal reload` (or SIGHUP) after every change.");
    let _ = writeln!(c, "authorization {{");
    let _ = writeln!(c, "  users = [");
    for (who, grants, key) in users {
        let p = permissions(who, grants, key);
        let _ = writeln!(c, "    # {} {}", who.role, who.name);
        let _ = writeln!(c, "    {{");
        let _ = writeln!(c, "      nkey: {}", quote(key));
        let _ = writeln!(c, "      permissions: {{");
        let _ = writeln!(c, "        publish: {{ allow: {} }}", list(&p.publish));
        let _ = writeln!(c, "        subscribe: {{ allow: {} }}", list(&p.subscribe));
        if p.responses {
            let _ = writeln!(c, "        allow_responses: true");
        }
        let _ = writeln!(c, "      }}");
        let _ = writeln!(c, "    }}");
    }
    let _ = writeln!(c, "  ]");
    let _ = writeln!(c, "}}");
    c
}

/// A quoted string: nats-server substitutes `$VAR` outside quotes, and JetStream's subjects
/// start with `$`. Keys and subjects hold no quote or backslash (they are validated names
/// and fixed prefixes), so none needs escaping.
fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn every_user_gets_its_key_and_its_role_s_permissions_quoted() {
        let users = vec![
            (Identity::new(Role::Controller, "c1").unwrap(), Grants::new(), "UCONTROLLER".to_string()),
            (Identity::new(Role::Agent, "h1").unwrap(), Grants::new(), "UAGENT".to_string()),
        ];
        let conf = render(&users);
        assert!(conf.contains("nkey: \"UCONTROLLER\""));
        assert!(conf.contains("\"qd.v1.agent.h1.hb\""));
        assert!(conf.contains("\"$JS.API.>\""), "JetStream subjects are quoted: {conf}");
        assert_eq!(conf.matches("allow_responses: true").count(), 2);
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
        assert_eq!(render(&users), conf, "the same users, the same text");
    }
}
