//! `quarterdeck` with no subcommand: the cockpit, on NATS or on the embedded sandbox.

use std::path::PathBuf;
use std::sync::Arc;

use super::{BusArgs, CockpitArgs};
use crate::actions::keymap::Keymap;
use crate::app::{self, App, Level};
use crate::backend;
use crate::bus::Bus;
use crate::plane::sandbox::{Sandbox, SandboxConfig};
use crate::protocol::clock::now_ms;
use crate::views::theme::{ColorMode, Theme};

/// Who is at the controls, as the cockpit names itself on the bus: `cockpit/user@host`.
pub fn operator() -> String {
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

pub async fn run(bus_args: BusArgs, args: CockpitArgs) -> Result<(), String> {
    let mut warnings = Vec::new();
    let mode = ColorMode::detect();
    let theme = Theme::load(&args.theme, mode).unwrap_or_else(|err| {
        warnings.push(format!("{err}; using the default theme"));
        Theme::default_for(mode)
    });
    let (keymap, keys_warning) = load_keymap(args.keys);
    warnings.extend(keys_warning);

    // The cockpit's own log goes to the Events panel, never to the screen it draws on.
    let _ = tui_logger::init_logger(log::LevelFilter::Info);
    tui_logger::set_default_level(log::LevelFilter::Info);

    let mut sandbox = None;
    let bus: Arc<dyn Bus> = match &bus_args.nats {
        Some(_) => Arc::new(bus_args.connect(&operator()).await?),
        None => {
            let sb = Sandbox::start(SandboxConfig {
                seed: args.seed,
                hosts: args.sandbox_hosts as usize,
                speed: args.sandbox_speed,
                crashes_per_hour: args.sandbox_crash_rate,
                ..SandboxConfig::default()
            })
            .await
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
            let bus = sb.bus.clone();
            sandbox = Some(sb);
            bus
        }
    };
    let handle = backend::spawn(bus.clone(), operator());

    let mut app = App::new(bus.describe(), theme, keymap, now_ms());
    app.show_log = true;
    app.connection = bus.connection().borrow().clone();
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
