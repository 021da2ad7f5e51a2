//! Validation of the names and values that travel in commands. The controller checks every
//! command with these, and clients check them first so that people see the error at once.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::model::{HealthCheck, RunSpec, SecretRef};
use super::subjects::RouteVerb;

/// The most bytes of one input value an error message or a record quotes: enough to see
/// what was sent, small enough that no answer or event grows with the input.
pub const QUOTE_MAX: usize = 96;

/// `value`, or its first bytes (at most `max`, cut on a character boundary) followed by a
/// marker that says how many bytes were left out: `…[cut: 399904 bytes]`. The one place
/// input is shortened before it is echoed into a reply, an event or an audit record.
pub fn cut(value: &str, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[cut: {} bytes]", &value[..end], value.len() - end))
}

/// `cut` of an owned string, which is kept as it is when it fits.
pub fn cut_owned(value: String, max: usize) -> String {
    if value.len() <= max { value } else { cut(&value, max).into_owned() }
}

/// `value` quoted for an error message, cut to [`QUOTE_MAX`] bytes.
pub fn quoted(value: &str) -> String {
    format!("{:?}", cut(value, QUOTE_MAX))
}

/// An app, host or AZ name: 1–63 of `a-z 0-9 -`, starting with a letter or digit. It goes
/// into subjects, container names and load balancer config, so nothing else is allowed.
pub fn name(what: &str, value: &str) -> Result<(), String> {
    let ok_len = (1..=63).contains(&value.len());
    let ok_chars = value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_start = value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err(format!(
            "{what} {} is not valid: use 1-63 lowercase letters, digits or '-', starting with a letter or digit",
            quoted(value)
        ))
    }
}

/// The most bytes of a command id (an envelope's `id`).
pub const MAX_COMMAND_ID: usize = 128;

/// A command id: 1–128 bytes without control characters. It is the key of the reply
/// cache and is kept in the operation it starts, so it travels in events.
pub fn command_id(value: &str) -> Result<(), String> {
    if (1..=MAX_COMMAND_ID).contains(&value.len()) && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(format!(
            "command id {} ({} bytes) is not valid: use 1-{MAX_COMMAND_ID} bytes without control characters",
            quoted(value),
            value.len()
        ))
    }
}

/// The most bytes of an instance id: an app name, an index and 8 hex digits fit.
pub const MAX_INSTANCE_ID: usize = 100;

/// An instance id as the controller makes them, `<app>-<index>-<8 hex digits>`: 1–100 of
/// `a-z 0-9 -`, starting with a letter or digit. An agent names the instance's directory
/// and container after it, so nothing that could leave a directory (`/`, `..`) is allowed.
pub fn instance_id(value: &str) -> Result<(), String> {
    let ok = (1..=MAX_INSTANCE_ID).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "instance id {} is not valid: use 1-{MAX_INSTANCE_ID} lowercase letters, digits or '-', starting with a letter or digit",
            quoted(value)
        ))
    }
}

/// The most instances one app may run: the controller refuses more, and the cockpit and
/// ctl check it first.
pub const MAX_INSTANCES: u32 = 500;

/// [`MAX_INSTANCES`]' range as the deploy form's hint shows it (a test keeps the two equal).
pub const INSTANCES_RANGE: &str = "1-500";

/// An app's instance count: 1 to [`MAX_INSTANCES`].
pub fn instances(n: u32) -> Result<(), String> {
    if (1..=MAX_INSTANCES).contains(&n) {
        Ok(())
    } else {
        Err(format!("instances must be 1 to {MAX_INSTANCES}, not {n}"))
    }
}

/// A scale's instance count: 0 (the app is kept, with nothing running) to
/// [`MAX_INSTANCES`], the deploy's bound.
pub fn scale_instances(n: u32) -> Result<(), String> {
    if n <= MAX_INSTANCES { Ok(()) } else { Err(format!("instances must be 0 to {MAX_INSTANCES}, not {n}")) }
}

