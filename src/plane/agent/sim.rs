//! The `sim` runtime driver: a simulated Docker host for the sandbox, demos and scale
//! benchmarks. Container lifecycles take realistic delays, metrics follow a random walk,
//! and now and then a container crashes. Never a stand-in for Docker in a test that claims
//! Docker works.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::driver::{DriverError, LOG_CHANNEL, LogReceiver, RuntimeDriver, StepReport, StepSender};
use crate::plane::rng::Rng;
use crate::protocol::clock::now_ms;
use crate::protocol::image::{ImageRef, PullBytes};
use crate::protocol::{
    ExitInfo, HostMetrics, InstanceReport, InstanceSpec, InstanceState, LogLine, LogSource, StepName,
};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub cpu_cores: u32,
    pub memory_mb: u64,
    /// Addresses handed to containers, in order; freed addresses are reused last.
    pub container_ips: Vec<String>,
    /// 1.0 is realistic timing; larger is faster (tests use 20 or more).
    pub speed: f64,
    /// Expected crashes per running container per hour.
    pub crashes_per_hour: f64,
}

struct Container {
    report: InstanceReport,
    cpu_limit: f32,
    /// Decides what its simulated log looks like.
    image: String,
}

struct SimState {
    rng: Rng,
    containers: BTreeMap<String, Container>,
    free_ips: Vec<String>,
    metrics: HostMetrics,
    next_container: u64,
    /// Registry images this host has pulled; the first deploy of one pulls it.
    pulled: std::collections::HashSet<String>,
}

pub struct SimDriver {
    config: SimConfig,
    state: Arc<Mutex<SimState>>,
}

impl SimDriver {
    /// A new simulated host. Its random walk runs on a background task until the driver is
    /// dropped.
    pub fn new(config: SimConfig) -> Arc<SimDriver> {
        let mut rng = Rng::new(config.seed);
        let mut free_ips = config.container_ips.clone();
        free_ips.reverse();
        let metrics = HostMetrics {
            mem_total_mb: config.memory_mb,
            disk_total_mb: 500 * 1024,
            disk_used_mb: rng.between(40, 200) * 1024,
            ..HostMetrics::default()
        };
        let state = Arc::new(Mutex::new(SimState {
            rng,
            containers: BTreeMap::new(),
            free_ips,
            metrics,
            next_container: 0,
            pulled: Default::default(),
        }));
        let driver = Arc::new(SimDriver { config, state });
        tokio::spawn(walk(Arc::downgrade(&driver)));
        driver
    }

