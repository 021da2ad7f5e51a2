//! The command palette's language: parsing with clear errors, and Tab completion from the
//! fleet. Pure: the app decides what each command does (panel changes at once, changes to
//! the fleet through the confirm dialog).
//!
//! ```text
//! :hosts  :instances  :routes  :events  :audit  :apps     show a panel
//! :restart app|instance|host NAME   :restart marked       restart (confirmed)
//! :route add APP IP:PORT [WEIGHT]                          add a route (confirmed)
//! :route enable|disable|remove APP IP:PORT                 change a route (confirmed)
//! :route weight APP IP:PORT WEIGHT                         change a weight (confirmed)
//! :deploy APP [VERSION] [INSTANCES]                        the deploy wizard, prefilled
//! :exec [INSTANCE] [-- CMD...]                             a shell (or CMD) in the instance
//! :scale APP N                                             run N instances of APP (confirmed)
//! :filter TEXT   :help   :q
//! :context [NAME]                                          list the contexts, or switch to one
//! :ack ID                                                  acknowledge an alert (confirmed)
//! :silence SUBJECT DURATION [REASON...]                    silence a subject (0 lifts; confirmed)
//! :note TEXT                                               a note for the timeline (`n`)
//! :export [WINDOW] [FILE]                                  the handover timeline (2h) to a file
//! ```

use super::Panel;
use crate::protocol::subjects::RouteVerb;
use crate::protocol::{AlertState, AlertSubject, Fleet, RouteRequest, SilenceRequest, validate};

/// A parsed palette command.
#[derive(Debug, Clone, PartialEq)]
pub enum PaletteCommand {
    Panel(Panel),
    Quit,
    Help,
    Filter(String),
    Restart(RestartTarget),
    Route(RouteVerb, RouteRequest),
    /// The deploy wizard for the app (existing or new), with the version or instance count
    /// given.
    Deploy {
        app: String,
        version: Option<String>,
        instances: Option<u32>,
    },
    /// A shell, or `cmd` when not empty, in the instance (`None`: the selected one).
    Exec {
        instance: Option<String>,
        cmd: Vec<String>,
    },
    /// Run `instances` instances of the app (confirmed).
    Scale {
        app: String,
        instances: u32,
    },
    /// List the contexts (`None`), or switch the cockpit to one; the app checks the name.
    Context(Option<String>),
    /// Acknowledge a firing alert, by id (confirmed).
    Ack(String),
    /// Silence a subject's alerts for a while, or lift the silence (confirmed).
    Silence(SilenceRequest),
    /// A note for the timeline, checked (`protocol::timeline::check_note`).
    Note(String),
    /// The Markdown timeline of the last `window_ms` to `path` (`None`: a name with the
    /// time, in the working directory).
    Export {
        window_ms: u64,
        path: Option<String>,
    },
}

/// `:export`'s window when none is given: two hours.
pub const EXPORT_WINDOW_MS: u64 = 2 * 3_600_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartTarget {
    App(String),
    Instance(String),
    Host(String),
    /// The instances marked in the current panel.
    Marked,
}

const VERBS: [&str; 20] = [
    "hosts",
    "instances",
    "routes",
    "events",
    "audit",
    "apps",
    "restart",
    "route",
    "deploy",
    "exec",
    "filter",
    "help",
    "q",
    "scale",
    "context",
    "alerts",
    "ack",
    "silence",
    "note",
    "export",
];

use crate::protocol::alert::SILENCE_MAX_MS;

/// Parses a palette line (without the leading `:`), checking names and values, and that
/// what it names exists in the fleet.
pub fn parse(line: &str, fleet: &Fleet) -> Result<PaletteCommand, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return Err(
            "type a command: hosts, restart app NAME, route disable APP IP:PORT ... (Tab completes)".into()
        );
    };
    if let Some(panel) = Panel::ALL.into_iter().find(|p| p.command() == verb) {
        return no_more(args, 0, "a panel name").map(|()| PaletteCommand::Panel(panel));
    }
    match verb {
        "q" | "quit" => no_more(args, 0, "q").map(|()| PaletteCommand::Quit),
        "help" => Ok(PaletteCommand::Help),
        "filter" => Ok(PaletteCommand::Filter(args.join(" "))),
        "restart" => restart(args, fleet),
        "route" => route(args, fleet),
        "deploy" => deploy(args),
        "exec" => exec(line.trim_start().strip_prefix("exec").unwrap_or_default(), fleet),
        "scale" => scale(args, fleet),
        "ack" => ack(args, fleet),
        "silence" => silence(args),
        "context" => match args {
            [] => Ok(PaletteCommand::Context(None)),
            [name] => Ok(PaletteCommand::Context(Some(name.to_string()))),
            [_, extra, ..] => Err(format!("context [NAME]: unexpected {extra:?}")),
        },
        "note" => {
            let text = line.trim_start().strip_prefix("note").unwrap_or_default();
            crate::protocol::timeline::check_note(text).map(|t| PaletteCommand::Note(t.to_string()))
        }
        "export" => export(args),
        other => Err(format!("unknown command {other:?}: try {}", VERBS.join(", "))),
    }
}

