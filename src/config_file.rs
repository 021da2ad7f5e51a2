//! The cockpit's TOML files (`config.toml`, `keys.toml`, themes): one way to say what is
//! wrong in them, with the line, the key and the nearest known key, so a typo stops the
//! cockpit with `line 1: unknown key 'readonly' — did you mean 'read_only'?` instead of
//! starting it in a mode nobody asked for. Pure: callers read the file and name it.

use std::ops::Range;

use serde::de::DeserializeOwned;

/// What is wrong in a file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based; `None` when the parser could not say.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error at a byte span of `text`.
    pub fn at(text: &str, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError { line: Some(line_of(text, span.start)), message: message.into() }
    }

    /// `unknown <what> 'key' — did you mean 'known'?`, at the key's span.
    pub fn unknown(text: &str, span: Range<usize>, what: &str, key: &str, known: &[&str]) -> ConfigError {
        ConfigError::at(text, span, unknown_message(what, key, known))
    }
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// `unknown key 'readonly' — did you mean 'read_only'?`; without a close enough known
/// word, the known words instead.
pub fn unknown_message(what: &str, key: &str, known: &[&str]) -> String {
    match nearest(key, known) {
        Some(near) => format!("unknown {what} '{key}' — did you mean '{near}'?"),
        None => format!("unknown {what} '{key}' (known: {})", known.join(", ")),
    }
}

/// The known word closest to `word`, if it is close enough to be a typo of it: at most a
/// third of the word's length in edits (at least one), a swap of two letters counting as
/// one.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (edit_distance(&word.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, substitute, or swap two neighbours) from `a` to `b`: the
/// optimal string alignment distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// Parses `text` as `T` (whose struct denies unknown fields). An unknown key is named
/// with the nearest of `known`, the file's top-level keys; any other error gets its line.
pub fn parse<T: DeserializeOwned>(text: &str, known: &[&str]) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| from_toml(text, &e, known))
}

fn from_toml(text: &str, e: &toml::de::Error, known: &[&str]) -> ConfigError {
    let line = e.span().map(|s| line_of(text, s.start));
    let message = e.message().trim();
    // serde's words for a denied field: "unknown field `readonly`, expected `read_only`".
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_string());
    let message = match unknown {
        Some(key) => unknown_message("key", &key, known),
        None => message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; "),
    };
    ConfigError { line, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        #[allow(dead_code)]
        read_only: bool,
    }

    #[test]
    fn edit_distances_count_a_swap_as_one() {
        assert_eq!(edit_distance("readonly", "read_only"), 1);
        assert_eq!(edit_distance("restrat", "restart"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_nearest_word_only_when_it_is_a_likely_typo() {
        let known = ["read_only", "theme", "keys"];
        assert_eq!(nearest("readonly", &known), Some("read_only"));
        assert_eq!(nearest("Read_Only", &known), Some("read_only"));
        assert_eq!(nearest("them", &known), Some("theme"));
        assert_eq!(nearest("colour_depth", &known), None);
        assert_eq!(
            unknown_message("key", "colour_depth", &known),
            "unknown key 'colour_depth' (known: read_only, theme, keys)"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line_and_the_nearest_known_key() {
        let err = parse::<Sample>("# mine\n\nreadonly = true\n", &["read_only"]).unwrap_err();
        assert_eq!(err.to_string(), "line 3: unknown key 'readonly' — did you mean 'read_only'?");
    }

    #[test]
    fn a_parse_error_has_its_line() {
        let err = parse::<Sample>("\nread_only = yes please\n", &["read_only"]).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(!err.message.is_empty() && !err.message.contains('\n'), "{err}");
        let err = parse::<Sample>("read_only = \"yes\"\n", &["read_only"]).unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
        assert!(err.message.contains("bool") || err.message.contains("boolean"), "{err}");
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }
}
