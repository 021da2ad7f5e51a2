//! The repository-structure check: every `crate::<module>` path in src/ against the "may use"
//! column of docs/architecture.md's Folders table. It reads files only; no service is needed.
//!
//! What counts: `crate::x` in `use` lines, groups (`use crate::{x::A, y}`) and inline paths
//! (`crate::x::f()`), outside comments and string literals, and `quarterdeck::x` in
//! src/main.rs, the binary, where the library is `quarterdeck`. A module may always use itself.
//! Test code is skipped: `#[cfg(test)]` items and the files they declare (`app/tests.rs`),
//! since it is not part of the shipped layering (a view's snapshot test builds a whole app).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A use the table does not allow yet, kept until the move that removes it lands. An entry
/// that matches no use any more fails the check, so it leaves with the use.
struct Exception {
    file: &'static str,
    module: &'static str,
    why: &'static str,
}

const EXCEPTIONS: &[Exception] = &[Exception {
    file: "src/app/update.rs",
    module: "views",
    why: "the sort takes a column's text from `views::columns`; issue 17's one row model per \
          table, in `app`, replaces it",
}];

const DOC: &str = "docs/architecture.md";

/// One line of the Folders table that covers files in src/.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    /// Paths relative to the repository, each a folder or a file.
    paths: Vec<String>,
    may_use: Vec<String>,
    line: usize,
}

impl Row {
    fn label(&self) -> String {
        self.paths.iter().map(|p| p.trim_start_matches("src/")).collect::<Vec<_>>().join(", ")
    }

