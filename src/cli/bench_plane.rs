//! `quarterdeck bench plane`: the control plane at fleet scale, measured end to end on a
//! real nats-server.
//!
//! The controller runs as a child process of this binary (`quarterdeck controller`, the
//! code path an operator runs): its memory is then its own (/proc/<pid>), and the restart
//! is a real kill -9 and a cold start on the same JetStream store. The simulated hosts are
//! real agents with the sim driver, in this process, each on its own NATS connection; one
//! cockpit backend follows the plane headless. The bench deploys M instances across K apps
//! at once (`--strategy all`), waits until the following cockpit sees every instance
//! running, reads back what JetStream stored, restarts the controller, and prints the
//! figures (one JSON line with --json). Progress goes to stderr.

mod follow;
mod hosts;
mod procs;
mod stored;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use super::{BusArgs, parse};
use crate::bus::{self, BusError, NatsBus, RequestError};
use crate::protocol::subjects::{CtlVerb, RouteVerb};
use crate::protocol::{
    Accepted, Constraints, DeployRequest, Envelope, ErrorCode, RouteRequest, Strategy, subjects,
};
use follow::{Follower, Progress};
use procs::{ControllerProc, ControllerSpec, LocalNats, WorkDir};

/// The controller's limit on one deploy.
const INSTANCES_PER_APP_MAX: u32 = 500;
/// How long one command waits for its answer before it is sent again (same command id,
/// so a repeat never starts a second operation).
const COMMAND_WAIT: Duration = Duration::from_secs(30);
/// How often the bench looks at the following cockpit's replica.
const POLL: Duration = Duration::from_millis(100);
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long reading the stored events back may take.
const READ_BACK: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Args)]
pub struct PlaneArgs {
    /// Simulated hosts, each a real agent with the sim driver on its own NATS connection.
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub hosts: u32,
    /// Instances to deploy, spread over --apps apps, all at once.
    #[arg(long, default_value_t = 20_000, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub instances: u32,
    /// Apps the instances are spread over: one deploy each, sent together (at most 500
    /// instances per app, the controller's limit).
    #[arg(long, default_value_t = 40, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub apps: u32,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How long each phase (the plane coming up, the deploy, the restart) may take.
    #[arg(long, default_value = "10m", value_parser = parse::duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Speed of the simulated container lifecycles (1 is realistic; 0.1 to 100).
    #[arg(long, default_value_t = 100.0, value_parser = super::parse_speed, value_name = "X")]
    pub sim_speed: f64,
}

impl PlaneArgs {
    /// The checks clap cannot make alone: how the flags fit together.
    pub fn check(&self) -> Result<(), String> {
        let (m, k, n) = (self.instances, self.apps, self.hosts);
        if k > m {
            return Err(format!("--apps {k} is more than --instances {m}: every app needs an instance"));
        }
        if m.div_ceil(k) > INSTANCES_PER_APP_MAX {
            return Err(format!(
                "--instances {m} over --apps {k} is more than {INSTANCES_PER_APP_MAX} per app, the controller's limit on one deploy: use --apps {} or more",
                m.div_ceil(INSTANCES_PER_APP_MAX)
            ));
        }
        if m.div_ceil(n) > hosts::INSTANCES_PER_HOST_MAX {
            return Err(format!(
                "--instances {m} on --hosts {n} is more than {} per host, the addresses a sim host has: use --hosts {} or more",
                hosts::INSTANCES_PER_HOST_MAX,
                m.div_ceil(hosts::INSTANCES_PER_HOST_MAX)
            ));
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be more than 0".into());
        }
        Ok(())
    }

    /// Each app's name and instance count: M spread as evenly as K apps allow.
    pub fn plan(&self) -> Vec<(String, u32)> {
        let (m, k) = (self.instances, self.apps);
        (0..k).map(|i| (format!("bench-{i:04}"), m / k + u32::from(i < m % k))).collect()
    }
}

