//! Contexts: named control planes in `~/.config/quarterdeck/contexts.toml` (a NATS URL,
//! credentials, a colour, whether it is production), so an operator picks a plane by name
//! (`--context staging`, `:context prod`) and the header always says which one is on
//! screen. Pure: the caller reads the file and names it; the colour is checked here and
//! drawn by the header.
//!
//! ```toml
//! current = "staging"            # optional: the context used when none is named
//!
//! [contexts.staging]
//! nats = "nats://127.0.0.1:4222" # required; a cluster's URLs separated by commas
//! nkey = "~/.config/quarterdeck/staging.seed"   # optional, as --nkey takes it
//! creds = "staging.creds"        # optional, as --creds takes it (relative: to this file)
//! colour = "yellow"              # optional: a colour name, 0-255 or #rrggbb
//! production = false             # optional: true asks for a typed name on every change
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::style::Color;
use serde::Deserialize;
use toml::Spanned;

use crate::config_file::{self, ConfigError};

/// The name the embedded sandbox goes by in the header; no context may take it.
pub const SANDBOX: &str = "sandbox";

/// One named plane, resolved: paths expanded, the colour parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub name: String,
    /// As `--nats` takes it.
    pub nats: String,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
    /// The header draws the name in it; `None`: the theme's header colour.
    pub colour: Option<Color>,
    pub production: bool,
}

/// Every context of the file, by name, and the one to use when none is named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contexts {
    /// The file they came from (for messages), if any.
    pub path: Option<PathBuf>,
    pub list: Vec<Context>,
    pub current: Option<String>,
}

impl Contexts {
    pub fn get(&self, name: &str) -> Option<&Context> {
        self.list.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|c| c.name.clone()).collect()
    }

    /// The named context, or an error listing the known names.
    pub fn pick(&self, name: &str) -> Result<&Context, String> {
        self.get(name).ok_or_else(|| {
            let file = self.path.as_ref().map_or_else(String::new, |p| format!(" in {}", p.display()));
            match self.list.is_empty() {
                true => format!("no context {name:?}{file}: no contexts are defined"),
                false => format!("no context {name:?}{file}; contexts: {}", self.names().join(", ")),
            }
        })
    }
}

/// The file's top-level keys and a context's keys, for "did you mean".
const KNOWN: [&str; 8] = ["current", "contexts", "nats", "creds", "nkey", "colour", "color", "production"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    current: Option<Spanned<String>>,
    #[serde(default)]
    contexts: BTreeMap<Spanned<String>, Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    nats: Option<Spanned<String>>,
    creds: Option<Spanned<String>>,
    nkey: Option<Spanned<String>>,
    #[serde(alias = "color")]
    colour: Option<Spanned<String>>,
    #[serde(default)]
    production: bool,
}

/// `contexts.toml`'s text as its contexts, or what is wrong in it, with its line (the caller
/// names the file). Relative paths are relative to `dir`, the file's folder; `~/` is `home`.
pub fn parse(text: &str, dir: &Path, home: Option<&Path>) -> Result<Contexts, ConfigError> {
    let file: File = config_file::parse(text, &KNOWN)?;
    let mut list = Vec::with_capacity(file.contexts.len());
    for (name, entry) in file.contexts {
        let span = name.span();
        let name = name.into_inner();
        check_name(&name).map_err(|m| ConfigError::at(text, span.clone(), m))?;
        let entry_span = entry.span();
        let entry = entry.into_inner();
        let Some(nats) = entry.nats else {
            return Err(ConfigError::at(
                text,
                entry_span,
                format!("context {name:?} has no nats URL: add nats = \"nats://HOST:PORT\""),
            ));
        };
        let nats_span = nats.span();
        let nats = nats.into_inner().trim().to_string();
        check_url(&nats).map_err(|m| ConfigError::at(text, nats_span, format!("context {name:?}: {m}")))?;
        let path = |p: Option<Spanned<String>>, key: &str| -> Result<Option<PathBuf>, ConfigError> {
            let Some(p) = p else { return Ok(None) };
            let span = p.span();
            expand(p.get_ref(), dir, home)
                .map(Some)
                .map_err(|m| ConfigError::at(text, span, format!("context {name:?}: {key}: {m}")))
        };
        let creds = path(entry.creds, "creds")?;
        let nkey = path(entry.nkey, "nkey")?;
        let colour = match entry.colour {
            None => None,
            Some(c) => Some(colour(c.get_ref()).map_err(|m| ConfigError::at(text, c.span(), m))?),
        };
        list.push(Context { name, nats, creds, nkey, colour, production: entry.production });
    }
    let current = match file.current {
        None => None,
        Some(c) if list.iter().any(|x| x.name == *c.get_ref()) => Some(c.into_inner()),
        Some(c) => {
            let names: Vec<&str> = list.iter().map(|x| x.name.as_str()).collect();
            return Err(ConfigError::unknown(text, c.span(), "current context", c.get_ref(), &names));
        }
    };
    Ok(Contexts { path: None, list, current })
}

