//! The keymap file: any text gives a keymap or an error with a line inside the text. A
//! keymap that parses binds no key to two actions.
#![no_main]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use libfuzzer_sys::fuzz_target;
use quarterdeck::actions::keymap::Keymap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let defaults = Keymap::defaults();
    for base in [None, Some(&defaults)] {
        match Keymap::parse(text, base) {
            Ok(map) => {
                let mut seen = std::collections::HashMap::new();
                for (action, keys) in map.bindings() {
                    assert!((1..=2).contains(&keys.len()), "{action:?} has {} keys", keys.len());
                    for key in keys {
                        if let Some(other) = seen.insert(*key, *action) {
                            assert_eq!(other, *action, "{key:?} bound twice");
                        }
                    }
                    let _ = map.keys_for(*action);
                    let _ = map.label_for(*action);
                }
                for c in ['q', 'j', ' ', 'é'] {
                    let _ = map.action_for(&KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
                }
            }
            Err(e) => {
                let lines = text.split('\n').count();
                assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "line {:?} of {lines}", e.line);
            }
        }
    }
});
