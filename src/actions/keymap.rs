//! The keymap is data: defaults embedded from `keymap.toml`, one or two keys per action.
//! The help overlay is generated from it, so the two cannot drift.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use toml::Spanned;

use super::{Action, Panel};
use crate::config_file::{self, ConfigError};

const DEFAULT_KEYMAP: &str = include_str!("keymap.toml");

/// Every bindable action, its name in keymap files and its help text, in help order.
const TABLE: [(Action, &str, &str); 41] = [
    (Action::Help, "help", "show this help"),
    (Action::Palette, "palette", "command palette"),
    (Action::Filter, "filter", "filter (regex, !inverts)"),
    (Action::Quit, "quit", "quit"),
    (Action::ShowPanel(Panel::Hosts), "hosts", "Hosts panel"),
    (Action::ShowPanel(Panel::Instances), "instances", "Instances panel"),
    (Action::ShowPanel(Panel::Routes), "routes", "Routes panel"),
    (Action::ShowPanel(Panel::Events), "events", "Events panel"),
    (Action::ShowPanel(Panel::Audit), "audit", "Audit panel"),
    (Action::ShowPanel(Panel::Apps), "apps", "Apps panel"),
    (Action::ShowPanel(Panel::Alerts), "alerts", "Alerts panel"),
    (Action::NextPanel, "next_panel", "next panel"),
    (Action::PrevPanel, "prev_panel", "previous panel"),
    (Action::Up, "up", "move up"),
    (Action::Down, "down", "move down"),
    (Action::PageUp, "page_up", "page up"),
    (Action::PageDown, "page_down", "page down"),
    (Action::Top, "top", "first row"),
    (Action::Bottom, "bottom", "last row"),
    (Action::Detail, "detail", "detail; alert: its subject"),
    (Action::Back, "back", "close/back/clear filter"),
    (Action::Deploy, "deploy", "guided deploy (wizard)"),
    (Action::Restart, "restart", "restart (confirmed)"),
    (Action::AddRoute, "add_route", "insert a route (form)"),
    (Action::Ack, "ack", "ack alert (confirmed)"),
    (Action::Remove, "remove", "remove route (confirmed)"),
    (Action::ToggleRoute, "toggle_route", "route on/off (confirmed)"),
    (Action::Weight, "weight", "route weight (form)"),
    (Action::Logs, "logs", "logs; app or route: merged"),
    (Action::Forward, "port_forward", "port-forward on/off"),
    (Action::Shell, "shell", "shell in the instance"),
    (Action::Sort, "sort", "sort; Shift+letter: column"),
    (Action::SortPrev, "sort_prev", "sort: previous column"),
    (Action::Mark, "mark", "mark/unmark, move down"),
    (Action::Copy, "copy", "copy id (OSC 52)"),
    (Action::Mouse, "mouse", "mouse capture on/off"),
    (Action::Cordon, "cordon", "cordon on/off (confirmed)"),
    (Action::Drain, "drain", "drain host (confirmed)"),
    (Action::ScaleUp, "scale_up", "scale app +1 (confirmed)"),
    (Action::ScaleDown, "scale_down", "scale app -1 (confirmed)"),
    (Action::Note, "note", "note for the timeline"),
];

/// Every bindable action, in help order.
pub const BINDABLE: [Action; 41] = {
    let mut all = [Action::Help; 41];
    let mut i = 0;
    while i < TABLE.len() {
        all[i] = TABLE[i].0;
        i += 1;
    }
    all
};

impl Action {
    fn row(self) -> Option<&'static (Action, &'static str, &'static str)> {
        TABLE.iter().find(|(b, _, _)| *b == self)
    }

    /// The name used in keymap files; `?` for an action no key is bound to (text input,
    /// clicks).
    pub fn name(self) -> &'static str {
        self.row().map_or("?", |r| r.1)
    }

    /// Its line in the help.
    pub fn describe(self) -> &'static str {
        self.row().map_or("?", |r| r.2)
    }

    fn from_name(name: &str) -> Option<Action> {
        TABLE.iter().find(|(_, n, _)| *n == name).map(|(b, _, _)| *b)
    }
}

