//! The command line: one binary, the cockpit by default, the services and `ctl` as
//! subcommands. Bus flags are global, valid before or after the subcommand.

pub mod alert_flags;
pub mod auth;
pub mod bench;
pub mod bench_events;
pub mod bench_logs;
mod bench_nats;
pub mod bench_plane;
pub mod cockpit;
pub mod ctl;
pub mod ctl_alerts;
pub mod ctl_logs;
pub mod ctl_releases;
pub mod ctl_routes;
pub mod ctl_timeline;
pub mod docs;
mod exec;
mod hidden;
pub mod logging;
pub mod parse;
pub mod port_forward;
pub mod printable;
pub mod router;
pub mod services;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bus::{BusError, NatsBus, NatsOptions};
use crate::context::{self, Context, Contexts};
use crate::protocol::Operator;

/// A terminal cockpit for a Docker PaaS, and the control plane it steers.
///
/// With no bus given, `quarterdeck` starts the embedded sandbox: a controller and a
/// simulated fleet of Docker hosts running three apps, all in this process, so the whole
/// system can be seen with one command. With `--nats URL`, or `--context NAME` from
/// ~/.config/quarterdeck/contexts.toml, it opens the cockpit on a real control plane, and
/// `:context NAME` switches it to another live. Press ? in the cockpit for the keys.
#[derive(Debug, Parser)]
#[command(name = "quarterdeck", version, about, long_about)]
pub struct Cli {
    // The cockpit's flags first: the bus flags' heading (`BUS_HEADING`) applies to every
    // flag after them.
    #[command(flatten)]
    pub cockpit: CockpitArgs,

    #[command(flatten)]
    pub bus: BusArgs,

    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// Where the bus flags are listed in `--help`: apart from, and after, each command's own.
pub const BUS_HEADING: &str = "Bus options";

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = BUS_HEADING)]
pub struct BusArgs {
    /// NATS server URL, e.g. nats://127.0.0.1:4222, or a cluster's URLs separated by commas
    /// (the client connects to one and moves to another when it fails). The services and ctl need it; without
    /// it the cockpit runs the embedded sandbox, and `bench` measures in-process instead of
    /// through this server.
    #[arg(long, env = "NATS_URL", global = true, value_name = "URL")]
    pub nats: Option<String>,

    /// The plane to use, by its name in ~/.config/quarterdeck/contexts.toml: its NATS URL,
    /// credentials, colour and whether it is production. Not with --nats (or NATS_URL): one
    /// plane is named once. Without either, the cockpit and ctl use the file's `current`.
    #[arg(long, env = "QUARTERDECK_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// NATS credentials file (JWT and NKey seed), as made by nsc.
    #[arg(long, global = true, value_name = "FILE")]
    pub creds: Option<PathBuf>,

    /// NKey seed file of this process's user, as `quarterdeck auth` writes them (one line,
    /// SU...). Replies then come to an inbox only this user may read.
    #[arg(long, global = true, value_name = "FILE", env = "NATS_NKEY")]
    pub nkey: Option<PathBuf>,

    /// NATS user name; needs --password.
    #[arg(long, global = true, value_name = "NAME", env = "NATS_USER")]
    pub user: Option<String>,

    /// NATS password; needs --user.
    #[arg(long, global = true, value_name = "SECRET", env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// NATS authentication token.
    #[arg(long, global = true, value_name = "SECRET", env = "NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// CA certificate (PEM) that signed the NATS server's certificate; turns TLS on.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for TLS client authentication; needs --tls-key.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Client private key (PEM) for --tls-cert.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Log level for the services and ctl (error, warn, info, debug, trace); they log to
    /// stderr. The cockpit logs into its Events panel.
    #[arg(
        long,
        global = true,
        default_value = "info",
        env = "QUARTERDECK_LOG",
        value_name = "LEVEL",
        help_heading = "Logging"
    )]
    pub log_level: log::LevelFilter,
}

