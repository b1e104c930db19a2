//! Splits one line of iptables-restore input into words, the way iptables-restore does
//! (`add_param_to_argv` in iptables' `xshared.c`).
//!
//! Words are separated by blanks; a double-quoted span is part of one word and may contain
//! blanks; inside it a backslash escapes the next character, and its closing quote ends the
//! word. A single quote is an ordinary character, kept in the word (`--comment 'x'` is the
//! comment `'x'`, and `'two words'` is two words). Every word remembers the 1-based column
//! where it starts so that errors can point at it.

/// One word of a line, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// 1-based column (in characters) of the word's first character, quote included.
    pub col: usize,
}

/// An unterminated quote; `col` is where it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnterminatedQuote {
    pub col: usize,
}

/// Splits `line` into words. A `#` at the start of a word outside quotes begins a comment
/// only when it is the first word (iptables-restore treats a leading `#` line as a comment;
/// elsewhere `#` is an ordinary character, e.g. inside `--comment` text).
pub fn tokenize(line: &str) -> Result<Vec<Token>, UnterminatedQuote> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<usize> = None;
    let mut escaped = false;
    for (i, c) in line.chars().enumerate() {
        let col = i + 1;
        if quote.is_some() {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                // The closing quote ends the word.
                quote = None;
                out.push(Token {
                    text: std::mem::take(&mut cur),
                    col: start.take().unwrap_or(col),
                });
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                start.get_or_insert(col);
                quote = Some(col);
            }
            c if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push(Token {
                        text: std::mem::take(&mut cur),
                        col: s,
                    });
                }
            }
            c => {
                start.get_or_insert(col);
                cur.push(c);
            }
        }
    }
    if let Some(col) = quote {
        return Err(UnterminatedQuote { col });
    }
    if let Some(s) = start {
        out.push(Token { text: cur, col: s });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        tokenize(s).unwrap().into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn splits_on_blanks_and_keeps_quoted_spans() {
        assert_eq!(
            words(r#"-A INPUT -m comment --comment "a b\"c" -j ACCEPT"#),
            ["-A", "INPUT", "-m", "comment", "--comment", "a b\"c", "-j", "ACCEPT"]
        );
        assert_eq!(words(r#"--comment """#), ["--comment", ""]);
    }

    #[test]
    fn single_quotes_are_ordinary_characters() {
        assert_eq!(words("--comment 'x'"), ["--comment", "'x'"]);
        assert_eq!(words("--comment 'two words'"), ["--comment", "'two", "words'"]);
        // A closing double quote ends the word, as in add_param_to_argv.
        assert_eq!(words(r#"--comment "a b"c"#), ["--comment", "a b", "c"]);
    }

    #[test]
    fn columns_point_at_word_starts() {
        let t = tokenize("  -A  FOO").unwrap();
        assert_eq!((t[0].col, t[1].col), (3, 7));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            tokenize(r#"-m comment --comment "x"#),
            Err(UnterminatedQuote { col: 22 })
        );
    }
}
