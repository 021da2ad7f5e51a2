//! A line typed on the terminal without echo: `ctl secret set` reads a secret's value
//! this way when stdin is a terminal, so the value never shows on screen (nor in a
//! terminal's scrollback or a screen recording).

use std::io::Write;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What one key does to the line being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep reading.
    More,
    /// Enter: the line is complete.
    Done,
    /// Ctrl-C or Esc: the operator gave up.
    Cancelled,
}

/// Applies `key` to `line`. Printable characters are added, Backspace removes the last
/// one, Ctrl-U clears the line; Enter ends it, Ctrl-C and Esc cancel it; anything else
/// (arrows, function keys, other control keys) is ignored rather than typed.
pub fn edit(line: &mut String, key: &KeyEvent) -> Step {
    if key.kind == KeyEventKind::Release {
        return Step::More;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Enter => Step::Done,
        KeyCode::Esc => Step::Cancelled,
        KeyCode::Char('c') if ctrl => Step::Cancelled,
        KeyCode::Char('u') if ctrl => {
            line.clear();
            Step::More
        }
        KeyCode::Backspace => {
            line.pop();
            Step::More
        }
        KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
            line.push(c);
            Step::More
        }
        _ => Step::More,
    }
}

/// Prompts `prompt` on stderr and reads a line from the terminal with echo off. `None`
/// when the operator cancelled. The terminal leaves raw mode on every way out (the guard's
/// drop), errors and panics included.
pub fn read(prompt: &str) -> Result<Option<String>, String> {
    let mut stderr = std::io::stderr();
    // A prompt that cannot be shown is no reason to refuse the value.
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let read = {
        let _raw = crate::tui::exec::Raw::on()?;
        read_keys()
    };
    // Raw mode printed no newline for Enter: end the prompt's line.
    let _ = writeln!(stderr);
    read
}

fn read_keys() -> Result<Option<String>, String> {
    let mut line = String::new();
    loop {
        let event = crossterm::event::read().map_err(|e| format!("cannot read the terminal: {e}"))?;
        let Event::Key(key) = event else { continue };
        match edit(&mut line, &key) {
            Step::More => {}
            Step::Done => return Ok(Some(line)),
            Step::Cancelled => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[KeyEvent]) -> (String, Step) {
        let mut line = String::new();
        let mut last = Step::More;
        for k in keys {
            last = edit(&mut line, k);
            if last != Step::More {
                break;
            }
        }
        (line, last)
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn chars(s: &str) -> Vec<KeyEvent> {
        s.chars().map(|c| key(KeyCode::Char(c))).collect()
    }

    #[test]
    fn characters_are_typed_backspace_edits_and_enter_ends_the_line() {
        let mut keys = chars("hunter3");
        keys.push(key(KeyCode::Backspace));
        keys.extend(chars("2 ü"));
        keys.push(KeyEvent::new(KeyCode::Char('X'), KeyModifiers::SHIFT));
        keys.push(key(KeyCode::Enter));
        keys.extend(chars("after"));
        assert_eq!(typed(&keys), ("hunter2 üX".to_string(), Step::Done));
        // Backspace on an empty line stays empty; Ctrl-U clears what was typed.
        let mut keys = vec![key(KeyCode::Backspace)];
        keys.extend(chars("wrong"));
        keys.push(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        keys.extend(chars("ok"));
        keys.push(key(KeyCode::Enter));
        assert_eq!(typed(&keys), ("ok".to_string(), Step::Done));
    }

    #[test]
    fn ctrl_c_and_esc_cancel_and_other_keys_are_not_typed() {
        let mut keys = chars("abc");
        keys.push(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(typed(&keys).1, Step::Cancelled);
        assert_eq!(typed(&[key(KeyCode::Char('a')), key(KeyCode::Esc)]).1, Step::Cancelled);
        let keys = [
            key(KeyCode::Left),
            key(KeyCode::Tab),
            key(KeyCode::F(1)),
            KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL),
            KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT),
            key(KeyCode::Char('a')),
            key(KeyCode::Enter),
        ];
        assert_eq!(typed(&keys), ("a".to_string(), Step::Done));
        // A key's release is not a second press.
        let mut release = key(KeyCode::Char('z'));
        release.kind = KeyEventKind::Release;
        assert_eq!(typed(&[key(KeyCode::Char('z')), release, key(KeyCode::Enter)]).0, "z");
    }
}