/// A key as written in keymap files: `q`, `?`, `enter`, `shift-tab`, `ctrl-c`, `pagedown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub fn parse(s: &str) -> Result<Key, String> {
        let (ctrl, rest) = match s.strip_prefix("ctrl-") {
            Some(r) => (true, r),
            None => (false, s),
        };
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            one if one.chars().count() == 1 => KeyCode::Char(one.chars().next().unwrap_or(' ')),
            _ => return Err(format!("unknown key {s:?}")),
        };
        Ok(Key { code, ctrl })
    }

    pub fn from_event(ev: &KeyEvent) -> Key {
        Key { code: ev.code, ctrl: ev.modifiers.contains(KeyModifiers::CONTROL) }
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Enter => "Enter".to_string(),
            KeyCode::Esc => "Esc".to_string(),
            KeyCode::Tab => "Tab".to_string(),
            KeyCode::BackTab => "Shift-Tab".to_string(),
            KeyCode::Up => "↑".to_string(),
            KeyCode::Down => "↓".to_string(),
            KeyCode::Left => "←".to_string(),
            KeyCode::Right => "→".to_string(),
            KeyCode::PageUp => "PgUp".to_string(),
            KeyCode::PageDown => "PgDn".to_string(),
            KeyCode::Home => "Home".to_string(),
            KeyCode::End => "End".to_string(),
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            other => format!("{other:?}"),
        };
        if self.ctrl { format!("Ctrl-{base}") } else { base }
    }
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Action, Vec<Key>)>,
    lookup: HashMap<Key, Action>,
    /// `keys_for`'s answers, made once: the footer asks for them on every frame.
    labels: HashMap<Action, String>,
}

/// A keymap file, with where each name and key was written, for errors that give the line.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    keys: HashMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>,
}

impl Keymap {
    /// The built-in keymap. It is tested, so failing to parse it is a build bug.
    pub fn defaults() -> Keymap {
        match Keymap::parse(DEFAULT_KEYMAP, None) {
            Ok(k) => k,
            Err(e) => panic!("the built-in keymap is invalid: {e}"),
        }
    }

    /// Parses a keymap file over `base` (or from scratch). Each action takes one or two
    /// keys; a key bound to two actions, an unknown action or an unknown key is an error
    /// that names it, with its line (and, for a misspelt action, the nearest one).
    pub fn parse(text: &str, base: Option<&Keymap>) -> Result<Keymap, ConfigError> {
        let file: KeymapFile = config_file::parse(text, &["keys"])?;
        let mut bindings: Vec<(Action, Vec<Key>)> = base.map(|b| b.bindings.clone()).unwrap_or_default();
        let mut names: Vec<&Spanned<String>> = file.keys.keys().collect();
        names.sort_by_key(|n| n.span().start);
        // Where each key was bound, for a clash's line.
        let mut written: HashMap<Key, std::ops::Range<usize>> = HashMap::new();
        for name in names {
            let action = Action::from_name(name.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = TABLE.iter().map(|(_, n, _)| *n).collect();
                ConfigError::unknown(text, name.span(), "action", name.get_ref(), &known)
            })?;
            let spec = &file.keys[name];
            if spec.get_ref().is_empty() || spec.get_ref().len() > 2 {
                return Err(ConfigError::at(
                    text,
                    spec.span(),
                    format!("{} takes one or two keys, not {}", name.get_ref(), spec.get_ref().len()),
                ));
            }
            let keys = spec
                .get_ref()
                .iter()
                .map(|k| {
                    let key = Key::parse(k.get_ref())
                        .map_err(|e| ConfigError::at(text, k.span(), format!("{}: {e}", name.get_ref())))?;
                    written.insert(key, k.span());
                    Ok(key)
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            match bindings.iter_mut().find(|(b, _)| *b == action) {
                Some(slot) => slot.1 = keys,
                None => bindings.push((action, keys)),
            }
        }
        let mut lookup = HashMap::new();
        for (action, keys) in &bindings {
            for key in keys {
                if let Some(other) = lookup.insert(*key, *action)
                    && other != *action
                {
                    let message =
                        format!("{} is bound to both {} and {}", key.label(), other.name(), action.name());
                    return Err(match written.get(key) {
                        Some(span) => ConfigError::at(text, span.clone(), message),
                        None => ConfigError { line: None, message },
                    });
                }
            }
        }
        bindings.sort_by_key(|(b, _)| BINDABLE.iter().position(|x| x == b));
        let labels = bindings
            .iter()
            .map(|(b, keys)| (*b, keys.iter().map(Key::label).collect::<Vec<_>>().join("/")))
            .collect();
        Ok(Keymap { bindings, lookup, labels })
    }

    pub fn action_for(&self, ev: &KeyEvent) -> Option<Action> {
        if ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(Action::Quit);
        }
        // SHIFT is ignored: terminals send `G` as Char('G') with SHIFT, and Shift-Tab as
        // BackTab.
        self.lookup.get(&Key::from_event(ev)).copied().or_else(|| sort_jump(ev))
    }

    /// The bindings in help order.
    pub fn bindings(&self) -> &[(Action, Vec<Key>)] {
        &self.bindings
    }

