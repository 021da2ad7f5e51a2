//! The keymap is data: defaults embedded from `keymap.toml`, one or two keys per action.
//! The help overlay is generated from it, so the two cannot drift.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{Action, Panel};

const DEFAULT_KEYMAP: &str = include_str!("keymap.toml");

/// An action the keymap can bind, with its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bindable {
    Help,
    Quit,
    Hosts,
    Instances,
    Routes,
    Events,
    NextPanel,
    PrevPanel,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Detail,
    Back,
    Deploy,
    Restart,
    AddRoute,
    Remove,
    ToggleRoute,
}

impl Bindable {
    pub const ALL: [Bindable; 21] = [
        Bindable::Help,
        Bindable::Quit,
        Bindable::Hosts,
        Bindable::Instances,
        Bindable::Routes,
        Bindable::Events,
        Bindable::NextPanel,
        Bindable::PrevPanel,
        Bindable::Up,
        Bindable::Down,
        Bindable::PageUp,
        Bindable::PageDown,
        Bindable::Top,
        Bindable::Bottom,
        Bindable::Detail,
        Bindable::Back,
        Bindable::Deploy,
        Bindable::Restart,
        Bindable::AddRoute,
        Bindable::Remove,
        Bindable::ToggleRoute,
    ];

    /// The name used in keymap files.
    pub fn name(self) -> &'static str {
        match self {
            Bindable::Help => "help",
            Bindable::Quit => "quit",
            Bindable::Hosts => "hosts",
            Bindable::Instances => "instances",
            Bindable::Routes => "routes",
            Bindable::Events => "events",
            Bindable::NextPanel => "next_panel",
            Bindable::PrevPanel => "prev_panel",
            Bindable::Up => "up",
            Bindable::Down => "down",
            Bindable::PageUp => "page_up",
            Bindable::PageDown => "page_down",
            Bindable::Top => "top",
            Bindable::Bottom => "bottom",
            Bindable::Detail => "detail",
            Bindable::Back => "back",
            Bindable::Deploy => "deploy",
            Bindable::Restart => "restart",
            Bindable::AddRoute => "add_route",
            Bindable::Remove => "remove",
            Bindable::ToggleRoute => "toggle_route",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Bindable::Help => "show this help",
            Bindable::Quit => "quit",
            Bindable::Hosts => "Hosts panel",
            Bindable::Instances => "Instances panel",
            Bindable::Routes => "Routes panel",
            Bindable::Events => "Events panel",
            Bindable::NextPanel => "next panel",
            Bindable::PrevPanel => "previous panel",
            Bindable::Up => "move up",
            Bindable::Down => "move down",
            Bindable::PageUp => "page up",
            Bindable::PageDown => "page down",
            Bindable::Top => "first row",
            Bindable::Bottom => "last row",
            Bindable::Detail => "detail of the row",
            Bindable::Back => "close / back",
            Bindable::Deploy => "deploy (guided form)",
            Bindable::Restart => "restart (confirmed)",
            Bindable::AddRoute => "add a route",
            Bindable::Remove => "remove route (confirmed)",
            Bindable::ToggleRoute => "route on/off (confirmed)",
        }
    }

    pub fn action(self) -> Action {
        match self {
            Bindable::Help => Action::Help,
            Bindable::Quit => Action::Quit,
            Bindable::Hosts => Action::ShowPanel(Panel::Hosts),
            Bindable::Instances => Action::ShowPanel(Panel::Instances),
            Bindable::Routes => Action::ShowPanel(Panel::Routes),
            Bindable::Events => Action::ShowPanel(Panel::Events),
            Bindable::NextPanel => Action::NextPanel,
            Bindable::PrevPanel => Action::PrevPanel,
            Bindable::Up => Action::Up,
            Bindable::Down => Action::Down,
            Bindable::PageUp => Action::PageUp,
            Bindable::PageDown => Action::PageDown,
            Bindable::Top => Action::Top,
            Bindable::Bottom => Action::Bottom,
            Bindable::Detail => Action::Detail,
            Bindable::Back => Action::Back,
            Bindable::Deploy => Action::Deploy,
            Bindable::Restart => Action::Restart,
            Bindable::AddRoute => Action::AddRoute,
            Bindable::Remove => Action::Remove,
            Bindable::ToggleRoute => Action::ToggleRoute,
        }
    }

    fn from_name(name: &str) -> Option<Bindable> {
        Bindable::ALL.into_iter().find(|b| b.name() == name)
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
    bindings: Vec<(Bindable, Vec<Key>)>,
    lookup: HashMap<Key, Bindable>,
}

