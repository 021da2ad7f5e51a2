//! The Folders table of docs/architecture.md as the structure check reads it, and the crate
//! names Cargo.toml gives a may-use cell.

use std::collections::BTreeSet;

use super::DOC;
use super::scan::is_ident;

/// One line of the Folders table that covers files in src/.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    /// Paths relative to the repository, each a folder or a file.
    pub(super) paths: Vec<String>,
    pub(super) may_use: Vec<String>,
    pub(super) line: usize,
}

impl Row {
    pub(super) fn label(&self) -> String {
        self.paths.iter().map(|p| p.trim_start_matches("src/")).collect::<Vec<_>>().join(", ")
    }

    /// How specific the match of `file` is: the length of the longest of its paths that holds
    /// it, so `src/plane/agent/docker` wins over `src/plane/agent`.
    pub(super) fn specificity(&self, file: &str) -> Option<usize> {
        self.paths
            .iter()
            .filter(|p| file == p.as_str() || file.starts_with(&format!("{p}/")))
            .map(String::len)
            .max()
    }
}

/// The Folders table's rows for src/, read from the doc. A "may use" cell is a list split by
/// commas; each entry's first word is a module or crate name, and words in parentheses are a
/// remark (`protocol, config_file (the keymap's errors)`).
pub(super) fn folder_rows(doc: &str) -> Result<Vec<Row>, String> {
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
pub(super) fn dependency_names(cargo_toml: &str) -> BTreeSet<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
