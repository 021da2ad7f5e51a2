//! The repository-structure check: every `crate::<module>` path in src/ against the "may use"
//! column of docs/architecture.md's Folders table. It reads files only; no service is needed.
//!
//! What counts: `crate::x` in `use` lines, groups (`use crate::{x::A, y}`) and inline paths
//! (`crate::x::f()`), outside comments and string literals, and `quarterdeck::x` in
//! src/main.rs, the binary, where the library is `quarterdeck`. A module may always use itself.
//! Test code is skipped: `#[cfg(test)]` items and the files they declare (`app/tests.rs`),
//! since it is not part of the shipped layering (a view's snapshot test builds a whole app).

mod scan;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use scan::{crate_paths, module_decls, strip_comments_and_literals, without_test_items};
use table::{Row, dependency_names, folder_rows};

/// A use the table does not allow yet, kept until the move that removes it lands. An entry
/// that matches no use any more fails the check, so it leaves with the use.
struct Exception {
    file: &'static str,
    module: &'static str,
    why: &'static str,
}

/// Uses the table does not allow, each with its reason; a stale one fails the check. None
/// today: the last (the app's sort reading `views::columns`) went with `app::columns`.
const EXCEPTIONS: &[Exception] = &[];

const DOC: &str = "docs/architecture.md";

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

/// The `#[path = "file.rs"]` a module declaration of `name` carries in `text`, if any
/// (`#[cfg(test)] #[path = "hosts_tests.rs"] mod tests;`, the panels' snapshot tests).
fn path_attr(text: &str, name: &str) -> Option<String> {
    let decl = [format!("mod {name};"), format!("mod {name} ;")];
    let mut pending: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#[path") {
            let value = rest.split('"').nth(1)?;
            pending = Some(value.to_string());
        } else if line.starts_with("#[") {
            continue;
        } else if decl.iter().any(|d| line.ends_with(d.as_str())) && pending.is_some() {
            return pending;
        } else {
            pending = None;
        }
    }
    None
}

/// Where `mod name;` in `parent` lives, among the files there are.
fn child_file(parent: &str, name: &str, files: &BTreeMap<String, &Source>) -> Option<String> {
    let (dir, file) = parent.rsplit_once('/')?;
    // A `#[path]` is relative to the directory of the file that declares the module.
    if let Some(path) = files.get(parent).and_then(|s| path_attr(&s.text, name)) {
        let candidate = format!("{dir}/{path}");
        return files.contains_key(&candidate).then_some(candidate);
    }
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
mod tests {
    use super::path_attr;

    #[test]
    fn structure_reads_a_module_s_path_attribute() {
        let text = "pub fn x() {}\n\n#[cfg(test)]\n#[path = \"hosts_tests.rs\"]\nmod tests;\nmod other;\n";
        assert_eq!(path_attr(text, "tests").as_deref(), Some("hosts_tests.rs"));
        assert_eq!(path_attr(text, "other"), None, "the attribute belongs to the next declaration only");
    }

    use super::*;

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
