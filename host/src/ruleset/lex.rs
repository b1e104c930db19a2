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
    let mut out = Vec::with_capacity(24);
    // The text of a word that had a quote; a word without one is sliced from the line whole.
    let mut cur = String::new();
    // The current word: its column, and its first byte while it has had no quote.
    let mut start: Option<(usize, Option<usize>)> = None;
    let mut quote: Option<usize> = None;
    let mut escaped = false;
    for (i, (b, c)) in line.char_indices().enumerate() {
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
                    col: start.take().map_or(col, |(s, _)| s),
                });
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                // The quoted text joins the word: its plain part so far moves into `cur`.
                match start {
                    Some((s, Some(p))) => {
                        cur.push_str(&line[p..b]);
                        start = Some((s, None));
                    }
                    Some((_, None)) => {}
                    None => start = Some((col, None)),
                }
                quote = Some(col);
            }
            c if c.is_whitespace() => {
                if let Some((s, plain)) = start.take() {
                    let text = match plain {
                        Some(p) => line[p..b].to_string(),
                        None => std::mem::take(&mut cur),
                    };
                    out.push(Token { text, col: s });
                }
            }
            c => match start {
                None => start = Some((col, Some(b))),
                Some((_, Some(_))) => {}
                Some((_, None)) => cur.push(c),
            },
        }
    }
    if let Some(col) = quote {
        return Err(UnterminatedQuote { col });
    }
    if let Some((s, plain)) = start {
        let text = match plain {
            Some(p) => line[p..].to_string(),
            None => cur,
        };
        out.push(Token { text, col: s });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer as it was before words were sliced from the line: one character at a
    /// time into a string. The reference the fast one must agree with.
    fn reference(line: &str) -> Result<Vec<Token>, UnterminatedQuote> {
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

    #[test]
    fn agrees_with_the_character_at_a_time_reference() {
        let alphabet = ['a', 'b', ' ', '\t', '"', '\\', 'é', '-', '!'];
        let mut rng = crate::eval::SplitMix(11);
        for _ in 0..50_000 {
            let n = (rng.next_u64() % 14) as usize;
            let line: String = (0..n).map(|_| alphabet[(rng.next_u64() % 9) as usize]).collect();
            let (a, b) = (tokenize(&line), reference(&line));
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    let a: Vec<_> = a.iter().map(|t| (t.text.clone(), t.col)).collect();
                    let b: Vec<_> = b.iter().map(|t| (t.text.clone(), t.col)).collect();
                    assert_eq!(a, b, "{line:?}");
                }
                (Err(a), Err(b)) => assert_eq!(a.col, b.col, "{line:?}"),
                (a, b) => panic!("{line:?}: {:?} vs {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }

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
