//! Deploy, restart and remove, with the original flow's steps (and PULL_IMAGE while an image
//! the host lacks comes from its registry): DOWNLOAD once the artifact
//! is on the host and verified, RESTART once the container runs, HEALTH_CHECK once it
//! answers. A failure reports the failing step with the reason, sets the instance
//! `crashed` (nothing left running) or `unhealthy` (running, not answering), and leaves no
//! container behind unless one was started and failed its health check: that one stays
//! for the operator to look at until the controller removes the instance.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RestartContainerOptions, StopContainerOptions,
};

use super::cache::{Entry, Phase, short_id};
use super::inspect::{self, Inspected};
use super::{Inner, NetworkMode, PublishMode, artifact, connect, health, image, labels, network};
use crate::plane::agent::driver::{DriverError, StepReport, StepSender};
use crate::protocol::clock::now_ms;
use crate::protocol::image::ImageRef;
use crate::protocol::{HealthCheck, InstanceReport, InstanceSpec, InstanceState, StepName};

const MB: u64 = 1024 * 1024;
/// Docker refuses memory limits below this.
const DOCKER_MIN_MEMORY_MB: u64 = 6;
/// Pause between health probes.
const PROBE_EVERY: Duration = Duration::from_millis(300);
/// How often a health wait checks that the container still runs.
const INSPECT_EVERY: Duration = Duration::from_secs(1);
/// Host ports picked in auto mode can be taken between the pick and the start.
const PORT_ATTEMPTS: usize = 3;

/// Reports a step; waits while the agent's queue of steps is full. An error means the
/// agent stopped, and nobody is left to tell.
async fn send(steps: &StepSender, step: StepName, instance: InstanceReport, detail: impl Into<String>) {
    let _ = steps.send(StepReport { step, instance, detail: detail.into(), running: false }).await;
}

/// Changes the entry if `generation` still owns it; returns its report after the change.
fn update(inner: &Inner, id: &str, generation: u64, f: impl FnOnce(&mut Entry)) -> Option<InstanceReport> {
    let mut cache = inner.cache();
    let entry = cache.owned(id, generation)?;
    f(entry);
    Some(entry.report.clone())
}

/// Hands the entry back to events and the refresh.
fn settle(entry: &mut Entry, phase: Phase) {
    entry.phase = phase;
    entry.settled = Instant::now();
}

fn overtaken(id: &str) -> DriverError {
    DriverError::Failed(format!("{id} was removed while its operation ran"))
}

/// Instance ids name containers and directories, so only a safe alphabet gets through.
fn check_id(id: &str) -> Result<(), DriverError> {
    let ok = (1..=100).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-');
    if ok { Ok(()) } else { Err(DriverError::Failed(format!("instance id {id:?} is not valid"))) }
}

fn artifact_sha(spec: &InstanceSpec) -> String {
    spec.run.artifact.as_ref().map(|a| a.sha256.clone()).unwrap_or_default()
}

fn new_entry(spec: &InstanceSpec, generation: u64) -> Entry {
    Entry {
        report: InstanceReport::deploying(spec),
        container: None,
        phase: Phase::Busy,
        generation,
        settled: Instant::now(),
        image: spec.image.clone(),
        container_port: spec.port,
        mount: if spec.run.artifact.is_some() { spec.run.mount.clone() } else { String::new() },
        artifact: artifact_sha(spec),
        cmd: spec.run.cmd.clone(),
        health: spec.run.health.clone(),
        vlan_ip: None,
        oom_at: None,
    }
}

enum Claim {
    /// Already there or on its way: nothing to do (idempotent on the instance id).
    Nothing,
    Fresh(u64),
    /// The same instance with another version: swap the directory and restart.
    Redeploy(u64, Box<Entry>),
}

pub async fn deploy(inner: &Arc<Inner>, spec: InstanceSpec, steps: &StepSender) -> Result<(), DriverError> {
    check_id(&spec.id)?;
    let claim = {
        let mut cache = inner.cache();
        let generation = cache.next_generation();
        match cache.entries.get_mut(&spec.id) {
            Some(e) if e.phase == Phase::Busy => Claim::Nothing,
            Some(e) if e.phase == Phase::Idle && e.container.is_some() => {
                let same_artifact = e.artifact.is_empty() || e.artifact == artifact_sha(&spec);
                if e.report.version == spec.version && same_artifact {
                    Claim::Nothing
                } else {
                    e.phase = Phase::Busy;
                    e.generation = generation;
                    Claim::Redeploy(generation, Box::new(e.clone()))
                }
            }
            _ => {
                cache.entries.insert(spec.id.clone(), new_entry(&spec, generation));
                Claim::Fresh(generation)
            }
        }
    };
    match claim {
        Claim::Nothing => Ok(()),
        Claim::Fresh(generation) => fresh(inner, &spec, generation, steps).await,
        Claim::Redeploy(generation, old) => redeploy(inner, &spec, generation, &old, steps).await,
    }
}