    /// Containers the host already runs when the sandbox starts at scale: the fixture's
    /// instances on this host, so the agent's first heartbeat reports what the controller's
    /// state already holds. Their addresses leave the free list.
    pub fn adopt(&self, running: impl IntoIterator<Item = (InstanceReport, f32, String)>) {
        let mut s = self.lock();
        for (report, cpu_limit, image) in running {
            s.free_ips.retain(|ip| *ip != report.ip);
            s.containers.insert(report.id.clone(), Container { report, cpu_limit, image });
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A delay of `lo..hi` seconds at realistic speed, scaled.
    fn delay(&self, lo: f64, hi: f64) -> Duration {
        let secs = self.lock().rng.range(lo, hi);
        Duration::from_secs_f64(secs / self.config.speed.max(0.001))
    }

    fn set_state(&self, id: &str, state: InstanceState) -> Option<InstanceReport> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let c = s.containers.get_mut(id)?;
        c.report.state = state;
        if state == InstanceState::Running {
            c.report.started_at = Some(now_ms());
            // A fresh process starts busy (JIT, cache warm-up), then the walk takes over.
            c.report.cpu_pct = (s.rng.range(10.0, 45.0) as f32) * c.cpu_limit.max(0.1);
        }
        Some(c.report.clone())
    }

    /// Advances the random walk by one second of simulated time.
    fn step_walk(&self) {
        let mut guard = self.lock();
        let s = &mut *guard;
        let crash_p = self.config.crashes_per_hour / 3600.0;
        let mut cpu_total = 0.0f32;
        let mut mem_total = 0u64;
        for c in s.containers.values_mut() {
            let r = &mut c.report;
            if r.state != InstanceState::Running {
                r.cpu_pct = 0.0;
                continue;
            }
            if s.rng.chance(crash_p) {
                r.state = InstanceState::Crashed;
                r.cpu_pct = 0.0;
                r.last_exit = Some(plausible_exit(&mut s.rng, now_ms()));
                continue;
            }
            let ceiling = 100.0 * c.cpu_limit.max(0.1);
            r.cpu_pct = (r.cpu_pct + s.rng.range(-4.0, 4.0) as f32).clamp(0.5, ceiling);
            let limit = r.mem_limit_mb.max(16) as f64;
            let mem = r.mem_used_mb as f64 + s.rng.range(-0.02, 0.02) * limit;
            r.mem_used_mb = mem.clamp(limit * 0.2, limit * 0.95) as u64;
            cpu_total += r.cpu_pct;
            mem_total += r.mem_used_mb;
        }
        let cores = self.config.cpu_cores.max(1) as f32;
        let m = &mut s.metrics;
        let noise = s.rng.range(1.0, 4.0) as f32;
        m.cpu_pct = (cpu_total / cores + noise).min(100.0);
        let load = m.cpu_pct / 100.0 * cores;
        m.load1 = m.load1 * 0.8 + load * 0.2;
        m.load5 = m.load5 * 0.95 + load * 0.05;
        m.load15 = m.load15 * 0.98 + load * 0.02;
        m.mem_used_mb = (1024 + mem_total).min(m.mem_total_mb);
        m.net_rx_bps = (cpu_total as f64 * s.rng.range(8_000.0, 12_000.0)) as u64;
        m.net_tx_bps = (cpu_total as f64 * s.rng.range(10_000.0, 20_000.0)) as u64;
    }
}

/// How a simulated crash ends, in the proportions a JVM fleet shows: an application's
/// own exit code most often, then the OOM killer, then a segfault.
fn plausible_exit(rng: &mut Rng, at: u64) -> ExitInfo {
    match rng.between(0, 9) {
        0..=4 => ExitInfo::new(1, false, at),
        5 => ExitInfo::new(3, false, at),
        6 | 7 => ExitInfo::new(137, true, at),
        _ => ExitInfo::new(139, false, at),
    }
}

async fn walk(driver: std::sync::Weak<SimDriver>) {
    let period = match driver.upgrade() {
        Some(d) => Duration::from_secs_f64(1.0 / d.config.speed.clamp(0.1, 10.0)),
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        match driver.upgrade() {
            Some(d) => d.step_walk(),
            None => return,
        }
    }
}

impl SimDriver {
    /// `PULL_IMAGE` for a registry image this host does not have yet: a plausible size,
    /// one progress report halfway, then done.
    async fn pull(&self, spec: &InstanceSpec, report: &InstanceReport, steps: &StepSender) {
        let from_registry = ImageRef::parse(&spec.image).is_ok_and(|r| r.from_registry());
        let total = {
            let mut s = self.lock();
            if !from_registry || !s.pulled.insert(spec.image.clone()) {
                return;
            }
            s.rng.between(20, 80) * 1024 * 1024
        };
        let progress = |done: u64, running: bool| StepReport {
            step: StepName::PullImage,
            instance: report.clone(),
            detail: format!("{}, 1 layer(s) pulled of {}", PullBytes { done, total }.in_words(), spec.image),
            running,
        };
        let _ = steps.send(progress(total / 2, true)).await;
        tokio::time::sleep(self.delay(0.5, 2.0)).await;
        let _ = steps.send(progress(total, false)).await;
    }
}

async fn report_step(
    steps: &StepSender,
    step: StepName,
    instance: Option<InstanceReport>,
    detail: impl Into<String>,
) {
    if let Some(instance) = instance {
        let _ = steps.send(StepReport { step, instance, detail: detail.into(), running: false }).await;
    }
}

#[async_trait]
impl RuntimeDriver for SimDriver {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn capacity(&self) -> (u32, u64) {
        (self.config.cpu_cores, self.config.memory_mb)
    }

