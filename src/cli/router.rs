//! `quarterdeck router`: applies the controller's route table to nginx.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{BusArgs, parse, services};
use crate::bus::Bus;
use crate::plane::metrics::count_reconnects;
use crate::plane::metrics::router::RouterMetrics;
use crate::plane::router::access_log::TrafficFeed;
use crate::plane::router::nginx::NginxApplier;
use crate::plane::router::{self, RouterConfig};
use crate::protocol::validate;

#[derive(Debug, Clone, Args)]
pub struct RouterArgs {
    /// Where nginx listens for app traffic, IPv4:PORT; requests are routed by Host header.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: SocketAddrV4,

    /// The router's directory: nginx.conf, nginx's pid, logs and temp files live here.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,

    /// The nginx binary the router runs and checks configurations with.
    #[arg(long, default_value = "nginx", value_name = "PATH")]
    pub nginx: PathBuf,

    /// Reload an nginx the host already manages with this shell command instead of running
    /// one (the config is still written to DIR/nginx.conf and checked with `nginx -t`).
    #[arg(long, value_name = "CMD")]
    pub reload_cmd: Option<String>,

    /// This router's id in its status [default: router-<host name>].
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// How long to gather changes before one reload: a burst becomes one reload.
    #[arg(long, default_value = "200ms", value_parser = parse::duration, value_name = "DURATION")]
    pub coalesce: Duration,

    /// The least time between two reloads, so that a rolling deploy of many instances is a
    /// few reloads rather than one per change.
    #[arg(long, default_value = "1s", value_parser = parse::duration, value_name = "DURATION")]
    pub min_reload_interval: Duration,

    #[command(flatten)]
    pub metrics: services::MetricsArgs,

    /// How often the router publishes its status (generation, errors and the traffic of
    /// the last 10 s).
    #[arg(long, default_value = "2s", value_parser = parse::duration, value_name = "DURATION")]
    pub status_period: Duration,

    /// Do not read traffic: nginx writes its plain access log to DIR/logs/access.log
    /// instead of the `qd_json` lines the router tails from DIR/logs/traffic.log, and the
    /// status carries no traffic.
    #[arg(long)]
    pub no_traffic: bool,
}

/// The router's id: `--id`, else `router-<host name>`. Its log lines and its bus
/// connection go by `router/<id>`.
pub fn router_id(args: &RouterArgs) -> String {
    let host = || sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into());
    args.id.clone().unwrap_or_else(|| format!("router-{}", host()).to_lowercase().replace(['.', '_'], "-"))
}

pub async fn run(bus_args: BusArgs, args: RouterArgs) -> Result<(), String> {
    let id = router_id(&args);
    validate::name("router id", &id)?;
    if args.status_period.is_zero() {
        return Err("--status-period must be more than 0".into());
    }
    let metrics = Arc::new(RouterMetrics::new());
    let mut server = args.metrics.start(metrics.clone()).await?;
    let applier =
        NginxApplier::new(&args.state_dir, &args.nginx, args.reload_cmd.clone(), &args.listen.to_string())?;
    if let Some(pid) = applier.running_pid() {
        log::info!("adopting the nginx already running from {} (pid {pid})", args.state_dir.display());
    }
    let state_dir =
        std::fs::canonicalize(&args.state_dir).map_err(|e| format!("{}: {e}", args.state_dir.display()))?;
    let stopper =
        NginxApplier::new(&state_dir, &args.nginx, args.reload_cmd.clone(), &args.listen.to_string())?;
    let bus = bus_args.connect(&format!("router/{id}")).await?;
    if let Some(server) = &mut server {
        server.own(count_reconnects(bus.connection(), metrics.reconnects()));
    }
    let config = RouterConfig {
        id: id.clone(),
        listen: args.listen.to_string(),
        state_dir,
        coalesce: args.coalesce,
        min_interval: args.min_reload_interval,
        status_period: args.status_period,
        metrics: server.is_some().then_some(metrics),
    };
    let traffic = if args.no_traffic {
        None
    } else {
        Some(TrafficFeed::start(&config.state_dir, applier.log_reopener())?)
    };
    if traffic.is_some() {
        log::info!("reading nginx's traffic from {}", TrafficFeed::path(&config.state_dir).display());
    }
    log::info!("router {id} applies routes to nginx on {} ({})", args.listen, bus.describe());
    let dyn_bus: Arc<dyn Bus> = Arc::new(bus);
    tokio::select! {
        _ = router::run(dyn_bus, config, Box::new(applier), traffic) => Err("the bus closed".into()),
        _ = services::stop_signal() => {
            log::info!("router {id} stopping; nginx finishes its requests and stops");
            stopper.stop().await;
            if let Some(server) = server {
                server.stop().await;
            }
            Ok(())
        }
    }
}