/// Fails a deploy that leaves nothing running: the container (if any) and the unpacked
/// artifact go, the instance shows `crashed` with the failing step's reason.
async fn fail_clean(
    inner: &Inner,
    spec: &InstanceSpec,
    generation: u64,
    step: StepName,
    why: String,
    steps: &StepSender,
) -> DriverError {
    log::warn!("{}: {} failed: {why}", spec.id, step.as_str());
    let container = inner.cache().owned(&spec.id, generation).and_then(|e| e.container.clone());
    if let Some(c) = container {
        force_remove(inner, &c).await;
    }
    artifact::remove_all(&artifact::instance_dir(&inner.config.data_dir, &spec.id));
    let report = update(inner, &spec.id, generation, |e| {
        e.set_state(InstanceState::Crashed);
        e.container = None;
        e.report.container_id.clear();
        e.vlan_ip = None;
        settle(e, Phase::Failed);
    });
    if let Some(r) = report {
        send(steps, step, r, why.clone()).await;
    }
    DriverError::Failed(why)
}

async fn fresh(
    inner: &Arc<Inner>,
    spec: &InstanceSpec,
    generation: u64,
    steps: &StepSender,
) -> Result<(), DriverError> {
    let dir = artifact::instance_dir(&inner.config.data_dir, &spec.id);
    // Bad input fails before anything is downloaded or created.
    if let Err(why) = check_spec(inner, spec).await {
        return Err(fail_clean(inner, spec, generation, StepName::Restart, why, steps).await);
    }
    // So does a secret that cannot be read at the version the spec names.
    let env = match environment(inner, spec).await {
        Ok(env) => env,
        Err(why) => return Err(fail_clean(inner, spec, generation, StepName::Restart, why, steps).await),
    };
    match ensure_image(inner, spec, generation, steps).await {
        Ok(None) => {}
        Ok(Some(pulled)) => match update(inner, &spec.id, generation, |_| {}) {
            Some(r) => send(steps, StepName::PullImage, r, pulled).await,
            None => return Err(abandon(inner, spec, None).await),
        },
        Err((step, why)) => return Err(fail_clean(inner, spec, generation, step, why, steps).await),
    }
    let fetched = match &spec.run.artifact {
        Some(a) => artifact::fetch(inner.repo.as_ref(), a, &dir, &spec.version)
            .await
            .and_then(|detail| artifact::activate(&dir, &spec.version).map(|_| detail)),
        None => Ok("no artifact: the image serves as it is".into()),
    };
    let detail = match fetched {
        Ok(d) => d,
        Err(why) => return Err(fail_clean(inner, spec, generation, StepName::Download, why, steps).await),
    };
    let Some(report) = update(inner, &spec.id, generation, |_| {}) else {
        return Err(abandon(inner, spec, None).await);
    };
    send(steps, StepName::Download, report, format!("{}@{}: {detail}", spec.app, spec.version)).await;

    let started = match create_and_start(inner, spec, generation, &dir, env).await {
        Ok(s) => s,
        Err(why) => return Err(fail_clean(inner, spec, generation, StepName::Restart, why, steps).await),
    };
    let (ip, port) = endpoint(inner, spec.port, &started);
    let container = started.id.clone();
    let report = update(inner, &spec.id, generation, |e| {
        e.container = Some(container.clone());
        e.report.container_id = short_id(&container);
        e.report.ip = ip.clone();
        e.report.port = port;
        e.report.started_at = started.started_at;
        e.vlan_ip = started.vlan_ip;
        e.set_state(InstanceState::Starting);
    });
    let Some(report) = report else {
        return Err(abandon(inner, spec, Some(&container)).await);
    };
    send(
        steps,
        StepName::Restart,
        report,
        format!(
            "container {} ({}) started from {}; endpoint {ip}:{port}",
            labels::container_name(&spec.id),
            short_id(&container),
            spec.image
        ),
    )
    .await;
    let target = probe_target(inner, spec.port, &started)?;
    await_healthy(inner, &spec.id, generation, &container, spec.port, target, &spec.run.health, steps).await
}

