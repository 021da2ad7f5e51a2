//! Docker's event stream: one connection for the whole host. A die, oom or health change
//! updates the cache at once, so the agent's 250 ms poll reports the crash well inside a
//! heartbeat period. When the stream breaks it is opened again, and a reconcile catches
//! up with whatever happened in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::Inner;
use super::cache::{Entry, Phase};
use crate::protocol::clock::now_ms;
use crate::protocol::{ExitInfo, InstanceState};

const EVENTS: [&str; 5] = ["start", "die", "oom", "health_status", "destroy"];

pub async fn watch(inner: Arc<Inner>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let filters: HashMap<String, Vec<String>> = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), EVENTS.iter().map(|e| e.to_string()).collect()),
        ]);
        let opts = EventsOptions { since: None, until: None, filters: Some(filters) };
        let mut stream = inner.docker.events(Some(opts));
        // Whatever happened while the stream was down is caught up by a reconcile.
        inner.refresh_now.notify_one();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    backoff = Duration::from_secs(1);
                    apply(&inner, &event);
                }
                Err(e) => {
                    log::warn!("docker event stream: {e}; reopening");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Applies one container event to the cache.
pub fn apply(inner: &Inner, event: &EventMessage) {
    let action = event.action.as_deref().unwrap_or("");
    let Some(actor) = &event.actor else { return };
    let Some(id) = actor.id.as_deref() else { return };
    let at_ms = event
        .time_nano
        .map(|n| (n / 1_000_000) as u64)
        .or(event.time.map(|s| s as u64 * 1000))
        .unwrap_or_else(now_ms);
    let mut cache = inner.cache();
    if let Some(entry) = cache.by_container(id) {
        let exit_code = actor.attributes.as_ref().and_then(|a| a.get("exitCode")).map(String::as_str);
        on_instance(entry, action, exit_code, at_ms);
        return;
    }
    // Not ours: keep the unmanaged list's state word current between reconciles.
    if action == "destroy" {
        cache.unmanaged.retain(|c| !id.starts_with(&c.container_id));
    } else if let Some(c) = cache.unmanaged.iter_mut().find(|c| id.starts_with(&c.container_id)) {
        match action {
            "start" => c.state = "running".into(),
            "die" => {
                c.state = "exited".into();
                c.cpu_pct = 0.0;
            }
            _ => {}
        }
    }
}

fn on_instance(e: &mut Entry, action: &str, exit_code: Option<&str>, at_ms: u64) {
    // An operation in progress owns the state: a restart's own die and start are no crash.
    if e.phase == Phase::Busy {
        return;
    }
    let before = e.report.state;
    match action {
        "die" => {
            e.set_state(InstanceState::Crashed);
            // Docker sends oom before die; the die brings the code.
            let oom = oom_this_life(e);
            if let Some(code) = exit_code.and_then(|c| c.parse::<i32>().ok()) {
                e.report.last_exit = Some(ExitInfo::new(code, oom, at_ms));
            }
            e.oom_at = None;
            log::warn!("{}: container died (exit code {})", e.report.id, exit_code.unwrap_or("?"));
        }
        "oom" => {
            e.oom_at = Some(at_ms);
            // Should the die have come first, it ended this run: it was the OOM kill.
            if let Some(x) =
                e.report.last_exit.as_mut().filter(|x| e.report.started_at.is_none_or(|s| x.at >= s))
            {
                x.oom = true;
            }
            log::warn!("{}: the OOM killer struck ({} MB limit)", e.report.id, e.report.mem_limit_mb);
        }
        "start" => {
            e.set_state(InstanceState::Running);
            e.report.started_at = Some(at_ms);
            e.oom_at = None;
        }
        "destroy" => {
            e.set_state(InstanceState::Crashed);
            e.container = None;
            e.report.container_id.clear();
            e.vlan_ip = None;
            e.phase = Phase::Failed;
            log::warn!("{}: its container was removed behind the agent's back", e.report.id);
        }
        a if a.starts_with("health_status") => {
            if a.ends_with("unhealthy") {
                e.set_state(InstanceState::Unhealthy);
            } else if a.ends_with("healthy") && before == InstanceState::Unhealthy {
                e.set_state(InstanceState::Running);
            }
        }
        _ => return,
    }
    // A container list taken before this event must not undo it.
    e.settled = Instant::now();
}

/// Whether the OOM killer struck during the container's current run.
pub fn oom_this_life(e: &Entry) -> bool {
    e.oom_at.is_some_and(|t| e.report.started_at.is_none_or(|s| t >= s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HealthCheck, InstanceReport};

    fn entry(phase: Phase) -> Entry {
        Entry {
            report: InstanceReport {
                id: "web-0-abcd".into(),
                app: "web".into(),
                version: "1".into(),
                index: 0,
                state: InstanceState::Running,
                ip: "127.0.0.1".into(),
                port: 40000,
                container_id: "abc".into(),
                started_at: Some(1),
                cpu_pct: 3.0,
                mem_used_mb: 1,
                mem_limit_mb: 64,
                last_exit: None,
            },
            container: Some("abcdef".into()),
            phase,
            generation: 1,
            settled: Instant::now(),
            image: "img".into(),
            container_port: 8080,
            mount: "/app".into(),
            artifact: String::new(),
            cmd: None,
            health: HealthCheck::Tcp,
            vlan_ip: None,
            oom_at: None,
        }
    }

    #[test]
    fn die_oom_and_health_change_the_state_unless_an_operation_owns_it() {
        let mut e = entry(Phase::Idle);
        on_instance(&mut e, "die", Some("137"), 5);
        assert_eq!(e.report.state, InstanceState::Crashed);
        assert_eq!(e.report.cpu_pct, 0.0);
        on_instance(&mut e, "start", None, 7);
        assert_eq!((e.report.state, e.report.started_at), (InstanceState::Running, Some(7)));
        on_instance(&mut e, "health_status: unhealthy", None, 8);
        assert_eq!(e.report.state, InstanceState::Unhealthy);
        on_instance(&mut e, "health_status: healthy", None, 9);
        assert_eq!(e.report.state, InstanceState::Running);
        on_instance(&mut e, "destroy", None, 10);
        assert_eq!(
            (e.report.state, e.phase, e.container.clone()),
            (InstanceState::Crashed, Phase::Failed, None)
        );

        assert_eq!(e.report.last_exit, Some(ExitInfo::new(137, false, 5)));
        assert_eq!(e.report.last_exit.map(|x| x.reason()).as_deref(), Some("killed by SIGKILL"));

        let mut busy = entry(Phase::Busy);
        on_instance(&mut busy, "die", Some("0"), 5);
        assert_eq!(busy.report.state, InstanceState::Running, "a restart's own die is not a crash");
        assert_eq!(busy.report.last_exit, None);
    }

    #[test]
    fn a_die_carries_its_exit_code_and_an_oom_before_it_says_why() {
        let mut e = entry(Phase::Idle);
        on_instance(&mut e, "die", Some("3"), 5);
        assert_eq!(e.report.last_exit.map(|x| x.reason()).as_deref(), Some("exit 3"));
        // Started again, then the kernel's OOM killer: oom, then die with 137. The oom
        // alone is no crash: it may have killed a child process only.
        on_instance(&mut e, "start", None, 10);
        on_instance(&mut e, "oom", None, 20);
        assert_eq!(e.report.state, InstanceState::Running);
        assert_eq!(e.report.last_exit.map(|x| x.code), Some(3), "no exit yet");
        on_instance(&mut e, "die", Some("137"), 21);
        let exit = e.report.last_exit.expect("an exit");
        assert_eq!((exit.code, exit.signal, exit.oom, exit.at), (137, Some(9), true, 21));
        assert_eq!(exit.reason(), "OOM killed");
        // The next life's die is not an OOM because the previous one was.
        on_instance(&mut e, "start", None, 30);
        on_instance(&mut e, "die", Some("1"), 40);
        assert_eq!(e.report.last_exit.map(|x| (x.code, x.oom)), Some((1, false)));
        // A die without an exit code leaves the last known exit alone.
        on_instance(&mut e, "start", None, 50);
        on_instance(&mut e, "die", None, 60);
        assert_eq!(e.report.last_exit.map(|x| x.code), Some(1));
        // An oom reported after its die still marks that exit.
        on_instance(&mut e, "start", None, 70);
        on_instance(&mut e, "die", Some("137"), 80);
        on_instance(&mut e, "oom", None, 80);
        assert_eq!(e.report.last_exit.map(|x| x.reason()).as_deref(), Some("OOM killed"));
    }
}