impl BusArgs {
    /// Connects to NATS, waiting as long as it takes for a server to answer: the services
    /// come up in any order. While it waits it says why, once per reason
    /// (`cannot connect to nats://...: connection refused; waiting for the server`). Fails
    /// only for options that are wrong.
    pub async fn connect(&self, who: &str) -> Result<NatsBus, String> {
        let opts = self.options(who)?;
        let mut said = String::new();
        let mut pause = Duration::from_millis(100);
        loop {
            match NatsBus::connect_now(&opts).await {
                Ok(bus) => return Ok(bus),
                Err(e @ BusError::Unreachable { .. }) => {
                    let why = e.to_string();
                    if why != said {
                        log::warn!("{why}; waiting for the server");
                        said = why;
                    }
                    tokio::time::sleep(pause).await;
                    // As the client's own reconnects: quick at first, then every 2 s.
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Connects to NATS now, or says why not (`cannot connect to URL: connection
    /// refused`): ctl and the cockpit, whose user is waiting.
    pub async fn connect_now(&self, who: &str) -> Result<NatsBus, String> {
        NatsBus::connect_now(&self.options(who)?).await.map_err(|e: BusError| e.to_string())
    }

    /// How to reach the server, as the bus takes it.
    pub fn options(&self, who: &str) -> Result<NatsOptions, String> {
        let Some(url) = &self.nats else {
            return Err(format!("{who} needs a NATS server: give --nats URL or set NATS_URL"));
        };
        Ok(NatsOptions {
            url: url.clone(),
            creds: self.creds.clone(),
            nkey: self.nkey.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            token: self.token.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            name: who.to_string(),
        })
    }

    /// Who is at the controls: login@host, the SSH client (`SSH_CONNECTION`) and the NATS
    /// user. Sent with every command as context for the controller's audit trail; the
    /// user the server vouches for is the one in the command's subject.
    pub fn operator(&self) -> Operator {
        let (user, host) = login();
        let ssh = std::env::var("SSH_CONNECTION").ok();
        let nats_user = self.options("ctl").ok().and_then(|o| o.nats_user());
        Operator::from_parts(&user, &host, ssh.as_deref(), nats_user)
    }
}

/// The plane a command runs against: the bus flags, filled from the context that named it.
#[derive(Debug, Clone)]
pub struct Plane {
    pub bus: BusArgs,
    /// The context in use; `None` for a bare `--nats` URL or the sandbox.
    pub context: Option<Context>,
    /// Every context of the file (none without a file), for `:context`.
    pub contexts: Contexts,
}

/// `contexts.toml`, where the keymap and the config are (`$XDG_CONFIG_HOME/quarterdeck`).
pub fn contexts_path() -> Option<PathBuf> {
    Some(cockpit::config_dir()?.join("contexts.toml"))
}

impl BusArgs {
    /// The plane `--context` names; with `use_current` (the cockpit and ctl), the file's
    /// `current` when no plane is named at all. The file is read only when it can matter,
    /// so a service without --context never reads it.
    pub fn select(self, use_current: bool) -> Result<Plane, String> {
        if self.context.is_none() && !use_current {
            return Ok(Plane { bus: self, context: None, contexts: Contexts::default() });
        }
        self.select_in(contexts_path(), use_current)
    }

    /// `select`, with the contexts file at `path` (`None`: nowhere to look).
    fn select_in(self, path: Option<PathBuf>, use_current: bool) -> Result<Plane, String> {
        let contexts = match &path {
            Some(p) => context::load(p)?,
            None => None,
        };
        let name = match (&self.context, contexts.as_ref().and_then(|c| c.current.as_ref())) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(current)) if use_current && self.nats.is_none() => Some(current.clone()),
            _ => None,
        };
        let Some(name) = name else {
            return Ok(Plane { bus: self, context: None, contexts: contexts.unwrap_or_default() });
        };
        let Some(contexts) = contexts else {
            let at = path.map_or_else(|| "no HOME or XDG_CONFIG_HOME".into(), |p| p.display().to_string());
            return Err(format!("--context {name}: no contexts file ({at})"));
        };
        let chosen = contexts.pick(&name)?.clone();
        let bus = self.with_context(&chosen)?;
        Ok(Plane { bus, context: Some(chosen), contexts })
    }

    /// These flags with the context's URL and credentials. A flag that names what the
    /// context names too is an error, never silently one or the other: the point of a
    /// context is that the plane it names is the plane used.
    pub fn with_context(mut self, ctx: &Context) -> Result<BusArgs, String> {
        let name = &ctx.name;
        if self.nats.is_some() {
            return Err(format!("--context {name} and --nats (or NATS_URL) both name a plane: give one"));
        }
        self.nats = Some(ctx.nats.clone());
        for (flag, given, from_context) in
            [("--creds", &mut self.creds, &ctx.creds), ("--nkey (or NATS_NKEY)", &mut self.nkey, &ctx.nkey)]
        {
            match (given.is_some(), from_context) {
                (true, Some(_)) => {
                    return Err(format!("{flag} and context {name}'s own credentials both apply: give one"));
                }
                (false, Some(path)) => *given = Some(path.clone()),
                (_, None) => {}
            }
        }
        self.context = Some(name.clone());
        Ok(self)
    }
}

/// The login name and host name this process runs as.
pub fn login() -> (String, String) {
    let host = sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into());
    (crate::bus::user::login_name(), host)
}

#[derive(Debug, Clone, Args)]
pub struct CockpitArgs {
    /// Colour theme: a built-in name (default, light, high-contrast) or the path of a TOML
    /// theme file, which may set only some colours over a `base` theme. NO_COLOR turns
    /// colour off whatever the theme.
    #[arg(long, env = "QUARTERDECK_THEME", default_value = "default", value_name = "NAME|FILE")]
    pub theme: String,

