//! The deploy's `PULL_IMAGE` step without an instance: an image from a registry is pinned
//! to the digest its tag names at deploy time, so every instance of the deploy (and every
//! later replacement of one) runs the same bytes even if the tag moves meanwhile.
//!
//! The controller has no registry client of its own: it asks one agent that could run
//! the app (up, in the app's AZs, with its tags) to ask its runtime (`cmd.resolve`; the
//! Docker driver uses dockerd's distribution endpoint). That agent reaches the registry
//! the way the hosts that will pull from it do, with their trust settings, and the
//! controller needs no new dependency or network path.

use std::time::Duration;

use super::core::Controller;
use crate::bus::RequestError;
use crate::plane::agent::RESOLVE_TIMEOUT;
use crate::protocol::image::ImageRef;
use crate::protocol::subjects::AgentVerb;
use crate::protocol::{
    AppSpec, Change, ErrorCode, HostState, ImageResolved, ResolveImage, StepName, StepState,
};

/// How many agents are asked before the deploy fails: another is tried only when one did
/// not answer, never when the registry said no.
const AGENTS_ASKED: usize = 3;

/// Pins `app`'s image to its digest, recording the step; `Err` fails the deploy before
/// any instance is touched, with the registry's answer.
pub(crate) async fn pin(ctl: &Controller, op_id: &str, app: &mut AppSpec) -> Result<(), String> {
    let Ok(image) = ImageRef::parse(&app.image) else {
        // Checked when the deploy was accepted: an older app's record is run as it is.
        return Ok(());
    };
    if !image.from_registry() || image.digest.is_some() || app.digest.is_some() {
        return Ok(());
    }
    let hosts = ctl.read(|core| {
        let c = &app.constraints;
        let mut ids: Vec<String> = core
            .fleet
            .hosts
            .values()
            .filter(|h| h.state == HostState::Up)
            .filter(|h| c.azs.is_empty() || c.azs.contains(&h.info.az))
            .filter(|h| c.tags.iter().all(|t| h.info.tags.contains(t)))
            .map(|h| h.info.id.clone())
            .collect();
        ids.sort();
        ids
    });
    let Some(first) = hosts.first() else {
        let reason = format!("cannot resolve {}: no up host may run {}", app.image, app.name);
        ctl.step(op_id, StepName::PullImage, None, StepState::Failed, reason.clone(), vec![]);
        return Err(reason);
    };
    ctl.step(
        op_id,
        StepName::PullImage,
        None,
        StepState::Running,
        format!("resolving {} via {first}", app.image),
        vec![],
    );
    let mut unanswered = Vec::new();
    for host in hosts.iter().take(AGENTS_ASKED) {
        ctl.unfenced().await;
        let asked: Result<ImageResolved, RequestError> = ctl
            .ask_agent_within(
                host,
                AgentVerb::Resolve,
                ResolveImage { image: app.image.clone() },
                RESOLVE_TIMEOUT + Duration::from_secs(5),
            )
            .await;
        match asked {
            Ok(resolved) => {
                app.digest = Some(resolved.digest.clone());
                ctl.step(
                    op_id,
                    StepName::PullImage,
                    None,
                    StepState::Done,
                    format!("{} is {} (asked {host})", app.image, resolved.digest),
                    vec![Change::App(app.clone())],
                );
                return Ok(());
            }
            // The registry's own answer (no such tag or repository, refused): asking
            // another host would hear the same.
            Err(RequestError::Refused(e))
                if matches!(e.code, ErrorCode::NotFound | ErrorCode::BadRequest) =>
            {
                let reason = format!("image {}: {} (asked {host})", app.image, e.reason);
                ctl.step(op_id, StepName::PullImage, None, StepState::Failed, reason.clone(), vec![]);
                return Err(reason);
            }
            Err(e) => unanswered.push(format!("{host}: {e}")),
        }
    }
    let reason = format!("cannot resolve {}: {}", app.image, unanswered.join("; "));
    ctl.step(op_id, StepName::PullImage, None, StepState::Failed, reason.clone(), vec![]);
    Err(reason)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bus::{Bus, LocalBus, Subscription};
    use crate::plane::agent::driver::{DriverError, RuntimeDriver, StepReport, StepSender};
    use crate::plane::agent::sim::{SimConfig, SimDriver};
    use crate::plane::agent::{self, AgentConfig, AgentHandle};
    use crate::plane::controller::store::MemoryStore;
    use crate::plane::controller::{ControllerConfig, ControllerHandle};
    use crate::protocol::{
        Accepted, DeployRequest, Envelope, Event, EventKind, Fleet, HostMetrics, InstanceReport,
        InstanceSpec, InstanceState, OperationState, decode, subjects,
    };

    const PERIOD: Duration = Duration::from_millis(100);

    fn sim() -> Arc<SimDriver> {
        SimDriver::new(SimConfig {
            seed: 3,
            cpu_cores: 8,
            memory_mb: 16_384,
            container_ips: (31..60).map(|k| format!("10.0.1.{k}")).collect(),
            speed: 50.0,
            crashes_per_hour: 0.0,
        })
    }

    async fn plane(bus: &Arc<dyn Bus>) -> (ControllerHandle, AgentHandle) {
        plane_on(bus, sim(), Duration::from_secs(20)).await
    }

    async fn plane_on(
        bus: &Arc<dyn Bus>,
        driver: Arc<dyn RuntimeDriver>,
        step_timeout: Duration,
    ) -> (ControllerHandle, AgentHandle) {
        let config =
            ControllerConfig { heartbeat_period: PERIOD, step_timeout, ..ControllerConfig::default() };
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let ctl =
            Controller::start(bus.clone(), config, Fleet::default(), store, None).await.expect("controller");
        let config = AgentConfig {
            host_id: "h1".into(),
            hostname: "h1".into(),
            ip: "10.0.1.1".into(),
            az: "az1".into(),
            tags: vec![],
            heartbeat_period: PERIOD,
            poll_interval: Duration::from_millis(50),
            metrics: None,
        };
        let agent = agent::start(bus.clone(), driver, config).await.expect("agent");
        ctl.wait_for(Duration::from_secs(10), |f| f.hosts.get("h1").map(|_| ())).await.expect("h1 joins");
        (ctl, agent)
    }

    async fn deploy(bus: &Arc<dyn Bus>, version: &str, image: &str) -> String {
        let req = DeployRequest {
            app: "web".into(),
            version: version.into(),
            instances: 2,
            image: Some(image.into()),
            port: Some(8080),
            ..DeployRequest::default()
        };
        let sent: Accepted = crate::bus::command(
            bus.as_ref(),
            subjects::CtlVerb::Deploy,
            &Envelope::new("test", req),
            Duration::from_secs(5),
        )
        .await
        .expect("deploy accepted");
        sent.operation_id.expect("an operation")
    }

    async fn ended(ctl: &Controller, op: &str) -> (OperationState, Option<String>) {
        ctl.wait_for(Duration::from_secs(30), |f| {
            f.operations.get(op).filter(|o| o.finished_at.is_some()).map(|o| (o.state, o.error.clone()))
        })
        .await
        .unwrap_or_else(|| panic!("{op} did not end: {:#?}", ctl.snapshot().operations.get(op)))
    }

    /// Every event seen so far of `op`, as (kind, instance, message).
    fn events_of(sub: &mut Subscription, op: &str) -> Vec<(EventKind, Option<String>, String)> {
        std::iter::from_fn(|| futures_util::FutureExt::now_or_never(sub.next()).flatten())
            .filter_map(|m| decode::<Event>(&m.payload).ok())
            .map(|e| e.body)
            .filter(|e| e.operation_id.as_deref() == Some(op))
            .map(|e| (e.kind, e.instance, e.message))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registry_tag_is_pinned_once_and_a_missing_one_fails_before_any_instance_is_touched() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let (ctl, agent) = plane(&bus).await;
        let mut sub = bus.subscribe(subjects::EVT_ALL).await.expect("events");

        let image = "registry.test:5000/shop/web:1";
        let op = deploy(&bus, "1", image).await;
        assert_eq!(ended(&ctl, &op).await, (OperationState::Succeeded, None));
        let digest = format!("sha256:{}", crate::repository::sha256_hex(image.as_bytes()));
        let app = ctl.snapshot().apps["web"].clone();
        assert_eq!(app.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(app.pinned_image(), format!("registry.test:5000/shop/web@{digest}"));
        let events = events_of(&mut sub, &op);
        let pulls: Vec<_> = events.iter().filter(|(k, ..)| *k == EventKind::PullImage).collect();
        assert!(
            pulls.iter().any(|(_, i, m)| i.is_none() && m.contains(&digest)),
            "the controller's resolution: {pulls:#?}"
        );
        assert!(
            pulls.iter().any(|(_, i, m)| i.is_some() && m.contains("bytes")),
            "the host's pull with its bytes: {pulls:#?}"
        );
        let first = events.iter().position(|(k, ..)| *k == EventKind::PullImage);
        let placed = events.iter().position(|(k, ..)| *k == EventKind::NewInstanceAndDeployWarRequest);
        assert!(first < placed, "resolved before any instance is placed: {events:#?}");

        let before: Vec<String> = ctl.snapshot().instances.keys().cloned().collect();
        let op = deploy(&bus, "2", "registry.test:5000/shop/missing:2").await;
        let (state, error) = ended(&ctl, &op).await;
        assert_eq!(state, OperationState::Failed);
        assert!(error.as_deref().is_some_and(|e| e.contains("manifest unknown")), "{error:?}");
        let after = ctl.snapshot();
        assert_eq!(after.instances.keys().cloned().collect::<Vec<_>>(), before, "no instance touched");
        assert!(after.instances.values().all(|i| i.state == InstanceState::Running && i.version == "1"));
        assert_eq!(after.apps["web"].digest.as_deref(), Some(digest.as_str()), "v1 keeps its digest");
        let events = events_of(&mut sub, &op);
        assert!(
            !events.iter().any(|(k, ..)| *k == EventKind::NewInstanceAndDeployWarRequest),
            "nothing placed: {events:#?}"
        );
        agent.stop();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_image_without_a_registry_or_pinned_by_digest_is_not_resolved() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let (ctl, agent) = plane(&bus).await;
        let mut sub = bus.subscribe(subjects::EVT_ALL).await.expect("events");
        for (version, image) in [
            ("1", "nginx:1".to_string()),
            ("2", format!("registry.test/shop/web@sha256:{}", "ab".repeat(32))),
        ] {
            let op = deploy(&bus, version, &image).await;
            assert_eq!(ended(&ctl, &op).await, (OperationState::Succeeded, None));
            assert_eq!(ctl.snapshot().apps["web"].digest, None);
            assert_eq!(ctl.snapshot().apps["web"].pinned_image(), image);
            let events = events_of(&mut sub, &op);
            assert!(
                !events.iter().any(|(k, i, _)| *k == EventKind::PullImage && i.is_none()),
                "{image}: nothing to resolve: {events:#?}"
            );
        }
        agent.stop();
    }
    /// A host whose pulls take `pull`: progress every 200 ms, then the sim's deploy.
    struct SlowPull {
        sim: Arc<SimDriver>,
        pull: Duration,
    }

    #[async_trait::async_trait]
    impl RuntimeDriver for SlowPull {
        fn name(&self) -> &'static str {
            "slow-pull"
        }
        fn capacity(&self) -> (u32, u64) {
            self.sim.capacity()
        }
        async fn host_metrics(&self) -> HostMetrics {
            self.sim.host_metrics().await
        }
        async fn list(&self) -> Result<Vec<InstanceReport>, DriverError> {
            self.sim.list().await
        }
        async fn has(&self, id: &str) -> bool {
            self.sim.has(id).await
        }
        async fn deploy(&self, spec: InstanceSpec, steps: StepSender) -> Result<(), DriverError> {
            let report = InstanceReport::deploying(&spec);
            let started = tokio::time::Instant::now();
            while started.elapsed() < self.pull {
                let detail = format!("{} of 1000 bytes", started.elapsed().as_millis().min(999));
                let _ = steps
                    .send(StepReport {
                        step: StepName::PullImage,
                        instance: report.clone(),
                        detail,
                        running: true,
                    })
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let done = "1000 of 1000 bytes".to_string();
            let _ = steps
                .send(StepReport {
                    step: StepName::PullImage,
                    instance: report,
                    detail: done,
                    running: false,
                })
                .await;
            self.sim.deploy(spec, steps).await
        }
        async fn resolve(&self, image: &str) -> Result<String, DriverError> {
            self.sim.resolve(image).await
        }
        async fn restart(&self, id: &str, steps: StepSender) -> Result<(), DriverError> {
            self.sim.restart(id, steps).await
        }
        async fn remove(&self, id: &str) -> Result<(), DriverError> {
            self.sim.remove(id).await
        }
    }

    /// A pull longer than the step timeout is not taken for an instance that never came up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pull_longer_than_the_step_timeout_does_not_fail_the_deploy() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let driver = Arc::new(SlowPull { sim: sim(), pull: Duration::from_millis(2_500) });
        let (ctl, agent) = plane_on(&bus, driver, Duration::from_secs(1)).await;
        let op = deploy(&bus, "1", "registry.test:5000/shop/web:1").await;
        let (state, error) = ended(&ctl, &op).await;
        assert_eq!((state, error), (OperationState::Succeeded, None));
        assert_eq!(
            ctl.snapshot().instances.values().filter(|i| i.state == InstanceState::Running).count(),
            2
        );
        agent.stop();
    }
}