/// `export [WINDOW] [FILE]`: a window of whole minutes, hours or days (`90m`, `6h`, `1d`,
/// at most 30 days), then the file.
fn export(args: &[&str]) -> Result<PaletteCommand, String> {
    let usage = "export [WINDOW] [FILE], e.g. export 6h incident.md";
    let (window_ms, rest) = match args.split_first().and_then(|(w, rest)| Some((span_ms(w)?, rest))) {
        Some(found) => found,
        None => (EXPORT_WINDOW_MS, args),
    };
    if window_ms > 30 * 86_400_000 {
        return Err(format!("{usage}: the window is at most 30d"));
    }
    match rest {
        [] => Ok(PaletteCommand::Export { window_ms, path: None }),
        [path] => Ok(PaletteCommand::Export { window_ms, path: Some(path.to_string()) }),
        [_, extra, ..] => Err(format!("{usage}: unexpected {extra:?} (a file name has no spaces here)")),
    }
}

fn no_more(args: &[&str], n: usize, what: &str) -> Result<(), String> {
    match args.get(n) {
        Some(extra) => Err(format!("{what} takes nothing more, not {extra:?}")),
        None => Ok(()),
    }
}

fn known_app(fleet: &Fleet, app: &str) -> Result<(), String> {
    validate::name("app", app)?;
    if fleet.apps.contains_key(app) {
        Ok(())
    } else {
        let known: Vec<&str> = fleet.apps.keys().map(String::as_str).collect();
        Err(format!("no app {app:?}; apps: {}", known.join(", ")))
    }
}

/// `:scale APP N`: an app the fleet has, a count from 0 to the deploy's bound, other than
/// its desired count.
fn scale(args: &[&str], fleet: &Fleet) -> Result<PaletteCommand, String> {
    let usage = "scale APP N";
    let [app, n] = args else {
        return Err(match args.get(2) {
            Some(extra) => format!("{usage}: unexpected {extra:?}"),
            None => format!("{usage}: the app and how many instances"),
        });
    };
    known_app(fleet, app)?;
    let instances: u32 = n.parse().map_err(|_| format!("{usage}: {n:?} is not a whole number"))?;
    validate::scale_instances(instances)?;
    let desired = fleet.apps.get(*app).map_or(0, |a| a.instances);
    if desired == instances {
        return Err(format!("{app} already has {instances} instance(s) desired: nothing to scale"));
    }
    Ok(PaletteCommand::Scale { app: app.to_string(), instances })
}

/// `:ack ID`: a firing alert the controller keeps.
fn ack(args: &[&str], fleet: &Fleet) -> Result<PaletteCommand, String> {
    let usage = "ack ID (Tab completes the firing alerts' ids)";
    let [id] = args else {
        return Err(match args.get(1) {
            Some(extra) => format!("{usage}: unexpected {extra:?}"),
            None => usage.into(),
        });
    };
    let Some(alert) = fleet.alerts.get(*id) else {
        if id.starts_with("no_controller:") {
            return Err("no_controller is the cockpit's own alert: there is no controller to ack it".into());
        }
        return Err(format!("no alert {id:?} (Tab completes ids)"));
    };
    match alert.state {
        AlertState::Firing => Ok(PaletteCommand::Ack(id.to_string())),
        state => Err(format!("{id} is {} already: nothing to send", state.as_str())),
    }
}