    /// Keymap file merged over the default keys (one or two keys per action).
    /// [default: ~/.config/quarterdeck/keys.toml, used only if it exists]
    #[arg(long, env = "QUARTERDECK_KEYS", value_name = "FILE")]
    pub keys: Option<PathBuf>,

    /// Read-only: the cockpit shows everything and changes nothing. Every key that would
    /// act is refused with a message, and no command is ever sent. Also `read_only = true`
    /// in the config file.
    #[arg(long)]
    pub read_only: bool,

    /// The cockpit's config file (TOML: `read_only = true`).
    /// [default: ~/.config/quarterdeck/config.toml, used only if it exists]
    #[arg(long, env = "QUARTERDECK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Sandbox: seed of the simulated fleet. The same seed gives the same hosts, addresses
    /// and random walk of metrics and crashes.
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,

    /// Sandbox: number of simulated Docker hosts, spread over two AZs (1 to 5000). Each
    /// heartbeats every 2 s; past 200 hosts less often, so the fleet sends at most 100
    /// heartbeats a second (every 10 s at 1000 hosts), as Nomad caps its clients'.
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub sandbox_hosts: u32,

    /// Sandbox: instances to start with. 0 deploys the three seed apps (7 instances)
    /// through the controller, step by step, as a newcomer would watch it. More starts the
    /// fleet already placed by the real scheduler (the seed apps plus generated apps of 20
    /// instances each), to feel the cockpit at scale, e.g. `--sandbox-hosts 1000
    /// --sandbox-instances 20000` (0, or 8 to 200000; the hosts must have room).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = parse_sandbox_instances)]
    pub sandbox_instances: u32,

    /// Sandbox: simulation speed. 1 is realistic timing; 10 runs container lifecycles ten
    /// times faster (0.1 to 100).
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = parse_speed)]
    pub sandbox_speed: f64,

    /// Sandbox: expected random crashes per container per hour; 0 turns them off (0 to 3600).
    #[arg(long, default_value_t = 4.0, value_name = "RATE", value_parser = parse_crash_rate)]
    pub sandbox_crash_rate: f64,
}

pub fn parse_sandbox_instances(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Ok(0),
        Ok(n) if (8..=200_000).contains(&n) => Ok(n),
        Ok(n) if n <= 7 => Err(format!("{n}: the seed apps alone run 7; use 0 for them, or 8 to 200000")),
        Ok(n) => Err(format!("{n}: at most 200000")),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

pub fn parse_speed(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.1, 100.0)
}