    async fn host_metrics(&self) -> HostMetrics {
        self.lock().metrics.clone()
    }

    async fn list(&self) -> Result<Vec<InstanceReport>, DriverError> {
        Ok(self.lock().containers.values().map(|c| c.report.clone()).collect())
    }

    async fn has(&self, id: &str) -> bool {
        self.lock().containers.contains_key(id)
    }

    /// Every registry holds every image here, except one whose name says `missing`, a rule
    /// for tests of a deploy whose tag is not in the registry. The digest is the name's
    /// hash, so a tag resolves the same every time.
    async fn resolve(&self, image: &str) -> Result<String, DriverError> {
        tokio::time::sleep(self.delay(0.05, 0.2)).await;
        if image.contains("missing") {
            return Err(DriverError::Failed(format!("manifest unknown: {image} is not in the registry")));
        }
        Ok(format!("sha256:{}", crate::repository::sha256_hex(image.as_bytes())))
    }

    async fn deploy(&self, spec: InstanceSpec, steps: StepSender) -> Result<(), DriverError> {
        let report = {
            let mut s = self.lock();
            if s.containers.contains_key(&spec.id) {
                return Ok(());
            }
            let Some(ip) = s.free_ips.pop() else {
                return Err(DriverError::Failed("no container address left on this host".into()));
            };
            s.next_container += 1;
            let container_id = format!("{:012x}", s.rng.next_u64() >> 16);
            let report = InstanceReport {
                ip,
                container_id,
                mem_used_mb: spec.memory_mb / 3,
                ..InstanceReport::deploying(&spec)
            };
            s.containers.insert(
                spec.id.clone(),
                Container { report: report.clone(), cpu_limit: spec.cpu, image: spec.image.clone() },
            );
            report
        };
        self.pull(&spec, &report, &steps).await;
        tokio::time::sleep(self.delay(0.3, 1.2)).await;
        report_step(
            &steps,
            StepName::Download,
            Some(report),
            format!("{}@{} downloaded, checksum ok", spec.app, spec.version),
        )
        .await;
        let starting = self.set_state(&spec.id, InstanceState::Starting);
        report_step(&steps, StepName::Restart, starting, format!("container started from {}", spec.image))
            .await;
        tokio::time::sleep(self.delay(0.5, 2.5)).await;
        // A rule for tests of failing deploys: an image whose name contains "crashloop"
        // crashes right after it starts, so its health check never passes.
        if spec.image.contains("crashloop") {
            self.set_state(&spec.id, InstanceState::Crashed);
            if let Some(c) = self.lock().containers.get_mut(&spec.id) {
                c.report.last_exit = Some(ExitInfo::new(1, false, now_ms()));
            }
            return Err(DriverError::Failed(format!(
                "container from {} exited right after start: health check failed",
                spec.image
            )));
        }
        let running = self.set_state(&spec.id, InstanceState::Running);
        report_step(&steps, StepName::HealthCheck, running, "healthy").await;
        Ok(())
    }

