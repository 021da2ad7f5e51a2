use std::path::{Path, PathBuf};

use ratatui::style::Color;

use super::*;

fn parsed(text: &str) -> Result<Contexts, String> {
    parse(text, Path::new("/etc/qd"), Some(Path::new("/home/op"))).map_err(|e| e.to_string())
}

const GOOD: &str = r##"current = "staging"

[contexts.staging]
nats = "nats://127.0.0.1:4222"
nkey = "~/.config/quarterdeck/staging.seed"
colour = "yellow"

[contexts.prod-eu]
nats = " nats://10.0.0.1:4222,nats://10.0.0.2:4222 "
creds = "prod.creds"
color = "#ff0000"
production = true
"##;

#[test]
fn a_good_file_gives_each_context_resolved() {
    let c = parsed(GOOD).expect("parses");
    assert_eq!(c.current.as_deref(), Some("staging"));
    assert_eq!(c.names(), ["prod-eu", "staging"]);
    let staging = c.get("staging").expect("staging");
    assert_eq!(staging.nats, "nats://127.0.0.1:4222");
    assert_eq!(staging.nkey, Some(PathBuf::from("/home/op/.config/quarterdeck/staging.seed")));
    assert_eq!(
        (staging.colour, staging.production, staging.creds.clone()),
        (Some(Color::Yellow), false, None)
    );
    let prod = c.get("prod-eu").expect("prod-eu");
    assert_eq!(prod.nats, "nats://10.0.0.1:4222,nats://10.0.0.2:4222", "trimmed");
    assert_eq!(prod.creds, Some(PathBuf::from("/etc/qd/prod.creds")), "relative to the file");
    assert_eq!((prod.colour, prod.production), (Some(Color::Rgb(255, 0, 0)), true));
    // No file's worth of contexts is fine: an empty file, or only comments.
    assert_eq!(parsed("# none yet\n").map(|c| c.list.len()), Ok(0));
}

#[test]
fn an_unknown_colour_is_named_with_its_line_and_the_nearest_name() {
    let err = parsed("[contexts.a]\nnats = \"nats://h:1\"\ncolour = \"yelow\"\n").unwrap_err();
    assert_eq!(
        err,
        "line 3: colour \"yelow\" is not a colour: use a name, 0-255 or #rrggbb — did you mean 'yellow'?"
    );
    let err = parsed("[contexts.a]\nnats = \"nats://h:1\"\ncolour = \"#12345\"\n").unwrap_err();
    assert!(err.starts_with("line 3: colour \"#12345\" is not a colour"), "{err}");
}

#[test]
fn a_context_without_a_url_is_an_error_at_its_table() {
    let err = parsed("\n[contexts.a]\ncolour = \"red\"\n").unwrap_err();
    assert!(err.starts_with("line 2: context \"a\" has no nats URL"), "{err}");
    let err = parsed("[contexts.a]\nnats = \"  \"\n").unwrap_err();
    assert!(err.starts_with("line 2: context \"a\": nats is empty"), "{err}");
    let err = parsed("[contexts.a]\nnats = \"http://h:1\"\n").unwrap_err();
    assert!(err.contains("unknown scheme \"http\""), "{err}");
    let err = parsed("[contexts.a]\nnats = \"nats://h:1, \"\n").unwrap_err();
    assert!(err.contains("not a URL"), "{err}");
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_the_nearest_key() {
    let err = parsed("[contexts.a]\nnats = \"nats://h:1\"\nprodution = true\n").unwrap_err();
    assert_eq!(err, "line 3: unknown key 'prodution' — did you mean 'production'?");
    let err = parsed("curent = \"a\"\n").unwrap_err();
    assert_eq!(err, "line 1: unknown key 'curent' — did you mean 'current'?");
    let err = parsed("[contexts.a]\nnats = \"nats://h:1\"\nproduction = \"yes\"\n").unwrap_err();
    assert!(err.starts_with("line 3: "), "{err}");
}

#[test]
fn a_duplicate_context_or_key_is_an_error_with_its_line() {
    let err =
        parsed("[contexts.a]\nnats = \"nats://h:1\"\n\n[contexts.a]\nnats = \"nats://h:2\"\n").unwrap_err();
    assert!(err.starts_with("line 4: ") && err.contains("duplicate"), "{err}");
    let err = parsed("[contexts.a]\nnats = \"nats://h:1\"\nnats = \"nats://h:2\"\n").unwrap_err();
    assert!(err.starts_with("line 3: ") && err.contains("duplicate"), "{err}");
}

#[test]
fn names_are_checked_and_sandbox_is_taken() {
    let err = parsed("[contexts.sandbox]\nnats = \"nats://h:1\"\n").unwrap_err();
    assert!(err.starts_with("line 1: \"sandbox\" is the embedded sandbox's name"), "{err}");
    let err = parsed("[contexts.\"a b\"]\nnats = \"nats://h:1\"\n").unwrap_err();
    assert!(err.contains("has ' '"), "{err}");
}

#[test]
fn current_must_name_a_context() {
    let err = parsed("current = \"stagin\"\n[contexts.staging]\nnats = \"nats://h:1\"\n").unwrap_err();
    assert_eq!(err, "line 1: unknown current context 'stagin' — did you mean 'staging'?");
}

#[test]
fn an_unknown_name_lists_the_known_ones() {
    let c = parsed(GOOD).expect("parses");
    assert_eq!(c.pick("qa").unwrap_err(), "no context \"qa\"; contexts: prod-eu, staging");
    assert!(Contexts::default().pick("qa").unwrap_err().contains("no contexts are defined"));
    assert_eq!(c.pick("staging").map(|c| c.name.as_str()), Ok("staging"));
}

#[test]
fn a_home_path_needs_home() {
    let err =
        parse("[contexts.a]\nnats = \"nats://h:1\"\nnkey = \"~/k\"\n", Path::new("/"), None).unwrap_err();
    assert_eq!(err.to_string(), "line 3: context \"a\": nkey: \"~/k\" starts with ~ but HOME is not set");
}

#[test]
fn a_bare_url_is_labelled_by_its_host_never_its_password() {
    assert_eq!(label_of_url("nats://127.0.0.1:4222"), "127.0.0.1");
    assert_eq!(label_of_url("nats://me:secret@bus.example:4222,nats://b:1"), "bus.example");
    assert_eq!(label_of_url("tls://[::1]:4222"), "::1");
    assert_eq!(label_of_url("localhost"), "localhost");
    assert_eq!(label_of_url(""), "nats");
}

#[test]
fn a_missing_file_is_none_and_a_bad_one_names_itself() {
    let dir = std::env::temp_dir().join(format!("qd-contexts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    assert_eq!(load(&dir.join("none.toml")), Ok(None));
    let bad = dir.join("contexts.toml");
    std::fs::write(&bad, "[contexts.a]\n").expect("write");
    let err = load(&bad).unwrap_err();
    assert!(err.starts_with(&format!("{}: line 1: context \"a\" has no nats URL", bad.display())), "{err}");
    std::fs::write(&bad, GOOD).expect("write");
    let c = load(&bad).expect("loads").expect("a file");
    assert_eq!(c.path.as_deref(), Some(bad.as_path()));
    assert_eq!(c.get("prod-eu").and_then(|c| c.creds.clone()), Some(dir.join("prod.creds")));
    let _ = std::fs::remove_dir_all(dir);
}