/// A version label such as `1.4.2` or `2026-11-25.1`: 1–40 of `A-Z a-z 0-9 . _ + -`.
pub fn version(value: &str) -> Result<(), String> {
    let ok = (1..=40).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("version {} is not valid: use 1-40 letters, digits, '.', '_', '+' or '-'", quoted(value)))
    }
}

/// A load balancer backend: an IPv4 address and a port from 1 to 65535.
pub fn backend(value: &str) -> Result<(Ipv4Addr, u16), String> {
    let err = || format!("backend {} is not valid: expected IPv4:PORT, e.g. 10.101.1.31:8080", quoted(value));
    let (ip, port) = value.rsplit_once(':').ok_or_else(err)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
    let port: u16 = port.parse().map_err(|_| err())?;
    if port == 0 {
        return Err(format!("backend {} is not valid: port 0 cannot serve", quoted(value)));
    }
    Ok((ip, port))
}

/// The weights a route may have, as nginx takes them.
pub const WEIGHTS: std::ops::RangeInclusive<u32> = 1..=1000;

/// The weight a route command sets: `weight` must name one; the others set 1 without one.
/// The one rule the controller, the palette and `ctl route` apply.
pub fn route_weight(verb: RouteVerb, weight: Option<u32>) -> Result<u32, String> {
    let (low, high) = (WEIGHTS.start(), WEIGHTS.end());
    let weight = match (verb, weight) {
        (RouteVerb::Weight, None) => return Err(format!("route weight needs a weight ({low} to {high})")),
        (_, weight) => weight.unwrap_or(1),
    };
    match WEIGHTS.contains(&weight) {
        true => Ok(weight),
        false => Err(format!("weight must be {low} to {high}, not {weight}")),
    }
}

