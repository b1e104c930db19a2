//! `LED` (`libxt_LED.c`, `xt_LED.c`): blink the LED trigger `netfilter-ID` on each packet.
//! rtrouter drives no LEDs: the rule loads, saves back and continues, as the target does on
//! a host where no LED uses the trigger.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

/// The trigger id's room: `char id[27]` less `"netfilter-"` and the NUL.
const MAX_ID: usize = 27 - "netfilter-".len() - 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Led {
    pub id: String,
    /// Milliseconds; `None` for `inf`.
    pub delay: Option<u32>,
    pub always_blink: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    id: Option<String>,
    delay: Option<Option<u32>>,
    always_blink: bool,
}

impl TargetExt for Led {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["led-trigger-id", "led-delay", "led-always-blink"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        match opt {
            "led-trigger-id" => {
                c.once(&b.id, "--led-trigger-id")?;
                let v = c.value("--led-trigger-id")?;
                if v.len() > MAX_ID {
                    return c.err_value(format!("LED: --led-trigger-id is at most {MAX_ID} characters"));
                }
                b.id = Some(v);
            }
            "led-delay" => {
                c.once(&b.delay, "--led-delay")?;
                let v = c.value("--led-delay")?;
                b.delay = Some(if v.len() >= 3 && v[..3].eq_ignore_ascii_case("inf") {
                    None
                } else {
                    Some(
                        parse_uint(&v, 0, u64::from(u32::MAX))
                            .map_or_else(|| c.err_value("Delay value must be within range 0..4294967295"), Ok)?
                            as u32,
                    )
                });
            }
            _ => b.always_blink = true,
        }
        Ok(())
    }

    fn finish(b: Builder, _: RuleProto, _: bool) -> Result<Led, String> {
        Ok(Led {
            id: b.id.ok_or("LED: --led-trigger-id is required")?,
            delay: b.delay.unwrap_or(Some(0)),
            always_blink: b.always_blink,
        })
    }

    fn save(&self, out: &mut String) {
        // Always quoted, `"` and `\` escaped, as LED_save prints it.
        out.push_str(" --led-trigger-id \"");
        for ch in self.id.chars() {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
        match self.delay {
            None => out.push_str(" --led-delay inf"),
            // The kernel's int: a delay above INT_MAX prints negative and is left out.
            Some(d) if d > 0 && d <= i32::MAX as u32 => {
                let _ = write!(out, " --led-delay {d}");
            }
            Some(_) => {}
        }
        if self.always_blink {
            out.push_str(" --led-always-blink");
        }
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter drives no LEDs: LED only continues")
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        None
    }
}
