//! `-m ipcomp` (`libxt_ipcomp.c`, `xt_ipcomp.c`): the compression parameter index of an IPComp
//! header (`-p ipcomp` only). `--compres` is kept and printed as iptables does; the kernel
//! does not test it.

use super::esp::{self, Spi};
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpComp {
    pub spi: Spi,
    pub compres: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    spi: Option<Spi>,
    compres: bool,
}

impl MatchExt for IpComp {
    type Builder = Builder;
    type Compiled = Spi;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["ipcompspi", "compres"];

    fn option(b: &mut Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt == "compres" {
            c.no_invert(inv, "--compres")?;
            b.compres = true;
            return Ok(true);
        }
        esp::option(&mut b.spi, "ipcompspi", opt, inv, c)
    }

    fn finish(b: Builder, p: RuleProto) -> Result<IpComp, String> {
        p.require(108, "ipcomp")?;
        Ok(IpComp {
            spi: b.spi.unwrap_or_default(),
            compres: b.compres,
        })
    }

    fn save(&self, out: &mut String) {
        esp::save(&self.spi, "ipcompspi", out);
        if self.compres {
            out.push_str(" --compres");
        }
    }

    fn compile(&self, _: &CompileEnv) -> Spi {
        self.spi
    }

    fn test(s: &Spi, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        // `comp_mt`: not a later fragment; the 16-bit CPI after next header and flags.
        if p.h.proto != 108 || p.h.frag_off != 0 {
            return false;
        }
        let o = usize::from(p.h.l4_off) + 2;
        match p.buf.get(o..o + 2) {
            Some(b) => s.inv != (s.range.0..=s.range.1).contains(&u32::from(u16::from_be_bytes([b[0], b[1]]))),
            None => false,
        }
    }
}