/// A remove overtook the deploy: take back what this deploy made.
async fn abandon(inner: &Inner, spec: &InstanceSpec, container: Option<&str>) -> DriverError {
    if let Some(c) = container {
        force_remove(inner, c).await;
    }
    if !inner.cache().entries.contains_key(&spec.id) {
        artifact::remove_all(&artifact::instance_dir(&inner.config.data_dir, &spec.id));
    }
    overtaken(&spec.id)
}

/// The container's environment: the spec's variables, then each secret's value read at
/// the exact version its reference names (and checked against its sha8). Never logged:
/// errors name the secret and its version only.
async fn environment(inner: &Inner, spec: &InstanceSpec) -> Result<Vec<String>, String> {
    let mut env: Vec<String> = spec.run.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if spec.run.secrets.is_empty() {
        return Ok(env);
    }
    let Some(secrets) = &inner.config.secrets else {
        return Err(format!(
            "{} has secrets, but this agent has no secret store to read them from",
            spec.app
        ));
    };
    let values = secrets.environment(&spec.app, &spec.run.secrets).await.map_err(|e| e.to_string())?;
    env.extend(values);
    Ok(env)
}

/// Checks that need no download: the image is here, the limits are ones Docker takes, the
/// mount point is usable.
async fn check_spec(inner: &Inner, spec: &InstanceSpec) -> Result<(), String> {
    if spec.port == 0 {
        return Err("container port 0 is not valid".into());
    }
    if spec.memory_mb > 0 && spec.memory_mb < DOCKER_MIN_MEMORY_MB {
        return Err(format!(
            "memory limit {} MB is below Docker's minimum of {DOCKER_MIN_MEMORY_MB} MB",
            spec.memory_mb
        ));
    }
    let cores = inner.engine.cpu_cores as f32;
    if !spec.cpu.is_finite() || spec.cpu < 0.0 || spec.cpu > cores {
        return Err(format!("cpu limit {} is not between 0 and this host's {cores} cores", spec.cpu));
    }
    if spec.run.artifact.is_some() {
        let m = &spec.run.mount;
        if !m.starts_with('/') || m == "/" || m.contains([':', ',']) || m.split('/').any(|p| p == "..") {
            return Err(format!("mount point {m:?} is not usable: give an absolute path such as /app"));
        }
    }
    // Checked again at create time (the port can be taken in between); this one fails
    // before anything is downloaded.
    if let (Some(ip), PublishMode::Same) = (inner.config.advertise_ip, inner.config.publish)
        && !network::port_is_free(ip, spec.port)
    {
        return Err(format!("port {} on {ip} is already in use", spec.port));
    }
    Ok(())
}

/// `PULL_IMAGE`: an image the host lacks is pulled when it names a registry (progress
/// reported as the step runs). One that names none (`nginx:1`) runs only where it was
/// loaded, as before registries: pulling it would reach for Docker Hub, so its absence
/// fails the start (`RESTART`). `Ok(None)`: the host had it.
async fn ensure_image(
    inner: &Inner,
    spec: &InstanceSpec,
    generation: u64,
    steps: &StepSender,
) -> Result<Option<String>, (StepName, String)> {
    let parsed = ImageRef::parse(&spec.image).map_err(|e| (StepName::Restart, e))?;
    let step = if parsed.from_registry() { StepName::PullImage } else { StepName::Restart };
    match inner.docker.inspect_image(&spec.image).await {
        Ok(_) => return Ok(None),
        Err(e) if connect::is_not_found(&e) && parsed.from_registry() => {}
        Err(e) if connect::is_not_found(&e) => {
            return Err((step, format!("image {} not found on this host", spec.image)));
        }
        Err(e) => {
            return Err((step, format!("cannot inspect image {}: {}", spec.image, connect::message(&e))));
        }
    }
    let progress = |detail: String| {
        if let Some(r) = update(inner, &spec.id, generation, |_| {}) {
            // Progress is reported from the pull's callback, which cannot wait: when the queue
            // is full this report is left out, as the next one (or the step's end) says more.
            let _ =
                steps.try_send(StepReport { step: StepName::PullImage, instance: r, detail, running: true });
        }
    };
    progress(format!("pulling {}", spec.image));
    let limit = crate::plane::agent::PULL_TIMEOUT;
    match tokio::time::timeout(limit, image::pull(&inner.docker, &parsed, progress)).await {
        Ok(pulled) => {
            pulled.map(Some).map_err(|e| (StepName::PullImage, format!("cannot pull {}: {e}", spec.image)))
        }
        Err(_) => {
            Err((StepName::PullImage, format!("the pull of {} did not finish within {limit:?}", spec.image)))
        }
    }
}

