//! `quarterdeck ctl`: headless commands. Tables for people, `--json` for scripts. Exit
//! status 0 on success, 1 on a refused or failed command, with the reason on stderr.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};

use super::BusArgs;
use super::parse;
use crate::backend::upload;
use crate::bus::{self, Bus, EventFeed, NatsBus, RequestError};
use crate::plane::controller::store::{JetStreamConfig, JetStreamStore, Store};
use crate::protocol::clock::{age, datetime, now_ms};
use crate::protocol::envelope::new_id;
use crate::protocol::subjects::{CtlVerb, HostVerb, RouteVerb};
use crate::protocol::{
    Accepted, AppRemoveRequest, ArtifactRef, AuditRecord, Constraints, DeployRequest, Envelope, Event,
    EventKind, Fleet, HealthCheck, HostRequest, OperationEnd, OperationState, Operator, RestartBody,
    RestartRequest, RouteRequest, RunPatch, ScaleRequest, Strategy, Verdict, WhoAmI, decode, subjects,
};
use crate::repository::ObjectStoreRepository;

/// How often `--wait` asks the snapshot whether its operation ended, in case its follow of
/// the events missed the end.
const ENDED_CHECK: Duration = Duration::from_secs(5);

/// Where ctl's own flags go in each subcommand's help: after the subcommand's flags (which
/// clap numbers from 0 in each command), not in among them.
const CTL_FLAGS_ORDER: usize = 100;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Print JSON (one document, or one object per line for `events` and `logs`) instead of a
    /// table.
    #[arg(long, global = true, display_order = CTL_FLAGS_ORDER)]
    pub json: bool,

    /// How long to wait for the controller to accept or refuse a command.
    #[arg(
        long,
        global = true,
        default_value = "10s",
        value_parser = parse::duration,
        value_name = "DURATION",
        display_order = CTL_FLAGS_ORDER
    )]
    pub timeout: Duration,

    #[command(subcommand)]
    pub command: CtlCommand,
}

// Parsed once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// The whole state at one revision: hosts, apps, instances, routes, operations.
    Snapshot,
    /// The Docker hosts: AZ, address, state, CPU and memory.
    Hosts,
    /// Every app instance: host, endpoint, state, container.
    Instances,
    /// The route table: app, domain, backend, state, weight, and the traffic the routers
    /// report over their last 10 s: requests/s, the share of 5xx and p99 latency per route
    /// (with --json per route `traffic` and the app's `app_traffic`, which counts the
    /// requests nginx answered itself; absent when no router reports traffic). Waits up to
    /// --traffic-wait for the routers' statuses.
    Routes(super::ctl_routes::RoutesArgs),
    /// Deploy APP@VERSION with N instances; prints the operation id.
    Deploy(DeployArgs),
    /// Restart one instance, every instance of an app (one at a time), or every instance on
    /// a host.
    Restart(RestartArgs),
    /// Change the route table.
    Route {
        #[command(subcommand)]
        verb: RouteCommand,
    },
    /// The event history from the JetStream stream, then (with --follow) live events.
    Events(EventsArgs),
    /// The audit trail: every operator command the controller recorded, with who sent it
    /// (user@host, SSH client, NATS user), what it asked and how it ended: for a command
    /// that started an operation, how the operation ended. Read from the JetStream stream,
    /// so it works while no controller runs.
    Audit(AuditArgs),
    /// The logs of one instance, or of every instance of an app merged in time order,
    /// each line prefixed by its instance (`#3`); with --json one object per line: `{ts,
    /// instance, source, text}`. Exits 0 once what is there is printed (with --follow, at
    /// Ctrl-C), 1 for an unknown app or instance or a log that could not be read.
    Logs(super::ctl_logs::LogsArgs),
    /// Run a command in an instance's container (`-- CMD...`), or a shell. On a terminal,
    /// interactive; otherwise its output (stdout and stderr apart) and its exit code, for
    /// scripts. Needs the exec grant (`quarterdeck auth grant USER exec`); recorded and
    /// audited.
    Exec(super::exec::ExecArgs),
    /// Play back an exec session's recording (its id is in `ctl audit`).
    ExecReplay(super::exec::ExecReplayArgs),
    /// Who the controller sees you as: the user your commands carry in their subject
    /// (with roles on, the NATS user the server authenticated). Fails, as a permission
    /// error, for a user that may not send commands (a viewer).
    Whoami,
    /// Forward a local port to an instance's port through its agent: prints `forwarding
    /// 127.0.0.1:PORT -> INSTANCE:REMOTE`, then serves each connection until Ctrl-C or
    /// SIGTERM (what happens to each on stderr). Needs the `port-forward` grant.
    PortForward(super::port_forward::PortForwardArgs),
    /// An app's env variables: list, set or unset them. A change rolls the app out again
    /// (its running version and count), as a deploy, with --wait.
    Env {
        #[command(subcommand)]
        verb: env::EnvCommand,
    },
    /// An app's secrets: set one (the value from stdin or @FILE, never the command line)
    /// or unset one; either rolls the app out again, as a deploy, with --wait.
    Secret {
        #[command(subcommand)]
        verb: env::SecretCommand,
    },
    /// Cordon a host (no new placements), drain it (cordon, then move every instance to
    /// other hosts one at a time, each new one healthy and routed before the old one is
    /// unrouted and stopped; refused up front when the rest of the fleet cannot hold them)
    /// or uncordon it. A drain prints its operation id; cordon and uncordon take effect at
    /// once. A draining host refuses cordon and uncordon until its drain ends (cordoned).
    Host {
        #[command(subcommand)]
        verb: HostCommand,
    },
    /// An app's releases (the newest 50): number (`*` the current one), when, who, cause
    /// (deploy, scale, env, rollback to N), version, image and digest, instances. Viewers
    /// may read them too.
    Releases(super::ctl_releases::ReleasesArgs),
    /// What changed between two releases of an app, field by field (`run.cmd`,
    /// `run.artifact.sha256`, `instances`, ...): field, from, to.
    Diff(super::ctl_releases::DiffArgs),
    /// Roll an app back to an earlier release (any kept one; by default the one before the
    /// current) as a rolling deploy of that release's whole spec; prints the operation id.
    /// Refused for an unknown release, the current one, or an artifact no longer in the
    /// repository.
    Rollback(super::ctl_releases::RollbackArgs),
    /// Run N instances of APP (0 keeps the app with nothing running): a scale-up places
    /// only the new instances (same version, constraints and AZ spread); a scale-down takes
    /// instances from the fullest AZ, not-running ones first, each taken out of the load
    /// balancer before it stops. Prints the operation id.
    Scale(ScaleArgs),
    /// Apps: `app remove APP` removes an app, its routes and instances first.
    App {
        #[command(subcommand)]
        verb: AppCommand,
    },
    /// The controller's alerts, newest first: STATE (firing, acknowledged, resolved; marked
    /// silenced), RULE, SUBJECT, SINCE, SUMMARY, ACKED (who) and ID, then the silences.
    /// --json: `{alerts, silences}` as the controller keeps them.
    Alerts(super::ctl_alerts::AlertsArgs),
    /// Act on one alert: `alert ack ID`.
    Alert {
        #[command(subcommand)]
        verb: super::ctl_alerts::AlertCommand,
    },
    /// Silence a subject's alerts for a while (`silence app/shop 30m --reason deploying`):
    /// they still fire and show, and no webhook is sent; `--lift SUBJECT` ends it early.
    /// Audited.
    Silence(super::ctl_alerts::SilenceArgs),
    /// Add a note to the incident's timeline: free text (one line, 1 to 2000 characters),
    /// kept as a NOTE event with who wrote it; the Events panel and `ctl timeline` show it.
    Note(super::ctl_timeline::NoteArgs),
    /// The handover of a window of the history: alerts fired, acknowledged and resolved,
    /// operator actions with who and how they ended, notes, deploys, crash reasons and
    /// exec recordings, in time order; Markdown (to paste into a ticket) or JSON.
    Timeline(super::ctl_timeline::TimelineArgs),
}