/// A DNS domain for an app's virtual host: labels of `a-z 0-9 -` joined by dots.
pub fn domain(value: &str) -> Result<(), String> {
    let labels_ok = value.split('.').all(|l| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if (1..=253).contains(&value.len()) && labels_ok {
        Ok(())
    } else {
        Err(format!(
            "domain {} is not valid: use dot-separated labels of lowercase letters, digits or '-'",
            quoted(value)
        ))
    }
}

/// A tag: the same rules as a name.
pub fn tag(value: &str) -> Result<(), String> {
    name("tag", value)
}

/// A container image reference, as Docker reads it: `[registry[:port]/]name[:tag][@sha256:...]`
/// (`image::ImageRef`).
pub fn image(value: &str) -> Result<(), String> {
    super::image::ImageRef::parse(value).map(|_| ())
}

/// A memory size in MB: `512`, `512M`, `512MB`, `2G`, `2GiB`.
pub fn memory_mb(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: u64 =
        num.parse().map_err(|_| format!("{} is not a memory size: use e.g. 512M or 2G", quoted(s)))?;
    let mb = match unit {
        "" | "M" | "MB" | "MIB" => Some(value),
        "G" | "GB" | "GIB" => value.checked_mul(1024),
        "K" | "KB" | "KIB" => Some(value / 1024),
        _ => return Err(format!("{}: unknown unit {}; use K, M or G", quoted(s), quoted(unit))),
    };
    match mb {
        Some(mb) if mb >= 4 => Ok(mb),
        _ => Err(format!("{} is not a usable memory limit: at least 4M", quoted(s))),
    }
}

/// CPU cores: a positive number up to 256, e.g. `0.5`.
pub fn cpu(s: &str) -> Result<f32, String> {
    let v: f32 =
        s.trim().parse().map_err(|_| format!("{} is not a number of CPU cores, e.g. 0.5", quoted(s)))?;
    if v.is_finite() && v > 0.0 && v <= 256.0 {
        Ok(v)
    } else {
        Err(format!("{v} cores is out of range: use more than 0, at most 256"))
    }
}

/// A container's limits: more than 0 and at most 256 cores, 4 MB to 4 TB of memory. The
/// controller checks them on a deploy, and the agent again on every instance it is asked
/// to run: a container without limits could take its whole host.
pub fn limits(cpu: f32, memory_mb: u64) -> Result<(), String> {
    if !(cpu > 0.0 && cpu <= 256.0) {
        return Err(format!("cpu must be more than 0 and at most 256 cores, not {cpu}"));
    }
    if !(4..=4_194_304).contains(&memory_mb) {
        return Err(format!("memory must be 4 MB to 4 TB, not {memory_mb} MB"));
    }
    Ok(())
}

/// The most arguments a command may have, and the most bytes of one argument.
pub const MAX_CMD_ARGS: usize = 64;
pub const MAX_CMD_ARG: usize = 1024;
/// The most bytes of a whole command, all arguments together.
pub const MAX_CMD_BYTES: usize = 4096;
/// The most bytes of a path (a mount, a health check path).
pub const MAX_PATH: usize = 255;
/// The most entries of a list of names (tags, AZs).
pub const MAX_LIST: usize = 32;

/// A run spec: its command, mount, health check and artifact. They travel in events (an
/// app's spec is in every `APP_UPDATED`), so each is bounded as well as checked.
pub fn run(run: &RunSpec) -> Result<(), String> {
    if let Some(cmd) = &run.cmd {
        if cmd.len() > MAX_CMD_ARGS {
            return Err(format!("cmd has {} arguments, more than {MAX_CMD_ARGS}", cmd.len()));
        }
        let total: usize = cmd.iter().map(String::len).sum();
        if total > MAX_CMD_BYTES {
            return Err(format!("cmd is {total} bytes, more than {MAX_CMD_BYTES}"));
        }
        if let Some(arg) = cmd.iter().find(|a| a.len() > MAX_CMD_ARG || a.contains('\0')) {
            return Err(format!(
                "cmd argument {} is not valid: at most {MAX_CMD_ARG} bytes, no NUL",
                quoted(arg)
            ));
        }
    }
    path("mount", &run.mount)?;
    if let HealthCheck::Http { path: p } = &run.health {
        path("health check path", p)?;
    }
    env(&run.env)?;
    secret_refs(&run.secrets)?;
    if let Some(k) = run.env.keys().find(|k| run.secrets.contains_key(*k)) {
        return Err(format!("{k} is both an env variable and a secret: unset one of them"));
    }
    if let Some(art) = &run.artifact {
        if art.name.is_empty() || art.name.len() > 128 || !art.name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "artifact name {} is not valid: 1-128 printable characters",
                quoted(&art.name)
            ));
        }
        if art.sha256.len() != 64 || !art.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("artifact {} has no valid sha256", art.name));
        }
    }
    Ok(())
}

/// The most variables of an app's environment, and the most secrets.
pub const MAX_ENV: usize = 64;
pub const MAX_SECRETS: usize = 32;
/// The most bytes of a variable's or secret's name.
pub const MAX_ENV_NAME: usize = 128;
/// The most bytes of one env value, and of all names and values together: the spec
/// travels in every `APP_UPDATED` and every agent's deploy command.
pub const MAX_ENV_VALUE: usize = 4096;
pub const MAX_ENV_BYTES: usize = 16 * 1024;
/// The most bytes of a secret's value. It never travels in an event, only in the
/// `secret.set` command and the `qd_secrets` bucket.
pub const MAX_SECRET_VALUE: usize = 32 * 1024;

/// A variable's (or secret's) name: `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_ENV_NAME`]
/// bytes: what a shell takes, and one token of a `qd_secrets` key.
pub fn env_name(what: &str, value: &str) -> Result<(), String> {
    let ok_start = value.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_chars = value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok_start && ok_chars && value.len() <= MAX_ENV_NAME {
        Ok(())
    } else {
        Err(format!(
            "{what} name {} is not valid: use letters, digits and '_', not starting with a digit, at most {MAX_ENV_NAME} bytes",
            quoted(value)
        ))
    }
}

