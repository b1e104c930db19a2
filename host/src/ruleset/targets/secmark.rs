//! `SECMARK` (`libxt_SECMARK.c`, `xt_SECMARK.c`) and `CONNSECMARK` (`libxt_CONNSECMARK.c`):
//! security labels for mandatory access control (SELinux), security and mangle tables.
//!
//! `SECMARK --selctx` needs the kernel's security module to translate the context; Linux
//! without SELinux refuses the rule at load, and so does rtrouter (it has no security module).
//! `CONNSECMARK --save`/`--restore` copy the label between packet and connection; with no
//! label ever set they change nothing, so the rules load, save and continue.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask, TableKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secmark(pub String);

impl TargetExt for Secmark {
    type Builder = Option<String>;
    const OPTIONS: &'static [&'static str] = &["selctx"];

    fn start() -> Option<String> {
        None
    }

    fn option(s: &mut Option<String>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        c.once(s, "--selctx")?;
        *s = Some(c.value("--selctx")?);
        Ok(())
    }

    fn finish(s: Option<String>, _: RuleProto, _: bool) -> Result<Secmark, String> {
        match s {
            None => Err("SECMARK: --selctx is required".into()),
            Some(ctx) => Err(format!(
                "SECMARK: no security module to translate `{ctx}' (Linux without SELinux refuses this rule too)"
            )),
        }
    }

    fn save(&self, out: &mut String) {
        out.push_str(" --selctx ");
        out.push_str(&self.0);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle, TableKind::Security]
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        None
    }
}

/// `true`: `--save`, `false`: `--restore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnSecmark(pub bool);

impl TargetExt for ConnSecmark {
    type Builder = Option<bool>;
    const OPTIONS: &'static [&'static str] = &["save", "restore"];

    fn start() -> Option<bool> {
        None
    }

    fn option(s: &mut Option<bool>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if s.is_some() {
            return c.err("CONNSECMARK: only one of --save or --restore");
        }
        *s = Some(opt == "save");
        Ok(())
    }

    fn finish(s: Option<bool>, _: RuleProto, _: bool) -> Result<ConnSecmark, String> {
        s.map(ConnSecmark)
            .ok_or_else(|| "CONNSECMARK: --save or --restore is required".into())
    }

    fn save(&self, out: &mut String) {
        out.push_str(if self.0 { " --save" } else { " --restore" });
    }

    fn tables(&self) -> &'static [TableKind] {
        // xt_CONNSECMARK's checkentry.
        &[TableKind::Mangle, TableKind::Security]
    }

    fn hooks(&self) -> HookMask {
        hooks::ALL
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter has no security module: CONNSECMARK has no label to copy")
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        None
    }
}