    /// The label of the keys for one action, e.g. `j/↓`.
    pub fn keys_for(&self, action: Action) -> String {
        self.label_for(action).to_string()
    }

    /// The same, borrowed.
    pub fn label_for(&self, action: Action) -> &str {
        self.labels.get(&action).map(String::as_str).unwrap_or_default()
    }
}

/// An unbound Shift+letter (or `#`, Shift+3) sorts by the column it starts, as k9s
/// does: bound keys (`G`) keep their action.
fn sort_jump(ev: &KeyEvent) -> Option<Action> {
    let plain = !ev.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    match ev.code {
        KeyCode::Char(c) if plain && (c.is_ascii_uppercase() || c == '#') => Some(Action::SortBy(c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_every_action_and_the_issue_keys() {
        let k = Keymap::defaults();
        for b in BINDABLE {
            assert!(!k.keys_for(b).is_empty(), "{} is unbound", b.name());
        }
        assert_eq!(k.keys_for(Action::Restart), "r");
        assert_eq!(k.keys_for(Action::Down), "j/↓");
        assert_eq!(k.keys_for(Action::ShowPanel(Panel::Hosts)), "1");
        assert_eq!(k.keys_for(Action::PrevPanel), "Shift-Tab");
    }

    #[test]
    fn the_readme_lists_every_default_key() {
        let readme = include_str!("../../README.md");
        for (action, keys) in Keymap::defaults().bindings() {
            for key in keys {
                let label = format!("`{}`", key.label());
                assert!(readme.contains(&label), "README lacks {label} ({})", action.name());
            }
        }
    }

    #[test]
    fn an_unbound_shift_letter_sorts_by_its_column_and_bound_ones_keep_their_action() {
        let k = Keymap::defaults();
        let key = |c: char, m: KeyModifiers| KeyEvent::new(KeyCode::Char(c), m);
        assert!(matches!(k.action_for(&key('C', KeyModifiers::SHIFT)), Some(Action::SortBy('C'))));
        assert!(matches!(k.action_for(&key('#', KeyModifiers::SHIFT)), Some(Action::SortBy('#'))));
        assert!(matches!(k.action_for(&key('G', KeyModifiers::SHIFT)), Some(Action::Bottom)));
        assert!(matches!(k.action_for(&key('<', KeyModifiers::SHIFT)), Some(Action::SortPrev)));
        assert!(k.action_for(&key('C', KeyModifiers::ALT)).is_none());
        assert!(k.action_for(&key('z', KeyModifiers::NONE)).is_none());
    }

    #[test]
    fn a_user_file_remaps_over_the_defaults() {
        let k = Keymap::parse("[keys]\nrestart = [\"R\", \"ctrl-r\"]\n", Some(&Keymap::defaults())).unwrap();
        assert_eq!(k.keys_for(Action::Restart), "R/Ctrl-r");
        assert_eq!(k.keys_for(Action::Quit), "q");
    }

    #[test]
    fn clashes_and_unknowns_are_named() {
        let base = Keymap::defaults();
        let err = Keymap::parse("[keys]\nrestart = [\"q\"]\n", Some(&base)).unwrap_err().to_string();
        assert_eq!(err, "line 2: q is bound to both quit and restart");
        let err = Keymap::parse("[keys]\nfly = [\"f\"]\n", Some(&base)).unwrap_err().to_string();
        assert!(err.starts_with("line 2: unknown action 'fly' (known: help, palette"), "{err}");
        let err = Keymap::parse("[keys]\nquit = [\"nope\"]\n", Some(&base)).unwrap_err().to_string();
        assert_eq!(err, "line 2: quit: unknown key \"nope\"");
        let err = Keymap::parse("[keys]\nquit = [\"a\", \"b\", \"c\"]\n", Some(&base)).unwrap_err();
        assert!(err.to_string().contains("one or two keys"), "{err}");
    }

    #[test]
    fn a_misspelt_action_or_table_gets_the_nearest_name_and_a_parse_error_its_line() {
        let base = Keymap::defaults();
        let err = Keymap::parse("[keys]\nquit = [\"q\"]\nrestrat = [\"R\"]\n", Some(&base)).unwrap_err();
        assert_eq!(err.to_string(), "line 3: unknown action 'restrat' — did you mean 'restart'?");
        let err = Keymap::parse("[kyes]\nquit = [\"q\"]\n", Some(&base)).unwrap_err();
        assert_eq!(err.to_string(), "line 1: unknown key 'kyes' — did you mean 'keys'?");
        let err = Keymap::parse("[keys]\n\nquit = [\"q\"\n", Some(&base)).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
    }
}