pub fn parse_crash_rate(s: &str) -> Result<f64, String> {
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

// Parsed once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the controller: desired and actual state (in JetStream KV), the scheduler,
    /// deploy orchestration and the health manager. Only one is active at a time; a second
    /// one waits as a standby.
    Controller(services::ControllerArgs),
    /// Run the agent of one Docker host: heartbeats with its instances and metrics, and
    /// the controller's commands, carried out through a runtime driver.
    Agent(services::AgentArgs),
    /// Run a router: apply the route table to nginx (the load balancer), reloading it
    /// after each burst of changes, never with a configuration that fails `nginx -t`.
    Router(router::RouterArgs),
    /// Headless commands for scripts, tests and people: tables, or JSON with --json.
    Ctl(ctl::CtlArgs),
    /// Roles on the bus: write the users and permissions nats-server enforces (an
    /// `authorization` block to include, one NKey seed per user), add and remove users.
    Auth(auth::AuthArgs),
    /// Measure the cockpit's model, views and terminal output headless against a synthetic
    /// fleet: frame time, first frame, ingest rate, memory, bytes per frame, idle bytes.
    /// With --nats URL, measure instead how fast the cockpit's backend takes --events events
    /// through that nats-server, and whether it loses any. `bench plane` measures the
    /// control plane at fleet scale.
    Bench(BenchCli),
    /// Print a shell completion script for quarterdeck, its subcommands and their flags,
    /// e.g. `quarterdeck completions bash > /etc/bash_completion.d/quarterdeck`.
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff), e.g. `quarterdeck man | man -l -`; with --dir, write
    /// one page per subcommand there (quarterdeck.1, quarterdeck-ctl.1, ...).
    Man(docs::ManArgs),
}