#[derive(Debug, Args)]
pub struct HostArgs {
    /// The host, by id (`ctl hosts`).
    pub host: String,
    /// For drain: follow the operation until it ends; exit 0 on success or 1 with the
    /// reason. Cordon and uncordon have nothing to wait for.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to follow before giving up.
    #[arg(long, default_value = "30m", value_parser = parse::duration, value_name = "DURATION")]
    pub wait_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// No new instance is placed on the host; what runs there stays.
    Cordon(HostArgs),
    /// Cordon, then move every instance off the host as a rolling replacement.
    Drain(HostArgs),
    /// The host takes new instances again.
    Uncordon(HostArgs),
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The app to scale.
    pub app: String,
    /// How many instances should run: 0 to 500.
    #[arg(value_parser = clap::value_parser!(u32).range(0..=500))]
    pub instances: u32,
    #[command(flatten)]
    pub op: OpArgs,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Remove APP: its instances (each out of the load balancer first), its routes, then
    /// the app. Asks for the app's name to be typed, unless --yes; without a terminal,
    /// --yes is required. Refused while an operation runs on the app.
    Remove(AppRemoveArgs),
}

/// `--wait` and for how long: the flags of each ctl command that starts an operation.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Follow the operation, printing each step, and exit 0 on success or 1 with the reason.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to follow before giving up.
    #[arg(long, default_value = "10m", value_parser = parse::duration, value_name = "DURATION")]
    pub wait_timeout: Duration,
}

impl WaitArgs {
    /// How long to follow the operation; `None` without --wait.
    pub fn until(&self) -> Option<Duration> {
        self.wait.then_some(self.wait_timeout)
    }
}

/// `--wait` and the command id that makes a repeat start nothing.
#[derive(Debug, Args)]
pub struct OpArgs {
    #[command(flatten)]
    pub wait: WaitArgs,
    /// The command id; sending the same id again gives the first answer and starts nothing.
    /// [default: a new random id]
    #[arg(long, value_name = "ID")]
    pub command_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct AppRemoveArgs {
    /// The app to remove.
    pub app: String,
    /// Remove without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How far back to start, e.g. 1h, 24h.
    #[arg(long, default_value = "24h", value_parser = parse::duration, value_name = "DURATION")]
    pub since: Duration,
    /// At most this many records (the newest).
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The app's name: 1-63 of a-z, 0-9 and '-'.
    #[arg(long)]
    pub app: String,
    /// The version to deploy, e.g. 1.4.2.
    #[arg(long)]
    pub version: String,
    /// How many instances should run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub instances: u32,
    /// Container image; required for a new app. `name:tag` runs an image loaded on the
    /// hosts. `registry[:port]/name:tag` comes from that registry: the controller resolves
    /// the tag to a digest once, every instance of the deploy runs that digest, and a host
    /// that lacks it pulls it (PULL_IMAGE). `name@sha256:<64 hex>` is pinned as given.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The port the app listens on in its container; required for a new app.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Allowed availability zone (repeat for more); any when none is given.
    #[arg(long = "az", value_name = "AZ")]
    pub azs: Vec<String>,
    /// A tag every chosen host must carry (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// CPU cores reserved per instance, e.g. 0.5.
    #[arg(long, value_parser = parse::cpu)]
    pub cpu: Option<f32>,
    /// Memory reserved and limited per instance, e.g. 512M or 2G.
    #[arg(long, value_parser = parse::memory_mb, value_name = "SIZE")]
    pub memory: Option<u64>,
    /// The app's domain in the load balancer [default: <app>.local].
    #[arg(long)]
    pub domain: Option<String>,
    /// A label on the app, e.g. prod (repeat for more).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// The artifact to run (a .tar.gz, unpacked and mounted read-only at --mount). It is
    /// uploaded to the repository with its sha256 first; the same content again is a no-op.
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<std::path::PathBuf>,
    /// The container's command, overriding the image's: one line, quoted as for a shell
    /// (`--cmd "sh -c 'echo a b'"` runs sh with two arguments); nothing is expanded.
    #[arg(long, value_name = "COMMAND", value_parser = parse::command, conflicts_with = "args")]
    pub cmd: Option<parse::Argv>,
    /// One word of the container's command, as is (repeat in order: `--arg sh --arg -c
    /// --arg 'echo a b'`); instead of --cmd, for words that are awkward to quote.
    #[arg(long = "arg", value_name = "WORD", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Where the artifact is mounted in the container [default: /app].
    #[arg(long, value_name = "PATH")]
    pub mount: Option<String>,
    /// How a new instance is judged healthy: `tcp`, or `http:/path` (2xx or 3xx).
    #[arg(long, value_parser = HealthCheck::parse, value_name = "CHECK")]
    pub health: Option<HealthCheck>,
    /// An env variable of every container, K=V (repeat for more). Given, the flags are the
    /// app's whole env (`ctl env set` changes one); omitted, the app keeps its env.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// How a new version replaces the old: `rolling` (one at a time) or `all` (all at once).
    #[arg(long, value_enum, default_value = "rolling")]
    pub strategy: StrategyArg,
    #[command(flatten)]
    pub op: OpArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyArg {
    Rolling,
    All,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["instance", "app", "host"])))]
