//! `-m osf` (`libxt_osf.c`, `xt_osf.c`, `nf_osf.c`): the operating system a TCP SYN comes
//! from, by the fingerprints `nfnl_osf` loads into the kernel. rtrouter loads no
//! fingerprints, and with none loaded `nf_osf_match` finds nothing: the rule never matches,
//! negated or not.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

/// `MAXGENRELEN`: the genre's buffer, its NUL included.
const MAX_GENRE: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Osf {
    pub inv: bool,
    pub genre: String,
    pub ttl: Option<u8>,
    pub log: Option<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    genre: Option<(bool, String)>,
    ttl: Option<u8>,
    log: Option<u8>,
}

impl MatchExt for Osf {
    type Builder = Builder;
    type Compiled = ();
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["genre", "ttl", "log"];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "genre" => {
                c.once(&b.genre, "--genre")?;
                let v = c.value_inv("--genre", &mut inv)?;
                if v.len() >= MAX_GENRE {
                    return c.err_value(format!("osf: --genre is at most {} characters", MAX_GENRE - 1));
                }
                b.genre = Some((inv, v));
            }
            "ttl" | "log" => {
                let name = format!("--{opt}");
                c.no_invert(inv, &name)?;
                let slot = if opt == "ttl" { &mut b.ttl } else { &mut b.log };
                c.once(slot, &name)?;
                let v = c.value(&name)?;
                let n =
                    parse_uint(&v, 0, 2).map_or_else(|| c.err_value(format!("osf: bad {name} `{v}' (0 to 2)")), Ok)?;
                *slot = Some(n as u8);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, p: RuleProto) -> Result<Osf, String> {
        p.require(6, "tcp")
            .map_err(|_| "match `osf' is only valid with `-p tcp'".to_string())?;
        let (inv, genre) = b.genre.ok_or("osf: --genre is required")?;
        Ok(Osf {
            inv,
            genre,
            ttl: b.ttl,
            log: b.log,
        })
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --genre {}", bang(self.inv), self.genre);
        if let Some(t) = self.ttl {
            let _ = write!(out, " --ttl {t}");
        }
        if let Some(l) = self.log {
            let _ = write!(out, " --log {l}");
        }
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING | hooks::INPUT | hooks::FORWARD
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter loads no OS fingerprints: -m osf never matches, negated or not")
    }

    fn compile(&self, _: &CompileEnv) {}

    fn test(_: &(), _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        false
    }
}
