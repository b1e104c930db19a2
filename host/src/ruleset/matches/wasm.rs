//! `-m wasm --plugin NAME [--args TEXT]`, negatable: a match implemented by a wasm plugin
//! (`sdk/ABI.md`). Validation binds the rule to the loaded plugin and stores the handle; a
//! plugin call is a side effect (it may keep state, and costs time).

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::save_string;
use std::fmt::Write as _;

/// A rule's use of a wasm plugin. `handle` is filled in when the ruleset is validated
/// against the loaded plugins.
#[derive(Debug, Clone, Default)]
pub struct Plugin {
    pub inv: bool,
    pub name: String,
    pub args: String,
    pub handle: Option<std::sync::Arc<crate::ruleset::validate::Binding>>,
}

impl PartialEq for Plugin {
    fn eq(&self, o: &Self) -> bool {
        (self.inv, &self.name, &self.args) == (o.inv, &o.name, &o.args)
    }
}

impl Plugin {
    /// ` --plugin NAME [--args TEXT]`, with `!` for a negated match.
    pub fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --plugin {}", bang(self.inv), save_string(&self.name));
        if !self.args.is_empty() {
            let _ = write!(out, " --args {}", save_string(&self.args));
        }
    }

    /// Offers `--plugin`/`--args` to a plugin use; `Ok(false)` when not one of them.
    pub fn option(slot: &mut Plugin, opt: &str, inv: bool, c: &mut Cursor, negatable: bool) -> PResult<bool> {
        match opt {
            "plugin" => {
                if !negatable {
                    c.no_invert(inv, "--plugin")?;
                }
                if !slot.name.is_empty() {
                    return c.err("multiple --plugin options not allowed");
                }
                let mut inv = inv;
                let v = c.value_inv("--plugin", &mut inv)?;
                if inv && !negatable {
                    return c.err("--plugin cannot be negated in a target");
                }
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    return c.err_value(format!("bad plugin name `{v}'"));
                }
                slot.inv = inv;
                slot.name = v;
            }
            "args" => {
                c.no_invert(inv, "--args")?;
                let v = c.raw_value("--args")?;
                if v.len() > 4096 {
                    return c.err_value("--args is longer than 4096 bytes");
                }
                slot.args = v;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The bound plugin and the negation.
#[derive(Debug, Clone, Copy)]
pub struct Compiled {
    handle: Option<u32>,
    inv: bool,
}

impl MatchExt for Plugin {
    type Builder = Plugin;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["plugin", "args"];

    fn option(b: &mut Plugin, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        Plugin::option(b, opt, inv, c, true)
    }

    fn finish(w: Plugin, _: RuleProto) -> Result<Plugin, String> {
        if w.name.is_empty() {
            return Err("wasm: --plugin NAME is required".into());
        }
        Ok(w)
    }

    fn save(&self, out: &mut String) {
        Plugin::save(self, out);
    }

    fn compile(&self, _: &CompileEnv) -> Compiled {
        Compiled {
            handle: self.handle.as_ref().map(|b| b.handle),
            inv: self.inv,
        }
    }

    fn test(c: &Compiled, p: &Pkt, cx: &mut Cx, eng: &Engine) -> bool {
        let hit = match (&eng.plugins, c.handle) {
            (Some(host), Some(h)) => match host.call_match(h, p, cx) {
                Some(hit) => hit,
                None => {
                    // Fail closed: the plugin is configured to drop when it fails.
                    cx.abort = Some(crate::packet::DropReason::PluginFailure);
                    return false;
                }
            },
            _ => false,
        };
        hit != c.inv
    }
}
