//! Applying a route table so that one app cannot stop every other: when `nginx -t`
//! refuses the configuration at a line inside one app's blocks, that app is left out and
//! the rest is applied. What was left out, and why, is the router's error (a
//! `ROUTER_ERROR` event), never silence.

use std::collections::BTreeSet;

use super::Applier;
use super::config::{self, Rendered, Target};
use crate::protocol::Fleet;

/// The most apps left out of one apply before the router gives up and keeps the last
/// good configuration: a refusal that moves from app to app is not one app's fault.
const MAX_LEFT_OUT: usize = 4;

/// What one apply did: the configuration in force if it succeeded, and what went wrong.
pub struct Applied {
    pub rendered: Rendered,
    pub result: Result<(), String>,
    /// The apps left out, each with the error that named it.
    pub left_out: Vec<String>,
}

impl Applied {
    /// The router's error to report: the apply's own, or the apps it had to leave out.
    pub fn error(&self) -> Option<String> {
        match &self.result {
            Err(e) => Some(e.clone()),
            Ok(()) if self.left_out.is_empty() => None,
            Ok(()) => Some(self.left_out.join("; ")),
        }
    }
}

pub async fn apply(applier: &mut dyn Applier, fleet: &Fleet, target: Target<'_>) -> Applied {
    let mut excluded = BTreeSet::new();
    let mut left_out = Vec::new();
    let mut rendered = config::render(fleet, target);
    loop {
        let result = applier.apply(&rendered).await;
        let Err(e) = &result else { return Applied { rendered, result, left_out } };
        let culprit = config::failing_line(e).and_then(|line| rendered.app_at_line(line)).map(str::to_string);
        match culprit {
            Some(app) if excluded.len() < MAX_LEFT_OUT && !excluded.contains(&app) => {
                log::error!("nginx refused app {app}'s blocks; applying the others without it: {e}");
                left_out.push(format!("app {app} left out of nginx: {e}"));
                excluded.insert(app);
                rendered = config::render_without(fleet, target, &excluded);
            }
            _ => return Applied { rendered, result, left_out },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::router::config::tests::{app, fleet};
    use async_trait::async_trait;

    /// Refuses, as `nginx -t` would, a configuration with a server name in `bad`, naming
    /// its line; or, with `anywhere`, at line 1, outside every app's blocks.
    struct Picky {
        bad: Vec<String>,
        anywhere: bool,
        tries: usize,
    }

    #[async_trait]
    impl Applier for Picky {
        fn listen(&self) -> String {
            "127.0.0.1:1".into()
        }

        async fn apply(&mut self, rendered: &Rendered) -> Result<(), String> {
            self.tries += 1;
            if self.anywhere {
                return Err("nginx: [emerg] unknown directive in /tmp/r/nginx.conf.new:1".into());
            }
            for (i, line) in rendered.config.lines().enumerate() {
                if self.bad.iter().any(|b| line.contains(&format!("server_name {b};"))) {
                    return Err(format!(
                        "nginx: [emerg] could not build server_names_hash in /tmp/r/nginx.conf.new:{}",
                        i + 1
                    ));
                }
            }
            Ok(())
        }
    }

    fn apps(n: usize) -> Fleet {
        fleet((0..n).map(|i| app(&format!("app{i}"), &format!("d{i}.test"))).collect(), vec![])
    }

    async fn run(picky: &mut Picky, fleet: &Fleet) -> Applied {
        apply(picky, fleet, config::tests::target()).await
    }

    #[tokio::test]
    async fn only_the_app_whose_server_nginx_refuses_is_left_out() {
        let mut picky = Picky { bad: vec!["d1.test".into()], anywhere: false, tries: 0 };
        let applied = run(&mut picky, &apps(3)).await;
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        let config = &applied.rendered.config;
        assert!(config.contains("server_name d0.test;") && config.contains("server_name d2.test;"));
        assert!(!config.contains("d1.test"), "{config}");
        let error = applied.error().expect("the left-out app is reported");
        assert!(
            error.contains("app app1 left out of nginx") && error.contains("server_names_hash"),
            "{error}"
        );
        assert_eq!(picky.tries, 2);
    }

    #[tokio::test]
    async fn a_refusal_no_app_explains_keeps_the_last_good_configuration() {
        // Outside every app's blocks: nothing to leave out, the error as it is.
        let mut picky = Picky { bad: vec![], anywhere: true, tries: 0 };
        let applied = run(&mut picky, &apps(3)).await;
        assert!(applied.result.is_err() && applied.left_out.is_empty());
        assert_eq!(picky.tries, 1);
        // One app after another: after MAX_LEFT_OUT it is not one app's fault.
        let bad = (0..6).map(|i| format!("d{i}.test")).collect();
        let mut picky = Picky { bad, anywhere: false, tries: 0 };
        let applied = run(&mut picky, &apps(6)).await;
        assert!(applied.result.is_err());
        assert_eq!(applied.left_out.len(), MAX_LEFT_OUT);
        assert!(applied.error().is_some());
    }

    #[test]
    fn the_failing_line_is_read_from_nginx_and_pinned_on_its_app() {
        assert_eq!(config::failing_line("nginx: [emerg] x in /a/nginx.conf.new:42"), Some(42));
        assert_eq!(config::failing_line("nginx: [emerg] x"), None);
        let rendered = config::render(&apps(2), config::tests::target());
        let line = rendered.config.lines().position(|l| l.contains("server_name d1.test;")).map(|i| i + 1);
        assert_eq!(line.and_then(|l| rendered.app_at_line(l)), Some("app1"));
        assert_eq!(rendered.app_at_line(1), None);
    }
}
