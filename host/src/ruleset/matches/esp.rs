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

/// `-m ah`: iptables' (`libipt_ah.c`, `ipt_ah.c`) tests the SPI of a `-p ah` packet;
/// ip6tables' (`libip6t_ah.c`, `ip6t_ah.c`) finds the authentication header anywhere in the
/// extension-header chain, with no `-p`, and can test its length and reserved field too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ah {
    pub spi: Spi,
    /// `--ahlen` (bytes; 0 tests nothing, as in the kernel), ip6tables' only.
    pub len: Option<(bool, u32)>,
    /// `--ahres`: the reserved field must be zero; ip6tables' only.
    pub res: bool,
    pub v6: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AhBuilder {
    spi: Option<Spi>,
    len: Option<(bool, u32)>,
    res: bool,
}

impl MatchExt for Ah {
    type Builder = AhBuilder;
    type Compiled = Ah;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["ahspi", "ahlen", "ahres"];

    fn option(b: &mut AhBuilder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "ahspi" => option(&mut b.spi, "ahspi", opt, inv, c),
            "ahlen" => {
                c.once(&b.len, "--ahlen")?;
                let v = c.value_inv("--ahlen", &mut inv)?;
                let Some(n) = crate::ruleset::value::parse_uint(&v, 0, u64::from(u32::MAX)) else {
                    return c.err_value(format!("ah: bad --ahlen `{v}'"));
                };
                b.len = Some((inv, n as u32));
                Ok(true)
            }
            "ahres" => {
                c.no_invert(inv, "--ahres")?;
                b.res = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn finish(b: AhBuilder, p: RuleProto) -> Result<Ah, String> {
        let v6 = p.family == crate::ruleset::Family::V6;
        if !v6 {
            if b.len.is_some() || b.res {
                return Err("ah: --ahlen and --ahres are ip6tables' options".into());
            }
            p.require(51, "ah")?;
        }
        Ok(Ah {
            spi: b.spi.unwrap_or_default(),
            len: b.len,
            res: b.res,
            v6,
        })
    }

    fn save(&self, out: &mut String) {
        save(&self.spi, "ahspi", out);
        if let Some((inv, n)) = self.len {
            out.push_str(bang(inv));
            let _ = std::fmt::Write::write_fmt(out, format_args!(" --ahlen {n}"));
        }
        if self.res {
            out.push_str(" --ahres");
        }
    }

    fn compile(&self, _: &CompileEnv) -> Ah {
        *self
    }

    fn test(a: &Ah, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        if !a.v6 {
            // AH: next header, length, reserved (4 bytes), then the SPI.
            return test(&a.spi, p, 51, 4);
        }
        if p.h.is_v4() {
            return false;
        }
        let Some(buf) = p.buf.get(..usize::from(p.h.total_len)) else {
            return false;
        };
        let Some(h) = super::exthdr::find_hdr(buf, 51).and_then(|at| buf.get(at..at + 8)) else {
            return false;
        };
        let spi = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let hdrlen = (u32::from(h[1]) + 2) * 4;
        a.spi.inv != (a.spi.range.0..=a.spi.range.1).contains(&spi)
            && a.len.is_none_or(|(inv, n)| n == 0 || (n == hdrlen) != inv)
            && !(a.res && (h[2] != 0 || h[3] != 0))
    }
}