/// `:silence SUBJECT DURATION [REASON...]`: a subject as alerts name it, and how long.
fn silence(args: &[&str]) -> Result<PaletteCommand, String> {
    let usage = "silence SUBJECT DURATION [REASON...] (e.g. silence host/host-01 2h disk swap)";
    let [subject, duration, reason @ ..] = args else { return Err(usage.into()) };
    let subject = AlertSubject::parse(subject)?;
    if subject == AlertSubject::Controller {
        return Err(
            "controller: no_controller is the cockpit's own alert; it sends nothing to silence".into()
        );
    }
    let for_ms = duration_ms(duration)?;
    let reason = (!reason.is_empty()).then(|| reason.join(" "));
    Ok(PaletteCommand::Silence(SilenceRequest { subject, for_ms, reason }))
}

/// `90s`, `30m`, `2h`, `1d`, or `0` (lift the silence), at most `SILENCE_MAX_MS`.
pub fn duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("duration {text:?} is not valid: use 0 (lifts), or a number and s, m, h or d (30m)");
    if text == "0" {
        return Ok(0);
    }
    match span_ms(text).ok_or_else(bad)? {
        ms if ms <= SILENCE_MAX_MS => Ok(ms),
        _ => Err(format!("duration {text:?} is longer than the 7d a silence may last")),
    }
}

/// `90s`, `30m`, `2h`, `1d`: a whole number above 0 and its unit, in ms (saturating);
/// the one reading of a span the palette's commands share.
fn span_ms(text: &str) -> Option<u64> {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n.saturating_mul(unit_ms))
}

fn restart(args: &[&str], fleet: &Fleet) -> Result<PaletteCommand, String> {
    let usage = "restart app NAME | instance ID | host ID | marked";
    let (kind, name) = match args {
        ["marked"] => return Ok(PaletteCommand::Restart(RestartTarget::Marked)),
        [kind, name] => (*kind, name.to_string()),
        [_, _, extra, ..] => return Err(format!("{usage}: unexpected {extra:?}")),
        _ => return Err(usage.into()),
    };
    match kind {
        "app" => known_app(fleet, &name).map(|()| PaletteCommand::Restart(RestartTarget::App(name))),
        "instance" if fleet.instances.contains_key(&name) => {
            Ok(PaletteCommand::Restart(RestartTarget::Instance(name)))
        }
        "instance" => Err(format!("no instance {name:?} (Tab completes ids)")),
        "host" if fleet.hosts.contains_key(&name) => Ok(PaletteCommand::Restart(RestartTarget::Host(name))),
        "host" => {
            validate::name("host", &name)?;
            Err(format!("no host {name:?}"))
        }
        other => Err(format!("{usage}: not {other:?}")),
    }
}

fn weight(text: &str) -> Result<u32, String> {
    let (low, high) = (validate::WEIGHTS.start(), validate::WEIGHTS.end());
    match text.parse::<u32>() {
        Ok(w) if validate::WEIGHTS.contains(&w) => Ok(w),
        _ => Err(format!("weight {text:?} is not valid: use {low} to {high}")),
    }
}

fn route(args: &[&str], fleet: &Fleet) -> Result<PaletteCommand, String> {
    let usage = "route add|remove|enable|disable|weight APP IP:PORT [WEIGHT]";
    let [verb, app, backend, rest @ ..] = args else {
        return Err(usage.into());
    };
    let Some(verb) = RouteVerb::parse(verb) else {
        return Err(format!("{usage}: not {verb:?}"));
    };
    known_app(fleet, app)?;
    validate::backend(backend)?;
    let exists = fleet.routes.contains_key(&(app.to_string(), backend.to_string()));
    let weight = match (verb, rest) {
        (RouteVerb::Add, []) => None,
        (RouteVerb::Add, [w]) => Some(weight(w)?),
        (RouteVerb::Weight, [w]) => Some(weight(w)?),
        (RouteVerb::Weight, []) => {
            return Err("route weight APP IP:PORT WEIGHT: the weight is missing".into());
        }
        (_, []) => None,
        (_, [extra, ..]) => return Err(format!("{usage}: unexpected {extra:?}")),
    };
    match (verb, exists) {
        (RouteVerb::Add, true) => return Err(format!("{app} already routes to {backend}")),
        (RouteVerb::Add, false) => {}
        (_, false) => return Err(format!("{app} has no route to {backend}")),
        (_, true) => {}
    }
    Ok(PaletteCommand::Route(
        verb,
        RouteRequest { app: app.to_string(), backend: backend.to_string(), weight },
    ))
}

