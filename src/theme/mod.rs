//! Themes are data: TOML files with semantic keys, embedded as defaults, with user files
//! merged over a base (gitui's theme patches). Colour depth follows the terminal
//! (`ColorMode::detect`, the one place that reads it): 24-bit when COLORTERM says so, the
//! 8 ANSI colours on consoles that have no more (TERM `linux`, `vt100`...), the 256-colour
//! palette otherwise (the usual case over SSH), and none at all under NO_COLOR or TERM `dumb`.

use std::collections::HashMap;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use toml::Spanned;

use crate::config_file::{self, ConfigError};

const BUILTIN: [(&str, &str); 3] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

/// The names of the built-in themes.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Palette256,
    /// The 8 ANSI colours (SGR 30-37/40-47), all a Linux console or a VT100 shows.
    Ansi8,
    None,
}

impl ColorMode {
    /// From the environment: `NO_COLOR` (any value) wins, then TERM `dumb`, then
    /// `COLORTERM`, then TERM.
    pub fn detect() -> ColorMode {
        Self::from_env(
            std::env::var_os("NO_COLOR").is_some(),
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    }

    pub fn from_env(no_color: bool, colorterm: Option<&str>, term: Option<&str>) -> ColorMode {
        // A console's own name, and whatever is set up as one (`linux-16color` has more).
        let eight = |t: &str| matches!(t, "linux" | "ansi" | "cons25") || t.starts_with("vt");
        match term {
            _ if no_color => ColorMode::None,
            Some("dumb") => ColorMode::None,
            _ if matches!(colorterm, Some("truecolor") | Some("24bit")) => ColorMode::TrueColor,
            Some(t) if eight(t) => ColorMode::Ansi8,
            _ => ColorMode::Palette256,
        }
    }
}

/// Styles by meaning, never by widget.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub border: Style,
    pub title: Style,
    pub accent: Style,
    pub header: Style,
    pub selection: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
}

/// A theme file, with where each name and value was written, for errors that give the line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    base: Option<Spanned<String>>,
    #[serde(default)]
    colors: HashMap<Spanned<String>, Spanned<String>>,
}

/// The top-level keys of a theme file.
const FILE_KEYS: [&str; 2] = ["base", "colors"];

const KEYS: [&str; 12] = [
    "text",
    "muted",
    "border",
    "title",
    "accent",
    "header_fg",
    "header_bg",
    "selection_fg",
    "selection_bg",
    "ok",
    "warn",
    "bad",
];

impl Theme {
    /// The `k`-th of the colours that tell things of one kind apart (a merged log's
    /// instances), cycling through the theme's own: its foregrounds only, so no
    /// background or weight stands out. Never the only mark: a word goes with it.
    pub fn series(&self, k: usize) -> Style {
        let palette = [self.accent, self.ok, self.title, self.border, self.warn];
        let fg = palette[k % palette.len()].fg;
        Style::new().fg(fg.unwrap_or(Color::Reset))
    }

    /// A built-in theme by name. Built-ins are tested, so this cannot fail at run time.
    pub fn builtin(name: &str, mode: ColorMode) -> Option<Theme> {
        let text = BUILTIN.iter().find(|(n, _)| *n == name)?.1;
        Theme::parse(name, text, mode, None).ok()
    }

    /// The default theme, in the given colour mode.
    pub fn default_for(mode: ColorMode) -> Theme {
        Theme::builtin("default", mode).unwrap_or_else(|| Theme::plain("default"))
    }

    /// A built-in theme by name, or why there is none. A name that looks like a path is
    /// a file, which the caller reads (views do no I/O) and gives to `from_file`.
    pub fn named(name: &str, mode: ColorMode) -> Result<Theme, String> {
        Theme::builtin(name, mode).ok_or_else(|| {
            format!(
                "unknown theme {name:?}: use one of {} or a path to a .toml file",
                builtin_names().join(", ")
            )
        })
    }

    /// Whether `name_or_path` names a theme file rather than a built-in theme.
    pub fn is_path(name_or_path: &str) -> bool {
        !builtin_names().contains(&name_or_path)
            && (name_or_path.contains('/') || name_or_path.ends_with(".toml"))
    }

    /// A user theme: `text`, read from `path`, patched over its base.
    pub fn from_file(path: &str, text: &str, mode: ColorMode) -> Result<Theme, String> {
        Theme::parse(path, text, mode, Some(()))
    }

