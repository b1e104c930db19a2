//! What extension parsers share: the cursor over a rule's words, negation, and errors.

use super::lex::Token;
use std::fmt;

/// A value with iptables' `!` in front of it (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Neg<T> {
    pub inv: bool,
    pub v: T,
}

impl<T> Neg<T> {
    pub fn new(inv: bool, v: T) -> Self {
        Neg { inv, v }
    }

    /// `true` when the test `hit` passes after applying the negation.
    pub fn holds(&self, hit: bool) -> bool {
        hit != self.inv
    }

    /// `" !"` or `""`: what iptables-save puts before a negated option.
    pub fn bang(&self) -> &'static str {
        bang(self.inv)
    }
}

pub fn bang(inv: bool) -> &'static str {
    if inv {
        " !"
    } else {
        ""
    }
}

/// An error in one rule: which word (index into the rule's words) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub at: usize,
    pub msg: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

pub type PResult<T> = Result<T, RuleError>;

/// Walks the words of one rule. Extension option parsers pull their values through it, so
/// that an error can always name the word it is about.
#[derive(Debug)]
pub struct Cursor<'a> {
    toks: &'a [Token],
    pub pos: usize,
    /// The value of a `--opt=value` word, handed out by the next `value()`.
    pending: Option<String>,
    /// Index of the option word being parsed, for errors.
    pub opt_at: usize,
    /// The ruleset's family: iptables and ip6tables spell some values differently.
    pub family: super::Family,
}

impl<'a> Cursor<'a> {
    pub fn new(toks: &'a [Token]) -> Self {
        Cursor {
            toks,
            pos: 0,
            pending: None,
            opt_at: 0,
            family: super::Family::V4,
        }
    }

    pub fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).map(|t| t.text.as_str())
    }

    pub fn next_word(&mut self) -> Option<&'a str> {
        let t = self.toks.get(self.pos)?;
        self.pos += 1;
        Some(&t.text)
    }

    pub fn set_pending(&mut self, v: Option<String>) {
        self.pending = v;
    }

    pub fn take_pending(&mut self) -> Option<String> {
        self.pending.take()
    }

    /// An error about the option word now being parsed.
    pub fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(RuleError {
            at: self.opt_at,
            msg: msg.into(),
        })
    }

    /// An error about the word just read as a value.
    pub fn err_value<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(RuleError {
            at: self.pos.saturating_sub(1),
            msg: msg.into(),
        })
    }

    /// The option's value: the `=value` part or the next word. Also accepts the historic
    /// `--opt ! value` form and reports it through `inv`.
    pub fn value_inv(&mut self, opt: &str, inv: &mut bool) -> PResult<String> {
        if let Some(v) = self.pending.take() {
            return Ok(v);
        }
        if self.peek() == Some("!") {
            if *inv {
                return self.err("multiple `!' flags not allowed");
            }
            *inv = true;
            self.pos += 1;
        }
        match self.toks.get(self.pos) {
            Some(t) if !(t.text.starts_with("--") && t.text.len() > 2) => {
                self.pos += 1;
                Ok(t.text.clone())
            }
            _ => self.err(format!("option \"{opt}\" requires an argument")),
        }
    }

    /// The option's value where `!` after the option is not allowed.
    pub fn value(&mut self, opt: &str) -> PResult<String> {
        let mut inv = false;
        let v = self.value_inv(opt, &mut inv)?;
        if inv {
            return self.err(format!("unexpected `!' after {opt}"));
        }
        Ok(v)
    }

    /// Like `value`, but the value may be the empty string or start with `-`, e.g. a log prefix.
    pub fn raw_value(&mut self, opt: &str) -> PResult<String> {
        if let Some(v) = self.pending.take() {
            return Ok(v);
        }
        match self.next_word() {
            Some(w) => Ok(w.to_string()),
            None => self.err(format!("option \"{opt}\" requires an argument")),
        }
    }

    /// Refuses an option given twice.
    pub fn once<T>(&self, slot: &Option<T>, opt: &str) -> PResult<()> {
        if slot.is_some() {
            return self.err(format!("multiple {opt} options not allowed"));
        }
        Ok(())
    }

    pub fn no_invert(&self, inv: bool, opt: &str) -> PResult<()> {
        if inv {
            return self.err(format!("{opt} cannot be negated with `!'"));
        }
        Ok(())
    }
}

/// What a long option word names, found as getopt_long finds it in the option table iptables
/// merges for a rule (`xtables_merge_options`: iptables' own options first, then the
/// extensions' options, the most recently loaded extension first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved<K> {
    /// Option `name` of owner `K`: spelled in full, or the one option the word abbreviates.
    Found(K, &'static str),
    /// No option is spelled so or starts so.
    Unknown,
    /// An abbreviation of several options (in table order).
    Ambiguous(Vec<&'static str>),
}

/// Looks `name` up in `tables` (owner, its options) in order: the first option spelled exactly
/// so wins; otherwise the word must be the prefix of exactly one option. Aliases of one
/// option count as different options here; getopt_long merges them only for prefixes that
/// no other option of the table shares, which no extension's aliases have.
pub(crate) fn resolve_long<K: Copy>(name: &str, tables: &[(K, &'static [&'static str])]) -> Resolved<K> {
    let all = || tables.iter().flat_map(|&(k, names)| names.iter().map(move |&n| (k, n)));
    if let Some((k, n)) = all().find(|&(_, n)| n == name) {
        return Resolved::Found(k, n);
    }
    if name.is_empty() {
        return Resolved::Unknown;
    }
    let mut hits = all().filter(|&(_, n)| n.starts_with(name));
    match (hits.next(), hits.next()) {
        (None, _) => Resolved::Unknown,
        (Some((k, n)), None) => Resolved::Found(k, n),
        (Some(_), Some(_)) => {
            Resolved::Ambiguous(all().filter(|&(_, n)| n.starts_with(name)).map(|(_, n)| n).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_options_abbreviate_as_getopt_long_does() {
        const SNAT: &[&str] = &["to-source", "random", "random-fully", "persistent"];
        const OWN: &[&str] = &["source", "protocol"];
        const POLICY: &[&str] = &["proto", "mode"];
        let t = [(0, OWN), (1, SNAT)];
        assert_eq!(resolve_long("to", &t), Resolved::Found(1, "to-source"));
        assert_eq!(resolve_long("random", &t), Resolved::Found(1, "random"), "exact wins");
        assert_eq!(
            resolve_long("rand", &t),
            Resolved::Ambiguous(vec!["random", "random-fully"])
        );
        assert_eq!(resolve_long("random-f", &t), Resolved::Found(1, "random-fully"));
        assert_eq!(resolve_long("x", &t), Resolved::Unknown);
        assert_eq!(resolve_long("", &t), Resolved::Unknown);
        assert_eq!(resolve_long("pro", &t), Resolved::Found(0, "protocol"));
        // An extension's option spelled in full beats an abbreviation of iptables' own.
        let t = [(0, OWN), (2, POLICY)];
        assert_eq!(resolve_long("proto", &t), Resolved::Found(2, "proto"));
        assert_eq!(resolve_long("prot", &t), Resolved::Ambiguous(vec!["protocol", "proto"]));
    }
}