    /// How specific the match of `file` is: the length of the longest of its paths that holds
    /// it, so `src/plane/agent/docker` wins over `src/plane/agent`.
    fn specificity(&self, file: &str) -> Option<usize> {
        self.paths
            .iter()
            .filter(|p| file == p.as_str() || file.starts_with(&format!("{p}/")))
            .map(String::len)
            .max()
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Pushes `c` as blank, keeping line breaks so line numbers still hold.
fn blank(out: &mut String, c: char) {
    out.push(if c == '\n' { '\n' } else { ' ' });
}

/// The source with comments and string and char literals blanked out, line for line.
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied();
        if c[i] == '/' && at(i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0usize;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_hashes(&c, i) {
            // r"..", r#".."#, br#".."#: no escapes, ends at a quote and as many hashes.
            out.push('r');
            let mut j = i + 1 + hashes + 1;
            for _ in i + 1..j {
                out.push(' ');
            }
            loop {
                match at(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|h| at(j + h) == Some('#')) => {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        j += hashes + 1;
                        break;
                    }
                    Some(ch) => {
                        blank(&mut out, ch);
                        j += 1;
                    }
                }
            }
            i = j;
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
            if i < c.len() {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\'', '\u{..}'), or else a lifetime or label ('a).
            let end = if at(i + 1) == Some('\\') {
                (i + 3..c.len()).find(|&k| c[k] == '\'')
            } else if at(i + 2) == Some('\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for &ch in &c[i..=end] {
                        blank(&mut out, ch);
                    }
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
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
struct NonTest {
    code: String,
    test_mods: Vec<String>,
    whole_file_is_test: bool,
}

fn without_test_items(code: &str) -> NonTest {
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
fn module_decls(code: &str) -> Vec<String> {
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
fn crate_paths(code: &str, root: &str) -> Vec<(usize, String)> {
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

/// The Folders table's rows for src/, read from the doc. A "may use" cell is a list split by
/// commas; each entry's first word is a module or crate name, and words in parentheses are a
/// remark (`protocol, config_file (the keymap's errors)`).
fn folder_rows(doc: &str) -> Result<Vec<Row>, String> {
    let mut lines = doc.lines().enumerate().skip_while(|(_, l)| l.trim() != "## Folders");
    if lines.next().is_none() {
        return Err(format!("{DOC} has no `## Folders` section"));
    }
    let table: Vec<(usize, &str)> =
        lines.skip_while(|(_, l)| !l.starts_with('|')).take_while(|(_, l)| l.starts_with('|')).collect();
    let mut rows = Vec::new();
    for &(index, line) in table.iter().skip(2) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        let [folder, _job, may_use] = cells[..] else {
            return Err(format!(
                "{DOC}:{}: a Folders row needs 3 cells (folder | job | may use), found {}",
                index + 1,
                cells.len()
            ));
        };
        let paths: Vec<String> =
            folder.split(',').map(|p| p.trim().trim_matches('`').trim_end_matches('/').to_string()).collect();
        if !paths.iter().any(|p| p.starts_with("src/")) {
            continue;
        }
        if let Some(odd) = paths.iter().find(|p| !p.starts_with("src/")) {
            return Err(format!(
                "{DOC}:{}: `{odd}` in a row of src/ paths: write each as `src/...`",
                index + 1
            ));
        }
        rows.push(Row { paths, may_use: may_use_names(may_use), line: index + 1 });
    }
    if rows.is_empty() {
        return Err(format!("{DOC}'s Folders table has no row for src/"));
    }
    Ok(rows)
}

fn may_use_names(cell: &str) -> Vec<String> {
    let mut entries = vec![String::new()];
    let mut depth = 0usize;
    for ch in cell.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => entries.push(String::new()),
            _ if depth == 0 => entries.last_mut().into_iter().for_each(|e| e.push(ch)),
            _ => {}
        }
    }
    entries
        .iter()
        .filter_map(|e| {
            let name: String = e.trim().trim_matches('`').chars().take_while(|&ch| is_ident(ch)).collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The crate's external dependencies, as code names them (`async-nats` is `async_nats`).
fn dependency_names(cargo_toml: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_deps = false;
    for line in cargo_toml.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']');
            in_deps = header.ends_with("dependencies");
            if let Some((_, name)) = header.split_once("dependencies.") {
                names.insert(name.replace('-', "_"));
            }
        } else if in_deps && let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.insert(name.replace('-', "_"));
            }
        }
    }
    names
}

/// A source file, as found on disk: its path relative to the repository and its text.
struct Source {
    path: String,
    text: String,
}

/// The top-level module a file belongs to (`src/app/update.rs` is in `app`); None at the roots.
fn own_module(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    match first {
        "lib.rs" | "main.rs" => None,
        _ => Some(first.trim_end_matches(".rs")),
    }
}

/// Where `mod name;` in `parent` lives, among the files there are.
fn child_file(parent: &str, name: &str, files: &BTreeMap<String, &Source>) -> Option<String> {
    let (dir, file) = parent.rsplit_once('/')?;
    let base = match file {
        "mod.rs" | "lib.rs" | "main.rs" => dir.to_string(),
        _ => format!("{dir}/{}", file.trim_end_matches(".rs")),
    };
    [format!("{base}/{name}.rs"), format!("{base}/{name}/mod.rs")]
        .into_iter()
        .find(|candidate| files.contains_key(candidate))
}

/// The shipped files (test-only ones left out), each with its code minus test items, walked
/// from the crate roots; what no `mod` reaches is an error, since no row would check it.
fn shipped_code(sources: &[Source], errors: &mut Vec<String>) -> Vec<(String, String)> {
    let files: BTreeMap<String, &Source> = sources.iter().map(|s| (s.path.clone(), s)).collect();
    let mut todo: Vec<(String, bool)> = ["src/lib.rs", "src/main.rs"]
        .iter()
        .filter(|root| files.contains_key(**root))
        .map(|root| (root.to_string(), false))
        .collect();
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    let mut shipped = Vec::new();
    while let Some((path, under_test)) = todo.pop() {
        if seen.contains_key(&path) {
            continue;
        }
        let Some(source) = files.get(&path) else { continue };
        let non_test = without_test_items(&strip_comments_and_literals(&source.text));
        let is_test = under_test || non_test.whole_file_is_test;
        seen.insert(path.clone(), is_test);
        let children = module_decls(&non_test.code).into_iter().map(|m| (m, is_test));
        let test_children = non_test.test_mods.iter().map(|m| (m.clone(), true));
        for (name, child_is_test) in children.chain(test_children) {
            match child_file(&path, &name, &files) {
                Some(child) => todo.push((child, child_is_test)),
                None => errors.push(format!("{path}: `mod {name};` but no file for it")),
            }
        }
        if !is_test {
            shipped.push((path, non_test.code));
        }
    }
    for path in files.keys().filter(|p| !seen.contains_key(*p)) {
        errors.push(format!("{path}: no `mod` reaches it from src/lib.rs or src/main.rs"));
    }
    shipped
}

/// A circle in the table itself (`app` may use `views`, which may use `app`), as the path
/// round it; the check would pass a circle the table allowed, so the table may not have one.
fn table_circle(rows: &[Row], modules: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for row in rows {
        for own in row.paths.iter().filter_map(|p| own_module(p)) {
            let allowed = row.may_use.iter().filter(|n| modules.contains(*n) && n.as_str() != own);
            edges.entry(own).or_default().extend(allowed.map(String::as_str));
        }
    }
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        done: &mut BTreeSet<&'a str>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|&n| n == node) {
            let mut circle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
            circle.push(node.to_string());
            return Some(circle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        let found = edges.get(node).into_iter().flatten().find_map(|next| visit(next, edges, done, path));
        path.pop();
        found
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|&node| visit(node, &edges, &mut done, &mut Vec::new()))
}

/// Every breach of the table, in the form `src/a.rs:3 uses crate::b (a may use: c)`, plus
/// exceptions that match nothing. `modules` are the crate's own, `crates` its dependencies.
fn check(
    sources: &[Source],
    rows: &[Row],
    modules: &BTreeSet<String>,
    crates: &BTreeSet<String>,
    exceptions: &[Exception],
) -> Vec<String> {
    let mut errors = Vec::new();
    for row in rows {
        for name in row.may_use.iter().filter(|n| !modules.contains(*n) && !crates.contains(*n)) {
            errors.push(format!(
                "{DOC}:{}: `{name}` in the may-use cell of {} is neither a module of the crate \
                 nor a dependency in Cargo.toml",
                row.line,
                row.label()
            ));
        }
    }
    if let Some(circle) = table_circle(rows, modules) {
        errors.push(format!("{DOC}: the may-use column goes round in a circle: {}", circle.join(" -> ")));
    }
    let mut used_exceptions = vec![false; exceptions.len()];
    for (path, code) in shipped_code(sources, &mut errors) {
        let Some(row) =
            rows.iter().filter(|r| r.specificity(&path).is_some()).max_by_key(|r| r.specificity(&path))
        else {
            errors.push(format!("{path}: no row of {DOC}'s Folders table covers it"));
            continue;
        };
        let root = if path == "src/main.rs" { "quarterdeck" } else { "crate" };
        for (line, module) in crate_paths(&code, root) {
            if own_module(&path) == Some(module.as_str()) || row.may_use.contains(&module) {
                continue;
            }
            if let Some(k) = exceptions.iter().position(|e| e.file == path && e.module == module) {
                used_exceptions[k] = true;
                continue;
            }
            let internal: Vec<&str> =
                row.may_use.iter().filter(|n| modules.contains(*n)).map(String::as_str).collect();
            errors.push(format!(
                "{path}:{line} uses {root}::{module} ({} may use: {})",
                row.label(),
                if internal.is_empty() { "no module of the crate".to_string() } else { internal.join(", ") }
            ));
        }
    }
    for (exception, used) in exceptions.iter().zip(used_exceptions) {
        if !used {
            errors.push(format!(
                "exception {} uses crate::{} matches no use any more: remove it ({})",
                exception.file, exception.module, exception.why
            ));
        }
    }
    errors
}

fn read_sources(dir: &Path, repo: &Path, out: &mut Vec<Source>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            read_sources(&path, repo, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(repo).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push(Source { path: rel, text: fs::read_to_string(&path)? });
        }
    }
    Ok(())
}

#[test]
fn structure_may_use_table_holds() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(repo.join(DOC)).expect("read docs/architecture.md");
    let rows = folder_rows(&doc).unwrap_or_else(|e| panic!("{e}"));
    let cargo = fs::read_to_string(repo.join("Cargo.toml")).expect("read Cargo.toml");
    let lib = fs::read_to_string(repo.join("src/lib.rs")).expect("read src/lib.rs");
    let modules: BTreeSet<String> =
        module_decls(&without_test_items(&strip_comments_and_literals(&lib)).code).into_iter().collect();
    assert!(
        modules.contains("protocol") && modules.contains("app"),
        "modules read from src/lib.rs: {modules:?}"
    );
    let mut sources = Vec::new();
    read_sources(&repo.join("src"), repo, &mut sources).expect("read src/");
    assert!(sources.len() > 50, "only {} files found under src/", sources.len());

