//! `-m connbytes` (`libxt_connbytes.c`, `xt_connbytes.c`): how much a connection has carried
//! so far — packets, bytes or the average packet size — in one direction or both, within
//! `FROM[:TO]` (negated: outside it). Packets without a connection never match.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Ct, Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Packets,
    Bytes,
    AvgPkt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Original,
    Reply,
    Both,
}

/// `from > to` is the negated form, as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connbytes {
    pub from: u64,
    pub to: u64,
    pub what: What,
    pub dir: Dir,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    range: Option<(u64, u64)>,
    what: Option<What>,
    dir: Option<Dir>,
}

impl MatchExt for Connbytes {
    type Builder = Builder;
    type Compiled = Connbytes;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["connbytes", "connbytes-dir", "connbytes-mode"];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "connbytes" => {
                c.once(&b.range, "--connbytes")?;
                let v = c.value_inv("--connbytes", &mut inv)?;
                let num = |x: &str, d: u64| {
                    if x.is_empty() {
                        Some(d)
                    } else {
                        parse_uint(x, 0, u64::MAX)
                    }
                };
                let r = match v.split_once(':') {
                    Some((a, z)) => num(a, 0).zip(num(z, u64::MAX)),
                    None => num(&v, 0).map(|a| (a, u64::MAX)),
                };
                match r {
                    Some((a, z)) if a <= z => b.range = Some(if inv { (z, a) } else { (a, z) }),
                    _ => return c.err_value(format!("connbytes: bad range `{v}'")),
                }
            }
            "connbytes-mode" => {
                c.no_invert(inv, "--connbytes-mode")?;
                b.what = Some(match c.value("--connbytes-mode")?.as_str() {
                    "packets" => What::Packets,
                    "bytes" => What::Bytes,
                    "avgpkt" => What::AvgPkt,
                    v => return c.err_value(format!("connbytes: unknown mode `{v}'")),
                });
            }
            "connbytes-dir" => {
                c.no_invert(inv, "--connbytes-dir")?;
                b.dir = Some(match c.value("--connbytes-dir")?.as_str() {
                    "original" => Dir::Original,
                    "reply" => Dir::Reply,
                    "both" => Dir::Both,
                    v => return c.err_value(format!("connbytes: unknown direction `{v}'")),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<Connbytes, String> {
        let (from, to) = b.range.ok_or("connbytes: --connbytes is required")?;
        Ok(Connbytes {
            from,
            to,
            what: b.what.ok_or("connbytes: --connbytes-mode is required")?,
            dir: b.dir.ok_or("connbytes: --connbytes-dir is required")?,
        })
    }

    fn save(&self, out: &mut String) {
        let (a, z) = if self.from > self.to {
            out.push_str(" !");
            (self.to, self.from)
        } else {
            (self.from, self.to)
        };
        let _ = write!(out, " --connbytes {a}");
        if z != u64::MAX {
            let _ = write!(out, ":{z}");
        }
        out.push_str(match self.what {
            What::Packets => " --connbytes-mode packets",
            What::Bytes => " --connbytes-mode bytes",
            What::AvgPkt => " --connbytes-mode avgpkt",
        });
        out.push_str(match self.dir {
            Dir::Original => " --connbytes-dir original",
            Dir::Reply => " --connbytes-dir reply",
            Dir::Both => " --connbytes-dir both",
        });
    }

    fn compile(&self, _: &CompileEnv) -> Connbytes {
        *self
    }

    fn test(m: &Connbytes, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Ct::Tracked(ct) = &p.ct else { return false };
        let (pk, by) = (ct.packets, ct.bytes);
        let pick = |v: [u64; 2]| match m.dir {
            Dir::Original => v[0],
            Dir::Reply => v[1],
            Dir::Both => v[0] + v[1],
        };
        let what = match m.what {
            What::Packets => pick(pk),
            What::Bytes => pick(by),
            What::AvgPkt => pick(by).checked_div(pick(pk)).unwrap_or(0),
        };
        if m.to >= m.from {
            what >= m.from && what <= m.to
        } else {
            what < m.to || what > m.from
        }
    }
}