pub struct RestartArgs {
    /// One instance, by id.
    #[arg(long)]
    pub instance: Option<String>,
    /// Every instance of this app, one at a time.
    #[arg(long)]
    pub app: Option<String>,
    /// Every instance on this host, one at a time.
    #[arg(long)]
    pub host: Option<String>,
    /// For --app and --host: how many instances restart together (rolling).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub batch: Option<u32>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The app the route belongs to.
    #[arg(long)]
    pub app: String,
    /// The backend, IPv4:PORT.
    #[arg(long)]
    pub backend: String,
    /// For add: the backend's weight (1 to 1000).
    #[arg(long)]
    pub weight: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Add a backend to the app's upstream.
    Add(RouteArgs),
    /// Remove a backend.
    Remove(RouteArgs),
    /// Put a disabled backend back in service.
    Enable(RouteArgs),
    /// Take a backend out of service, keeping its route.
    Disable(RouteArgs),
    /// Change a backend's weight (--weight, 1 to 1000).
    Weight(RouteArgs),
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// How far back to start, e.g. 15m, 1h, 24h.
    #[arg(long, default_value = "1h", value_parser = parse::duration, value_name = "DURATION")]
    pub since: Duration,
    /// At most this many events from history (the newest).
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
    /// After the history, keep printing events as they happen.
    #[arg(long)]
    pub follow: bool,
}

pub async fn run(bus_args: BusArgs, args: CtlArgs) -> Result<ExitCode, String> {
    if let CtlCommand::Exec(a) = &args.command {
        super::exec::refuse_read_only(a)?;
    }
    let bus = bus_args.connect_now("ctl").await?;
    // The plane a timeline names: the context, else the URL.
    let plane = bus_args.context.clone().or_else(|| bus_args.nats.clone()).unwrap_or_default();
    // Every command carries who sent it, for the controller's audit trail.
    let (user, host) = super::login();
    let ctl = Ctl {
        bus,
        json: args.json,
        timeout: args.timeout,
        source: format!("ctl/{user}@{host}"),
        operator: bus_args.operator(),
    };
    match args.command {
        CtlCommand::Snapshot => ctl.snapshot().await,
        CtlCommand::Hosts => ctl.hosts().await,
        CtlCommand::Instances => ctl.instances().await,
        CtlCommand::Routes(a) => ctl.routes(a).await,
        CtlCommand::Deploy(a) => ctl.deploy(a).await,
        CtlCommand::Restart(a) => ctl.restart(a).await,
        CtlCommand::Route { verb } => ctl.route(verb).await,
        CtlCommand::Events(a) => ctl.events(a).await,
        CtlCommand::Audit(a) => ctl.audit(a).await,
        CtlCommand::Whoami => ctl.whoami().await,
        CtlCommand::Logs(a) => ctl.logs(a).await,
        CtlCommand::PortForward(a) => {
            let fleet = ctl.fetch().await?;
            super::port_forward::run(Arc::new(ctl.bus.clone()), ctl.source.clone(), fleet, a, ctl.json).await
        }
        CtlCommand::Exec(a) => super::exec::exec(&ctl.bus, &ctl.source, a, ctl.timeout).await,
        CtlCommand::ExecReplay(a) => super::exec::replay(&ctl.bus, a).await,
        CtlCommand::Env { verb } => ctl.env(verb).await,
        CtlCommand::Secret { verb } => ctl.secret(verb).await,
        CtlCommand::Host { verb } => ctl.host(verb).await,
        CtlCommand::Releases(a) => ctl.releases(a).await,
        CtlCommand::Diff(a) => ctl.diff(a).await,
        CtlCommand::Rollback(a) => ctl.rollback(a).await,
        CtlCommand::Scale(a) => ctl.scale(a).await,
        CtlCommand::App { verb: AppCommand::Remove(a) } => ctl.app_remove(a).await,
        CtlCommand::Alerts(a) => ctl.alerts(a).await,
        CtlCommand::Alert { verb: super::ctl_alerts::AlertCommand::Ack(a) } => {
            let req = crate::protocol::AlertAckRequest { id: a.id };
            ctl.command(CtlVerb::AlertAck, req, None, None).await
        }
        CtlCommand::Silence(a) => ctl.command(CtlVerb::AlertSilence, a.request()?, None, None).await,
        CtlCommand::Note(a) => {
            let req = crate::protocol::NoteRequest { text: a.text() };
            ctl.command(CtlVerb::Note, req, a.command_id, None).await
        }
        CtlCommand::Timeline(a) => ctl.timeline(&plane, a).await,
    }
}

