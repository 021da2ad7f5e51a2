//! Reading Rust source for the structure check without a parser: comments and literals
//! blanked out line for line, `#[cfg(test)]` items left out, then `mod x;` declarations and
//! `crate::<module>` paths found in what is left.

pub(super) fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Pushes `c` as blank, keeping line breaks so line numbers still hold.
fn blank(out: &mut String, c: char) {
    out.push(if c == '\n' { '\n' } else { ' ' });
}

/// The source with comments and string and char literals blanked out, line for line.
pub(super) fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        match blanked_span_end(&c, i) {
            Some(end) => {
                for &ch in &c[i..end] {
                    blank(&mut out, ch);
                }
                i = end;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// Where the comment or literal that starts at `i` ends; None when none starts there.
fn blanked_span_end(c: &[char], i: usize) -> Option<usize> {
    match (c[i], c.get(i + 1)) {
        ('/', Some('/')) => Some((i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len())),
        ('/', Some('*')) => Some(block_comment_end(c, i)),
        ('"', _) => Some(string_end(c, i + 1)),
        ('\'', _) => char_literal_end(c, i),
        _ => raw_string_hashes(c, i).map(|hashes| raw_string_end(c, i + hashes + 2, hashes)),
    }
}

/// Block comments nest in Rust.
fn block_comment_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        match (c[i], c.get(i + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    c.len()
}

/// Past the quote that closes a string whose text starts at `i`, escapes skipped.
fn string_end(c: &[char], mut i: usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    c.len()
}

/// A raw string (`r#".."#`) has no escapes: it ends at a quote and as many `#`s.
fn raw_string_end(c: &[char], text: usize, hashes: usize) -> usize {
    (text..c.len())
        .find(|&k| c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')))
        .map_or(c.len(), |k| k + hashes + 1)
}

/// Past a char literal at `i` ('x', '\n', '\'', '\u{..}'); None for a lifetime or label ('a).
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        (i + 3..c.len()).find(|&k| c[k] == '\'').map(|k| k + 1)
    } else {
        (c.get(i + 2) == Some(&'\'')).then_some(i + 3)
    }
}

/// The number of `#`s when a raw string starts at `i` (`r"`, `r#"`, `br"`), else None.
fn raw_string_hashes(c: &[char], i: usize) -> Option<usize> {
    if c[i] != 'r' {
        return None;
    }
    let before_ok = match i {
        0 => true,
        _ if c[i - 1] == 'b' => i < 2 || !is_ident(c[i - 2]),
        _ => !is_ident(c[i - 1]),
    };
    if !before_ok {
        return None;
    }
    let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
    (c.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

fn read_ident(c: &[char], i: usize) -> Option<(String, usize)> {
    let end = (i..c.len()).find(|&k| !is_ident(c[k])).unwrap_or(c.len());
    (end > i && !c[i].is_ascii_digit()).then(|| (c[i..end].iter().collect(), end))
}

/// Whether the word `word` stands at `i` on its own (no identifier or `$` just before it).
fn word_at(c: &[char], i: usize, w: &[char]) -> bool {
    c.len() >= i + w.len()
        && c[i..i + w.len()] == w[..]
        && (i == 0 || !(is_ident(c[i - 1]) || c[i - 1] == '$'))
        && c.get(i + w.len()).is_none_or(|&ch| !is_ident(ch))
}

/// The index just past the bracket that closes the one at `open`.
fn matching_close(c: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, &ch) in c.iter().enumerate().skip(open) {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    c.len()
}

/// Code with its `#[cfg(test)]` items blanked out, the modules those items declare
/// (`#[cfg(test)] mod tests;`), and whether the whole file is test-only (`#![cfg(test)]`).
pub(super) struct NonTest {
    pub(super) code: String,
    pub(super) test_mods: Vec<String>,
    pub(super) whole_file_is_test: bool,
}

pub(super) fn without_test_items(code: &str) -> NonTest {
    let mut c: Vec<char> = code.chars().collect();
    let mut test_mods = Vec::new();
    let mut whole_file_is_test = false;
    let mut i = 0;
    while i < c.len() {
        if c[i] != '#' {
            i += 1;
            continue;
        }
        let inner = c.get(i + 1) == Some(&'!');
        let open = skip_ws(&c, i + if inner { 2 } else { 1 });
        if c.get(open) != Some(&'[') {
            i += 1;
            continue;
        }
        let attr_end = matching_close(&c, open);
        let attr: String = c[open..attr_end].iter().filter(|ch| !ch.is_whitespace()).collect();
        if attr != "[cfg(test)]" {
            i = attr_end;
            continue;
        }
        if inner {
            whole_file_is_test = true;
            i = attr_end;
            continue;
        }
        let item_start = skip_attributes(&c, attr_end);
        let item_end = item_end(&c, item_start);
        let words: Vec<String> = c[item_start..item_end]
            .iter()
            .collect::<String>()
            .split(|ch: char| !is_ident(ch))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let declares_file = c[..item_end].last() == Some(&';');
        if declares_file
            && let Some(pos) = words.iter().position(|w| w == "mod")
            && let Some(name) = words.get(pos + 1)
        {
            test_mods.push(name.clone());
        }
        for ch in &mut c[i..item_end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = item_end;
    }
    NonTest { code: c.into_iter().collect(), test_mods, whole_file_is_test }
}

/// Past any further outer attributes (`#[allow(..)]`) that stand before an item.
fn skip_attributes(c: &[char], mut i: usize) -> usize {
    loop {
        i = skip_ws(c, i);
        if c.get(i) != Some(&'#') {
            return i;
        }
        let open = skip_ws(c, i + 1);
        if c.get(open) != Some(&'[') {
            return i;
        }
        i = matching_close(c, open);
    }
}

/// The end of the item that starts at `i`: past its first `;` or its `{ .. }` body, whichever
/// comes first outside parentheses and brackets (`fn f(a: [u8; 2]) {`).
fn item_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        match c[i] {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => return i + 1,
            '{' if depth == 0 => return matching_close(c, i),
            _ => {}
        }
        i += 1;
    }
    c.len()
}

/// The modules a file declares in a file of their own (`mod x;`, `pub(crate) mod x;`).
pub(super) fn module_decls(code: &str) -> Vec<String> {
    let c: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    for i in 0..c.len() {
        if !word_at(&c, i, &['m', 'o', 'd']) {
            continue;
        }
        let start = skip_ws(&c, i + 3);
        if let Some((name, end)) = read_ident(&c, start)
            && c.get(skip_ws(&c, end)) == Some(&';')
        {
            found.push(name);
        }
    }
    found
}

/// Each `<root>::<module>` path in stripped code, with its line: `root` is `crate`, or the
/// library's name in the binary. In a group (`crate::{a::X, b}`) each member counts.
pub(super) fn crate_paths(code: &str, root: &str) -> Vec<(usize, String)> {
    let c: Vec<char> = code.chars().collect();
    let root: Vec<char> = root.chars().collect();
    let line_of = |k: usize| 1 + c[..k].iter().filter(|&&ch| ch == '\n').count();
    let mut found = Vec::new();
    for i in 0..c.len() {
        if !word_at(&c, i, &root) {
            continue;
        }
        let j = skip_ws(&c, i + root.len());
        if c.get(j) != Some(&':') || c.get(j + 1) != Some(&':') {
            continue;
        }
        let j = skip_ws(&c, j + 2);
        if c.get(j) == Some(&'{') {
            let close = matching_close(&c, j);
            let mut depth = 0usize;
            let mut item_start = true;
            for k in j..close {
                match c[k] {
                    '{' => {
                        depth += 1;
                        item_start = depth == 1;
                    }
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 1 => item_start = true,
                    ch if ch.is_whitespace() => {}
                    _ if item_start && depth == 1 => {
                        item_start = false;
                        if let Some((name, _)) = read_ident(&c, k)
                            && name != "self"
                        {
                            found.push((line_of(k), name));
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some((name, _)) = read_ident(&c, j) {
            found.push((line_of(j), name));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(code: &str) -> Vec<(usize, String)> {
        crate_paths(&without_test_items(&strip_comments_and_literals(code)).code, "crate")
    }

    fn names(found: &[(usize, String)]) -> Vec<&str> {
        found.iter().map(|(_, m)| m.as_str()).collect()
    }

    #[test]
    fn structure_finds_use_lines_groups_and_inline_paths() {
        let code = "use std::fmt;\nuse crate::views::columns;\nfn f() {\n    let w = crate::theme::width(1);\n}\n\
                    use crate::{\n    app::App,\n    backend::{Inbound, client},\n    self,\n};\n";
        assert_eq!(
            paths(code),
            vec![
                (2, "views".to_string()),
                (4, "theme".to_string()),
                (7, "app".to_string()),
                (8, "backend".to_string())
            ]
        );
    }

    #[test]
    fn structure_ignores_comments_strings_and_lookalikes() {
        let code = r####"
// crate::views in a comment
/// and crate::views in a doc comment
/* block /* nested crate::views */ still crate::views */
let s = "crate::views \" crate::views";
let r = r#"crate::views "quoted" crate::views"#;
let b = br"crate::views";
let q = '"'; let e = '\''; fn g<'a>(x: &'a str) {}
macro_rules! m { () => { $crate::views::x() } }
pub(crate) fn h() {}
let mycrate::views = 1;
use crate::app;
"####;
        assert_eq!(names(&paths(code)), vec!["app"], "only the real use is found");
    }

    #[test]
    fn structure_skips_test_items_and_names_test_modules() {
        let code = "use crate::app;\n#[cfg(test)]\nmod tests {\n    use crate::views;\n    fn f() { { crate::tui::x(); } }\n}\n\
                    #[cfg( test )]\n#[allow(dead_code)]\npub(crate) fn fixture(a: [u8; 2]) -> u8 { crate::plane::x() }\n\
                    #[cfg(test)]\nmod snapshots;\nfn after() { crate::protocol::y(); }\n";
        let non_test = without_test_items(&strip_comments_and_literals(code));
        assert_eq!(non_test.test_mods, vec!["snapshots".to_string()]);
        assert!(!non_test.whole_file_is_test);
        assert_eq!(
            crate_paths(&non_test.code, "crate"),
            vec![(1, "app".to_string()), (12, "protocol".to_string())]
        );
        assert!(without_test_items("#![cfg(test)]\nuse crate::x;").whole_file_is_test);
    }
}
