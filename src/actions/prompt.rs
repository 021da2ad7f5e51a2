//! Keys while text is being typed (the palette, the filter, a form, a typed confirmation)
//! or a dialog is open. These do not go through the keymap: in a text field every printable
//! key is text, so `q` types a q rather than quitting.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::Action;

/// What the cockpit is waiting for, which decides what a key means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Keys go through the keymap.
    Normal,
    /// A `[y/N]` dialog: y confirms, n / Enter / Esc cancel, digits and ←/→ set the batch.
    Confirm,
    /// A prod confirmation: the app's name is typed, then Enter.
    TypedConfirm,
    /// A text field: the palette, the filter or a form.
    Text,
}

/// The action for a key in a dialog or text field; `None` ignores the key.
pub fn action_for(mode: InputMode, key: &KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        // Ctrl-c never types: it closes what is open (and quits from the panels).
        return Some(Action::Cancelled);
    }
    match mode {
        InputMode::Normal => None,
        InputMode::Confirm => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirmed),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Enter => {
                Some(Action::Cancelled)
            }
            KeyCode::Char(d) if d.is_ascii_digit() => Some(Action::Input(d)),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Left | KeyCode::Char('-') => Some(Action::Adjust(-1)),
            KeyCode::Right | KeyCode::Char('+') => Some(Action::Adjust(1)),
            _ => None,
        },
        InputMode::TypedConfirm | InputMode::Text => match key.code {
            KeyCode::Esc => Some(if mode == InputMode::Text { Action::Back } else { Action::Cancelled }),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char('u') if ctrl => Some(Action::ClearInput),
            KeyCode::Tab => Some(Action::Complete),
            KeyCode::BackTab => Some(Action::CompletePrev),
            KeyCode::Up => Some(Action::HistoryPrev),
            KeyCode::Down => Some(Action::HistoryNext),
            KeyCode::Left => Some(Action::Adjust(-1)),
            KeyCode::Right => Some(Action::Adjust(1)),
            KeyCode::Char(c) if !ctrl && !c.is_control() => Some(Action::Input(c)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn text_fields_take_every_printable_key() {
        for c in ['q', 'r', 'y', ':', '/', ' ', '!'] {
            assert!(
                matches!(action_for(InputMode::Text, &key(KeyCode::Char(c))), Some(Action::Input(x)) if x == c)
            );
        }
        assert!(matches!(action_for(InputMode::Text, &key(KeyCode::Esc)), Some(Action::Back)));
        assert!(matches!(action_for(InputMode::TypedConfirm, &key(KeyCode::Esc)), Some(Action::Cancelled)));
        assert!(matches!(action_for(InputMode::Text, &key(KeyCode::Tab)), Some(Action::Complete)));
    }

    #[test]
    fn a_confirm_dialog_answers_only_y() {
        assert!(matches!(action_for(InputMode::Confirm, &key(KeyCode::Char('y'))), Some(Action::Confirmed)));
        for code in [KeyCode::Char('n'), KeyCode::Enter, KeyCode::Esc] {
            assert!(matches!(action_for(InputMode::Confirm, &key(code)), Some(Action::Cancelled)));
        }
        assert!(action_for(InputMode::Confirm, &key(KeyCode::Char('r'))).is_none());
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(matches!(action_for(InputMode::Text, &ctrl_c), Some(Action::Cancelled)));
    }
}