struct Ctl {
    bus: NatsBus,
    json: bool,
    timeout: Duration,
    /// `ctl/user@host`.
    source: String,
    operator: Operator,
}

fn refusal(e: RequestError) -> String {
    match e {
        RequestError::Refused(w) => format!("refused: {} ({})", w.reason, w.code.as_str()),
        RequestError::Bus(crate::bus::BusError::NoResponders { .. }) => {
            "no controller is answering: is `quarterdeck controller` running on this NATS server?".into()
        }
        other => other.to_string(),
    }
}

/// Writes one line to stdout, control characters shown as escapes (they may come from the
/// bus). A closed stdout (`ctl events | head`) ends the command quietly instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        if writeln!(std::io::stdout().lock(), "{}", crate::cli::printable::printable(&line)).is_err() {
            std::process::exit(0);
        }
    }};
}

#[path = "ctl_env.rs"]
mod env;

/// Prints rows as aligned columns.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// The snapshot as scripts read it: hosts also carry `cpu_pct` and `mem_pct` at top level.
pub fn snapshot_json(fleet: &Fleet) -> Value {
    let mut v = serde_json::to_value(fleet).unwrap_or(Value::Null);
    if let Some(hosts) = v.get_mut("hosts").and_then(Value::as_array_mut) {
        for (h, host) in hosts.iter_mut().zip(fleet.hosts.values()) {
            if let Some(obj) = h.as_object_mut() {
                obj.insert("cpu_pct".into(), json!(host.metrics.cpu_pct));
                obj.insert("mem_pct".into(), json!(host.metrics.mem_pct()));
            }
        }
    }
    v
}

/// A removal goes ahead only when the line typed is the app's name.
fn confirmed_by(app: &str, typed: &str) -> Result<(), String> {
    match typed.trim_end_matches(['\n', '\r']) {
        t if t == app => Ok(()),
        t => {
            Err(format!("not removed: {} is not the app's name {app}", crate::protocol::validate::quoted(t)))
        }
    }
}

fn event_json(e: &Event) -> Value {
    json!({
        "rev": e.rev,
        "ts": e.ts,
        "kind": e.kind.as_str(),
        "app": e.app,
        "host": e.host,
        "instance": e.instance,
        "operation_id": e.operation_id,
        "message": e.message,
    })
}

fn event_line(e: &Event) -> String {
    format!(
        "{}  {:>6}  {:<36} {:<14} {}",
        datetime(e.ts),
        e.rev,
        e.kind.as_str(),
        e.app.as_deref().unwrap_or("-"),
        e.message
    )
}

