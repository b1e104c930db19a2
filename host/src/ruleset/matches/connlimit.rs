//! `-m connlimit` (`libxt_connlimit.c`, `xt_connlimit.c`, `nf_conncount.c`): how many
//! connections a source (or, with `--connlimit-daddr`, a destination) network of
//! `--connlimit-mask` bits has open. `--connlimit-above N` matches beyond N,
//! `--connlimit-upto N` up to N. Each rule keeps the connections it has seen per network and,
//! as `nf_conncount` does, asks the connection table whether they still exist when it counts;
//! a connection not yet in the table (the packet that opens it) counts for a second.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::state::lock;
use crate::eval::{Ct, CtInfo, Cx, Engine, Pkt, Tuple};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::{parse_uint, prefix_mask};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connlimit {
    pub limit: u32,
    /// `--connlimit-upto` (else above).
    pub upto: bool,
    pub mask: u8,
    pub daddr: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    limit: Option<(u32, bool)>,
    mask: Option<u8>,
    addr: Option<bool>,
}

/// A connection a rule has seen: its original tuple, protocol, zone, and when first seen.
type Seen = (Tuple, u8, u16, u64);

/// The connections a rule has seen, per network.
#[derive(Debug)]
pub struct Compiled {
    m: Connlimit,
    /// By masked address (an IPv4 address in the low 32 bits).
    seen: Mutex<HashMap<u128, Vec<Seen>>>,
}

/// How long a connection not (yet) in the table keeps counting.
const PENDING_NS: u64 = 1_000_000_000;

impl MatchExt for Connlimit {
    type Builder = Builder;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &[
        "connlimit-upto",
        "connlimit-above",
        "connlimit-mask",
        "connlimit-saddr",
        "connlimit-daddr",
    ];

    fn option(b: &mut Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "connlimit-upto" | "connlimit-above" => {
                if b.limit.is_some() {
                    return c.err("connlimit: only one of --connlimit-upto and --connlimit-above");
                }
                let v = c.value(&format!("--{opt}"))?;
                let n = parse_uint(&v, 0, u64::from(u32::MAX))
                    .map_or_else(|| c.err_value(format!("connlimit: bad limit `{v}'")), Ok)?
                    as u32;
                // `! --connlimit-upto` is above, `! --connlimit-above` is upto.
                b.limit = Some((n, (opt == "connlimit-upto") != inv));
            }
            "connlimit-mask" => {
                c.no_invert(inv, "--connlimit-mask")?;
                c.once(&b.mask, "--connlimit-mask")?;
                let v = c.value("--connlimit-mask")?;
                b.mask = Some(
                    parse_uint(&v, 0, c.family.max_prefix().into())
                        .map_or_else(|| c.err_value(format!("connlimit: bad mask `{v}'")), Ok)?
                        as u8,
                );
            }
            "connlimit-saddr" | "connlimit-daddr" => {
                c.no_invert(inv, &format!("--{opt}"))?;
                if b.addr.is_some() {
                    return c.err("connlimit: only one of --connlimit-saddr and --connlimit-daddr");
                }
                b.addr = Some(opt == "connlimit-daddr");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, p: RuleProto) -> Result<Connlimit, String> {
        let (limit, upto) = b
            .limit
            .ok_or("connlimit: you must specify --connlimit-above or --connlimit-upto")?;
        Ok(Connlimit {
            limit,
            upto,
            mask: b.mask.unwrap_or(p.family.max_prefix()),
            daddr: b.addr.unwrap_or(false),
        })
    }

    fn save(&self, out: &mut String) {
        let _ = write!(
            out,
            " --connlimit-{} {} --connlimit-mask {} --connlimit-{}",
            if self.upto { "upto" } else { "above" },
            self.limit,
            self.mask,
            if self.daddr { "daddr" } else { "saddr" }
        );
    }

    fn compile(&self, _: &CompileEnv) -> Compiled {
        Compiled {
            m: *self,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn test(c: &Compiled, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let m = &c.m;
        let ct = match &p.ct {
            Ct::Tracked(ct) => *ct,
            _ => CtInfo::new_from(&p.h),
        };
        let key = match if m.daddr { ct.orig.dst } else { ct.orig.src } {
            IpAddr::V4(a) => u128::from(u32::from(a) & prefix_mask(m.mask.min(32))),
            IpAddr::V6(a) => u128::from(a) & u128::MAX.checked_shl(128 - u32::from(m.mask.min(128))).unwrap_or(0),
        };
        let now = cx.now;
        let mut seen = lock(&c.seen);
        let list = seen.entry(key).or_default();
        // Keep what still exists (or was first seen a moment ago and may not be in yet).
        list.retain(|(t, proto, zone, first)| {
            now.saturating_sub(*first) < PENDING_NS || cx.conns.is_none_or(|l| l.alive(t, *proto, *zone, now))
        });
        if !list
            .iter()
            .any(|(t, proto, zone, _)| *t == ct.orig && *proto == ct.proto && *zone == p.zone)
        {
            list.push((ct.orig, ct.proto, p.zone, now));
        }
        let count = list.len() as u64;
        (count > u64::from(m.limit)) != m.upto
    }
}
