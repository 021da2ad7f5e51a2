//! The cockpit's port-forwards (`F` on an instance): which instances are forwarded, where
//! each listens and how many connections it carries. The forwarder itself is the
//! backend's (`Effect::Forward` / `Effect::ForwardStop`); a start leaves through
//! `App::outgoing`, so read-only refuses it before anything is sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{App, Level};
use crate::actions::{Effect, Panel};
use crate::backend::{ForwardEvent, ForwardNews};
use crate::protocol::ForwardStart;

/// One instance's forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    pub session: u64,
    pub port: u16,
    /// Where it listens, once it does.
    pub local: Option<SocketAddr>,
    /// Connections open now.
    pub open: usize,
}

impl Forwarding {
    /// How the detail pane shows it: `127.0.0.1:40123 -> :8080, 1 connection (F stops)`.
    pub fn describe(&self, stop_key: &str) -> String {
        match self.local {
            None => format!("starting -> :{}", self.port),
            Some(local) => {
                let s = if self.open == 1 { "" } else { "s" };
                format!("{local} -> :{}, {} connection{s} ({stop_key} stops)", self.port, self.open)
            }
        }
    }
}

/// The running forwards, by instance.
#[derive(Debug, Clone, Default)]
pub struct Forwards {
    pub by_instance: BTreeMap<String, Forwarding>,
    sessions: u64,
}

impl Forwards {
    fn session(&self, session: u64) -> Option<String> {
        self.by_instance.iter().find(|(_, f)| f.session == session).map(|(i, _)| i.clone())
    }
}

/// A connection's end that is no news: both sides closed it, or the operator stopped it.
fn quiet(reason: &str) -> bool {
    reason == "closed by both sides" || reason == "the forward was stopped"
}

impl App {
    /// Whether the selected instance is forwarded now (`F` then stops it).
    pub(super) fn forwarding_selected(&self) -> bool {
        self.selected_instance().is_some_and(|i| self.forwards.by_instance.contains_key(&i.id))
    }

    /// `F`: forward the selected instance's app port to 127.0.0.1, or stop its forward.
    pub(super) fn toggle_forward(&mut self) -> Vec<Effect> {
        let Some(inst) = (self.panel == Panel::Instances).then(|| self.selected_instance()).flatten() else {
            self.say(Level::Warn, "port-forward: select an instance first (2: Instances)".into());
            return vec![];
        };
        let (host, instance, app) = (inst.host.clone(), inst.id.clone(), inst.app.clone());
        if let Some(f) = self.forwards.by_instance.remove(&instance) {
            self.say(Level::Info, format!("port-forward of {instance} stopped"));
            return vec![Effect::ForwardStop(f.session)];
        }
        let Some(port) = self.replica.fleet.apps.get(&app).map(|a| a.port) else {
            self.say(Level::Warn, format!("port-forward: {instance}'s app {app} is not in the fleet"));
            return vec![];
        };
        self.forwards.sessions += 1;
        let session = self.forwards.sessions;
        let start = Effect::Forward(ForwardStart { session, host, instance: instance.clone(), port });
        let Ok(effects) = self.outgoing(&format!("port-forward of {instance}"), vec![start]) else {
            return vec![];
        };
        self.forwards
            .by_instance
            .insert(instance.clone(), Forwarding { session, port, local: None, open: 0 });
        self.say(Level::Info, format!("port-forward of {instance}: starting"));
        effects
    }

    /// What the backend says of a forward.
    pub(super) fn apply_forward(&mut self, session: u64, event: ForwardEvent) -> Vec<Effect> {
        let Some(instance) = self.forwards.session(session) else {
            // Stopped before it told us it listens: make sure it stops.
            return match event {
                ForwardEvent::Listening(_) => vec![Effect::ForwardStop(session)],
                _ => vec![],
            };
        };
        let Some(f) = self.forwards.by_instance.get_mut(&instance) else { return vec![] };
        match event {
            ForwardEvent::Listening(local) => {
                f.local = Some(local);
                let (port, key) = (f.port, self.keymap.keys_for(crate::actions::Action::Forward));
                self.say(Level::Info, format!("forwarding {local} -> {instance}:{port} ({key} again stops)"));
            }
            ForwardEvent::Refused(err) => {
                self.forwards.by_instance.remove(&instance);
                self.say(Level::Error, super::failures::failed(&format!("port-forward of {instance}"), &err));
            }
            ForwardEvent::News(ForwardNews::Opened { .. }) => f.open += 1,
            ForwardEvent::News(ForwardNews::Closed { ended, .. }) => {
                f.open = f.open.saturating_sub(1);
                if !quiet(&ended.reason) {
                    self.say(
                        Level::Warn,
                        format!("port-forward of {instance}: a connection ended: {}", ended.reason),
                    );
                }
            }
            ForwardEvent::News(ForwardNews::Refused { why, .. }) => {
                self.say(
                    Level::Warn,
                    format!("port-forward of {instance}: a connection was not forwarded: {why}"),
                );
            }
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Action;
    use crate::backend::{CommandError, Inbound};
    use crate::client::tunnel::{EndKind, Ended};
    use crate::views::harness::app;

    fn on_instance() -> (App, String, String, u16) {
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Instances));
        let i = app.selected_instance().expect("a selected instance").clone();
        let port = app.replica.fleet.apps[&i.app].port;
        (app, i.id, i.host, port)
    }

