//! The cockpit's `config.toml`: any text gives the config or an error with a line inside
//! the text, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::cli::cockpit::parse_config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = parse_config(text) {
        let lines = text.split('\n').count();
        assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "line {:?} of a {lines}-line file", e.line);
        assert!(!e.to_string().is_empty());
    }
});