fn vlan_network(inner: &Inner) -> Option<String> {
    match &inner.config.network {
        NetworkMode::Vlan(_) => Some(network::network_name(&inner.config.host_id)),
        NetworkMode::Published => None,
    }
}

/// Picks the instance's VLAN address and records it on the entry, so the next pick skips
/// it even before Docker has attached the container.
async fn reserve_address(
    inner: &Inner,
    id: &str,
    generation: u64,
) -> Result<Option<std::net::Ipv4Addr>, String> {
    let NetworkMode::Vlan(vlan) = &inner.config.network else { return Ok(None) };
    let _one_at_a_time = inner.ipam.lock().await;
    let name = network::network_name(&inner.config.host_id);
    let mut used = network::addresses_on_network(&inner.docker, &name).await?;
    let mut cache = inner.cache();
    used.extend(cache.ips_in_use());
    let ip = network::pick_address(vlan, &used)
        .ok_or_else(|| format!("no free address left in {} on network {name}", vlan.subnet))?;
    let entry = cache.owned(id, generation).ok_or_else(|| format!("{id} was removed"))?;
    entry.vlan_ip = Some(ip);
    Ok(Some(ip))
}

fn container_body(
    inner: &Inner,
    spec: &InstanceSpec,
    host_port: Option<u16>,
    vlan_ip: Option<std::net::Ipv4Addr>,
    dir: &Path,
    env: &[String],
) -> ContainerCreateBody {
    let key = format!("{}/tcp", spec.port);
    let port_bindings = match (inner.config.advertise_ip, host_port) {
        (Some(ip), Some(port)) => Some(HashMap::from([(
            key.clone(),
            Some(vec![PortBinding { host_ip: Some(ip.to_string()), host_port: Some(port.to_string()) }]),
        )])),
        _ => None,
    };
    let binds = spec
        .run
        .artifact
        .as_ref()
        .map(|_| vec![format!("{}:{}:ro", dir.join(artifact::CURRENT).display(), spec.run.mount)]);
    let memory = (spec.memory_mb > 0).then(|| (spec.memory_mb * MB) as i64);
    let network = vlan_network(inner);
    let networking_config = match (&network, vlan_ip) {
        (Some(name), Some(ip)) => Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                name.clone(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(ip.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        _ => None,
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.run.cmd.clone(),
        env: (!env.is_empty()).then(|| env.to_vec()),
        labels: Some(labels::for_spec(spec, &inner.config.host_id, &inner.config.extra_labels)),
        exposed_ports: Some(vec![key]),
        host_config: Some(HostConfig {
            binds,
            port_bindings,
            memory,
            // No swap beyond the memory limit: the limit is the limit.
            memory_swap: memory,
            nano_cpus: (spec.cpu > 0.0).then(|| (f64::from(spec.cpu) * 1e9) as i64),
            network_mode: network,
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    }
}

/// Creates and starts the container; on any failure nothing of it is left.
async fn create_and_start(
    inner: &Inner,
    spec: &InstanceSpec,
    generation: u64,
    dir: &Path,
    env: Vec<String>,
) -> Result<Inspected, String> {
    let vlan_ip = reserve_address(inner, &spec.id, generation).await?;
    let name = labels::container_name(&spec.id);
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let host_port = match (inner.config.advertise_ip, inner.config.publish) {
            (None, _) => None,
            (Some(ip), PublishMode::Auto) => Some(network::free_port(ip)?),
            (Some(ip), PublishMode::Same) => {
                if !network::port_is_free(ip, spec.port) {
                    return Err(format!("port {} on {ip} is already in use", spec.port));
                }
                Some(spec.port)
            }
        };
        let body = container_body(inner, spec, host_port, vlan_ip, dir, &env);
        let opts = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
        let created = match inner.docker.create_container(Some(opts), body).await {
            Ok(c) => c,
            Err(e) if connect::is_not_found(&e) => {
                return Err(format!("image {} not found on this host", spec.image));
            }
            Err(e) => return Err(format!("cannot create container {name}: {}", connect::message(&e))),
        };
        if let Some(entry) = inner.cache().owned(&spec.id, generation) {
            entry.container = Some(created.id.clone());
        }
        match inner.docker.start_container(&created.id, None).await {
            Ok(()) => {}
            Err(e) => {
                let msg = connect::message(&e);
                force_remove(inner, &created.id).await;
                if let Some(entry) = inner.cache().owned(&spec.id, generation) {
                    entry.container = None;
                }
                let taken =
                    msg.contains("address already in use") || msg.contains("port is already allocated");
                match (taken, host_port, inner.config.publish) {
                    (true, Some(p), PublishMode::Auto) => {
                        last_error = format!("port {p} was taken before the container started");
                        continue;
                    }
                    (true, Some(p), PublishMode::Same) => {
                        return Err(format!("port {p} is already in use: {msg}"));
                    }
                    _ => return Err(format!("cannot start container {name}: {msg}")),
                }
            }
        }
        let inspected =
            inspect::inspect(&inner.docker, &created.id, spec.port, vlan_network(inner).as_deref())
                .await
                .map_err(|e| format!("cannot inspect container {name}: {}", connect::message(&e)))?;
        if inner.config.advertise_ip.is_some() && inspected.host_port.is_none() {
            force_remove(inner, &created.id).await;
            return Err(format!("Docker did not publish port {} of {name}", spec.port));
        }
        return Ok(inspected);
    }
    Err(last_error)
}

/// The instance's endpoint as reported: the published address, or the VLAN address.
fn endpoint(inner: &Inner, container_port: u16, i: &Inspected) -> (String, u16) {
    match (&inner.config.network, i.vlan_ip, inner.config.advertise_ip, i.host_port) {
        (NetworkMode::Vlan(_), Some(ip), _, _) => (ip.to_string(), container_port),
        (_, _, Some(ip), Some(port)) => (ip.to_string(), port),
        _ => (String::new(), container_port),
    }
}

/// Where the health probe goes: the published address whenever there is one; a VLAN
/// address only when nothing is published.
fn probe_target(inner: &Inner, container_port: u16, i: &Inspected) -> Result<SocketAddr, DriverError> {
    match (inner.config.advertise_ip, i.host_port, i.vlan_ip) {
        (Some(ip), Some(port), _) => Ok(SocketAddr::new(IpAddr::V4(ip), port)),
        (None, _, Some(ip)) => Ok(SocketAddr::new(IpAddr::V4(ip), container_port)),
        _ => Err(DriverError::Failed("the instance has no address to check".into())),
    }
}

/// Probes until healthy, the container stops, or the health timeout passes.
#[allow(clippy::too_many_arguments)]
async fn await_healthy(
    inner: &Inner,
    id: &str,
    generation: u64,
    container: &str,
    container_port: u16,
    target: SocketAddr,
    check: &HealthCheck,
    steps: &StepSender,
) -> Result<(), DriverError> {
    let started = Instant::now();
    let deadline = started + inner.config.health_timeout;
    let mut next_inspect = started + INSPECT_EVERY;
    let mut last;
    let vlan = vlan_network(inner);
    loop {
        if inner.cache().owned(id, generation).is_none() {
            return Err(overtaken(id));
        }
        match health::probe(target, check).await {
            Ok(what) => {
                let info =
                    inspect::inspect(&inner.docker, container, container_port, vlan.as_deref()).await.ok();
                let report = update(inner, id, generation, |e| {
                    e.set_state(InstanceState::Running);
                    e.report.started_at =
                        info.and_then(|i| i.started_at).or(e.report.started_at).or(Some(now_ms()));
                    settle(e, Phase::Idle);
                });
                let report = report.ok_or_else(|| overtaken(id))?;
                send(steps, StepName::HealthCheck, report, format!("healthy: {what}")).await;
                return Ok(());
            }
            Err(e) => last = e,
        }
        let now = Instant::now();
        if now >= next_inspect {
            next_inspect = now + INSPECT_EVERY;
            if let Ok(Some(i)) =
                inspect::inspect_opt(&inner.docker, container, container_port, vlan.as_deref()).await
                && !i.running
            {
                let why = format!(
                    "{} before it was healthy",
                    inspect::exit_reason(&inner.docker, container, &i).await
                );
                if let Some(exit) = i.exit() {
                    update(inner, id, generation, |e| e.report.last_exit = Some(exit));
                }
                return Err(fail_in_place(inner, id, generation, InstanceState::Crashed, why, steps).await);
            }
        }
        if now >= deadline {
            let why = format!("not healthy after {:?}: {last}", inner.config.health_timeout);
            return Err(fail_in_place(inner, id, generation, InstanceState::Unhealthy, why, steps).await);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Fails the health check of a container that stays for the operator to look at.
async fn fail_in_place(
    inner: &Inner,
    id: &str,
    generation: u64,
    state: InstanceState,
    why: String,
    steps: &StepSender,
) -> DriverError {
    log::warn!("{id}: HEALTH_CHECK failed: {why}");
    let report = update(inner, id, generation, |e| {
        e.set_state(state);
        settle(e, Phase::Idle);
    });
    if let Some(r) = report {
        send(steps, StepName::HealthCheck, r, why.clone()).await;
    }
    DriverError::Failed(why)
}

/// A new version for an instance that runs: when only the artifact changed, unpack it
/// beside the old one, swap `current`, restart the container; otherwise replace the
/// container.
async fn redeploy(
    inner: &Arc<Inner>,
    spec: &InstanceSpec,
    generation: u64,
    old: &Entry,
    steps: &StepSender,
) -> Result<(), DriverError> {
    let Some(container) = old.container.clone() else { return fresh(inner, spec, generation, steps).await };
    let in_place = spec.run.artifact.is_some()
        && old.image == spec.image
        && old.container_port == spec.port
        && old.mount == spec.run.mount
        && old.cmd.as_ref().is_none_or(|c| Some(c) == spec.run.cmd.as_ref())
        // The old container's environment is not known here, and cannot change in place.
        && spec.run.env.is_empty()
        && spec.run.secrets.is_empty();
    if !in_place {
        force_remove(inner, &container).await;
        let reset = update(inner, &spec.id, generation, |e| {
            let generation = e.generation;
            *e = new_entry(spec, generation);
        });
        if reset.is_none() {
            return Err(overtaken(&spec.id));
        }
        return fresh(inner, spec, generation, steps).await;
    }
    let dir = artifact::instance_dir(&inner.config.data_dir, &spec.id);
    let fetched = match &spec.run.artifact {
        Some(a) => artifact::fetch(inner.repo.as_ref(), a, &dir, &spec.version).await,
        None => Ok(String::new()),
    };
    let detail = match fetched {
        Ok(d) => d,
        Err(why) => {
            // The old version keeps serving; only the step fails.
            let report = update(inner, &spec.id, generation, |e| settle(e, Phase::Idle));
            if let Some(r) = report {
                send(steps, StepName::Download, r, why.clone()).await;
            }
            return Err(DriverError::Failed(why));
        }
    };
    let report = update(inner, &spec.id, generation, |e| e.set_state(InstanceState::Deploying))
        .ok_or_else(|| overtaken(&spec.id))?;
    send(steps, StepName::Download, report, format!("{}@{}: {detail}", spec.app, spec.version)).await;
    if let Err(why) = artifact::activate(&dir, &spec.version) {
        return Err(fail_in_place(inner, &spec.id, generation, InstanceState::Crashed, why, steps).await);
    }
    let restarted = restart_container(inner, &container, spec.port).await;
    let info = match restarted {
        Ok(i) => i,
        Err(why) => {
            return Err(fail_in_place(inner, &spec.id, generation, InstanceState::Crashed, why, steps).await);
        }
    };
    let (ip, port) = endpoint(inner, spec.port, &info);
    let report = update(inner, &spec.id, generation, |e| {
        e.report.version = spec.version.clone();
        e.artifact = artifact_sha(spec);
        e.report.ip = ip.clone();
        e.report.port = port;
        e.set_state(InstanceState::Starting);
    })
    .ok_or_else(|| overtaken(&spec.id))?;
    send(
        steps,
        StepName::Restart,
        report,
        format!("container {} restarted on {}", short_id(&container), spec.version),
    )
    .await;
    let target = probe_target(inner, spec.port, &info)?;
    await_healthy(inner, &spec.id, generation, &container, spec.port, target, &spec.run.health, steps)
        .await?;
    artifact::prune(&dir, &spec.version);
    Ok(())
}

async fn restart_container(inner: &Inner, container: &str, container_port: u16) -> Result<Inspected, String> {
    let t = inner.config.stop_timeout.as_secs().min(i32::MAX as u64) as i32;
    let opts = RestartContainerOptions { t: Some(t), signal: None };
    inner
        .docker
        .restart_container(container, Some(opts))
        .await
        .map_err(|e| format!("cannot restart container {}: {}", short_id(container), connect::message(&e)))?;
    inspect::inspect(&inner.docker, container, container_port, vlan_network(inner).as_deref())
        .await
        .map_err(|e| format!("cannot inspect container {}: {}", short_id(container), connect::message(&e)))
}

pub async fn restart(inner: &Arc<Inner>, id: &str, steps: &StepSender) -> Result<(), DriverError> {
    let claimed = {
        let mut cache = inner.cache();
        let generation = cache.next_generation();
        match cache.entries.get_mut(id) {
            Some(e) if e.phase == Phase::Busy => {
                return Err(DriverError::Failed(format!("{id} is busy with another operation")));
            }
            Some(e) if e.phase == Phase::Idle => match e.container.clone() {
                Some(c) => {
                    e.phase = Phase::Busy;
                    e.generation = generation;
                    e.set_state(InstanceState::Starting);
                    Some((generation, c, e.container_port, e.health.clone()))
                }
                None => None,
            },
            _ => None,
        }
    };
    let Some((generation, container, port, check)) = claimed else {
        return Err(DriverError::NotFound(id.into()));
    };
    let info = match restart_container(inner, &container, port).await {
        Ok(i) => i,
        Err(why) => {
            let gone =
                inspect::inspect_opt(&inner.docker, &container, port, None).await.ok().flatten().is_none();
            if gone {
                update(inner, id, generation, |e| {
                    e.set_state(InstanceState::Crashed);
                    e.container = None;
                    e.report.container_id.clear();
                    e.vlan_ip = None;
                    settle(e, Phase::Failed);
                });
                return Err(DriverError::NotFound(id.into()));
            }
            return Err(fail_in_place(inner, id, generation, InstanceState::Crashed, why, steps).await);
        }
    };
    let (ip, p) = endpoint(inner, port, &info);
    update(inner, id, generation, |e| {
        e.report.ip = ip;
        e.report.port = p;
    });
    let target = probe_target(inner, port, &info)?;
    await_healthy(inner, id, generation, &container, port, target, &check, steps).await
}

/// Stops and removes the container, leaving nothing of the instance; the container is
/// found through the driver's own entry, so a container that is not ours is never touched.
pub async fn remove(inner: &Arc<Inner>, id: &str) -> Result<(), DriverError> {
    let claimed = {
        let mut cache = inner.cache();
        let generation = cache.next_generation();
        cache.entries.get_mut(id).map(|e| {
            e.phase = Phase::Busy;
            e.generation = generation;
            (generation, e.container.clone(), e.clone())
        })
    };
    let Some((generation, container, before)) = claimed else { return Ok(()) };
    if let Some(c) = &container {
        let t = inner.config.stop_timeout.as_secs().min(i32::MAX as u64) as i32;
        let _ = inner.docker.stop_container(c, Some(StopContainerOptions { t: Some(t), signal: None })).await;
        let opts = RemoveContainerOptions { force: true, v: true, link: false };
        match inner.docker.remove_container(c, Some(opts)).await {
            Ok(()) => {}
            Err(e) if connect::is_not_found(&e) => {}
            Err(e) => {
                let why = format!("cannot remove container {}: {}", short_id(c), connect::message(&e));
                let mut cache = inner.cache();
                if let Some(entry) = cache.owned(id, generation) {
                    *entry = before;
                    entry.generation = generation;
                    settle(entry, Phase::Idle);
                }
                return Err(DriverError::Failed(why));
            }
        }
    }
    artifact::remove_all(&artifact::instance_dir(&inner.config.data_dir, id));
    let mut cache = inner.cache();
    if cache.owned(id, generation).is_some() {
        cache.entries.remove(id);
    }
    Ok(())
}

async fn force_remove(inner: &Inner, container: &str) {
    let opts = RemoveContainerOptions { force: true, v: true, link: false };
    match inner.docker.remove_container(container, Some(opts)).await {
        Ok(()) => {}
        Err(e) if connect::is_not_found(&e) => {}
        Err(e) => log::warn!("cannot remove container {}: {}", short_id(container), connect::message(&e)),
    }
}