#[derive(serde::Deserialize)]
struct KeymapFile {
    keys: HashMap<String, Vec<String>>,
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
    /// that names it.
    pub fn parse(text: &str, base: Option<&Keymap>) -> Result<Keymap, String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| format!("keymap: {e}"))?;
        let mut bindings: Vec<(Bindable, Vec<Key>)> = base.map(|b| b.bindings.clone()).unwrap_or_default();
        let mut names: Vec<&String> = file.keys.keys().collect();
        names.sort();
        for name in names {
            let action =
                Bindable::from_name(name).ok_or_else(|| format!("keymap: unknown action {name:?}"))?;
            let spec = &file.keys[name];
            if spec.is_empty() || spec.len() > 2 {
                return Err(format!("keymap: {name} takes one or two keys, not {}", spec.len()));
            }
            let keys = spec
                .iter()
                .map(|k| Key::parse(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("keymap: {name}: {e}"))?;
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
                    return Err(format!(
                        "keymap: {} is bound to both {} and {}",
                        key.label(),
                        other.name(),
                        action.name()
                    ));
                }
            }
        }
        bindings.sort_by_key(|(b, _)| Bindable::ALL.iter().position(|x| x == b));
        Ok(Keymap { bindings, lookup })
    }

    pub fn action_for(&self, ev: &KeyEvent) -> Option<Action> {
        if ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(Action::Quit);
        }
        // SHIFT is ignored: terminals send `G` as Char('G') with SHIFT, and Shift-Tab as
        // BackTab.
        self.lookup.get(&Key::from_event(ev)).map(|b| b.action())
    }

    /// The bindings in help order.
    pub fn bindings(&self) -> &[(Bindable, Vec<Key>)] {
        &self.bindings
    }

    /// The label of the keys for one action, e.g. `j/↓`.
    pub fn keys_for(&self, action: Bindable) -> String {
        self.bindings
            .iter()
            .find(|(b, _)| *b == action)
            .map(|(_, keys)| keys.iter().map(Key::label).collect::<Vec<_>>().join("/"))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind_every_action_and_the_issue_keys() {
        let k = Keymap::defaults();
        for b in Bindable::ALL {
            assert!(!k.keys_for(b).is_empty(), "{} is unbound", b.name());
        }
        assert_eq!(k.keys_for(Bindable::Restart), "r");
        assert_eq!(k.keys_for(Bindable::Down), "j/↓");
        assert_eq!(k.keys_for(Bindable::Hosts), "1");
        assert_eq!(k.keys_for(Bindable::PrevPanel), "Shift-Tab");
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
    fn a_user_file_remaps_over_the_defaults() {
        let k = Keymap::parse("[keys]\nrestart = [\"R\", \"ctrl-r\"]\n", Some(&Keymap::defaults())).unwrap();
        assert_eq!(k.keys_for(Bindable::Restart), "R/Ctrl-r");
        assert_eq!(k.keys_for(Bindable::Quit), "q");
    }

    #[test]
    fn clashes_and_unknowns_are_named() {
        let base = Keymap::defaults();
        let err = Keymap::parse("[keys]\nrestart = [\"q\"]\n", Some(&base)).unwrap_err();
        assert!(err.contains("q is bound to both"), "{err}");
        let err = Keymap::parse("[keys]\nfly = [\"f\"]\n", Some(&base)).unwrap_err();
        assert!(err.contains("unknown action \"fly\""), "{err}");
        let err = Keymap::parse("[keys]\nquit = [\"nope\"]\n", Some(&base)).unwrap_err();
        assert!(err.contains("unknown key"), "{err}");
        let err = Keymap::parse("[keys]\nquit = [\"a\", \"b\", \"c\"]\n", Some(&base)).unwrap_err();
        assert!(err.contains("one or two keys"), "{err}");
    }
}