    fn listening(app: &mut App, session: u64) {
        let local: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        app.apply(Inbound::Forward { session, event: ForwardEvent::Listening(local) });
    }

    fn status(app: &App) -> String {
        app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default()
    }

    /// `F` starts a forward to the app's port, the status line and the detail pane say
    /// where it listens and how many connections it has, and `F` again stops it.
    #[test]
    fn f_forwards_the_selected_instance_shows_where_and_f_again_stops_it() {
        let (mut app, instance, host, port) = on_instance();
        let effects = app.update(Action::Forward);
        assert_eq!(
            effects,
            vec![Effect::Forward(ForwardStart { session: 1, host, instance: instance.clone(), port })]
        );
        listening(&mut app, 1);
        assert_eq!(status(&app), format!("forwarding 127.0.0.1:40123 -> {instance}:{port} (F again stops)"));
        let opened = ForwardNews::Opened { conn: "c1".into(), from: "127.0.0.1:5000".parse().unwrap() };
        app.apply(Inbound::Forward { session: 1, event: ForwardEvent::News(opened) });
        assert_eq!(app.forwards.by_instance[&instance].open, 1);
        let ended = Ended {
            reason: "the connection failed: reset".into(),
            sent: 1,
            received: 2,
            how: EndKind::Failed,
        };
        let closed = ForwardNews::Closed { conn: "c1".into(), ended };
        app.apply(Inbound::Forward { session: 1, event: ForwardEvent::News(closed) });
        assert_eq!(app.forwards.by_instance[&instance].open, 0);
        assert!(
            status(&app).contains("a connection ended: the connection failed: reset"),
            "{}",
            status(&app)
        );
        assert_eq!(app.update(Action::Forward), vec![Effect::ForwardStop(1)]);
        assert!(app.forwards.by_instance.is_empty());
        assert_eq!(status(&app), format!("port-forward of {instance} stopped"));
        // A start whose listener comes after the stop is stopped again.
        assert_eq!(
            app.apply(Inbound::Forward {
                session: 1,
                event: ForwardEvent::Listening("127.0.0.1:1".parse().unwrap())
            }),
            vec![Effect::ForwardStop(1)]
        );
    }

    /// Read-only refuses `F` before anything is sent: no effect at all, and says why.
    #[test]
    fn read_only_refuses_a_forward_before_anything_is_sent() {
        let (mut app, instance, _, _) = on_instance();
        app.read_only = true;
        assert_eq!(app.update(Action::Forward), vec![]);
        assert!(app.forwards.by_instance.is_empty());
        assert!(status(&app).starts_with("read-only: port-forward refused"), "{}", status(&app));
        // The gate itself, should read-only come on after the key was read.
        app.read_only = false;
        app.update(Action::Forward);
        app.read_only = true;
        app.forwards.by_instance.clear();
        assert_eq!(app.toggle_forward(), vec![], "outgoing refused it");
        assert!(status(&app).contains(&format!("port-forward of {instance} refused")), "{}", status(&app));
    }

    /// A refused forward (the server's: no grant) is said in the server's words and leaves
    /// nothing behind; `F` elsewhere than on an instance says where to go.
    #[test]
    fn a_refused_forward_says_why_and_f_needs_an_instance() {
        let (mut app, instance, _, _) = on_instance();
        app.update(Action::Forward);
        let denied = CommandError::Denied { subject: "qd.v1.fwd.bob.p1".into(), user: "bob".into() };
        app.apply(Inbound::Forward { session: 1, event: ForwardEvent::Refused(denied) });
        assert!(app.forwards.by_instance.is_empty());
        assert_eq!(
            status(&app),
            format!(
                "refused: port-forward of {instance}: permission denied on qd.v1.fwd.bob.p1 for user bob"
            )
        );
        app.update(Action::ShowPanel(Panel::Hosts));
        assert_eq!(app.update(Action::Forward), vec![]);
        assert!(status(&app).contains("select an instance first"), "{}", status(&app));
    }
}
