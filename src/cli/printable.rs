//! Text that reaches a terminal from the bus (an event's message, an audit record's
//! reason, a refusal) is shown without control characters. Raw, an escape sequence in it
//! would act on the operator's terminal: change its title, set the clipboard (OSC 52), or
//! clear lines. The cockpit's views never write them; this is the same rule for every
//! line the command line prints.

use std::borrow::Cow;

/// `text` with each control character written as its escape (`\u{1b}`, `\n`), so the
/// line stays one line and shows what was sent.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        assert_eq!(printable("plain ✓ text"), "plain ✓ text");
        assert_eq!(printable("\u{1b}]0;owned\u{7}title"), "\\u{1b}]0;owned\\u{7}title");
        assert_eq!(printable("\u{1b}]52;c;Y3VybA==\u{1b}\\"), "\\u{1b}]52;c;Y3VybA==\\u{1b}\\");
        assert_eq!(printable("a\nb\r\tc"), "a\\nb\\r\\tc");
        // C1 controls (a one-byte CSI) too.
        assert_eq!(printable("x\u{9b}2J"), "x\\u{9b}2J");
    }
}
