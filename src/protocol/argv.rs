//! A container command typed as one line, split into its argv the way a POSIX shell
//! splits words: `sh -c 'a b'` is `["sh", "-c", "a b"]`. Only the quoting is a shell's:
//! nothing is expanded (`$HOME`, `*` and `~` stay as typed), since no shell runs it.
//! `ctl deploy --cmd` and the cockpit take a command through this one parser.

/// The words of `line`: split at unquoted whitespace; `'...'` keeps everything as is;
/// `"..."` keeps everything but `\"`, `\\`, `\$` and `` \` `` (a backslash escapes them);
/// outside quotes a backslash escapes the next character. Quoted parts next to each other
/// or to plain text make one word, and `''` is an empty word.
///
/// An unclosed quote, a backslash at the end, or a line with no words is an error that
/// says which.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    // The word being read; `None` between words, so `''` can still make an empty one.
    let mut word: Option<String> = None;
    let mut chars = line.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => w.push(c),
                        None => return Err(unclosed('\'', at, line)),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('"' | '\\' | '$' | '`'))) => w.push(c),
                            // A backslash-newline inside double quotes joins the lines.
                            Some((_, '\n')) => {}
                            Some((_, c)) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(unclosed('"', at, line)),
                        },
                        Some((_, c)) => w.push(c),
                        None => return Err(unclosed('"', at, line)),
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, c)) => word.get_or_insert_with(String::new).push(c),
                None => {
                    return Err(format!(
                        "command {line:?} ends with a backslash: escape it as \\\\ or quote it"
                    ));
                }
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    if words.is_empty() {
        return Err("the command is empty: give its words, e.g. \"sh -c 'echo hi'\"".into());
    }
    Ok(words)
}

fn unclosed(quote: char, at: usize, line: &str) -> String {
    let name = if quote == '\'' { "single" } else { "double" };
    format!("command {line:?} has an unclosed {name} quote ({quote}) at byte {at}")
}

#[cfg(test)]
mod tests {
    use super::split;

    fn words(line: &str) -> Vec<String> {
        split(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    #[test]
    fn single_quotes_keep_a_word_whole() {
        assert_eq!(words("sh -c 'a b'"), ["sh", "-c", "a b"]);
        assert_eq!(words("  httpd   -f  -p 8080 "), ["httpd", "-f", "-p", "8080"]);
        assert_eq!(words(r#"echo 'it''s' 'a "b"' '\n'"#), ["echo", "its", r#"a "b""#, r"\n"]);
    }

    #[test]
    fn double_quotes_escape_only_what_a_shell_does() {
        assert_eq!(words(r#"sh -c "echo \"hi there\"""#), ["sh", "-c", r#"echo "hi there""#]);
        assert_eq!(words(r#"printf "a\tb\\c\$HOME""#), ["printf", r"a\tb\c$HOME"]);
        assert_eq!(words(r#"x "it's""#), ["x", "it's"]);
    }

    #[test]
    fn backslashes_outside_quotes_escape_the_next_character() {
        assert_eq!(words(r"touch a\ b c\'d"), ["touch", "a b", "c'd"]);
        assert_eq!(words("a \\\nb"), ["a", "b"]);
    }

    #[test]
    fn adjacent_parts_make_one_word_and_empty_quotes_a_word() {
        assert_eq!(words(r#"--name='a b'"c d"e"#), [r#"--name=a bc de"#]);
        assert_eq!(words("run '' \"\" x"), ["run", "", "", "x"]);
    }

    #[test]
    fn nothing_is_expanded() {
        assert_eq!(words("echo $HOME ~ * ; |"), ["echo", "$HOME", "~", "*", ";", "|"]);
    }

    #[test]
    fn unbalanced_quotes_and_empty_commands_are_named() {
        let e = split("sh -c 'a b").unwrap_err();
        assert!(e.contains("unclosed single quote") && e.contains("byte 6"), "{e}");
        let e = split(r#"sh -c "a b"#).unwrap_err();
        assert!(e.contains("unclosed double quote"), "{e}");
        let e = split(r#"x "a\"#).unwrap_err();
        assert!(e.contains("unclosed double quote"), "{e}");
        assert!(split("x \\").unwrap_err().contains("ends with a backslash"));
        assert!(split("").unwrap_err().contains("empty"));
        assert!(split("  \t ").unwrap_err().contains("empty"));
    }

    /// Any argv, each word single-quoted (a `'` written as `'\''`), splits back to itself.
    #[test]
    fn quoted_words_split_back_to_themselves() {
        let cases: &[&[&str]] = &[
            &["sh", "-c", "echo 'x' \"y\" $z \\ done"],
            &["", " ", "'", "\"", "\\", "a'b\"c"],
            &["tab\there", "new\nline", "ünï cødé"],
        ];
        for argv in cases {
            let line: Vec<String> = argv.iter().map(|w| format!("'{}'", w.replace('\'', r"'\''"))).collect();
            assert_eq!(words(&line.join(" ")), *argv, "{line:?}");
        }
    }
}