    fn parse(name: &str, text: &str, mode: ColorMode, user: Option<()>) -> Result<Theme, String> {
        let theme = Theme::parse_spanned(text, mode, user).map_err(|e| format!("theme {name}: {e}"))?;
        Ok(Theme { name: name.to_string(), ..theme })
    }

    fn parse_spanned(text: &str, mode: ColorMode, user: Option<()>) -> Result<Theme, ConfigError> {
        let file: ThemeFile = config_file::parse(text, &FILE_KEYS)?;
        // Each colour with where it was written (`None` for the base's).
        let mut colors: HashMap<String, (String, Option<std::ops::Range<usize>>)> = HashMap::new();
        if user.is_some() {
            let base = file.base.as_ref().map(|b| (b.get_ref().as_str(), b.span()));
            let (base, span) = base.unwrap_or(("default", 0..0));
            let base_text = BUILTIN.iter().find(|(n, _)| *n == base).map(|(_, t)| *t).ok_or_else(|| {
                ConfigError::unknown(text, span.clone(), "base theme", base, &builtin_names())
            })?;
            let base_file: ThemeFile = config_file::parse(base_text, &FILE_KEYS)
                .map_err(|e| ConfigError { line: None, message: format!("built-in theme {base}: {e}") })?;
            colors
                .extend(base_file.colors.into_iter().map(|(k, v)| (k.into_inner(), (v.into_inner(), None))));
        }
        for (k, v) in file.colors {
            if !KEYS.contains(&k.get_ref().as_str()) {
                return Err(ConfigError::unknown(text, k.span(), "colour", k.get_ref(), &KEYS));
            }
            let span = v.span();
            colors.insert(k.into_inner(), (v.into_inner(), Some(span)));
        }
        let color = |key: &str| -> Result<Option<Color>, ConfigError> {
            let (value, span) = colors
                .get(key)
                .ok_or_else(|| ConfigError { line: None, message: format!("missing colour {key}") })?;
            let c = parse_color(value).ok_or_else(|| {
                let message = format!("{key} = {value:?} is not a colour");
                match span {
                    Some(span) => ConfigError::at(text, span.clone(), message),
                    None => ConfigError { line: None, message },
                }
            })?;
            Ok(in_mode(c, mode))
        };
        let fg = |key: &str| -> Result<Style, ConfigError> {
            Ok(color(key)?.map(|c| Style::default().fg(c)).unwrap_or_default())
        };
        let pair = |fg_key: &str, bg_key: &str| -> Result<Style, ConfigError> {
            let mut s = Style::default();
            if let Some(c) = color(fg_key)? {
                s = s.fg(c);
            }
            if let Some(c) = color(bg_key)? {
                s = s.bg(c);
            }
            Ok(s)
        };
        let mut theme = Theme {
            name: String::new(),
            text: fg("text")?,
            muted: fg("muted")?,
            border: fg("border")?,
            title: fg("title")?.add_modifier(Modifier::BOLD),
            accent: fg("accent")?,
            header: pair("header_fg", "header_bg")?,
            selection: pair("selection_fg", "selection_bg")?,
            ok: fg("ok")?,
            warn: fg("warn")?,
            bad: fg("bad")?.add_modifier(Modifier::BOLD),
        };
        if mode == ColorMode::None {
            // Without colour, selection and the header still have to stand out.
            theme.selection = Style::default().add_modifier(Modifier::REVERSED);
            theme.header = Style::default().add_modifier(Modifier::BOLD);
            theme.muted = Style::default().add_modifier(Modifier::DIM);
        }
        Ok(theme)
    }

    fn plain(name: &str) -> Theme {
        let s = Style::default();
        Theme {
            name: name.to_string(),
            text: s,
            muted: s,
            border: s,
            title: s,
            accent: s,
            header: s,
            selection: s.add_modifier(Modifier::REVERSED),
            ok: s,
            warn: s,
            bad: s,
        }
    }
}

/// A colour as the terminal can draw it: none without colour, the nearest in a smaller
/// palette.
pub fn in_mode(c: Color, mode: ColorMode) -> Option<Color> {
    match mode {
        ColorMode::None => None,
        ColorMode::TrueColor => Some(c),
        ColorMode::Palette256 => Some(to_palette(c)),
        ColorMode::Ansi8 => Some(to_ansi8(c)),
    }
}

/// A colour as theme files write it: a name, `reset`, 0-255 or `#rrggbb`.
pub fn parse_color(s: &str) -> Option<Color> {
    if s == "reset" {
        return Some(Color::Reset);
    }
    if let Ok(i) = s.parse::<u8>() {
        return Some(Color::Indexed(i));
    }
    s.parse::<Color>().ok()
}