impl Ctl {
    async fn timeline(
        &self,
        plane: &str,
        mut a: super::ctl_timeline::TimelineArgs,
    ) -> Result<ExitCode, String> {
        use super::ctl_timeline as tl;
        // ctl's own `--json` asks for JSON here too, rather than being ignored.
        if self.json {
            a.format = tl::Format::Json;
        }
        let events = crate::client::timeline::history(&self.bus, &self.source, a.since, self.timeout)
            .await
            .map_err(refusal)?;
        let (text, warning) = tl::render(plane, &a, &events)?;
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        match &a.output {
            Some(path) => {
                tokio::fs::write(path, text)
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                eprintln!("timeline written to {}", path.display());
            }
            // Not through `out!`: the text was escaped for Markdown and JSON already, and
            // control characters never reach a note or a message unescaped by JSON.
            None => {
                if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn fetch(&self) -> Result<Fleet, String> {
        crate::client::snapshot::fetch_fleet(&self.bus, &self.source, self.timeout).await.map_err(refusal)
    }

    async fn logs(&self, args: super::ctl_logs::LogsArgs) -> Result<ExitCode, String> {
        let fleet = self.fetch().await?;
        let bus: std::sync::Arc<dyn Bus> = std::sync::Arc::new(self.bus.clone());
        super::ctl_logs::run(bus, self.source.clone(), self.json, &fleet, args).await
    }

    async fn releases(&self, a: super::ctl_releases::ReleasesArgs) -> Result<ExitCode, String> {
        use super::ctl_releases as rel;
        let list = rel::fetch(&self.bus, &self.source, &a.app, self.timeout).await.map_err(refusal)?;
        if self.json {
            out!("{}", rel::releases_json(&list));
        } else {
            let (header, rows) = rel::release_rows(&list);
            print_table(&header, &rows);
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn diff(&self, a: super::ctl_releases::DiffArgs) -> Result<ExitCode, String> {
        use super::ctl_releases as rel;
        let list = rel::fetch(&self.bus, &self.source, &a.app, self.timeout).await.map_err(refusal)?;
        let changes = rel::diff(&list, a.from, a.to)?;
        if self.json {
            out!("{}", rel::diff_json(&a.app, a.from, a.to, &changes));
        } else if changes.is_empty() {
            out!("releases {} and {} of {} are the same", a.from, a.to, a.app);
        } else {
            print_table(&["FIELD", "FROM", "TO"], &rel::diff_rows(&changes));
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn rollback(&self, a: super::ctl_releases::RollbackArgs) -> Result<ExitCode, String> {
        let req = crate::protocol::release::RollbackRequest { app: a.app, release: a.release };
        self.command(CtlVerb::Rollback, req, a.op.command_id, a.op.wait.until()).await
    }

    async fn alerts(&self, a: super::ctl_alerts::AlertsArgs) -> Result<ExitCode, String> {
        use super::ctl_alerts as al;
        let fleet = self.fetch().await?;
        if self.json {
            out!("{}", al::alerts_json(&fleet, a.all));
            return Ok(ExitCode::SUCCESS);
        }
        let (header, rows) = al::alert_rows(&fleet, a.all, now_ms());
        if rows.is_empty() {
            out!("no {}alerts", if a.all { "" } else { "active " });
        } else {
            print_table(&header, &rows);
        }
        let (header, rows) = al::silence_rows(&fleet);
        if !rows.is_empty() {
            out!("");
            print_table(&header, &rows);
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn whoami(&self) -> Result<ExitCode, String> {
        let env = Envelope::new(&self.source, ()).with_operator(Some(self.operator.clone()));
        let me: WhoAmI =
            bus::command(&self.bus, CtlVerb::Whoami, &env, self.timeout).await.map_err(refusal)?;
        if self.json {
            out!("{}", json!({ "user": me.user, "may_act": true }));
        } else {
            out!("{} (may send commands)", me.user);
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn snapshot(&self) -> Result<ExitCode, String> {
        let f = self.fetch().await?;
        if self.json {
            out!("{}", snapshot_json(&f));
            return Ok(ExitCode::SUCCESS);
        }
        out!(
            "revision {}: {} hosts, {} apps, {} instances, {} routes, {} operations\n",
            f.revision,
            f.hosts.len(),
            f.apps.len(),
            f.instances.len(),
            f.routes.len(),
            f.operations.len()
        );
        self.print_hosts(&f);
        out!("");
        self.print_instances(&f);
        out!("");
        self.print_routes(&f, None);
        Ok(ExitCode::SUCCESS)
    }

    async fn hosts(&self) -> Result<ExitCode, String> {
        let f = self.fetch().await?;
        if self.json {
            out!("{}", snapshot_json(&f)["hosts"]);
        } else {
            self.print_hosts(&f);
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn instances(&self) -> Result<ExitCode, String> {
        let f = self.fetch().await?;
        if self.json {
            out!("{}", snapshot_json(&f)["instances"]);
        } else {
            self.print_instances(&f);
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn routes(&self, args: super::ctl_routes::RoutesArgs) -> Result<ExitCode, String> {
        use super::ctl_routes as r;
        // Subscribed first: the wait for the routers' statuses overlaps the snapshot's fetch.
        let statuses = r::subscribe(&self.bus, &args).await?;
        let f = self.fetch().await?;
        let traffic = match statuses {
            Some(sub) => r::RoutesTraffic::sum(r::listen(sub, args.traffic_wait).await.values()),
            None => None,
        };
        if self.json {
            let mut routes = snapshot_json(&f)["routes"].clone();
            if let (Some(t), Some(list)) = (&traffic, routes.as_array_mut()) {
                for (v, route) in list.iter_mut().zip(f.routes.values()) {
                    v["traffic"] = super::ctl_routes::json(&t.route(&route.app, &route.backend));
                    v["app_traffic"] = super::ctl_routes::json(&t.app(&route.app));
                }
            }
            out!("{routes}");
        } else {
            self.print_routes(&f, traffic.as_ref());
        }
        Ok(ExitCode::SUCCESS)
    }

    fn print_hosts(&self, f: &Fleet) {
        let now = now_ms();
        let rows: Vec<Vec<String>> = f
            .hosts
            .values()
            .map(|h| {
                vec![
                    h.info.id.clone(),
                    h.info.az.clone(),
                    h.info.ip.clone(),
                    h.state.as_str().to_string(),
                    h.schedule.label(),
                    format!("{:.0}%", h.metrics.cpu_pct),
                    format!("{:.0}%", h.metrics.mem_pct()),
                    f.instances_on(&h.info.id).count().to_string(),
                    age(now.saturating_sub(h.last_heartbeat)),
                    h.info.tags.join(","),
                ]
            })
            .collect();
        print_table(
            &["HOST", "AZ", "IP", "STATE", "SCHEDULE", "CPU", "MEM", "INST", "HEARTBEAT", "TAGS"],
            &rows,
        );
    }

    fn print_instances(&self, f: &Fleet) {
        let rows: Vec<Vec<String>> = f
            .instances
            .values()
            .map(|i| {
                vec![
                    i.id.clone(),
                    i.app.clone(),
                    i.version.clone(),
                    i.host.clone(),
                    i.endpoint.clone(),
                    i.state.as_str().to_string(),
                    i.restarts.to_string(),
                    i.container_id.clone(),
                ]
            })
            .collect();
        print_table(&["ID", "APP", "VERSION", "HOST", "ENDPOINT", "STATE", "RESTARTS", "CONTAINER"], &rows);
    }

    fn print_routes(&self, f: &Fleet, traffic: Option<&super::ctl_routes::RoutesTraffic>) {
        let rows: Vec<Vec<String>> = f
            .routes
            .values()
            .map(|r| {
                let cells = traffic.map_or_else(
                    || ["-".to_string(), "-".into(), "-".into()],
                    |t| super::ctl_routes::cells(&t.route(&r.app, &r.backend)),
                );
                let mut row = vec![
                    r.app.clone(),
                    r.domain.clone(),
                    r.backend.clone(),
                    r.state.as_str().to_string(),
                    r.weight.to_string(),
                ];
                row.extend(cells);
                row
            })
            .collect();
        print_table(&["APP", "DOMAIN", "BACKEND", "STATE", "WEIGHT", "RPS", "5XX%", "P99"], &rows);
    }

    /// Sends a command; with `wait`, follows its operation through its events.
    async fn command<T: serde::Serialize>(
        &self,
        verb: CtlVerb,
        body: T,
        command_id: Option<String>,
        wait: Option<Duration>,
    ) -> Result<ExitCode, String> {
        // Follow the event history before sending, so that no step of the operation can
        // be missed: the stream's consumer carries on across a reconnect to another node.
        let events = match wait {
            Some(_) => Some(self.bus.follow_events().await.map_err(|e| e.to_string())?),
            None => None,
        };
        let envelope = Envelope::with_id(command_id.unwrap_or_else(new_id), &self.source, body)
            .with_operator(Some(self.operator.clone()));
        let accepted: Accepted =
            bus::command(&self.bus, verb, &envelope, self.timeout).await.map_err(refusal)?;
        if self.json && wait.is_none() {
            out!("{}", json!({ "operation_id": accepted.operation_id, "rev": accepted.rev }));
        } else if wait.is_none() {
            match &accepted.operation_id {
                Some(op) => out!("{op}"),
                None => out!("ok (revision {})", accepted.rev),
            }
        }
        match (events, wait, accepted.operation_id) {
            (Some(sub), Some(timeout), Some(op)) => self.follow(sub, &op, timeout).await,
            _ => Ok(ExitCode::SUCCESS),
        }
    }

    async fn follow(&self, mut feed: EventFeed, op: &str, timeout: Duration) -> Result<ExitCode, String> {
        if !self.json {
            out!("operation {op}");
        }
        let started = now_ms();
        let deadline = tokio::time::Instant::now() + timeout;
        // The snapshot is asked now and then too: a follow that broke (the bus went away
        // longer than the consumer could bridge) may have missed the end.
        let mut check = tokio::time::interval_at(tokio::time::Instant::now() + ENDED_CHECK, ENDED_CHECK);
        loop {
            let got = tokio::select! {
                got = feed.next() => got,
                _ = check.tick() => match self.ended(op).await {
                    Some(code) => return Ok(code),
                    None => continue,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(format!("operation {op} did not finish within {timeout:?}"))
                }
            };
            let msg = match got {
                Some(Ok(followed)) => followed.message,
                Some(Err(e)) => {
                    log::warn!("{e}; following the event history again");
                    feed = self.bus.follow_events().await.map_err(|e| e.to_string())?;
                    continue;
                }
                None => return Err("the event history's follow closed".into()),
            };
            let Ok(env) = decode::<Event>(&msg.payload) else { continue };
            let e = env.body;
            if e.operation_id.as_deref() != Some(op) {
                continue;
            }
            if self.json {
                out!("{}", event_json(&e));
            } else {
                let at = e.ts.saturating_sub(started) as f64 / 1000.0;
                out!("  +{at:>6.1}s  {:<36} {}", e.kind.as_str(), e.message);
            }
            match e.kind {
                EventKind::OperationSucceeded => return Ok(ExitCode::SUCCESS),
                EventKind::OperationFailed => {
                    eprintln!("operation {op} failed: {}", crate::cli::printable::printable(&e.message));
                    return Ok(ExitCode::FAILURE);
                }
                _ => {}
            }
        }
    }

    /// How the operation ended, by the snapshot, when it has: said as the follow would
    /// have, for a follow that missed the end.
    async fn ended(&self, op: &str) -> Option<ExitCode> {
        let fleet = self.fetch().await.ok()?;
        let o = fleet.operations.get(op)?;
        match o.state {
            OperationState::Succeeded => {
                out!("  operation {op} succeeded (by the snapshot: some of its events were missed)");
                Some(ExitCode::SUCCESS)
            }
            OperationState::Failed => {
                let why = o.error.clone().unwrap_or_default();
                eprintln!("operation {op} failed: {}", crate::cli::printable::printable(&why));
                Some(ExitCode::FAILURE)
            }
            _ => None,
        }
    }

    /// `ALLOCATE_REPOSITORY_REQUEST`, then the upload with its sha256 (skipped when the slot
    /// already holds the same content).
    async fn upload(&self, app: &str, version: &str, path: &std::path::Path) -> Result<ArtifactRef, String> {
        let data = upload::read_artifact(path).await?;
        let operator = Some(self.operator.clone());
        let slot = upload::allocate(&self.bus, &self.source, operator, app, version, self.timeout)
            .await
            .map_err(refusal)?;
        let repo = ObjectStoreRepository::open(&self.bus).await.map_err(|e| e.to_string())?;
        let done = upload::store(&repo, &slot.slot, data).await?;
        let a = &done.artifact;
        let line = match done.already_there {
            true => format!("artifact {} already in the repository (sha256 {})", a.name, &a.sha256[..12]),
            false => format!(
                "uploaded {} to {} ({} bytes, sha256 {})",
                path.display(),
                a.name,
                a.size,
                &a.sha256[..12]
            ),
        };
        // Progress goes to stderr when stdout carries JSON.
        if self.json {
            eprintln!("{}", crate::cli::printable::printable(&line))
        } else {
            out!("{line}")
        }
        Ok(done.artifact)
    }

    async fn deploy(&self, a: DeployArgs) -> Result<ExitCode, String> {
        // Checked before anything is uploaded.
        let env = (!a.env.is_empty()).then(|| env::env_flags(&a.env)).transpose()?;
        let artifact = match &a.artifact {
            Some(path) => Some(self.upload(&a.app, &a.version, path).await?),
            None => None,
        };
        let cmd = a.cmd.map(|c| c.0).or_else(|| (!a.args.is_empty()).then_some(a.args));
        let given = artifact.is_some() || cmd.is_some() || a.mount.is_some() || a.health.is_some();
        let run = (given || env.is_some()).then(|| RunPatch {
            cmd,
            mount: a.mount.clone(),
            health: a.health.clone(),
            artifact,
            env,
            ..RunPatch::default()
        });
        let constraints = (!a.azs.is_empty() || !a.tags.is_empty() || a.cpu.is_some() || a.memory.is_some())
            .then(|| Constraints {
                azs: a.azs.clone(),
                tags: a.tags.clone(),
                cpu: a.cpu.unwrap_or(0.25),
                memory_mb: a.memory.unwrap_or(256),
            });
        let req = DeployRequest {
            app: a.app,
            version: a.version,
            instances: a.instances,
            image: a.image,
            port: a.port,
            constraints,
            domain: a.domain,
            tags: (!a.labels.is_empty()).then_some(a.labels),
            run,
            strategy: match a.strategy {
                StrategyArg::Rolling => Strategy::Rolling,
                StrategyArg::All => Strategy::All,
            },
        };
        self.command(CtlVerb::Deploy, req, a.op.command_id, a.op.wait.until()).await
    }

    async fn scale(&self, a: ScaleArgs) -> Result<ExitCode, String> {
        let req = ScaleRequest { app: a.app, instances: a.instances };
        self.command(CtlVerb::Scale, req, a.op.command_id, a.op.wait.until()).await
    }

    async fn app_remove(&self, a: AppRemoveArgs) -> Result<ExitCode, String> {
        if !a.yes {
            let stdin = std::io::stdin();
            if !stdin.is_terminal() {
                return Err(format!(
                    "removing app {} needs --yes when there is no terminal to ask on",
                    a.app
                ));
            }
            eprint!("Remove app {0}, its instances and routes? Type its name ({0}) to confirm: ", a.app);
            let mut typed = String::new();
            stdin.read_line(&mut typed).map_err(|e| format!("reading the confirmation: {e}"))?;
            confirmed_by(&a.app, &typed)?;
        }
        let req = AppRemoveRequest { app: a.app };
        self.command(CtlVerb::AppRemove, req, None, a.wait.until()).await
    }

    async fn restart(&self, a: RestartArgs) -> Result<ExitCode, String> {
        let req = match (a.instance, a.app, a.host) {
            (Some(i), _, _) => RestartRequest::Instance(i),
            (_, Some(app), _) => RestartRequest::App(app),
            (_, _, Some(h)) => RestartRequest::Host(h),
            _ => return Err("say what to restart: --instance, --app or --host".into()),
        };
        let body = RestartBody { target: req, batch: a.batch };
        self.command(CtlVerb::Restart, body, None, a.wait.until()).await
    }

    async fn host(&self, verb: HostCommand) -> Result<ExitCode, String> {
        let (verb, a) = match verb {
            HostCommand::Cordon(a) => (HostVerb::Cordon, a),
            HostCommand::Drain(a) => (HostVerb::Drain, a),
            HostCommand::Uncordon(a) => (HostVerb::Uncordon, a),
        };
        crate::protocol::validate::name("host", &a.host)?;
        // Only a drain is an operation to follow.
        let wait = (a.wait && verb == HostVerb::Drain).then_some(a.wait_timeout);
        self.command(CtlVerb::Host(verb), HostRequest { host: a.host }, None, wait).await
    }

    async fn route(&self, verb: RouteCommand) -> Result<ExitCode, String> {
        let (verb, a) = match verb {
            RouteCommand::Add(a) => (RouteVerb::Add, a),
            RouteCommand::Remove(a) => (RouteVerb::Remove, a),
            RouteCommand::Enable(a) => (RouteVerb::Enable, a),
            RouteCommand::Disable(a) => (RouteVerb::Disable, a),
            RouteCommand::Weight(a) => (RouteVerb::Weight, a),
        };
        // Checked here too, so a typo is named before anything is sent.
        crate::protocol::validate::backend(&a.backend)?;
        crate::protocol::validate::route_weight(verb, a.weight).map_err(|e| format!("{e}: --weight W"))?;
        let req = RouteRequest { app: a.app, backend: a.backend, weight: a.weight };
        self.command(verb.ctl(), req, None, None).await
    }

    async fn events(&self, a: EventsArgs) -> Result<ExitCode, String> {
        let live = match a.follow {
            true => Some(self.bus.subscribe(subjects::EVT_ALL).await.map_err(|e| e.to_string())?),
            false => None,
        };
        let store = JetStreamStore::open_reader(&self.bus, &JetStreamConfig::default())
            .await
            .map_err(|e| e.to_string())?;
        let since = now_ms().saturating_sub(a.since.as_millis() as u64);
        let history = store.history(since, a.limit).await.map_err(|e| e.to_string())?;
        let mut last = 0;
        for e in &history {
            self.print_event(e);
            last = e.rev;
        }
        let Some(mut live) = live else { return Ok(ExitCode::SUCCESS) };
        while let Some(msg) = live.next().await {
            let Ok(env) = decode::<Event>(&msg.payload) else { continue };
            if env.body.rev > last {
                last = env.body.rev;
                self.print_event(&env.body);
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn audit(&self, a: AuditArgs) -> Result<ExitCode, String> {
        let since = now_ms().saturating_sub(a.since.as_millis() as u64);
        let trail = read_audit(&self.bus, &JetStreamConfig::default().stream, since, a.limit).await?;
        if !self.json {
            let rows: Vec<Vec<String>> = trail
                .records
                .iter()
                .map(|e| match e.audit.as_deref() {
                    Some(r) => {
                        let (verdict, result) = r.conclusion(trail.end_of(r));
                        vec![datetime(e.ts), r.who(), r.what(), format!("{} {result}", verdict.mark())]
                    }
                    None => vec![datetime(e.ts), String::new(), e.message.clone(), String::new()],
                })
                .collect();
            print_table(&["TIME", "WHO", "COMMAND", "RESULT"], &rows);
            return Ok(ExitCode::SUCCESS);
        }
        for e in &trail.records {
            out!("{}", audit_json(e, &trail));
        }
        Ok(ExitCode::SUCCESS)
    }

    fn print_event(&self, e: &Event) {
        if self.json {
            out!("{}", event_json(e));
        } else {
            out!("{}", event_line(e));
        }
    }
}

/// One audit line for scripts: the event's `rev`, `ts` and `message`, and the record,
/// plus how it ended: `operation` (the end of the operation it started, from its closing
/// event; `null` when it started none or none is on record yet) and `result` in words.
fn audit_json(e: &Event, trail: &AuditTrail) -> Value {
    let mut v = json!({ "rev": e.rev, "ts": e.ts, "app": e.app, "message": e.message });
    if let (Some(obj), Some(record)) = (v.as_object_mut(), e.audit.as_deref())
        && let Ok(Value::Object(fields)) = serde_json::to_value(record)
    {
        obj.extend(fields);
        let end = trail.end_of(record);
        let (verdict, result) = record.conclusion(end);
        obj.insert("operation".into(), serde_json::to_value(end).unwrap_or(Value::Null));
        obj.insert("result".into(), json!(result));
        obj.insert("verdict".into(), json!(verdict_word(verdict)));
    }
    v
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Good => "ok",
        Verdict::Bad => "failed",
        Verdict::Pending => "running",
        Verdict::Unknown => "unknown",
    }
}

/// The audit records read from the stream, and the ends of the operations they started.
struct AuditTrail {
    records: Vec<Event>,
    ends: std::collections::HashMap<String, OperationEnd>,
}

impl AuditTrail {
    fn end_of(&self, record: &AuditRecord) -> Option<&OperationEnd> {
        self.ends.get(record.outcome.operation_id.as_deref()?)
    }
}

/// The `AUDIT` events of the stream since `since_ts` (ms), oldest first, the newest
/// `limit`, with the operation ends they join to. An ordered consumer filtered on
/// `qd.v1.evt.audit.>` and the two closing kinds (`operation_succeeded`,
/// `operation_failed`) reads only those, however busy the fleet's history is. An operation
/// closes after the command that started it, so its end is in the same window.
async fn read_audit(bus: &NatsBus, stream: &str, since_ts: u64, limit: usize) -> Result<AuditTrail, String> {
    use async_nats::jetstream::consumer::DeliverPolicy;
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures_util::StreamExt;
    let mut trail = AuditTrail { records: vec![], ends: Default::default() };
    let js = bus.jetstream();
    let mut stream = js
        .get_stream(stream)
        .await
        .map_err(|e| format!("no event stream {stream} ({e}): has a controller run on this server?"))?;
    let info = stream.info().await.map_err(|e| format!("event stream: {e}"))?;
    if info.state.messages == 0 {
        return Ok(trail);
    }
    let start = time::OffsetDateTime::from_unix_timestamp_nanos(since_ts as i128 * 1_000_000)
        .map_err(|e| format!("--since: {e}"))?;
    let filter = |kind: EventKind| format!("{}.evt.{}.>", subjects::PREFIX, kind.subject_token());
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
            filter_subjects: vec![
                filter(EventKind::Audit),
                filter(EventKind::OperationSucceeded),
                filter(EventKind::OperationFailed),
            ],
            ..Default::default()
        })
        .await
        .map_err(|e| format!("audit reader: {e}"))?;
    let mut messages = consumer.messages().await.map_err(|e| format!("audit reader: {e}"))?;
    let mut out: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
    loop {
        // An idle second means the end: `pending` says so sooner when there is history.
        let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
        let Ok(Some(Ok(msg))) = next else { break };
        let pending = msg.info().map(|i| i.pending).unwrap_or(0);
        if let Ok(env) = decode::<Event>(&msg.payload) {
            if let Some(end) = OperationEnd::from_event(&env.body) {
                trail.ends.insert(end.id.clone(), end);
            } else if env.body.kind == EventKind::Audit && env.body.ts >= since_ts {
                if out.len() >= limit {
                    out.pop_front();
                }
                out.push_back(env.body);
            }
        }
        if pending == 0 {
            break;
        }
    }
    trail.records = out.into();
    Ok(trail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_is_removed_only_when_its_name_is_typed() {
        assert_eq!(confirmed_by("shop", "shop\n"), Ok(()));
        assert_eq!(confirmed_by("shop", "shop\r\n"), Ok(()));
        for typed in ["", "\n", "y\n", "sho\n", " shop\n", "SHOP\n"] {
            let e = confirmed_by("shop", typed).unwrap_err();
            assert!(e.starts_with("not removed:") && e.contains("shop"), "{typed:?}: {e}");
        }
    }

    fn ctl_command(args: &[&str]) -> Result<CtlCommand, String> {
        use clap::Parser;
        let argv = ["quarterdeck", "ctl"].iter().chain(args).copied();
        match super::super::Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            Some(super::super::CliCommand::Ctl(c)) => Ok(c.command),
            other => panic!("not ctl: {other:?}"),
        }
    }

    #[test]
    fn scale_takes_0_to_the_deploy_bound_and_app_remove_its_name() {
        let Ok(CtlCommand::Scale(a)) = ctl_command(&["scale", "web", "0", "--wait"]) else { panic!("scale") };
        assert_eq!((a.app.as_str(), a.instances, a.op.wait.wait), ("web", 0, true));
        let e = ctl_command(&["scale", "web", "501"]).unwrap_err();
        assert!(e.contains("501") && e.contains("0..=500"), "{e}");
        assert!(ctl_command(&["scale", "web"]).is_err(), "N is required");
        let Ok(CtlCommand::App { verb: AppCommand::Remove(r) }) =
            ctl_command(&["app", "remove", "web", "--yes"])
        else {
            panic!("app remove")
        };
        assert!(r.yes && r.app == "web");
    }
}