fn deploy(args: &[&str]) -> Result<PaletteCommand, String> {
    let usage = "deploy APP [VERSION] [INSTANCES]";
    let Some((app, rest)) = args.split_first() else { return Err(usage.into()) };
    // A new name is a first deploy: the wizard takes it from there.
    validate::name("app", app)?;
    let (mut version, mut instances) = (None, None);
    for word in rest {
        // `x4` is always a count; a bare number is a count once the version is given.
        let digits = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit());
        let count = word
            .strip_prefix('x')
            .filter(|n| digits(n))
            .or((version.is_some() && digits(word)).then_some(*word));
        match count {
            Some(n) if instances.is_none() => {
                let n: u32 = n.parse().map_err(|_| format!("instances {word:?} is too large"))?;
                validate::instances(n)?;
                instances = Some(n);
            }
            None if version.is_none() => {
                validate::version(word)?;
                version = Some(word.to_string());
            }
            _ => return Err(format!("{usage}: unexpected {word:?}")),
        }
    }
    Ok(PaletteCommand::Deploy { app: app.to_string(), version, instances })
}

/// `[INSTANCE] [-- CMD...]`: the words after `--` are the command's, quoted as a shell's
/// (`protocol::argv`), so `-- sh -c 'echo hi'` runs what it says.
fn exec(rest: &str, fleet: &Fleet) -> Result<PaletteCommand, String> {
    let usage = "exec [INSTANCE] [-- CMD...]";
    let (head, cmd) = match rest.split_whitespace().find(|w| *w == "--") {
        Some(dashes) => {
            // Where that `--` sits in `rest`: the command is the text after it, quotes and all.
            let at = dashes.as_ptr() as usize - rest.as_ptr() as usize;
            let cmd = crate::protocol::argv::split(&rest[at + 2..])
                .map_err(|e| format!("{usage}: the command: {e}"))?;
            (&rest[..at], cmd)
        }
        None => (rest, vec![]),
    };
    let instance = match head.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] => None,
        [id] if fleet.instances.contains_key(*id) => Some(id.to_string()),
        [id] => {
            validate::instance_id(id)?;
            return Err(format!("no instance {id:?} (Tab completes ids)"));
        }
        [_, extra, ..] => return Err(format!("{usage}: unexpected {extra:?} (the command goes after --)")),
    };
    Ok(PaletteCommand::Exec { instance, cmd })
}

/// What Tab can put in place of the word being typed: the word's start (byte offset in
/// `line`) and the candidates, sorted.
pub fn complete(line: &str, fleet: &Fleet) -> (usize, Vec<String>) {
    let start = line.rfind(' ').map(|i| i + 1).unwrap_or(0);
    let prefix = &line[start..];
    let before: Vec<&str> = line[..start].split_whitespace().collect();
    let apps = || fleet.apps.keys().cloned().collect::<Vec<_>>();
    let all: Vec<String> = match before.as_slice() {
        [] => VERBS.iter().map(|s| s.to_string()).collect(),
        ["restart"] => ["app", "instance", "host", "marked"].iter().map(|s| s.to_string()).collect(),
        ["restart", "app"] | ["deploy"] | ["scale"] => apps(),
        ["restart", "instance"] | ["exec"] => fleet.instances.keys().cloned().collect(),
        ["restart", "host"] => fleet.hosts.keys().cloned().collect(),
        ["route"] => RouteVerb::ALL.iter().map(|v| v.word().to_string()).collect(),
        ["route", _] => apps(),
        ["route", "add", app] => {
            // An instance's endpoint with no route yet: what an operator adds, usually.
            fleet
                .instances_of(app)
                .filter(|i| !i.endpoint.is_empty())
                .filter(|i| !fleet.routes.contains_key(&(app.to_string(), i.endpoint.clone())))
                .map(|i| i.endpoint.clone())
                .collect()
        }
        ["route", _, app] => fleet.routes.keys().filter(|(a, _)| a == app).map(|(_, b)| b.clone()).collect(),
        ["deploy", app] => fleet.apps.get(*app).map(|a| vec![a.version.clone()]).unwrap_or_default(),
        ["ack"] => {
            fleet.alerts.values().filter(|a| a.state == AlertState::Firing).map(|a| a.id.clone()).collect()
        }
        ["silence"] => fleet.alerts.values().map(|a| a.subject.to_string()).collect(),
        ["silence", _] => ["30m", "1h", "2h", "1d", "0"].iter().map(|s| s.to_string()).collect(),
        _ => vec![],
    };
    let mut out: Vec<String> = all.into_iter().filter(|c| c.starts_with(prefix)).collect();
    out.sort();
    out.dedup();
    (start, out)
}

