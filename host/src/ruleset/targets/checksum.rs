//! `CHECKSUM --checksum-fill` (`libxt_CHECKSUM.c`, `xt_CHECKSUM.c`): compute the transport
//! checksum. mangle table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::TableKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum;

impl TargetExt for Checksum {
    /// Whether `--checksum-fill` was given.
    type Builder = bool;

    fn start() -> bool {
        false
    }

    const OPTIONS: &'static [&'static str] = &["checksum-fill"];

    fn option(b: &mut bool, _: &str, _: bool, _: &mut Cursor) -> PResult<()> {
        *b = true;
        Ok(())
    }

    fn finish(b: bool, _: RuleProto, _: bool) -> Result<Checksum, String> {
        if b {
            Ok(Checksum)
        } else {
            Err("CHECKSUM: --checksum-fill is required".into())
        }
    }

    fn save(&self, out: &mut String) {
        out.push_str(" --checksum-fill");
    }

    fn list(&self, out: &mut String, _: bool) {
        out.push_str(" CHECKSUM fill");
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        packet::fill_l4_checksum(p.buf, &p.h);
        None
    }
}