/// An app's environment: at most [`MAX_ENV`] variables, each name valid, each value at
/// most [`MAX_ENV_VALUE`] bytes without NUL, [`MAX_ENV_BYTES`] in all.
pub fn env(vars: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    if vars.len() > MAX_ENV {
        return Err(format!("{} env variables given, more than {MAX_ENV}", vars.len()));
    }
    for (k, v) in vars {
        env_name("env variable", k)?;
        if v.len() > MAX_ENV_VALUE || v.contains('\0') {
            return Err(format!(
                "env variable {k}'s value is not valid: at most {MAX_ENV_VALUE} bytes, no NUL"
            ));
        }
    }
    let total: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ENV_BYTES {
        return Err(format!("the env variables are {total} bytes in all, more than {MAX_ENV_BYTES}"));
    }
    Ok(())
}

/// An app's secret references: at most [`MAX_SECRETS`], each name valid, each version at
/// least 1 and each sha8 8 lowercase hex characters. A secret and a variable may not share
/// a name (`env_and_secrets`).
pub fn secret_refs(refs: &std::collections::BTreeMap<String, SecretRef>) -> Result<(), String> {
    if refs.len() > MAX_SECRETS {
        return Err(format!("{} secrets given, more than {MAX_SECRETS}", refs.len()));
    }
    for (k, r) in refs {
        env_name("secret", k)?;
        let hex = r.sha8.len() == 8 && r.sha8.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if r.version == 0 || !hex {
            return Err(format!(
                "secret {k}'s reference is not valid: a version from 1 and 8 lowercase hex of sha256"
            ));
        }
    }
    Ok(())
}

/// A secret's value, checked without ever quoting it: at most [`MAX_SECRET_VALUE`] bytes,
/// not empty, no NUL (a container's environment cannot hold one).
pub fn secret_value(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_SECRET_VALUE || value.contains('\0') {
        return Err(format!(
            "secret {name}'s value is not valid: 1 to {MAX_SECRET_VALUE} bytes, no NUL ({} bytes given)",
            value.len()
        ));
    }
    Ok(())
}

