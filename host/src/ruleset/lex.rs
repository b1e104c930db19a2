//! Splits one line of iptables-restore input into words, the way iptables-restore does.
//!
//! Words are separated by blanks; a double- or single-quoted span is part of one word and may
//! contain blanks; inside quotes a backslash escapes the next character. Every word remembers
//! the 1-based column where it starts so that errors can point at it.

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
    let mut quote: Option<(char, usize)> = None;
    let mut escaped = false;
    for (i, c) in line.chars().enumerate() {
        let col = i + 1;
        if let Some((q, _)) = quote {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                start.get_or_insert(col);
                quote = Some((c, col));
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
    if let Some((_, col)) = quote {
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
        assert_eq!(words("--log-prefix 'x: '"), ["--log-prefix", "x: "]);
        assert_eq!(words(r#"--comment """#), ["--comment", ""]);
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