    let errors = check(&sources, &rows, &modules, &dependency_names(&cargo), EXCEPTIONS);
    assert!(
        errors.is_empty(),
        "{} breach(es) of the \"may use\" column of {DOC}'s Folders table (fix the import, or \
         the table if the layering really changed):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[cfg(test)]
mod parser {
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
                    use crate::{\n    app::App,\n    backend::{Update, client},\n    self,\n};\n";
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

    #[test]
    fn structure_reads_may_use_cells() {
        let doc = "# A\n\n## Folders\n\n| folder | job | may use |\n|---|---|---|\n\
                   | `src/protocol` | wire | serde |\n\
                   | `src/actions` | keys, (a, b) | protocol, config_file (the keymap's errors, and more) |\n\
                   | `src/plane/sandbox.rs`, `src/plane/fixture.rs` | sandbox | `plane` |\n\
                   | `themes/` | TOML | |\n";
        let rows = folder_rows(doc).expect("the table reads");
        assert_eq!(rows.len(), 3, "themes/ is not under src/: {rows:?}");
        assert_eq!(rows[0].may_use, vec!["serde"]);
        assert_eq!(rows[1].may_use, vec!["protocol", "config_file"]);
        assert_eq!(rows[1].line, 8);
        assert_eq!(rows[2].paths, vec!["src/plane/sandbox.rs", "src/plane/fixture.rs"]);
        assert_eq!(rows[2].may_use, vec!["plane"]);
        let bad = "## Folders\n\n| folder | job | may use |\n|---|---|---|\n| `src/a` | two cells |\n";
        assert!(folder_rows(bad).unwrap_err().contains("needs 3 cells"));
        assert!(folder_rows("# nothing").unwrap_err().contains("no `## Folders`"));
    }

    #[test]
    fn structure_reads_dependency_names() {
        let cargo = "[package]\nname = \"x\"\n[dependencies]\nasync-nats = { version = \"1\" }\n# a = 1\nserde = \"1\"\n\
                     [dev-dependencies]\ninsta = \"1\"\n[dependencies.toml]\nversion = \"1\"\n[[bench]]\nname = \"c\"\n";
        let names = dependency_names(cargo);
        let expected: BTreeSet<String> = ["async_nats", "serde", "insta", "toml"].map(String::from).into();
        assert_eq!(names, expected);
    }

    fn source(path: &str, text: &str) -> Source {
        Source { path: path.to_string(), text: text.to_string() }
    }

    fn row(paths: &[&str], may_use: &[&str]) -> Row {
        Row {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            may_use: may_use.iter().map(|p| p.to_string()).collect(),
            line: 1,
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn structure_check_reports_each_breach_with_its_row() {
        let sources = vec![
            source("src/lib.rs", "pub mod app;\npub mod plane;\npub mod views;\n#[cfg(test)]\nmod seeds;\n"),
            source("src/main.rs", "use quarterdeck::views;\n"),
            source("src/app/mod.rs", "mod update;\n#[cfg(test)]\nmod tests;\nuse crate::app::x;\n"),
            source("src/app/update.rs", "fn sort() {\n    crate::views::columns();\n}\n"),
            source("src/app/tests.rs", "use crate::plane;\n"),
            source("src/seeds.rs", "use crate::plane;\n"),
            source("src/plane/mod.rs", "pub mod agent;\nuse crate::app;\n"),
            source("src/plane/agent/mod.rs", "pub mod docker;\nuse crate::app;\n"),
            source("src/plane/agent/docker.rs", "use crate::app;\n"),
            source("src/views/mod.rs", "use crate::{app::App, plane::x};\n"),
            source("src/views/orphan.rs", ""),
        ];
        let rows = vec![
            row(&["src/app"], &["serde"]),
            row(&["src/plane"], &[]),
            row(&["src/plane/agent"], &["app"]),
            row(&["src/plane/agent/docker.rs"], &[]),
            row(&["src/views"], &["app", "typo"]),
            row(&["src/main.rs"], &["app"]),
        ];
        let errors = check(&sources, &rows, &set(&["app", "plane", "views"]), &set(&["serde"]), &[]);
        let expected = [
            "docs/architecture.md:1: `typo` in the may-use cell of views is neither a module of the crate nor a dependency in Cargo.toml",
            "src/app/update.rs:2 uses crate::views (app may use: no module of the crate)",
            "src/main.rs:1 uses quarterdeck::views (main.rs may use: app)",
            "src/plane/mod.rs:2 uses crate::app (plane may use: no module of the crate)",
            "src/plane/agent/docker.rs:1 uses crate::app (plane/agent/docker.rs may use: no module of the crate)",
            "src/views/mod.rs:1 uses crate::plane (views may use: app)",
            "src/views/orphan.rs: no `mod` reaches it from src/lib.rs or src/main.rs",
            "src/lib.rs: no row of docs/architecture.md's Folders table covers it",
        ];
        let mut got = errors.clone();
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "got:\n{}", errors.join("\n"));
    }

    #[test]
    fn structure_table_may_not_go_round_in_a_circle() {
        let modules = set(&["app", "views", "theme", "plane"]);
        let layered = vec![
            row(&["src/app"], &["theme", "serde"]),
            row(&["src/views"], &["app", "theme"]),
            row(&["src/plane"], &[]),
            row(&["src/plane/agent"], &["plane"]),
        ];
        assert_eq!(table_circle(&layered, &modules), None, "a use of oneself is no circle");
        let circular = vec![
            row(&["src/app"], &["theme"]),
            row(&["src/theme"], &["views"]),
            row(&["src/views"], &["app"]),
        ];
        let circle = table_circle(&circular, &modules).expect("app -> theme -> views -> app");
        assert_eq!(circle.first(), circle.last());
        assert_eq!(circle.len(), 4, "{circle:?}");
    }

    #[test]
    fn structure_exceptions_excuse_one_use_and_go_stale_without_it() {
        let sources = vec![
            source("src/lib.rs", "pub mod app;\npub mod views;\n"),
            source("src/app/mod.rs", "use crate::views::columns;\n"),
            source("src/views/mod.rs", ""),
        ];
        let rows = vec![row(&["src/lib.rs"], &[]), row(&["src/app"], &[]), row(&["src/views"], &["app"])];
        let modules = set(&["app", "views"]);
        let excused = [Exception { file: "src/app/mod.rs", module: "views", why: "moving" }];
        assert_eq!(check(&sources, &rows, &modules, &set(&[]), &excused), Vec::<String>::new());
        let stale = [Exception { file: "src/views/mod.rs", module: "app", why: "moving" }];
        let errors = check(&sources, &rows, &modules, &set(&[]), &stale);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("src/app/mod.rs:1 uses crate::views")));
        assert!(errors.iter().any(|e| e.contains("matches no use any more")));
    }
}