    async fn logs(&self, id: &str, tail: u32, follow: bool) -> Result<LogReceiver, DriverError> {
        let (flavor, seed) = {
            let mut s = self.lock();
            let c = s.containers.get(id).ok_or_else(|| DriverError::NotFound(id.into()))?;
            let flavor = LogFlavor::of(&c.image, &c.report.app);
            (flavor, s.rng.next_u64())
        };
        let (tx, rx) = tokio::sync::mpsc::channel(LOG_CHANNEL);
        let every = Duration::from_secs_f64((0.5 / self.config.speed.max(0.001)).max(0.02));
        let (state, id) = (Arc::downgrade(&self.state), id.to_string());
        tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            let now = now_ms();
            // The past lines: one every half second up to now.
            let backlog = u64::from(tail.min(200));
            for k in 0..backlog {
                let ts = now.saturating_sub((backlog - k) * 500);
                if tx.send(flavor.line(&mut rng, ts)).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                // The container went away: the log ends, as Docker's does.
                let gone = state.upgrade().is_none_or(|s| {
                    let s = s.lock().unwrap_or_else(|p| p.into_inner());
                    s.containers.get(&id).is_none_or(|c| c.report.state != InstanceState::Running)
                });
                if gone || tx.send(flavor.line(&mut rng, now_ms())).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn restart(&self, id: &str, steps: StepSender) -> Result<(), DriverError> {
        self.set_state(id, InstanceState::Starting).ok_or_else(|| DriverError::NotFound(id.into()))?;
        tokio::time::sleep(self.delay(0.5, 2.0)).await;
        let running = self.set_state(id, InstanceState::Running);
        report_step(&steps, StepName::HealthCheck, running, "healthy after restart").await;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), DriverError> {
        let mut s = self.lock();
        if let Some(c) = s.containers.remove(id) {
            // Freed addresses go to the back of the queue so they are reused last.
            s.free_ips.insert(0, c.report.ip);
        }
        Ok(())
    }
}

/// What a simulated container's log looks like, from its image (or its app's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFlavor {
    Tomcat,
    Node,
    Redis,
}

const PATHS: [&str; 8] =
    ["/", "/cart", "/api/items", "/api/items/42", "/login", "/checkout", "/health", "/static/app.js"];

impl LogFlavor {
    fn of(image: &str, app: &str) -> LogFlavor {
        let s = format!("{image} {app}");
        if s.contains("redis") || s.contains("cache") {
            LogFlavor::Redis
        } else if s.contains("node") || s.contains("api") || s.contains("js") {
            LogFlavor::Node
        } else {
            LogFlavor::Tomcat
        }
    }