/// Runs the bench; Ctrl-C, SIGTERM or SIGHUP stop it, and its processes with it.
pub async fn run(bus: BusArgs, args: PlaneArgs) -> Result<ExitCode, String> {
    args.check()?;
    tokio::select! {
        result = bench(&bus, &args) => result,
        _ = super::services::stop_signal() => Err("interrupted: the bench's processes are stopped".into()),
    }
}

fn progress(line: &str) {
    eprintln!("bench plane: {line}");
}

/// The bench's own clients: the deploys and the reads of JetStream.
async fn client(bus: &BusArgs, url: &str, name: &str) -> Result<NatsBus, String> {
    let conn = BusArgs { nats: Some(url.to_string()), ..bus.clone() }.connect(name).await?;
    tokio::time::timeout(Duration::from_secs(30), conn.flush())
        .await
        .map_err(|_| format!("no answer from the nats-server at {url} within 30 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(conn)
}

/// A bus given with --nats must be the bench's alone: no controller answering on it, and
/// no events from an earlier run, which would count in the figures.
async fn check_bus_is_empty(ctl: &NatsBus, url: &str) -> Result<(), String> {
    let env = Envelope::new("bench", crate::protocol::SnapshotRequest::default());
    let answer: Result<Value, RequestError> =
        bus::request(ctl, subjects::CTL_SNAPSHOT, &env, Duration::from_secs(2)).await;
    if !matches!(answer, Err(RequestError::Bus(BusError::NoResponders { .. }))) {
        return Err(format!(
            "a controller already answers on {url}: the bench runs its own; give it a nats-server of its own, or leave out --nats"
        ));
    }
    let events = stored::events_stored(ctl).await?;
    if events > 0 {
        return Err(format!(
            "{url} already holds {events} events in its event stream: the bench needs an empty JetStream; give it a fresh nats-server, or leave out --nats"
        ));
    }
    Ok(())
}

/// Waits until `done` says the plane is where it should be, printing progress; fails at
/// `deadline` or when the controller exits.
async fn wait_for(
    phase: &str,
    deadline: Instant,
    controller: &mut ControllerProc,
    mut look: impl FnMut() -> Progress,
    done: impl Fn(&Progress) -> Result<bool, String>,
    show: impl Fn(&Progress) -> String,
) -> Result<Progress, (String, Progress)> {
    let mut next_print = Instant::now();
    loop {
        let p = look();
        match done(&p) {
            Ok(true) => return Ok(p),
            Ok(false) => {}
            Err(e) => return Err((e, p)),
        }
        controller.sample_peak_mb();
        if let Some(why) = controller.exited() {
            return Err((why, p));
        }
        if Instant::now() >= deadline {
            return Err((format!("{phase}: not done within the timeout ({})", show(&p)), p));
        }
        if Instant::now() >= next_print {
            progress(&format!("{phase}: {}", show(&p)));
            next_print += PROGRESS_EVERY;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Awaits `work`, printing `show()` every few seconds meanwhile.
async fn with_progress<T>(work: impl std::future::Future<Output = T>, show: impl Fn() -> String) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tokio::time::sleep(PROGRESS_EVERY) => progress(&show()),
        }
    }
}

/// One deploy, sent again on a timeout or a retryable refusal (the same command id, so
/// the controller starts it once) until accepted or `deadline`.
async fn deploy(ctl: &NatsBus, app: &str, instances: u32, deadline: Instant) -> Result<String, String> {
    let req = DeployRequest {
        app: app.to_string(),
        version: "1.0.0".into(),
        instances,
        image: Some("bench/app:1".into()),
        port: Some(8080),
        constraints: Some(Constraints { azs: vec![], tags: vec![], cpu: 0.1, memory_mb: 64 }),
        domain: None,
        tags: None,
        run: None,
        strategy: Strategy::All,
    };
    let env = Envelope::with_id(format!("bench-deploy-{app}"), "bench", req);
    let accepted = command(ctl, CtlVerb::Deploy, &env, deadline).await?;
    accepted.operation_id.ok_or_else(|| format!("the deploy of {app} was accepted without an operation"))
}

/// Sends a command until it is answered: a retryable refusal (`not_ready`, `unavailable`)
/// or no answer yet sends it again after a pause.
async fn command<T: serde::Serialize>(
    ctl: &NatsBus,
    verb: CtlVerb,
    env: &Envelope<T>,
    deadline: Instant,
) -> Result<Accepted, String> {
    let subject = verb.as_str();
    loop {
        let wait = COMMAND_WAIT.min(deadline.saturating_duration_since(Instant::now()));
        let error = match bus::command::<_, Accepted>(ctl, verb, env, wait).await {
            Ok(accepted) => return Ok(accepted),
            Err(RequestError::Refused(w))
                if !matches!(w.code, ErrorCode::NotReady | ErrorCode::Unavailable) =>
            {
                return Err(format!("{subject} refused: {} ({})", w.reason, w.code.as_str()));
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() + Duration::from_millis(100) >= deadline {
            return Err(format!("{subject}: no answer in time; last: {error}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The p-th percentile of unsorted values (nearest rank).
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    super::bench::percentile(&sorted, p)
}

fn round(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

/// The figures, as printed. `None` where the run did not get that far (printed as null).
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    hosts: u32,
    instances: u32,
    apps: u32,
    converged: bool,
    /// Instances of the bench's apps running when the bench stopped waiting, and placed
    /// (in any state).
    running: usize,
    placed: usize,
    /// From the first deploy command to the last one accepted; null if one never was.
    accepted_s: Option<f64>,
    converge_s: Option<f64>,
    instances_per_s: f64,
    /// Events committed from the first deploy command to convergence (or the timeout).
    events: u64,
    events_per_s: f64,
    /// Events of the deploy read back from the stream (all of them unless the read timed out).
    events_read: usize,
    event_bytes_p50: f64,
    event_bytes_max: f64,
    /// Bytes of the event stream (QD_EVENTS) and of the state bucket, and both per instance
    /// deployed.
    stream_bytes: u64,
    kv_bytes: u64,
    stream_bytes_per_instance: f64,
    controller_rss_mb: f64,
    /// CPU seconds used up to the restart by the controller, and by the bench's own
    /// process (the sim hosts and the following cockpit): on a shared machine, who was busy.
    controller_cpu_s: f64,
    bench_cpu_s: f64,
    replica_lag_ms_p50: f64,
    replica_lag_ms_p99: f64,
    restart_ready_s: Option<f64>,
    /// Peak memory of the restarted controller up to its first answer.
    restart_rss_mb: Option<f64>,
    /// The revision the cockpit had followed to before the kill, and the one the restarted
    /// controller accepted its first command at: the second must be above the first.
    revisions_around_restart: Option<(u64, u64)>,
    /// Messages the following cockpit's NATS client dropped (slow consumer), in the whole run.
    dropped: u64,
    /// Revision gaps the cockpit found, and the fresh snapshots it took, up to the restart.
    rev_gaps: u64,
    resyncs: u64,
    /// Times the cockpit saw the controller's revision go back (a new epoch) up to the
    /// restart, where it never should.
    epochs: u64,
    /// The same from the restart on: the restarted controller began below what the one
    /// before it had published.
    restart_epochs: u64,
    seconds: f64,
}

async fn bench(bus: &BusArgs, args: &PlaneArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let dir = WorkDir::create()?;
    let (_nats, url) = match &bus.nats {
        Some(url) => (None, url.clone()),
        None => {
            let nats = LocalNats::start(&procs::nats_server_bin()?, dir.path()).await?;
            let url = nats.url().to_string();
            progress(&format!("nats-server started on {url}"));
            (Some(nats), url)
        }
    };
    let ctl = client(bus, &url, "bench/ctl").await?;
    if bus.nats.is_some() {
        check_bus_is_empty(&ctl, &url).await?;
    }
    let spec =
        ControllerSpec::new(bus, &url, controller_flags(args.timeout), dir.path().join("controller.log"))?;
    let mut plane = Plane {
        args,
        controller: ControllerProc::spawn(&spec)?,
        spec,
        follower: Follower::start(client(bus, &url, "bench/cockpit").await?),
        ctl,
        apps: args.plan().into_iter().map(|(app, _)| app).collect(),
    };
    let result = async {
        progress(&format!("starting {} sim hosts", args.hosts));
        let _fleet = hosts::start(bus, &url, args.hosts, args.sim_speed).await?;
        plane.hosts_up().await?;
        let mut report =
            Report { hosts: args.hosts, instances: args.instances, apps: args.apps, ..Report::default() };
        let deployed = plane.deploy(&mut report).await?;
        if deployed.error.is_none() {
            plane.operations_end(&deployed.operations).await;
        }
        plane.stored(&mut report, deployed.seq_before).await?;
        report.controller_cpu_s = round(plane.controller.cpu_seconds(), 1);
        report.bench_cpu_s = round(procs::cpu_seconds("self"), 1);
        // Before the restart, whose new epoch (if its revision went back) is counted apart.
        (report.rev_gaps, report.resyncs, report.epochs) =
            plane.follower.with(|f| (f.replica.gaps, f.snapshots.saturating_sub(1), f.replica.epochs));
        if deployed.error.is_none() {
            plane.restart(&mut report).await?;
        }
        report.dropped = plane.follower.slow_consumer_drops();
        report.restart_epochs = plane.follower.with(|f| f.replica.epochs).saturating_sub(report.epochs);
        report.seconds = round(started.elapsed().as_secs_f64(), 1);
        print(&report, args.json)?;
        match deployed.error {
            None => Ok(ExitCode::SUCCESS),
            Some(e) => Err(e),
        }
    }
    .await;
    // Closed before the nats-server stops, so the cockpit's backend does not try to
    // reconnect to it.
    plane.follower.close().await;
    if result.is_err() {
        plane.print_log_tail();
    }
    result
}

/// The plane under measurement, and the bench's hands on it.
struct Plane<'a> {
    args: &'a PlaneArgs,
    ctl: NatsBus,
    follower: Follower,
    controller: ControllerProc,
    spec: ControllerSpec,
    /// The bench's apps.
    apps: BTreeSet<String>,
}

/// How the deploy went.
struct Deployed {
    operations: BTreeSet<String>,
    /// The event stream's last sequence before the first deploy command.
    seq_before: u64,
    /// Why the deploy did not converge, if it did not.
    error: Option<String>,
}

impl Plane<'_> {
    /// The end of the controller's log, which most often says why a run failed: line by
    /// line on stderr, as progress is.
    fn print_log_tail(&self) {
        progress(&format!("the controller's log ({}) ends:", self.spec.log.display()));
        for line in procs::log_tail(&self.spec.log, 30).lines() {
            eprintln!("  {line}");
        }
    }

    /// Waits until the controller knows every host up and the cockpit follows it.
    async fn hosts_up(&mut self) -> Result<(), String> {
        let n = self.args.hosts as usize;
        wait_for(
            "hosts",
            Instant::now() + self.args.timeout,
            &mut self.controller,
            || self.follower.progress(&self.apps, &BTreeSet::new()),
            |p| Ok(p.live && p.hosts_up == n),
            |p| format!("{}/{n} hosts up, cockpit {}", p.hosts_up, if p.live { "live" } else { "loading" }),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
    }

    /// Every app's deploy at once, as the clock starts, then the wait until the cockpit
    /// sees every instance running. A deploy never accepted, one that failed or the
    /// timeout ends the wait, but not the report: what the plane did until then is
    /// measured all the same.
    async fn deploy(&mut self, report: &mut Report) -> Result<Deployed, String> {
        let (args, ctl, follower, apps) = (self.args, &self.ctl, &self.follower, &self.apps);
        let seq_before = stored::last_event_seq(ctl).await?;
        follower.measure();
        let t0 = Instant::now();
        let deadline = t0 + args.timeout;
        let m = args.instances as usize;
        progress(&format!("deploying {m} instances of {} apps on {} hosts", args.apps, args.hosts));
        let plan = args.plan();
        let sending =
            futures_util::future::join_all(plan.iter().map(|(app, m)| deploy(ctl, app, *m, deadline)));
        let sent = with_progress(sending, || {
            let p = follower.progress(apps, &BTreeSet::new());
            let secs = t0.elapsed().as_secs_f64();
            format!("sending: {}/{m} instances placed, {} running, {secs:.0} s", p.instances, p.running)
        })
        .await;
        let mut operations = BTreeSet::new();
        let mut refused = None;
        for result in sent {
            match result {
                Ok(op) => {
                    operations.insert(op);
                }
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        report.accepted_s = refused.is_none().then(|| round(t0.elapsed().as_secs_f64(), 3));
        let converged = match refused {
            Some(e) => Err((e, follower.progress(apps, &operations))),
            None => {
                let done = |p: &Progress| match p.operations_failed.first() {
                    Some(failed) => {
                        Err(format!("{} deploys failed, e.g. {failed}", p.operations_failed.len()))
                    }
                    None => Ok(p.running == m),
                };
                let show = |p: &Progress| {
                    let secs = t0.elapsed().as_secs_f64();
                    format!("{}/{m} running, {secs:.0} s, revision {}", p.running, p.revision)
                };
                let look = || follower.progress(apps, &operations);
                wait_for("deploy", deadline, &mut self.controller, look, done, show).await
            }
        };
        let seq_done = stored::last_event_seq(ctl).await?;
        let (reached, error) = match converged {
            Ok(p) => (p, None),
            Err((e, p)) => (p, Some(e)),
        };
        // Converged when the following cockpit saw every instance running: committed and
        // published, as anyone watching the plane would see it (to within the poll's
        // period). The controller stamps an event when it makes it, before its commit, so
        // its stamps would tell an earlier moment than anyone could have seen.
        let elapsed_s = t0.elapsed().as_secs_f64().max(1e-3);
        report.converged = error.is_none();
        report.running = reached.running;
        report.placed = reached.instances;
        report.converge_s = error.is_none().then(|| round(elapsed_s, 3));
        report.instances_per_s = round(reached.running as f64 / elapsed_s, 1);
        report.events = seq_done.saturating_sub(seq_before);
        report.events_per_s = round(report.events as f64 / elapsed_s, 1);
        Ok(Deployed { operations, seq_before, error })
    }

    /// Operations end once their instances run: waited for, so that the stored events and
    /// the state are the whole deploy's.
    async fn operations_end(&mut self, operations: &BTreeSet<String>) {
        let ended = wait_for(
            "operations",
            Instant::now() + self.args.timeout,
            &mut self.controller,
            || self.follower.progress(&self.apps, operations),
            |p| Ok(p.operations_running == 0),
            |p| format!("{} of {} deploys still running", p.operations_running, operations.len()),
        )
        .await;
        if let Err((e, _)) = ended {
            progress(&format!("{e}; measuring what there is"));
        }
    }

    /// What JetStream stored for the deploy, the controller's peak memory and the
    /// cockpit's lag.
    async fn stored(&mut self, report: &mut Report, seq_before: u64) -> Result<(), String> {
        let seq_end = stored::last_event_seq(&self.ctl).await?;
        progress(&format!("reading back the {} events stored", seq_end.saturating_sub(seq_before)));
        let sizes: Vec<f64> = stored::event_sizes(&self.ctl, seq_before + 1, seq_end, READ_BACK)
            .await?
            .into_iter()
            .map(|s| s as f64)
            .collect();
        report.events_read = sizes.len();
        report.event_bytes_p50 = percentile(&sizes, 0.5);
        report.event_bytes_max = sizes.iter().copied().fold(0.0, f64::max);
        let (event_bytes, kv_bytes) = stored::bytes(&self.ctl).await?;
        report.stream_bytes = event_bytes;
        report.kv_bytes = kv_bytes;
        // Per instance deployed: all M once converged, those placed so far if not.
        report.stream_bytes_per_instance =
            round((event_bytes + kv_bytes) as f64 / report.placed.max(1) as f64, 1);
        report.controller_rss_mb = round(self.controller.sample_peak_mb(), 1);
        let lags: Vec<f64> = self.follower.with(|f| f.lags_ms.iter().map(|&l| f64::from(l)).collect());
        report.replica_lag_ms_p50 = percentile(&lags, 0.5);
        report.replica_lag_ms_p99 = percentile(&lags, 0.99);
        Ok(())
    }

    /// Kills the controller (SIGKILL) and starts it again on the same store; the time until
    /// it accepts a command at the fleet's size (a route's weight, set to what it is), and
    /// the revision it accepted it at against the one the cockpit had before the kill.
    async fn restart(&mut self, report: &mut Report) -> Result<(), String> {
        let (route, before) = self.follower.with(|f| {
            let route = f.replica.fleet.routes.values().find(|r| self.apps.contains(&r.app)).cloned();
            (route, f.replica.fleet.revision)
        });
        let route = route.ok_or("no route of the bench's apps to send a command about")?;
        progress("restarting the controller (kill -9)");
        let t = Instant::now();
        self.controller.restart(&self.spec)?;
        let req = RouteRequest {
            app: route.app.clone(),
            backend: route.backend.clone(),
            weight: Some(route.weight),
        };
        let env = Envelope::new("bench", req);
        let accepted =
            command(&self.ctl, CtlVerb::Route(RouteVerb::Weight), &env, t + self.args.timeout).await?;
        report.restart_ready_s = Some(round(t.elapsed().as_secs_f64(), 3));
        report.restart_rss_mb = Some(round(self.controller.sample_peak_mb(), 1));
        report.revisions_around_restart = Some((before, accepted.rev));
        Ok(())
    }
}

/// The controller's flags besides the bus: hosts never go stale or lost while the machine
/// is busy with the bench, and a step may take as long as the bench waits, so slowness
/// shows as a slow convergence rather than as failures.
fn controller_flags(timeout: Duration) -> Vec<String> {
    let step = format!("{}s", timeout.as_secs().max(1));
    [
        "--id",
        "bench",
        "--log-level",
        "warn",
        "--stale-after",
        "30",
        "--lost-after",
        "1000",
        "--step-timeout",
        &step,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn print(report: &Report, json: bool) -> Result<(), String> {
    let value = serde_json::to_value(report).map_err(|e| e.to_string())?;
    if json {
        println!("{value}");
    } else if let Some(map) = value.as_object() {
        for (k, v) in map {
            println!("{k:<28} {v}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(hosts: u32, instances: u32, apps: u32) -> PlaneArgs {
        PlaneArgs { hosts, instances, apps, json: true, timeout: Duration::from_secs(60), sim_speed: 100.0 }
    }

    #[test]
    fn the_instances_are_spread_evenly_over_the_apps() {
        let plan = args(1000, 20_000, 40).plan();
        assert_eq!(plan.len(), 40);
        assert!(plan.iter().all(|(_, m)| *m == 500));
        let plan = args(10, 10, 4).plan();
        assert_eq!(plan.iter().map(|(_, m)| *m).collect::<Vec<_>>(), vec![3, 3, 2, 2]);
        let names: BTreeSet<_> = plan.iter().map(|(a, _)| a.clone()).collect();
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|n| crate::protocol::validate::name("app", n).is_ok()));
    }

    #[test]
    fn flags_that_do_not_fit_together_are_refused_with_the_fix() {
        assert_eq!(args(1000, 20_000, 40).check(), Ok(()));
        assert_eq!(args(5000, 100_000, 200).check(), Ok(()));
        let err = |a: PlaneArgs| a.check().unwrap_err();
        assert!(err(args(10, 5, 6)).contains("--apps 6 is more than --instances 5"));
        assert!(err(args(1000, 20_000, 39)).contains("use --apps 40 or more"));
        assert!(err(args(99, 20_000, 40)).contains("use --hosts 100 or more"));
        let mut zero = args(10, 10, 1);
        zero.timeout = Duration::ZERO;
        assert!(err(zero).contains("--timeout"));
    }
}
