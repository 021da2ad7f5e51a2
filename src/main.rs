//! `quarterdeck`: the cockpit, the services and `ctl`, in one binary.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use quarterdeck::cli::{
    BenchCommand, Cli, CliCommand, bench, bench_plane, cockpit, ctl, docs, logging, router, services,
};

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // The cockpit picks its plane itself (it keeps the contexts for `:context`); the
    // commands that never reach a bus have none to pick.
    let bus_less =
        |c: &CliCommand| matches!(c, CliCommand::Auth(_) | CliCommand::Completions(_) | CliCommand::Man(_));
    if let Some(command) = cli.command.as_ref().filter(|c| !bus_less(c)) {
        match cli.bus.clone().select(matches!(command, CliCommand::Ctl(_))) {
            Ok(plane) => cli.bus = plane.bus,
            Err(err) => {
                eprintln!("quarterdeck: {}", quarterdeck::cli::printable::printable(&err));
                return ExitCode::FAILURE;
            }
        }
    }
    // Named, so `top -H` and /proc tell the cockpit's threads from the sandbox's.
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().thread_name("qd-main").enable_all().build() {
            Ok(rt) => rt,
            Err(err) => {
                eprintln!("quarterdeck: cannot start the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
    let level = cli.bus.log_level;
    let result = runtime.block_on(async move {
        match cli.command {
            None => cockpit::run(cli.bus, cli.cockpit).await,
            Some(CliCommand::Controller(args)) => {
                logging::init(&format!("controller/{}", services::controller_id(&args)), level);
                services::run_controller(cli.bus, args).await.map(|()| ExitCode::SUCCESS)
            }
            Some(CliCommand::Agent(args)) => {
                logging::init(&format!("agent/{}", args.host_id), level);
                services::run_agent(cli.bus, args).await.map(|()| ExitCode::SUCCESS)
            }
            Some(CliCommand::Router(args)) => {
                logging::init(&format!("router/{}", router::router_id(&args)), level);
                router::run(cli.bus, args).await.map(|()| ExitCode::SUCCESS)
            }
            Some(CliCommand::Bench(b)) => match b.command {
                None => bench::run(cli.bus, b.args).await,
                Some(BenchCommand::Plane(args)) => {
                    // Progress has its own lines, and what the agents and the cockpit's
                    // backend would warn of (drops, gaps, epochs) is counted in the report.
                    logging::init("bench", level.min(log::LevelFilter::Error));
                    bench_plane::run(cli.bus, args).await
                }
                Some(BenchCommand::Logs(args)) => {
                    logging::init("bench", level.min(log::LevelFilter::Error));
                    quarterdeck::cli::bench_logs::run(args).await
                }
            },
            Some(CliCommand::Completions(args)) => docs::run_completions(args).map(|()| ExitCode::SUCCESS),
            Some(CliCommand::Man(args)) => docs::run_man(args).map(|()| ExitCode::SUCCESS),
            Some(CliCommand::Auth(args)) => quarterdeck::cli::auth::run(args).map(|()| ExitCode::SUCCESS),
            Some(CliCommand::Ctl(args)) => {
                logging::init("ctl", level.min(log::LevelFilter::Warn));
                ctl::run(cli.bus, args).await
            }
        }
    });
    // Background tasks (the sandbox, subscriptions) end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("quarterdeck: {}", quarterdeck::cli::printable::printable(&err.to_string()));
            ExitCode::FAILURE
        }
    }
}