/// The nearest colour of the xterm 256 palette (6x6x6 cube or grey ramp).
fn to_palette(c: Color) -> Color {
    let Color::Rgb(r, g, b) = c else { return c };
    let cube = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            ((v as u16 - 35) / 40) as u8
        }
    };
    let level = |i: u8| -> u8 { if i == 0 { 0 } else { 55 + 40 * i } };
    let (cr, cg, cb) = (cube(r), cube(g), cube(b));
    let cube_idx = 16 + 36 * cr + 6 * cg + cb;
    let cube_rgb = (level(cr), level(cg), level(cb));
    let avg = (r as u16 + g as u16 + b as u16) / 3;
    let grey_i = if avg > 238 { 23 } else { (avg.saturating_sub(3) / 10) as u8 };
    let grey_v = 8 + 10 * grey_i;
    let dist = |(x, y, z): (u8, u8, u8)| -> u32 {
        let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2) as u32;
        d(x, r) + d(y, g) + d(z, b)
    };
    if dist((grey_v, grey_v, grey_v)) < dist(cube_rgb) {
        Color::Indexed(232 + grey_i)
    } else {
        Color::Indexed(cube_idx)
    }
}

/// The nearest of the 8 ANSI colours: RGB by distance, the palette's colours through their
/// RGB, the bright named colours to their dark halves.
fn to_ansi8(c: Color) -> Color {
    const ANSI: [(Color, (u8, u8, u8)); 8] = [
        (Color::Black, (0, 0, 0)),
        (Color::Red, (205, 0, 0)),
        (Color::Green, (0, 205, 0)),
        (Color::Yellow, (205, 205, 0)),
        (Color::Blue, (0, 0, 238)),
        (Color::Magenta, (205, 0, 205)),
        (Color::Cyan, (0, 205, 205)),
        (Color::Gray, (229, 229, 229)),
    ];
    let (r, g, b) = match c {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) if i < 8 => return ANSI[usize::from(i)].0,
        Color::Indexed(i) if i < 16 => return ANSI[usize::from(i - 8)].0,
        Color::Indexed(i) => palette_rgb(i),
        Color::LightRed => return Color::Red,
        Color::LightGreen => return Color::Green,
        Color::LightYellow => return Color::Yellow,
        Color::LightBlue => return Color::Blue,
        Color::LightMagenta => return Color::Magenta,
        Color::LightCyan => return Color::Cyan,
        Color::White | Color::DarkGray => return Color::Gray,
        other => return other,
    };
    let dist = |(x, y, z): (u8, u8, u8)| -> u32 {
        let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2) as u32;
        d(x, r) + d(y, g) + d(z, b)
    };
    ANSI.iter().min_by_key(|(_, rgb)| dist(*rgb)).map(|(c, _)| *c).unwrap_or(Color::Reset)
}