/// Reads and parses the file at `path`; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Contexts>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut contexts = parse(&text, dir, home.as_deref()).map_err(|e| format!("{}: {e}", path.display()))?;
    contexts.path = Some(path.to_path_buf());
    Ok(Some(contexts))
}

/// A name as the header and `:context` show it: letters, digits, `.`, `_`, `-`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("context name {name:?} must be 1 to 63 characters"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("context name {name:?} has {bad:?}: use letters, digits, '.', '_' and '-'"));
    }
    if name == SANDBOX {
        return Err(format!("{SANDBOX:?} is the embedded sandbox's name: call this context something else"));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("nats is empty: give a URL such as nats://127.0.0.1:4222".into());
    }
    for one in url.split(',').map(str::trim) {
        if one.is_empty() || one.contains(char::is_whitespace) {
            return Err(format!("nats {url:?} is not a URL or comma-separated URLs"));
        }
        if let Some((scheme, _)) = one.split_once("://")
            && !matches!(scheme, "nats" | "tls" | "ws" | "wss")
        {
            return Err(format!("nats {one:?}: unknown scheme {scheme:?} (use nats, tls, ws or wss)"));
        }
    }
    Ok(())
}

/// `~/x` under `home`; a relative path under `dir`.
fn expand(path: &str, dir: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err("the path is empty".into());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return home
            .map(|h| h.join(rest))
            .ok_or_else(|| format!("{path:?} starts with ~ but HOME is not set"));
    }
    let p = Path::new(path);
    Ok(if p.is_absolute() { p.to_path_buf() } else { dir.join(p) })
}

/// The colour names the header can draw a context in, for "did you mean".
const COLOUR_NAMES: [&str; 16] = [
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "darkgray",
    "lightred",
    "lightgreen",
    "lightyellow",
    "lightblue",
    "lightmagenta",
    "lightcyan",
    "white",
];

/// A colour as themes take them (a name, 0-255, `#rrggbb`), or what is wrong with it.
fn colour(value: &str) -> Result<Color, String> {
    crate::theme::parse_color(value).ok_or_else(|| {
        let base = format!("colour {value:?} is not a colour: use a name, 0-255 or #rrggbb");
        match config_file::nearest(value, &COLOUR_NAMES) {
            Some(near) => format!("{base} — did you mean '{near}'?"),
            None => base,
        }
    })
}

/// What the header calls a plane reached by a bare `--nats URL`: the first server's host
/// (never its user or password), or `nats`.
pub fn label_of_url(url: &str) -> String {
    let first = url.split(',').next().unwrap_or_default().trim();
    let rest = first.split_once("://").map_or(first, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    // `[::1]:4222` keeps its brackets; `host:4222` loses its port.
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(host, |(h, _)| h),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if host.is_empty() { "nats".into() } else { host.to_string() }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