/// `quarterdeck bench [FLAGS]` measures the cockpit as it always has; `quarterdeck bench
/// plane [FLAGS]` the control plane. The cockpit's flags do not mix with the subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCli {
    #[command(flatten)]
    pub args: bench::BenchArgs,
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The control plane at fleet scale, on a real nats-server (--nats, or one the bench
    /// starts from PATH or $NATS_SERVER_BIN): the controller (a child process), N simulated
    /// hosts and a following cockpit backend. Deploys M instances over K apps at once and
    /// reports convergence, event sizes, stored bytes, controller memory, the cockpit's lag,
    /// the controller's restart time and dropped events.
    Plane(bench_plane::PlaneArgs),
    /// The cockpit's merged logs view under an app whose --instances all log --rate lines
    /// a second (a stand-in agent on an in-process bus): the lines per second the view
    /// takes, the cockpit thread's CPU, frame times, and the buffer's bound.
    Logs(bench_logs::LogsBenchArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn bench_alone_is_the_cockpit_bench_and_bench_plane_the_plane_bench() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.command);
        let Ok(Some(CliCommand::Bench(b))) = parse(&["quarterdeck", "bench", "--hosts", "50", "--json"])
        else {
            panic!("bench with its flags parses")
        };
        assert!(b.command.is_none() && b.args.hosts == 50 && b.args.json);
        let Ok(Some(CliCommand::Bench(b))) =
            parse(&["quarterdeck", "bench", "plane", "--hosts", "20", "--apps", "4"])
        else {
            panic!("bench plane parses")
        };
        let Some(BenchCommand::Plane(p)) = b.command else { panic!("the plane bench") };
        assert_eq!((p.hosts, p.instances, p.apps), (20, 20_000, 4));
        // The cockpit bench's flags do not mix with the plane's.
        assert!(parse(&["quarterdeck", "bench", "--frames", "20", "plane"]).is_err());
        let zero =
            parse(&["quarterdeck", "bench", "plane", "--hosts", "0"]).map(|_| ()).unwrap_err().to_string();
        assert!(zero.contains("--hosts") && zero.contains("0 is not in 1..=10000"), "{zero}");
        assert!(parse(&["quarterdeck", "bench", "plane", "--instances", "0"]).is_err());
    }

    fn deploy_args(extra: &[&str]) -> Result<ctl::DeployArgs, String> {
        let mut argv = vec!["quarterdeck", "ctl", "deploy", "--app", "web", "--version", "1"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            Some(CliCommand::Ctl(ctl::CtlArgs { command: ctl::CtlCommand::Deploy(d), .. })) => Ok(d),
            other => panic!("not a deploy: {other:?}"),
        }
    }

    #[test]
    fn deploy_cmd_is_one_shell_quoted_line_or_repeated_args() {
        let argv = |d: ctl::DeployArgs| d.cmd.map(|c| c.0);
        let d = deploy_args(&["--cmd", "sh -c 'a b'"]).expect("parses");
        assert_eq!(argv(d), Some(vec!["sh".to_string(), "-c".into(), "a b".into()]));
        let d = deploy_args(&["--arg", "sh", "--arg", "-c", "--arg", "echo a b"]).expect("parses");
        assert_eq!(d.args, ["sh", "-c", "echo a b"], "one argv element each, hyphens too");
        assert!(d.cmd.is_none());
        let e = deploy_args(&["--cmd", "sh -c 'a b"]).unwrap_err();
        assert!(e.contains("--cmd") && e.contains("unclosed single quote"), "{e}");
        let e = deploy_args(&["--cmd", "  "]).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = deploy_args(&["--cmd", "x", "--arg", "y"]).unwrap_err();
        assert!(e.contains("cannot be used with"), "{e}");
    }

    /// Each command's own flags come first, then the bus's under their own heading.
    #[test]
    fn help_lists_the_bus_flags_apart_after_the_commands_own() {
        for path in [&["ctl", "deploy"][..], &["controller"], &["ctl", "hosts"], &[]] {
            let mut cmd = Cli::command();
            // Global flags reach the subcommands when the command is built, as for a parse.
            cmd.build();
            let mut sub = &mut cmd;
            for name in path {
                sub = sub.find_subcommand_mut(name).expect("subcommand");
            }
            let help = sub.render_long_help().to_string();
            let own = help.find("Options:").expect("own options");
            let bus = help.find(&format!("{BUS_HEADING}:")).unwrap_or_else(|| panic!("{path:?}: {help}"));
            let nats = help.find("--nats <URL>").expect("--nats listed");
            assert!(own < bus && bus < nats, "{path:?}: the bus flags come after the command's own\n{help}");
            for flag in ["--nkey <FILE>", "--creds <FILE>", "--tls-ca <FILE>", "--token <SECRET>"] {
                assert!(help.find(flag).is_some_and(|at| at > bus), "{path:?}: {flag} under {BUS_HEADING}");
            }
        }
    }

    /// ctl's own flags (`--json`, `--timeout`) follow a subcommand's flags, not in among them.
    #[test]
    fn ctl_flags_follow_each_subcommands_own() {
        let mut cmd = Cli::command();
        cmd.build();
        let ctl = cmd.find_subcommand_mut("ctl").expect("ctl");
        let deploy = ctl.find_subcommand_mut("deploy").expect("ctl deploy");
        let help = deploy.render_long_help().to_string();
        let at = |flag: &str| help.find(flag).unwrap_or_else(|| panic!("{flag} listed:\n{help}"));
        for own in ["--app <APP>", "--version <VERSION>", "--command-id <ID>"] {
            for ctl in ["--json", "--timeout <DURATION>"] {
                assert!(at(own) < at(ctl), "{own} before {ctl}:\n{help}");
            }
        }
        assert!(at("--timeout <DURATION>") < at(&format!("{BUS_HEADING}:")), "{help}");
    }

    fn a_context(creds: Option<&str>) -> Context {
        Context {
            name: "b".into(),
            nats: "nats://127.0.0.1:4999".into(),
            creds: creds.map(PathBuf::from),
            nkey: None,
            colour: None,
            production: false,
        }
    }

    /// A context fills the URL and credentials; a flag that names them too is an error,
    /// never silently one or the other.
    #[test]
    fn a_context_fills_the_bus_flags_and_refuses_a_second_plane() {
        let bus = |args: &[&str]| {
            let mut argv = vec!["quarterdeck"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).expect("parses").bus
        };
        let filled = bus(&["--context", "b"]).with_context(&a_context(Some("/k/b.creds"))).expect("fills");
        assert_eq!(filled.nats.as_deref(), Some("nats://127.0.0.1:4999"));
        assert_eq!(filled.creds, Some(PathBuf::from("/k/b.creds")));
        let mine =
            bus(&["--context", "b", "--nkey", "/k/me.seed"]).with_context(&a_context(None)).expect("fills");
        assert_eq!(mine.nkey, Some(PathBuf::from("/k/me.seed")), "the flag, when the context has none");
        let err = bus(&["--nats", "nats://h:1"]).with_context(&a_context(None)).unwrap_err();
        assert_eq!(err, "--context b and --nats (or NATS_URL) both name a plane: give one");
        let err = bus(&["--creds", "/x"]).with_context(&a_context(Some("/k/b.creds"))).unwrap_err();
        assert!(err.starts_with("--creds and context b's own credentials"), "{err}");
        // Without --context a service never reads the file.
        let plane = bus(&["--nats", "nats://h:1"]).select(false).expect("no file read");
        assert!(plane.context.is_none() && plane.contexts.list.is_empty());
    }

    /// `current` is used only when no plane is named; `--context` needs a file that has it.
    #[test]
    fn the_file_picks_the_plane_only_when_none_is_named() {
        let bus = |args: &[&str]| {
            let mut argv = vec!["quarterdeck"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).expect("parses").bus
        };
        let dir = std::env::temp_dir().join(format!("qd-select-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("contexts.toml");
        std::fs::write(&file, "current = \"b\"\n[contexts.b]\nnats = \"nats://127.0.0.1:4999\"\n")
            .expect("write");
        let plane = bus(&[]).select_in(Some(file.clone()), true).expect("current");
        assert_eq!(plane.context.map(|c| c.name), Some("b".into()));
        assert_eq!(plane.bus.nats.as_deref(), Some("nats://127.0.0.1:4999"));
        let plane = bus(&["--nats", "nats://h:1"]).select_in(Some(file.clone()), true).expect("the flag");
        assert!(plane.context.is_none() && plane.bus.nats.as_deref() == Some("nats://h:1"));
        assert_eq!(plane.contexts.names(), ["b"], "kept for :context");
        let err = bus(&["--context", "c"]).select_in(Some(file.clone()), true).unwrap_err();
        assert!(err.starts_with("no context \"c\" in ") && err.ends_with("; contexts: b"), "{err}");
        let none = dir.join("none.toml");
        let err = bus(&["--context", "b"]).select_in(Some(none.clone()), false).unwrap_err();
        assert_eq!(err, format!("--context b: no contexts file ({})", none.display()));
        let plane = bus(&[]).select_in(Some(none), true).expect("no file: as before");
        assert!(plane.context.is_none() && plane.bus.nats.is_none());
        std::fs::write(&file, "[contexts.b]\n").expect("write");
        let err = bus(&["--nats", "nats://h:1"]).select_in(Some(file.clone()), true).unwrap_err();
        assert!(err.contains("line 1: context \"b\" has no nats URL"), "a bad file is said: {err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sandbox_instances_are_the_seed_apps_or_more() {
        assert_eq!(parse_sandbox_instances("0"), Ok(0));
        assert_eq!(parse_sandbox_instances("20000"), Ok(20_000));
        assert!(parse_sandbox_instances("7").is_err_and(|e| e.contains("use 0 for them")));
        assert!(parse_sandbox_instances("300000").is_err_and(|e| e.contains("at most 200000")));
        assert!(parse_sandbox_instances("many").is_err_and(|e| e.contains("not a whole number")));
        let cli =
            Cli::try_parse_from(["quarterdeck", "--sandbox-hosts", "1000", "--sandbox-instances", "20000"]);
        assert_eq!(cli.map(|c| c.cockpit.sandbox_instances).ok(), Some(20_000));
    }
}
