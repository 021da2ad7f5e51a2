//! `quarterdeck` with no subcommand: the cockpit, on NATS or on the embedded sandbox.

use std::path::PathBuf;
use std::sync::Arc;

use super::{BusArgs, CockpitArgs};
use crate::actions::keymap::Keymap;
use crate::app::{self, App, Level};
use crate::backend;
use crate::backend::upload::RepoSource;
use crate::bus::Bus;
use crate::plane::sandbox::{SEED_INSTANCES, Sandbox, SandboxConfig, heartbeat_period_for};
use crate::protocol::clock::now_ms;
use crate::views::theme::{ColorMode, Theme};

/// Who is at the controls, as the cockpit names itself on the bus: `cockpit/user@host`.
pub fn operator() -> String {
    let (user, host) = super::login();
    format!("cockpit/{user}@{host}")
}

fn config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("quarterdeck"))
}

fn default_keys_path() -> Option<PathBuf> {
    Some(config_dir()?.join("keys.toml"))
}

/// `~/.config/quarterdeck/config.toml`. Unknown keys are errors, so that a misspelt
/// `read_only` is reported rather than silently ignored.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub read_only: bool,
}

/// The config, and a warning when the file had to be ignored. A file that cannot be read
/// or parsed gives the defaults, except that the cockpit then starts read-only: the file
/// may have asked for that, and a typo must never give an operator write access they
/// were meant not to have.
pub fn load_config(path: Option<PathBuf>) -> (Config, Option<String>) {
    let (path, explicit) = match path {
        Some(p) => (p, true),
        None => match config_dir() {
            Some(d) => (d.join("config.toml"), false),
            None => return (Config::default(), None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if !explicit => return (Config::default(), None),
        Err(err) => {
            let why =
                format!("cannot read {}: {err}; using the defaults, read-only to be safe", path.display());
            return (Config { read_only: true }, Some(why));
        }
    };
    match toml::from_str::<Config>(&text) {
        Ok(c) => (c, None),
        Err(err) => {
            let err = err.to_string().replace('\n', " ");
            let why = format!("{}: {}; using the defaults, read-only to be safe", path.display(), err.trim());
            (Config { read_only: true }, Some(why))
        }
    }
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

/// The sandbox's own runtime. Dropping a runtime may block, which an async context
/// forbids, so it is shut down in the background on every way out, errors included.
struct SandboxRuntime(Option<tokio::runtime::Runtime>);

impl SandboxRuntime {
    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for SandboxRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
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
    let (config, config_warning) = load_config(args.config);
    warnings.extend(config_warning);
    let read_only = args.read_only || config.read_only;

    // The cockpit's own log goes to the Events panel, never to the screen it draws on.
    let _ = tui_logger::init_logger(log::LevelFilter::Info);
    tui_logger::set_default_level(log::LevelFilter::Info);

    let mut sandbox: Option<(Sandbox, SandboxRuntime)> = None;
    let repository;
    let bus: Arc<dyn Bus> = match &bus_args.nats {
        Some(_) => {
            let nats = bus_args.connect(&operator()).await?;
            repository = RepoSource::ObjectStore(nats.clone());
            Arc::new(nats)
        }
        None => {
            let config = SandboxConfig {
                seed: args.seed,
                hosts: args.sandbox_hosts as usize,
                instances: args.sandbox_instances as usize,
                speed: args.sandbox_speed,
                crashes_per_hour: args.sandbox_crash_rate,
                heartbeat_period: heartbeat_period_for(args.sandbox_hosts as usize),
                ..SandboxConfig::default()
            };
            if config.hosts > 50 || config.instances > 0 {
                // Seconds at scale, before the terminal is taken: say what is happening.
                eprintln!(
                    "starting the sandbox: {} simulated hosts, {} instances, a heartbeat every {}s ...",
                    config.hosts,
                    config.instances.max(SEED_INSTANCES),
                    config.heartbeat_period.as_secs()
                );
            }
            // The simulated fleet runs on threads of its own (`qd-sandbox`), so it never
            // holds up the cockpit's, and the cockpit's own CPU can be measured apart.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("qd-sandbox")
                .enable_all()
                .build()
                .map(|rt| SandboxRuntime(Some(rt)))
                .map_err(|e| format!("cannot start the sandbox's runtime: {e}"))?;
            let sb = runtime
                .handle()
                .spawn(Sandbox::start(config))
                .await
                .map_err(|e| format!("the sandbox stopped while starting: {e}"))?
                .map_err(|e| format!("cannot start the sandbox: {e}"))?;
            let bus = sb.bus.clone();
            repository = RepoSource::Fixed(sb.repository.clone());
            sandbox = Some((sb, runtime));
            bus
        }
    };
    // Read-only is enforced twice: the app refuses every acting key, and the backend never
    // sends a command whatever reaches it.
    let identity =
        backend::Identity { operator: Some(bus_args.operator()), read_only, repository: Some(repository) };
    let handle = backend::spawn_cockpit(bus.clone(), operator(), identity);

    let mut app = App::new(bus.describe(), theme, keymap, now_ms());
    app.read_only = read_only;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("qd-config-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write a temp file");
        path
    }

    #[test]
    fn the_config_file_turns_read_only_on_and_a_bad_one_says_why() {
        let good = write("good", "read_only = true\n");
        assert_eq!(load_config(Some(good.clone())), (Config { read_only: true }, None));
        let off = write("off", "# nothing set\n");
        assert_eq!(load_config(Some(off.clone())), (Config { read_only: false }, None));
        // A typo is named, and the cockpit stays read-only rather than guess.
        let typo = write("typo", "readonly = true\n");
        let (config, warning) = load_config(Some(typo.clone()));
        assert!(config.read_only);
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("unknown field `readonly`") && warning.contains("read-only to be safe"),
            "{warning}"
        );
        let broken = write("broken", "read_only = yes please\n");
        let (config, warning) = load_config(Some(broken.clone()));
        assert!(config.read_only && warning.is_some_and(|w| w.contains("broken")));
        let (_, warning) = load_config(Some(PathBuf::from("/nonexistent/qd/config.toml")));
        assert!(warning.is_some_and(|w| w.contains("cannot read")));
        for p in [good, off, typo, broken] {
            let _ = std::fs::remove_file(p);
        }
    }
}