/// The RGB of an xterm palette colour from 16 up (the 6x6x6 cube, then the grey ramp).
fn palette_rgb(i: u8) -> (u8, u8, u8) {
    if i >= 232 {
        let v = 8 + 10 * (i - 232);
        return (v, v, v);
    }
    let i = i.saturating_sub(16);
    let level = |n: u8| -> u8 { if n == 0 { 0 } else { 55 + 40 * n } };
    (level(i / 36), level(i / 6 % 6), level(i % 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_depth_follows_no_color_then_term_then_colorterm() {
        let mode = ColorMode::from_env;
        assert_eq!(mode(true, Some("truecolor"), Some("xterm-256color")), ColorMode::None);
        assert_eq!(mode(false, Some("truecolor"), Some("dumb")), ColorMode::None);
        assert_eq!(mode(false, None, Some("dumb")), ColorMode::None);
        assert_eq!(mode(false, None, Some("linux")), ColorMode::Ansi8);
        assert_eq!(mode(false, None, Some("vt100")), ColorMode::Ansi8);
        assert_eq!(mode(false, None, Some("vt220")), ColorMode::Ansi8);
        assert_eq!(mode(false, Some("truecolor"), Some("xterm-256color")), ColorMode::TrueColor);
        assert_eq!(mode(false, None, Some("xterm-256color")), ColorMode::Palette256);
        assert_eq!(mode(false, None, Some("tmux-256color")), ColorMode::Palette256);
        assert_eq!(mode(false, None, None), ColorMode::Palette256);
    }

    #[test]
    fn eight_colour_themes_use_only_the_eight_colours() {
        let basic = [
            Color::Black,
            Color::Red,
            Color::Green,
            Color::Yellow,
            Color::Blue,
            Color::Magenta,
            Color::Cyan,
            Color::Gray,
            Color::Reset,
        ];
        for name in builtin_names() {
            let t = Theme::builtin(name, ColorMode::Ansi8).unwrap();
            for s in
                [t.text, t.muted, t.border, t.title, t.accent, t.header, t.selection, t.ok, t.warn, t.bad]
            {
                for c in [s.fg, s.bg].into_iter().flatten() {
                    assert!(basic.contains(&c), "{name}: {c:?} is not one of the 8 colours");
                }
            }
        }
        assert_eq!(to_ansi8(Color::Rgb(220, 40, 30)), Color::Red);
        assert_eq!(to_ansi8(Color::Rgb(40, 200, 60)), Color::Green);
        assert_eq!(to_ansi8(Color::Indexed(196)), Color::Red);
        assert_eq!(to_ansi8(Color::Indexed(9)), Color::Red);
    }

    #[test]
    fn builtins_parse_in_every_mode() {
        for name in builtin_names() {
            for mode in [ColorMode::TrueColor, ColorMode::Palette256, ColorMode::Ansi8, ColorMode::None] {
                assert!(Theme::builtin(name, mode).is_some(), "{name} {mode:?}");
            }
        }
    }

    #[test]
    fn palette_fallback_and_no_color() {
        let t = Theme::builtin("default", ColorMode::Palette256).unwrap();
        assert!(matches!(t.bad.fg, Some(Color::Indexed(_))), "{:?}", t.bad);
        let t = Theme::builtin("default", ColorMode::TrueColor).unwrap();
        assert_eq!(t.bad.fg, Some(Color::Rgb(0xff, 0x5f, 0x5f)));
        let t = Theme::builtin("default", ColorMode::None).unwrap();
        assert_eq!(t.bad.fg, None);
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(to_palette(Color::Rgb(255, 0, 0)), Color::Indexed(196));
        assert_eq!(to_palette(Color::Rgb(128, 128, 128)), Color::Indexed(244));
    }

    #[test]
    fn user_files_patch_a_base_and_bad_files_say_why() {
        let load = |text: &str| Theme::from_file("mine.toml", text, ColorMode::TrueColor);
        let t = load("base = \"light\"\n[colors]\nbad = \"#123456\"\n").unwrap();
        assert_eq!(t.bad.fg, Some(Color::Rgb(0x12, 0x34, 0x56)));
        assert_eq!(t.ok.fg, Theme::builtin("light", ColorMode::TrueColor).unwrap().ok.fg);
        let err = load("[colors]\nbad = \"not-a-colour\"\n").unwrap_err();
        assert!(err.contains("is not a colour"), "{err}");
        assert!(load("[colors]\nsparkle = \"red\"\n").unwrap_err().contains("unknown colour"));
        assert!(Theme::named("nope", ColorMode::TrueColor).unwrap_err().contains("unknown theme"));
        assert!(Theme::is_path("./mine.toml") && Theme::is_path("mine.toml"));
        assert!(!Theme::is_path("light") && !Theme::is_path("nope"));
    }

    #[test]
    fn a_bad_theme_file_names_the_line_the_key_and_the_nearest_known_one() {
        let name = "/home/u/.config/quarterdeck/mine.toml";
        let load = |text: &str| Theme::from_file(name, text, ColorMode::TrueColor).unwrap_err();
        assert_eq!(
            load("base = \"light\"\n[colors]\nok = \"green\"\nbda = \"red\"\n"),
            format!("theme {name}: line 4: unknown colour 'bda' — did you mean 'bad'?")
        );
        assert_eq!(
            load("bsae = \"light\"\n"),
            format!("theme {name}: line 1: unknown key 'bsae' — did you mean 'base'?")
        );
        assert_eq!(
            load("base = \"ligth\"\n"),
            format!("theme {name}: line 1: unknown base theme 'ligth' — did you mean 'light'?")
        );
        assert_eq!(
            load("[colors]\n\nbad = \"not-a-colour\"\n"),
            format!("theme {name}: line 3: bad = \"not-a-colour\" is not a colour")
        );
        assert!(load("[colors]\nbad = \"#ff0000\n").starts_with(&format!("theme {name}: line 2: ")));
    }
}
