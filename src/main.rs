//! `quarterdeck`: the cockpit. With no bus given it runs the embedded sandbox, a simulated
//! fleet with its controller, all in this process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use quarterdeck::actions::keymap::Keymap;
use quarterdeck::app::{self, App, Level};
use quarterdeck::backend;
use quarterdeck::plane::sandbox::{Sandbox, SandboxConfig};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::views::theme::{ColorMode, Theme};

/// A terminal cockpit for a Docker PaaS.
///
/// With no bus given, quarterdeck starts the embedded sandbox: a controller and a simulated
/// fleet of Docker hosts running three apps, all in this process, so the whole system can
/// be seen with one command. Press ? in the cockpit for the keys.
#[derive(Debug, Parser)]
#[command(name = "quarterdeck", version, about, long_about)]
struct Cli {
    /// Colour theme: a built-in name (default, light, high-contrast) or the path of a TOML
    /// theme file, which may set only some colours over a `base` theme. NO_COLOR turns
    /// colour off whatever the theme.
    #[arg(long, env = "QUARTERDECK_THEME", default_value = "default", value_name = "NAME|FILE")]
    theme: String,

    /// Keymap file merged over the default keys (one or two keys per action).
    /// [default: ~/.config/quarterdeck/keys.toml, used only if it exists]
    #[arg(long, env = "QUARTERDECK_KEYS", value_name = "FILE")]
    keys: Option<PathBuf>,

    /// Sandbox: seed of the simulated fleet. The same seed gives the same hosts, addresses
    /// and random walk of metrics and crashes.
    #[arg(long, default_value_t = 42, value_name = "N")]
    seed: u64,

    /// Sandbox: number of simulated Docker hosts, spread over two AZs (1 to 5000).
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=5000))]
    sandbox_hosts: u32,

    /// Sandbox: simulation speed. 1 is realistic timing; 10 runs container lifecycles ten
    /// times faster (0.1 to 100).
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = parse_speed)]
    sandbox_speed: f64,

    /// Sandbox: expected random crashes per container per hour; 0 turns them off (0 to 3600).
    #[arg(long, default_value_t = 4.0, value_name = "RATE", value_parser = parse_crash_rate)]
    sandbox_crash_rate: f64,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.1, 100.0)
}

fn parse_crash_rate(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.0, 3600.0)
}

fn parse_bounded(s: &str, lo: f64, hi: f64) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is out of range: use {lo} to {hi}"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("quarterdeck: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cockpit(cli));
    // Background tasks (the sandbox's agents and controller) end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("quarterdeck: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Who is at the controls, as the cockpit names itself on the bus: `cockpit/user@host`.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into());
    format!("cockpit/{user}@{host}")
}

fn default_keys_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("quarterdeck").join("keys.toml"))
}

/// The keymap, and a warning when a user file had to be ignored.
fn load_keymap(path: Option<PathBuf>) -> (Keymap, Option<String>) {
    let defaults = Keymap::defaults();
    let (path, explicit) = match path {
        Some(p) => (p, true),
        None => match default_keys_path() {
            Some(p) => (p, false),
            None => return (defaults, None),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => match Keymap::parse(&text, Some(&defaults)) {
            Ok(k) => (k, None),
            Err(err) => (defaults, Some(format!("{}: {err}; using the default keys", path.display()))),
        },
        Err(_) if !explicit => (defaults, None),
        Err(err) => {
            (defaults, Some(format!("cannot read {}: {err}; using the default keys", path.display())))
        }
    }
}

async fn cockpit(cli: Cli) -> Result<(), String> {
    let mut warnings = Vec::new();
    let mode = ColorMode::detect();
    let theme = Theme::load(&cli.theme, mode).unwrap_or_else(|err| {
        warnings.push(format!("{err}; using the default theme"));
        Theme::default_for(mode)
    });
    let (keymap, keys_warning) = load_keymap(cli.keys);
    warnings.extend(keys_warning);

    // The cockpit's own log goes to the Events panel, never to the screen it draws on.
    let _ = tui_logger::init_logger(log::LevelFilter::Info);
    tui_logger::set_default_level(log::LevelFilter::Info);

    let sandbox = Sandbox::start(SandboxConfig {
        seed: cli.seed,
        hosts: cli.sandbox_hosts as usize,
        speed: cli.sandbox_speed,
        crashes_per_hour: cli.sandbox_crash_rate,
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let bus: Arc<dyn quarterdeck::bus::Bus> = sandbox.bus.clone();
    let handle = backend::spawn(bus.clone(), operator());

    let mut app = App::new(bus.describe(), theme, keymap, now_ms());
    app.show_log = true;
    for w in warnings {
        log::warn!("{w}");
        app.say(Level::Warn, w);
    }
    let mut terminal = app::terminal::init().map_err(|e| format!("cannot take the terminal: {e}"))?;
    let result = app::run(&mut terminal, &mut app, handle).await;
    app::terminal::restore();
    drop(sandbox);
    result.map_err(|e| format!("terminal error: {e}"))
}