    fn line(self, rng: &mut Rng, ts: u64) -> LogLine {
        let hms = crate::protocol::clock::hms(ts);
        let ms = ts % 1000;
        let path = PATHS[rng.between(0, PATHS.len() as u64 - 1) as usize];
        let took = rng.between(2, 180);
        let status = if rng.chance(0.05) {
            500
        } else if rng.chance(0.08) {
            404
        } else {
            200
        };
        let (source, text) = match self {
            LogFlavor::Tomcat if status == 500 => (
                LogSource::Stderr,
                format!(
                    "{hms}.{ms:03} SEVERE [http-nio-8080-exec-{}] o.a.c.c.StandardWrapperValve.invoke Servlet.service() for servlet [dispatcher] threw exception: java.lang.NullPointerException at {path}",
                    rng.between(1, 10)
                ),
            ),
            LogFlavor::Tomcat => (
                LogSource::Stdout,
                format!(
                    "{hms}.{ms:03} INFO [http-nio-8080-exec-{}] o.a.c.c.AccessLog \"GET {path} HTTP/1.1\" {status} {took}ms",
                    rng.between(1, 10)
                ),
            ),
            LogFlavor::Node => (
                if status == 500 { LogSource::Stderr } else { LogSource::Stdout },
                format!(
                    "{{\"level\":\"{}\",\"time\":\"{hms}.{ms:03}\",\"msg\":\"request completed\",\"req\":{{\"method\":\"GET\",\"url\":\"{path}\"}},\"res\":{{\"statusCode\":{status}}},\"responseTime\":{took}}}",
                    if status == 500 { "error" } else { "info" }
                ),
            ),
            LogFlavor::Redis => {
                let text = match rng.between(0, 3) {
                    0 => format!(
                        "1:M {hms}.{ms:03} * {} changes in 60 seconds. Saving...",
                        rng.between(100, 9000)
                    ),
                    1 => format!(
                        "1:M {hms}.{ms:03} * Background saving started by pid {}",
                        rng.between(20, 900)
                    ),
                    2 => format!("1:C {hms}.{ms:03} * DB saved on disk"),
                    _ => format!(
                        "1:M {hms}.{ms:03} * Accepted 10.101.1.{}:{}",
                        rng.between(2, 250),
                        rng.between(30000, 60000)
                    ),
                };
                (LogSource::Stdout, text)
            }
        };
        LogLine { ts, source, text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver whose steps nobody takes waits for room instead of queueing them, and
    /// goes on as they are taken (#10: bounded, with backpressure).
    #[tokio::test]
    async fn a_full_step_queue_holds_the_deploy_until_its_steps_are_taken() {
        let driver = SimDriver::new(SimConfig {
            seed: 7,
            cpu_cores: 4,
            memory_mb: 4096,
            container_ips: vec!["10.0.0.2".into()],
            speed: 100.0,
            crashes_per_hour: 0.0,
        });
        let spec = InstanceSpec {
            id: "web-0-abcd".into(),
            app: "web".into(),
            version: "1".into(),
            index: 0,
            image: "tomcat:8".into(),
            port: 8080,
            cpu: 0.5,
            memory_mb: 256,
            operation_id: "op-1".into(),
            run: crate::protocol::RunSpec::default(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let deploy = tokio::spawn({
            let (driver, tx) = (driver.clone(), tx.clone());
            async move { driver.deploy(spec, tx).await }
        });
        let full = async {
            while tx.capacity() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), full).await.expect("the first step fills the queue");
        // Its next step cannot be queued: the deploy waits, whatever the time it is given.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!deploy.is_finished(), "the deploy waits for room for its next step");
        let mut taken = Vec::new();
        while taken.len() < 3 {
            let step = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
            taken.push(step.expect("a step").expect("the channel is open").step);
        }
        assert_eq!(taken, [StepName::Download, StepName::Restart, StepName::HealthCheck]);
        let done = tokio::time::timeout(Duration::from_secs(30), deploy).await.expect("the deploy ends");
        assert!(matches!(done, Ok(Ok(()))), "{done:?}");
    }

    #[tokio::test]
    async fn a_simulated_crash_says_how_it_ended() {
        let driver = SimDriver::new(SimConfig {
            seed: 7,
            cpu_cores: 4,
            memory_mb: 4096,
            container_ips: vec!["10.0.0.2".into()],
            speed: 1.0,
            // Certain to crash at the next step of the walk.
            crashes_per_hour: 3600.0,
        });
        let running = InstanceReport {
            id: "web-0-abcd".into(),
            app: "web".into(),
            version: "1".into(),
            index: 0,
            state: InstanceState::Running,
            ip: "10.0.0.2".into(),
            port: 8080,
            container_id: "c".into(),
            started_at: Some(1),
            cpu_pct: 5.0,
            mem_used_mb: 10,
            mem_limit_mb: 64,
            last_exit: None,
        };
        driver.adopt([(running, 0.5, "tomcat".to_string())]);
        driver.step_walk();
        let after = driver.list().await.expect("a list");
        assert_eq!(after[0].state, InstanceState::Crashed);
        let exit = after[0].last_exit.expect("a crash with its exit");
        assert!(exit.at > 0);
        // Over many crashes, every kind a real fleet shows turns up.
        let mut rng = Rng::new(1);
        let reasons: std::collections::BTreeSet<String> =
            (0..200).map(|_| plausible_exit(&mut rng, 1).reason()).collect();
        let expected = ["OOM killed", "exit 1", "exit 3", "killed by SIGSEGV"];
        assert_eq!(reasons.into_iter().collect::<Vec<_>>(), expected);
    }
}
