//! `IDLETIMER` (`libxt_IDLETIMER.c`, `xt_IDLETIMER.c`): every packet a rule meets restarts
//! the timer of its `--label`, which runs out `--timeout` seconds after the last one; rules
//! with one label share its timer. The kernel shows each timer under
//! `/sys/class/xt_idletimer/timers/LABEL` and notifies user space when it runs out;
//! rtrouter shows them in `rtrouter stats` (`idletimer LABEL: N s left`, or how long ago it
//! ran out). As the kernel's checkentry does, adding a rule starts its label's timer, or
//! restarts it when it runs (the running router within a second: its clock is read once a
//! second, or at `stats`); a table loaded whole adds all its rules; a packet restarts the
//! timer; it goes with the last rule holding its label (`eval::arm_idletimers`). `--alarm` (a
//! timer that wakes a suspended system) is kept and printed back.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

/// `MAX_IDLETIMER_LABEL_SIZE` less the NUL: longer labels are cut, as iptables cuts them.
const MAX_LABEL: usize = 27;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleTimer {
    pub timeout: u32,
    pub label: String,
    pub alarm: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    timeout: Option<u32>,
    label: Option<String>,
    alarm: bool,
}

impl TargetExt for IdleTimer {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["timeout", "label", "alarm"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        match opt {
            "timeout" => {
                c.once(&b.timeout, "--timeout")?;
                let v = c.value("--timeout")?;
                // xt_IDLETIMER's checkentry: not zero, and below INT_MAX / 1000 seconds.
                let n = parse_uint(&v, 1, u64::from(i32::MAX as u32 / 1000 - 1))
                    .map_or_else(|| c.err_value(format!("IDLETIMER: bad --timeout `{v}'")), Ok)?;
                b.timeout = Some(n as u32);
            }
            "label" => {
                c.once(&b.label, "--label")?;
                let mut v = c.value("--label")?;
                if v.is_empty() {
                    return c.err_value("IDLETIMER: the label is empty");
                }
                if v.len() > MAX_LABEL {
                    let mut end = MAX_LABEL;
                    while !v.is_char_boundary(end) {
                        end -= 1;
                    }
                    v.truncate(end);
                }
                b.label = Some(v);
            }
            _ => b.alarm = true,
        }
        Ok(())
    }

    fn finish(b: Builder, _: RuleProto, _: bool) -> Result<IdleTimer, String> {
        Ok(IdleTimer {
            timeout: b.timeout.ok_or("IDLETIMER: option \"--timeout\" must be specified")?,
            label: b.label.ok_or("IDLETIMER: option \"--label\" must be specified")?,
            alarm: b.alarm,
        })
    }

    fn save(&self, out: &mut String) {
        // The label as idletimer_tg_save prints it: unquoted.
        let _ = write!(out, " --timeout {} --label {}", self.timeout, self.label);
        if self.alarm {
            out.push_str(" --alarm");
        }
    }

    fn apply(&self, _: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
        eng.idletimers.touch(&self.label, self.timeout, cx.now);
        None
    }
}