/// `complete`, with the contexts' names after `context`: they are the cockpit's, not the
/// fleet's.
pub fn complete_in(line: &str, fleet: &Fleet, contexts: &[String]) -> (usize, Vec<String>) {
    let start = line.rfind(' ').map(|i| i + 1).unwrap_or(0);
    match line[..start].split_whitespace().collect::<Vec<_>>().as_slice() {
        ["context"] => {
            let prefix = &line[start..];
            let mut out: Vec<String> = contexts.iter().filter(|c| c.starts_with(prefix)).cloned().collect();
            out.sort();
            (start, out)
        }
        _ => complete(line, fleet),
    }
}

/// The longest prefix all candidates share.
pub fn common_prefix(candidates: &[String]) -> String {
    let Some(first) = candidates.first() else { return String::new() };
    let mut len = first.len();
    for c in &candidates[1..] {
        len = len.min(first.bytes().zip(c.bytes()).take_while(|(a, b)| a == b).count());
    }
    // Never split a character.
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::fixture::fixture;

    #[test]
    fn commands_parse_and_name_what_is_wrong() {
        let (f, _) = fixture(42, 6, 0);
        assert_eq!(parse("apps", &f), Ok(PaletteCommand::Panel(Panel::Apps)));
        assert_eq!(
            parse("restart app shop-web", &f),
            Ok(PaletteCommand::Restart(RestartTarget::App("shop-web".into())))
        );
        let backend =
            f.routes.keys().find(|(a, _)| a == "shop-web").map(|(_, b)| b.clone()).unwrap_or_default();
        assert!(matches!(
            parse(&format!("route disable shop-web {backend}"), &f),
            Ok(PaletteCommand::Route(RouteVerb::Disable, _))
        ));
        let err = |line: &str| parse(line, &f).unwrap_err();
        assert!(err("restart app nope").contains("no app \"nope\""), "{}", err("restart app nope"));
        assert!(err("route disable shop-web 10.1.1.1").contains("expected IPv4:PORT"));
        assert!(err("route disable shop-web 10.9.9.9:80").contains("has no route"));
        assert!(err("route add shop-web 10.9.9.9:80 0").contains("weight"));
        assert!(err("route weight shop-web 10.9.9.9:80").contains("weight is missing"));
        assert!(err("fly").contains("unknown command"));
        assert!(err("hosts now").contains("takes nothing more"));
        assert!(err("restart app Shop").contains("not valid"));
        assert_eq!(
            parse("deploy shop-web 1.1.0 x4", &f),
            Ok(PaletteCommand::Deploy {
                app: "shop-web".into(),
                version: Some("1.1.0".into()),
                instances: Some(4)
            })
        );
    }

    #[test]
    fn exec_takes_an_optional_instance_and_a_quoted_command_after_dashes() {
        let (f, _) = fixture(42, 6, 0);
        let id = f.instances.keys().next().cloned().unwrap();
        let exec = |instance: Option<&str>, cmd: &[&str]| {
            Ok(PaletteCommand::Exec {
                instance: instance.map(str::to_string),
                cmd: cmd.iter().map(|w| w.to_string()).collect(),
            })
        };
        assert_eq!(parse("exec", &f), exec(None, &[]));
        assert_eq!(parse(&format!("exec {id}"), &f), exec(Some(&id), &[]));
        assert_eq!(
            parse(&format!("exec {id} -- sh -c 'echo a  b' --x"), &f),
            exec(Some(&id), &["sh", "-c", "echo a  b", "--x"])
        );
        assert_eq!(parse("exec -- ls -l", &f), exec(None, &["ls", "-l"]));
        let err = |line: &str| parse(line, &f).unwrap_err();
        assert_eq!(err("exec site-0-nope"), "no instance \"site-0-nope\" (Tab completes ids)");
        assert!(err(&format!("exec {id} ls")).contains("unexpected \"ls\" (the command goes after --)"));
        assert!(err("exec -- sh -c 'oops").contains("the command:"), "{}", err("exec -- sh -c 'oops"));
        assert!(err("exec --").contains("the command:"), "{}", err("exec --"));
        assert_eq!(complete("exec ", &f).1.len(), f.instances.len());
    }

    #[test]
    fn tab_completes_the_word_being_typed() {
        let (f, _) = fixture(42, 6, 0);
        assert_eq!(complete("res", &f), (0, vec!["restart".to_string()]));
        assert_eq!(complete("restart a", &f), (8, vec!["app".to_string()]));
        let (start, apps) = complete("restart app ", &f);
        assert_eq!((start, apps.len()), (12, 3));
        assert_eq!(complete("route disable sho", &f).1, vec!["shop-web".to_string()]);
        assert_eq!(complete("route disable shop-web ", &f).1.len(), 3);
        assert_eq!(common_prefix(&["api-gateway".into(), "apps".into()]), "ap");
    }

    #[test]
    fn ack_and_silence_parse_and_name_what_is_wrong() {
        use crate::protocol::{Alert, AlertRule};
        let (mut f, _) = fixture(42, 6, 0);
        let alert = |rule, subject: AlertSubject, state| {
            let id = Alert::id_of(rule, &subject);
            let a = Alert {
                id: id.clone(),
                rule,
                subject,
                state,
                since: 1,
                changed_at: 1,
                resolved_at: None,
                summary: "x".into(),
                causes: vec![],
                acked_by: None,
            };
            (id, a)
        };
        let (firing, a) =
            alert(AlertRule::HostDown, AlertSubject::Host("host-01".into()), AlertState::Firing);
        f.alerts.insert(firing.clone(), a);
        let (acked, a) =
            alert(AlertRule::DeployFailed, AlertSubject::App("shop-web".into()), AlertState::Acknowledged);
        f.alerts.insert(acked.clone(), a);
        assert_eq!(parse(&format!("ack {firing}"), &f), Ok(PaletteCommand::Ack(firing.clone())));
        let err = |line: &str| parse(line, &f).unwrap_err();
        assert_eq!(err(&format!("ack {acked}")), format!("{acked} is acknowledged already: nothing to send"));
        assert!(err("ack nope").contains("no alert \"nope\""));
        assert!(err("ack no_controller:controller").contains("cockpit's own alert"));
        assert!(err("ack").starts_with("ack ID"));
        assert!(err("ack a b").contains("unexpected \"b\""));
        assert_eq!(complete("ack ", &f).1, vec![firing]);
        assert_eq!(
            parse("silence host/host-01 2h disk swap", &f),
            Ok(PaletteCommand::Silence(SilenceRequest {
                subject: AlertSubject::Host("host-01".into()),
                for_ms: 7_200_000,
                reason: Some("disk swap".into()),
            }))
        );
        assert!(
            matches!(parse("silence app/shop-web 0", &f), Ok(PaletteCommand::Silence(r)) if r.for_ms == 0)
        );
        assert!(err("silence pod/x 1h").contains("expected host/ID"));
        assert!(err("silence host/host-01 1w").contains("duration \"1w\" is not valid"));
        assert!(err("silence host/host-01 8d").contains("longer than the 7d"));
        assert!(err("silence host/host-01 0m").contains("not valid"));
        assert!(err("silence host/host-01 99999999999999999d").contains("longer than"));
        assert!(err("silence controller 1h").contains("cockpit's own alert"));
        assert!(err("silence host/host-01").starts_with("silence SUBJECT DURATION"));
        assert_eq!(complete("silence ho", &f).1, vec!["host/host-01".to_string()]);
    }

    #[test]
    fn context_takes_an_optional_name_completed_from_the_contexts() {
        let (f, _) = fixture(42, 6, 0);
        assert_eq!(parse("context", &f), Ok(PaletteCommand::Context(None)));
        assert_eq!(parse("context prod", &f), Ok(PaletteCommand::Context(Some("prod".into()))));
        assert!(parse("context a b", &f).unwrap_err().contains("unexpected \"b\""));
        let names = ["prod".to_string(), "staging".into(), "prod-us".into()];
        assert_eq!(complete_in("context pro", &f, &names), (8, vec!["prod".into(), "prod-us".into()]));
        assert_eq!(complete_in("cont", &f, &names), (0, vec!["context".into()]));
        assert_eq!(complete_in("restart app ", &f, &names).1.len(), 3, "elsewhere, the fleet's");
    }
}
