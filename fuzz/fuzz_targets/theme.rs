//! A user theme file, in each colour mode: a theme or an error with a line inside the
//! text, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::theme::{ColorMode, Theme};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for mode in [ColorMode::None, ColorMode::Ansi8, ColorMode::Palette256, ColorMode::TrueColor] {
        if let Err(e) = Theme::from_file("fuzz.toml", text, mode) {
            assert!(e.starts_with("theme fuzz.toml: "), "{e}");
        }
    }
});
