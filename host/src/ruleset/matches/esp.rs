//! `-m esp` (`libxt_esp.c`, `xt_esp.c`) and, with the `ah` flavour, `-m ah` (`libipt_ah.c`,
//! `ipt_ah.c`): the IPsec security parameter index of an ESP or AH header.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::{parse_range32, range32};

/// The SPI range (everything when not given) and its `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spi {
    pub inv: bool,
    pub range: (u32, u32),
}

const ALL: (u32, u32) = (0, u32::MAX);

impl Default for Spi {
    fn default() -> Self {
        Spi { inv: false, range: ALL }
    }
}

pub(super) fn option(s: &mut Option<Spi>, want: &str, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
    if opt != want {
        return Ok(false);
    }
    let name = format!("--{opt}");
    c.once(s, &name)?;
    let v = c.value_inv(&name, &mut inv)?;
    let Some(range) = parse_range32(&v) else {
        return c.err_value(format!("{}: bad {name} `{v}'", &want[..want.len() - 3]));
    };
    *s = Some(Spi { inv, range });
    Ok(true)
}

pub(super) fn save(s: &Spi, opt: &str, out: &mut String) {
    // An unnegated full range tests nothing and is not printed.
    if s.inv || s.range != ALL {
        out.push_str(bang(s.inv));
        out.push_str(" --");
        out.push_str(opt);
        out.push(' ');
        range32(out, s.range);
    }
}

/// The SPI at `at` bytes into the transport header; `None` when the packet is too short or a
/// later fragment (the kernel drops those: no match).
fn spi(p: &Pkt, at: usize) -> Option<u32> {
    if p.h.frag_off != 0 {
        return None;
    }
    let o = usize::from(p.h.l4_off) + at;
    let b = p.buf.get(o..o + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn test(s: &Spi, p: &Pkt, proto: u8, at: usize) -> bool {
    if p.h.proto != proto {
        return false;
    }
    match spi(p, at) {
        Some(v) => s.inv != (s.range.0..=s.range.1).contains(&v),
        None => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Esp(pub Spi);

impl MatchExt for Esp {
    type Builder = Option<Spi>;
    type Compiled = Spi;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["espspi"];

    fn option(s: &mut Option<Spi>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        option(s, "espspi", opt, inv, c)
    }

    fn finish(s: Option<Spi>, p: RuleProto) -> Result<Esp, String> {
        p.require(50, "esp")?;
        Ok(Esp(s.unwrap_or_default()))
    }

    fn save(&self, out: &mut String) {
        save(&self.0, "espspi", out);
    }

    fn compile(&self, _: &CompileEnv) -> Spi {
        self.0
    }

    fn test(s: &Spi, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        test(s, p, 50, 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ah(pub Spi);

impl MatchExt for Ah {
    type Builder = Option<Spi>;
    type Compiled = Spi;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["ahspi"];

    fn option(s: &mut Option<Spi>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        option(s, "ahspi", opt, inv, c)
    }

    fn finish(s: Option<Spi>, p: RuleProto) -> Result<Ah, String> {
        p.require(51, "ah")?;
        Ok(Ah(s.unwrap_or_default()))
    }

    fn save(&self, out: &mut String) {
        save(&self.0, "ahspi", out);
    }

    fn compile(&self, _: &CompileEnv) -> Spi {
        self.0
    }

    fn test(s: &Spi, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        // AH: next header, length, reserved (4 bytes), then the SPI.
        test(s, p, 51, 4)
    }
}
