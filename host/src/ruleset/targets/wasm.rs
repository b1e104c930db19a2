//! `WASM --plugin NAME [--args TEXT]`: a target implemented by a wasm plugin (`sdk/ABI.md`);
//! validation binds it to the loaded plugin. A failing call gives the plugin's configured
//! outcome inside the plugin runtime.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::{Plugin, RuleProto};

#[derive(Debug, Clone, PartialEq)]
pub struct WasmTarget(pub Plugin);

impl TargetExt for WasmTarget {
    type Builder = Plugin;
    const CHECKS_INVERT: bool = true;

    fn start() -> Plugin {
        Plugin::default()
    }

    const OPTIONS: &'static [&'static str] = &["plugin", "args"];

    fn option(w: &mut Plugin, opt: &str, inv: bool, c: &mut Cursor) -> PResult<()> {
        Plugin::option(w, opt, inv, c, false).map(|_| ())
    }

    fn finish(w: Plugin, _: RuleProto, _: bool) -> Result<WasmTarget, String> {
        if w.name.is_empty() {
            return Err("WASM: --plugin NAME is required".into());
        }
        Ok(WasmTarget(w))
    }

    fn save(&self, out: &mut String) {
        self.0.save(out);
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
        match (&eng.plugins, self.0.handle.as_ref().map(|b| b.handle)) {
            (Some(host), Some(h)) => host.call_target(h, p, cx),
            _ => None,
        }
    }
}