/// `K=V` as typed (`ctl deploy --env`, `ctl env set`): the name checked, the value as it
/// is (it may hold `=`, and be empty).
pub fn env_assignment(typed: &str) -> Result<(String, String), String> {
    let Some((k, v)) = typed.split_once('=') else {
        return Err(format!("{} is not K=V: give a name, '=' and a value", quoted(typed)));
    };
    env_name("env variable", k)?;
    if v.len() > MAX_ENV_VALUE || v.contains('\0') {
        return Err(format!("env variable {k}'s value is not valid: at most {MAX_ENV_VALUE} bytes, no NUL"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The wizard's env field: `K=V` assignments separated by commas or spaces (a value with
/// either is set with `ctl env set`), the whole map checked as the controller checks it.
pub fn env_list(typed: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut vars = std::collections::BTreeMap::new();
    for part in typed.split([',', ' ']).filter(|p| !p.is_empty()) {
        let (k, v) = env_assignment(part)?;
        if vars.insert(k.clone(), v).is_some() {
            return Err(format!("env variable {k} is given twice"));
        }
    }
    env(&vars)?;
    Ok(vars)
}

/// An absolute path without `..` or whitespace, at most [`MAX_PATH`] bytes.
fn path(what: &str, value: &str) -> Result<(), String> {
    let ok = value.len() <= MAX_PATH
        && value.starts_with('/')
        && !value.contains("..")
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {} must be an absolute path of at most {MAX_PATH} bytes without '..' or spaces",
            quoted(value)
        ))
    }
}

/// A list of names (tags, AZs): at most [`MAX_LIST`], each one valid.
pub fn names(what: &str, values: &[String]) -> Result<(), String> {
    if values.len() > MAX_LIST {
        return Err(format!("{} {what}s given, more than {MAX_LIST}", values.len()));
    }
    values.iter().try_for_each(|v| name(what, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_anything_that_could_escape_a_subject_or_config() {
        assert!(name("app", "shop-web").is_ok());
        for bad in ["", "Shop", "a.b", "a b", "a;b", "-a", "a{b}", &"x".repeat(64)] {
            assert!(name("app", bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_instance_bound_is_one_to_max_and_its_hint_says_so() {
        assert!(instances(1).is_ok() && instances(MAX_INSTANCES).is_ok());
        assert_eq!(instances(0), Err("instances must be 1 to 500, not 0".into()));
        assert!(instances(MAX_INSTANCES + 1).is_err());
        assert_eq!(INSTANCES_RANGE, format!("1-{MAX_INSTANCES}"));
    }

    #[test]
    fn instance_ids_are_one_safe_path_component() {
        assert!(instance_id("shop-web-0-1a2b").is_ok());
        assert!(instance_id(&format!("{}-4294967295-ffff", "a".repeat(63))).is_ok(), "the longest made");
        for bad in ["", "..", "../../../../tmp/x", "a/b", "-a", "a b", "A-0-1", &"x".repeat(101)] {
            assert!(instance_id(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn backends_need_ipv4_and_a_real_port() {
        assert!(backend("10.101.1.31:8080").is_ok());
        for bad in ["10.101.1.31", "10.101.1.31:0", "10.101.1.300:80", "host:80", ":80", "1.2.3.4:70000"] {
            assert!(backend(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn domains_refuse_spaces_and_braces() {
        assert!(domain("shop-web.local").is_ok());
        for bad in ["", "a b.local", "a{}.local", "a..b", "-a.local", "a;.local"] {
            assert!(domain(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn cut_keeps_short_values_and_marks_what_it_left_out() {
        assert_eq!(cut("shop-web", 8), "shop-web");
        let long = "x".repeat(400_000);
        assert_eq!(cut(&long, 10), format!("xxxxxxxxxx…[cut: {} bytes]", 400_000 - 10));
        // On a character boundary: "é" is two bytes, so 3 bytes keep "aé".
        assert_eq!(cut("aééé", 4), "aé…[cut: 4 bytes]");
        let err = name("app", &long).unwrap_err();
        assert!(err.len() < 300, "the error quotes a cut value: {} bytes", err.len());
        assert!(err.contains("[cut: 399904 bytes]"), "{err}");
    }

    #[test]
    fn run_specs_are_bounded() {
        let ok = RunSpec { cmd: Some(vec!["java".into(), "-jar".into()]), ..RunSpec::default() };
        assert!(run(&ok).is_ok());
        let many = RunSpec { cmd: Some(vec!["a".into(); MAX_CMD_ARGS + 1]), ..RunSpec::default() };
        assert!(run(&many).unwrap_err().contains("arguments"));
        let long = RunSpec { cmd: Some(vec!["a".repeat(MAX_CMD_ARG + 1)]), ..RunSpec::default() };
        assert!(run(&long).unwrap_err().contains("cmd argument"));
        let big = RunSpec { cmd: Some(vec!["a".repeat(MAX_CMD_ARG); 5]), ..RunSpec::default() };
        assert!(run(&big).unwrap_err().contains("bytes, more than"));
        let health = RunSpec {
            health: HealthCheck::Http { path: format!("/{}", "p".repeat(300)) },
            ..RunSpec::default()
        };
        assert!(run(&health).unwrap_err().contains("health check path"));
        let mount = RunSpec { mount: "/a b".into(), ..RunSpec::default() };
        assert!(run(&mount).unwrap_err().contains("mount"));
        assert!(names("tag", &vec!["a".to_string(); MAX_LIST + 1]).is_err());
    }

    #[test]
    fn versions_and_images() {
        assert!(version("1.4.2").is_ok());
        assert!(version("1 4").is_err());
        assert!(image("tomcat:8").is_ok());
        assert!(image("bad image").is_err());
    }

    #[test]
    fn a_route_weight_is_named_for_weight_and_in_range_for_all() {
        use super::RouteVerb;
        assert_eq!(route_weight(RouteVerb::Add, None), Ok(1));
        assert_eq!(route_weight(RouteVerb::Add, Some(1000)), Ok(1000));
        assert_eq!(route_weight(RouteVerb::Weight, Some(7)), Ok(7));
        assert_eq!(
            route_weight(RouteVerb::Weight, None),
            Err("route weight needs a weight (1 to 1000)".into())
        );
        assert_eq!(route_weight(RouteVerb::Enable, Some(0)), Err("weight must be 1 to 1000, not 0".into()));
        assert!(route_weight(RouteVerb::Add, Some(1001)).is_err());
    }

    #[test]
    fn env_names_values_and_bounds_are_checked_and_errors_name_the_key() {
        use std::collections::BTreeMap;
        for ok in ["A", "_x", "JAVA_OPTS", "a1_B2"] {
            assert!(env_name("env variable", ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "A.B", "é", &"A".repeat(MAX_ENV_NAME + 1)] {
            let err = env_name("env variable", bad).unwrap_err();
            assert!(err.contains("env variable name"), "{bad:?}: {err}");
        }
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(env(&one("PORT", "8080")).is_ok());
        assert!(env(&one("BAD-NAME", "x")).unwrap_err().contains("\"BAD-NAME\""));
        assert!(env(&one("NUL", "a\0b")).unwrap_err().contains("NUL's value"));
        assert!(env(&one("BIG", &"v".repeat(MAX_ENV_VALUE + 1))).unwrap_err().contains("BIG's value"));
        let many: BTreeMap<String, String> =
            (0..=MAX_ENV).map(|i| (format!("V{i}"), String::new())).collect();
        assert!(env(&many).unwrap_err().contains("more than"));
        let heavy: BTreeMap<String, String> =
            (0..8).map(|i| (format!("V{i}"), "v".repeat(MAX_ENV_VALUE))).collect();
        assert!(env(&heavy).unwrap_err().contains("in all"));
        let both = RunSpec {
            env: one("DB_PASS", "x"),
            secrets: BTreeMap::from([("DB_PASS".into(), SecretRef { version: 1, sha8: "0123abcd".into() })]),
            ..RunSpec::default()
        };
        assert!(run(&both).unwrap_err().contains("DB_PASS is both"));
    }

    #[test]
    fn secret_refs_and_values_are_checked_without_quoting_the_value() {
        use std::collections::BTreeMap;
        let r = |version, sha8: &str| {
            BTreeMap::from([("K".to_string(), SecretRef { version, sha8: sha8.into() })])
        };
        assert!(secret_refs(&r(1, "0123abcd")).is_ok());
        assert!(secret_refs(&r(0, "0123abcd")).is_err());
        assert!(secret_refs(&r(1, "0123ABCD")).is_err());
        assert!(secret_refs(&r(1, "0123abc")).is_err());
        let err = secret_value("DB_PASS", "hunter2\0").unwrap_err();
        assert!(err.contains("DB_PASS") && !err.contains("hunter2"), "{err}");
        assert!(secret_value("K", "").is_err());
        assert!(secret_value("K", &"v".repeat(MAX_SECRET_VALUE + 1)).is_err());
        assert!(secret_value("K", "s3cret").is_ok());
    }

    #[test]
    fn env_assignments_and_the_wizard_list() {
        assert_eq!(env_assignment("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(env_assignment("EMPTY="), Ok(("EMPTY".into(), String::new())));
        assert!(env_assignment("NOVALUE").unwrap_err().contains("not K=V"));
        assert!(env_assignment("1X=y").unwrap_err().contains("\"1X\""));
        let list = env_list("A=1, B=2 C=3").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list["B"], "2");
        assert!(env_list("").unwrap().is_empty());
        assert!(env_list("A=1,A=2").unwrap_err().contains("twice"));
        assert!(env_list("A=1,b-c=2").is_err());
    }
}
