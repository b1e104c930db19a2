//! What a plugin target hands back (`sdk/ABI.md`): the metadata record's output fields (mark,
//! connection mark, whether it rewrote the packet), the packet bytes, and a verdict code. Kept
//! apart from the wasm runtime so that it is plain code on bytes, fuzzed as the plugin's output
//! (`host/fuzz/fuzz_targets/plugin_out.rs`): whatever a plugin writes, the packet that leaves
//! parses, or it is dropped.

use super::{Ct, Pkt, Verdict};
use crate::packet::{self, DropReason};
use rtrouter_sdk::abi;

/// Applies a plugin target's output to `pkt`: `meta` is the metadata record as the plugin
/// left it, `body` the packet bytes it sees (a prefix of the packet, at most its length),
/// `code` its return value. `None` continues with the next rule.
pub fn apply(pkt: &mut Pkt, meta: &[u8], body: &[u8], code: i32) -> Option<Verdict> {
    let get32 = |at: usize| {
        meta.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let flags = get32(abi::META_OUT_FLAGS);
    if flags & abi::OUT_MARK != 0 {
        pkt.mark = get32(abi::META_MARK);
    }
    if flags & abi::OUT_CT_MARK != 0 {
        if let Ct::Tracked(c) = &mut pkt.ct {
            c.mark = get32(abi::META_CT_MARK);
        }
    }
    if flags & abi::OUT_PACKET != 0 {
        let n = body.len().min(pkt.buf.len());
        pkt.buf[..n].copy_from_slice(&body[..n]);
        if !revalidate(pkt) {
            // The plugin broke the packet: it must not leave.
            return Some(Verdict::Abort(DropReason::PluginFailure));
        }
    }
    match code {
        abi::VERDICT_ACCEPT => Some(Verdict::Accept),
        abi::VERDICT_DROP => Some(Verdict::Drop),
        abi::VERDICT_REJECT => Some(Verdict::Reject(crate::ruleset::targets::RejectWith::PortUnreachable)),
        _ => None,
    }
}

/// After a target changed packet bytes: the IPv4 header checksum and the transport checksum
/// are recomputed and the packet re-parsed. `false` if it no longer parses.
fn revalidate(pkt: &mut Pkt) -> bool {
    if pkt.buf.len() >= 20 && pkt.buf[0] >> 4 == 4 {
        let hl = (usize::from(pkt.buf[0] & 15) * 4).min(pkt.buf.len());
        pkt.buf[10..12].copy_from_slice(&[0, 0]);
        let c = packet::checksum::finish(packet::checksum::sum(&pkt.buf[..hl]));
        pkt.buf[10..12].copy_from_slice(&c.to_be_bytes());
    }
    match packet::parse(pkt.buf) {
        Ok(h) => {
            packet::fill_l4_checksum(pkt.buf, &h);
            pkt.h = h;
            true
        }
        Err(_) => false,
    }
}
