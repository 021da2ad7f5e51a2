//! `contexts.toml`: any text gives the contexts or an error with a line inside the text,
//! never a panic; every context it gives has a name and a URL.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use quarterdeck::context::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text, Path::new("/etc/qd"), Some(Path::new("/home/op"))) {
        Ok(contexts) => {
            assert!(contexts.list.iter().all(|c| !c.name.is_empty() && !c.nats.is_empty()));
            assert!(contexts.current.as_ref().is_none_or(|c| contexts.get(c).is_some()));
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(
                e.line.is_none_or(|l| (1..=lines).contains(&l)),
                "line {:?} of a {lines}-line file",
                e.line
            );
            assert!(!e.to_string().is_empty());
        }
    }
});
