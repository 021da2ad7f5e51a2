//! `quarterdeck` with no subcommand: the cockpit, on NATS or on the embedded sandbox.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{BusArgs, CockpitArgs};
use crate::actions::keymap::Keymap;
use crate::app::{App, PlaneLabel};
use crate::backend;
use crate::backend::upload::RepoSource;
use crate::bus::Bus;
use crate::context::Contexts;
use crate::plane::sandbox::{SEED_INSTANCES, Sandbox, SandboxConfig, heartbeat_period_for};
use crate::protocol::clock::now_ms;
use crate::theme::{ColorMode, Theme, in_mode};
use crate::tui;
use crate::tui::switch::{Connect, Switched};

/// Who is at the controls, as the cockpit names itself on the bus: `cockpit/user@host`.
pub fn operator() -> String {
    let (user, host) = super::login();
    format!("cockpit/{user}@{host}")
}

/// The cockpit's folder of files: `$XDG_CONFIG_HOME/quarterdeck`, else `~/.config/quarterdeck`.
pub fn config_dir() -> Option<PathBuf> {
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

/// The keys `config.toml` knows, for "did you mean".
const CONFIG_KEYS: [&str; 1] = ["read_only"];

/// Reads a file the operator named, or the default one when it exists.
fn read_optional(
    path: Option<PathBuf>,
    default: Option<PathBuf>,
) -> Result<Option<(PathBuf, String)>, String> {
    let (path, explicit) = match (path, default) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        (None, None) => return Ok(None),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The config: the defaults without a file. A file that cannot be read or parsed is an
/// error that names the file, the line and the key: the cockpit does not start on a
/// guess, in a mode (read-only or not) that the file may not have asked for.
pub fn load_config(path: Option<PathBuf>) -> Result<Config, String> {
    match read_optional(path, config_dir().map(|d| d.join("config.toml")))? {
        None => Ok(Config::default()),
        Some((path, text)) => parse_config(&text).map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// `config.toml`'s text as the config, or what is wrong in it (the caller names the file).
pub fn parse_config(text: &str) -> Result<Config, crate::config_file::ConfigError> {
    crate::config_file::parse(text, &CONFIG_KEYS)
}

/// The keymap: the defaults, with the user's file merged over them when there is one.
fn load_keymap(path: Option<PathBuf>) -> Result<Keymap, String> {
    let defaults = Keymap::defaults();
    match read_optional(path, default_keys_path())? {
        None => Ok(defaults),
        Some((path, text)) => {
            Keymap::parse(&text, Some(&defaults)).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

/// `--theme`: a built-in name, or a TOML file read here (views do no I/O).
fn load_theme(name_or_path: &str, mode: ColorMode) -> Result<Theme, String> {
    if !Theme::is_path(name_or_path) {
        return Theme::named(name_or_path, mode);
    }
    let text = std::fs::read_to_string(name_or_path)
        .map_err(|e| format!("cannot read theme {name_or_path}: {e}"))?;
    Theme::from_file(name_or_path, &text, mode)
}

/// Every file the cockpit reads before it opens the screen, or the first one that is
/// wrong; so a typo stops it with a message on the terminal it was started from.
fn load_files(args: &CockpitArgs, mode: ColorMode) -> Result<(Theme, Keymap, Config), String> {
    let theme = load_theme(&args.theme, mode)?;
    let keymap = load_keymap(args.keys.clone())?;
    let config = load_config(args.config.clone())?;
    Ok((theme, keymap, config))
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

/// Runs the cockpit; its exit status says how it ended (129 after SIGHUP, 143 after SIGTERM).
pub async fn run(bus_args: BusArgs, args: CockpitArgs) -> Result<ExitCode, String> {
    let mode = ColorMode::detect();
    let (theme, keymap, config) = load_files(&args, mode)?;
    // `:context` connects as `--context NAME` with the flags as given would.
    let given = bus_args.clone();
    let plane = bus_args.select(true)?;
    let bus_args = plane.bus;
    let read_only = args.read_only || config.read_only;

    // The cockpit's own log goes to the Events panel, never to the screen it draws on.
    let _ = tui_logger::init_logger(log::LevelFilter::Info);
    tui_logger::set_default_level(log::LevelFilter::Info);

    let mut sandbox: Option<(Sandbox, SandboxRuntime)> = None;
    let repository;
    let label = match (&plane.context, &bus_args.nats) {
        (Some(context), _) => PlaneLabel::of(context, |c| in_mode(c, mode)),
        (None, Some(url)) => PlaneLabel::plain(crate::context::label_of_url(url)),
        (None, None) => PlaneLabel::plain(crate::context::SANDBOX),
    };
    let bus: Arc<dyn Bus> = match &bus_args.nats {
        Some(_) => {
            let nats = bus_args.connect_now(&operator()).await?;
            repository = RepoSource::ObjectStore(Box::new(nats.clone()));
            Arc::new(nats)
        }
        None => {
            let (sb, runtime) = start_sandbox(&args).await?;
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

    let mut app = App::new(label.name.clone(), theme, keymap, now_ms());
    app.set_plane(label);
    app.contexts = plane.contexts.list.clone();
    app.read_only = read_only;
    app.show_log = true;
    app.connection = bus.connection().borrow().clone();
    let mut terminal = tui::terminal::init().map_err(|e| format!("cannot take the terminal: {e}"))?;
    let connect = connector(given, plane.contexts, read_only, mode);
    let result = tui::run(&mut terminal, &mut app, handle, connect).await;
    tui::terminal::restore();
    drop(sandbox);
    result.map(|exit| ExitCode::from(exit.code())).map_err(|e| format!("terminal error: {e}"))
}

/// Starts the embedded sandbox the flags describe, on a runtime of its own.
async fn start_sandbox(args: &CockpitArgs) -> Result<(Sandbox, SandboxRuntime), String> {
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
    Ok((sb, runtime))
}

/// How `:context NAME` reaches another plane: as `quarterdeck --context NAME` with the flags
/// `given` (as typed, before any context filled them) would, with the same read-only
/// setting. `mode`: the terminal's colours, for the header.
pub fn connector(given: BusArgs, contexts: Contexts, read_only: bool, mode: ColorMode) -> Connect {
    let base = Arc::new(BusArgs { nats: None, context: None, ..given });
    let contexts = Arc::new(contexts);
    Box::new(move |name: String| {
        let (base, contexts) = (base.clone(), contexts.clone());
        Box::pin(async move {
            let context = contexts.pick(&name)?.clone();
            let bus_args = BusArgs::clone(&base).with_context(&context)?;
            let nats = bus_args.connect_now(&operator()).await?;
            let connection = nats.connection().borrow().clone();
            let repository = RepoSource::ObjectStore(Box::new(nats.clone()));
            let identity = backend::Identity {
                operator: Some(bus_args.operator()),
                read_only,
                repository: Some(repository),
            };
            let backend = backend::spawn_cockpit(Arc::new(nats), operator(), identity);
            Ok(Switched { backend, plane: PlaneLabel::of(&context, |c| in_mode(c, mode)), connection })
        })
    })
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
    fn a_theme_is_a_built_in_name_or_a_file_read_before_the_screen_opens() {
        assert!(load_theme("light", ColorMode::TrueColor).is_ok());
        let mine = write("theme", "base = \"light\"\n[colors]\nbad = \"#123456\"\n");
        let t = load_theme(mine.to_str().unwrap(), ColorMode::TrueColor).unwrap();
        assert_eq!(t.bad.fg, Some(ratatui::style::Color::Rgb(0x12, 0x34, 0x56)));
        assert!(load_theme("/no/such.toml", ColorMode::TrueColor).unwrap_err().contains("cannot read"));
        assert!(load_theme("nope", ColorMode::TrueColor).unwrap_err().contains("unknown theme"));
        let _ = std::fs::remove_file(mine);
    }

    #[test]
    fn the_config_file_turns_read_only_on() {
        let good = write("good", "read_only = true\n");
        assert_eq!(load_config(Some(good.clone())), Ok(Config { read_only: true }));
        let off = write("off", "# nothing set\n");
        assert_eq!(load_config(Some(off.clone())), Ok(Config { read_only: false }));
        for p in [good, off] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_bad_config_is_an_error_with_the_file_line_key_and_suggestion() {
        // A typo is named, with the key it was probably meant to be; no mode is guessed.
        let typo = write("typo", "# mine\nreadonly = true\n");
        let err = load_config(Some(typo.clone())).unwrap_err();
        assert_eq!(
            err,
            format!("{}: line 2: unknown key 'readonly' — did you mean 'read_only'?", typo.display())
        );
        let broken = write("broken", "\n\nread_only = yes please\n");
        let err = load_config(Some(broken.clone())).unwrap_err();
        assert!(err.starts_with(&format!("{}: line 3: ", broken.display())), "{err}");
        let err = load_config(Some(PathBuf::from("/nonexistent/qd/config.toml"))).unwrap_err();
        assert!(err.starts_with("cannot read /nonexistent/qd/config.toml"), "{err}");
        // The default file is optional: none is the defaults.
        assert_eq!(read_optional(None, Some(PathBuf::from("/nonexistent/qd/config.toml"))), Ok(None));
        for p in [typo, broken] {
            let _ = std::fs::remove_file(p);
        }
    }
}
