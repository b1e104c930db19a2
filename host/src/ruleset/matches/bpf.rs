//! `-m bpf --bytecode "N,code jt jf k,..."` (`libxt_bpf.c`, `xt_bpf.c`): a classic BPF
//! program (as `nfbpf_compile RAW` writes it) run on the packet from its IP header; the rule
//! matches when it returns non-zero. Programs are checked as the kernel's
//! `bpf_check_classic` checks them (known opcodes, jumps inside the program, a return at the
//! end, scratch memory written before it is read, no division by a constant 0, constant
//! shifts below 32), and run as its interpreter runs them: a load past the end of the packet
//! or a division by a zero X ends the program with 0.
//!
//! The ancillary loads (`ld [SKF_AD_OFF + n]`, any size, as `convert_bpf_extensions` turns
//! them into reads of the packet's metadata) give: `protocol` the ethertype (0x0800, 0x86dd);
//! `pkttype` 0 (PACKET_HOST, as TUN delivers every packet); `ifindex` the rtrouter interface's
//! number + 1 (the TUN devices' own indexes live in other namespaces; 0 ends the program as
//! with no device); `mark` the mark; `queue` 0; `hatype` 65534 (ARPHRD_NONE, a TUN device);
//! `rxhash` a flow hash that is the same in both directions and never 0 (the kernel's is
//! seeded at random too); `cpu` the CPU; `vlan_tag`, `vlan_tag_present`, `vlan_tpid` 0 (no
//! VLANs on TUN); `pay_offset` where the transport payload starts (`__skb_get_poff`);
//! `random` a random number; `alu_xor_x` A ^= X; `nlattr` and `nlattr_nest` the netlink
//! attribute search (`__skb_get_nlattr`). An unknown ancillary offset is refused, as by
//! `bpf_check_classic`.
//!
//! `--object-pinned PATH` (revision 1): an eBPF socket-filter program pinned in bpffs, opened
//! when the rule is read and run by the kernel for each packet (see [`crate::ebpf`]); the rule
//! prints back with the path as given.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::ebpf::PinnedProg;
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use std::fmt::Write as _;
use std::sync::Arc;

/// `XT_BPF_MAX_NUM_INSTR`.
const MAX_INSNS: usize = 64;
/// `BPF_MEMWORDS`.
const MEMWORDS: u32 = 16;
/// `SKF_NET_OFF`: loads relative to the network header.
const SKF_NET_OFF: i32 = -0x10_0000;
/// `SKF_AD_OFF`: the ancillary loads.
const SKF_AD_OFF: i32 = -0x1000;

/// The ancillary loads (`SKF_AD_*`, offsets from [`SKF_AD_OFF`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anc {
    Protocol,
    PktType,
    IfIndex,
    NlAttr,
    NlAttrNest,
    Mark,
    Queue,
    HaType,
    RxHash,
    Cpu,
    AluXorX,
    VlanTag,
    VlanTagPresent,
    PayOffset,
    Random,
    VlanTpid,
}

/// Which ancillary load `ld [k]` is (`bpf_anc_helper`), if any.
fn ancillary(k: u32) -> Option<Anc> {
    let off = (k as i32).checked_sub(SKF_AD_OFF)?;
    Some(match off {
        0 => Anc::Protocol,
        4 => Anc::PktType,
        8 => Anc::IfIndex,
        12 => Anc::NlAttr,
        16 => Anc::NlAttrNest,
        20 => Anc::Mark,
        24 => Anc::Queue,
        28 => Anc::HaType,
        32 => Anc::RxHash,
        36 => Anc::Cpu,
        40 => Anc::AluXorX,
        44 => Anc::VlanTag,
        48 => Anc::VlanTagPresent,
        52 => Anc::PayOffset,
        56 => Anc::Random,
        60 => Anc::VlanTpid,
        _ => return None,
    })
}

/// What the ancillary loads read of the packet besides its bytes.
pub(crate) struct Meta<'a> {
    pub mark: u32,
    /// The rtrouter interface the packet is at (in, or out for locally sent ones).
    pub iface: Option<u16>,
    pub cpu: u32,
    pub random: &'a mut dyn FnMut() -> u32,
}

/// `nla_find` over the attributes in `b` (host byte order, 4-byte aligned): the offset (within
/// `b`) of the first of type `t`.
fn nla_find(b: &[u8], t: u32) -> Option<usize> {
    let mut at = 0usize;
    while b.len().saturating_sub(at) >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[at], b[at + 1]]));
        let typ = u16::from_ne_bytes([b[at + 2], b[at + 3]]) & 0x3fff;
        if len < 4 || len > b.len() - at {
            return None;
        }
        if u32::from(typ) == t {
            return Some(at);
        }
        at += (len + 3) & !3;
    }
    None
}

/// The transport protocol, where its header starts, and whether the packet is a later
/// fragment, read leniently (what the flow dissector reads).
fn transport(pkt: &[u8]) -> Option<(u8, usize, bool)> {
    match pkt.first()? >> 4 {
        4 if pkt.len() >= 20 => {
            let later = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1fff != 0;
            Some((pkt[9], usize::from(pkt[0] & 0x0f) * 4, later))
        }
        6 => {
            let e = crate::packet::skip_ext6(pkt)?;
            Some((e.next, e.off, e.frag_off != 0))
        }
        _ => None,
    }
}

/// `__skb_get_poff`: where the transport payload starts, from the network header.
fn payload_offset(pkt: &[u8]) -> u32 {
    let Some((proto, off, later)) = transport(pkt) else {
        return 0;
    };
    if later {
        return off as u32;
    }
    let add = match proto {
        6 => pkt.get(off + 12).map_or(20, |b| usize::from(b >> 4) * 4).max(20),
        17 | 136 | 1 | 58 | 2 => 8,
        132 => 12,
        33 => 16,
        _ => 0,
    };
    (off + add) as u32
}

/// `skb_get_hash`: the same for both directions of a flow, never 0.
fn flow_hash(pkt: &[u8]) -> u32 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let Some((proto, off, later)) = transport(pkt) else {
        return 1;
    };
    let (src, dst): (&[u8], &[u8]) = if pkt[0] >> 4 == 4 {
        (&pkt[12..16], &pkt[16..20])
    } else {
        (&pkt[8..24], &pkt[24..40])
    };
    let ports = match proto {
        6 | 17 | 132 | 33 | 136 if !later => pkt.get(off..off + 4).map_or([0; 4], |p| [p[0], p[1], p[2], p[3]]),
        _ => [0; 4],
    };
    let (a, b) = ((src, &ports[..2]), (dst, &ports[2..]));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    use std::hash::BuildHasher;
    let hasher = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    match hasher.hash_one((seed, lo, hi, proto)) as u32 {
        0 => 1,
        v => v,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The program a rule runs.
#[derive(Debug, Clone)]
pub enum Bpf {
    /// `--bytecode`: a classic program, run here.
    Classic(Vec<Insn>),
    /// `--object-pinned PATH`: an eBPF socket filter the kernel runs for us.
    Pinned(String, Arc<PinnedProg>),
}

impl PartialEq for Bpf {
    /// Rules compare by what they say (iptables compares the path, not the descriptor).
    fn eq(&self, o: &Bpf) -> bool {
        match (self, o) {
            (Bpf::Classic(a), Bpf::Classic(b)) => a == b,
            (Bpf::Pinned(a, _), Bpf::Pinned(b, _)) => a == b,
            _ => false,
        }
    }
}

// Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;

/// Whether `code` is an instruction `bpf_check_classic` accepts (`chk_code_allowed`).
// The table spells each opcode field by field, zero fields included.
#[allow(clippy::identity_op)]
fn allowed(code: u16) -> bool {
    const OPS: &[u16] = &[
        // ALU, with K and X.
        ALU | 0x00,
        ALU | 0x10,
        ALU | 0x20,
        ALU | 0x30,
        ALU | 0x40,
        ALU | 0x50,
        ALU | 0x60,
        ALU | 0x70,
        ALU | 0x90,
        ALU | 0xa0,
        ALU | 0x00 | X,
        ALU | 0x10 | X,
        ALU | 0x20 | X,
        ALU | 0x30 | X,
        ALU | 0x40 | X,
        ALU | 0x50 | X,
        ALU | 0x60 | X,
        ALU | 0x70 | X,
        ALU | 0x90 | X,
        ALU | 0xa0 | X,
        ALU | 0x80,
        // Loads.
        LD | IMM,
        LD | W | ABS,
        LD | H | ABS,
        LD | B | ABS,
        LD | W | LEN,
        LD | W | IND,
        LD | H | IND,
        LD | B | IND,
        LD | MEM,
        LDX | W | IMM,
        LDX | W | LEN,
        LDX | W | MEM,
        LDX | B | MSH,
        // Stores, returns, transfers.
        ST,
        STX,
        RET | K,
        RET | A,
        MISC,
        MISC | 0x80,
        // Jumps.
        JMP,
        JMP | 0x10,
        JMP | 0x10 | X,
        JMP | 0x20,
        JMP | 0x20 | X,
        JMP | 0x30,
        JMP | 0x30 | X,
        JMP | 0x40,
        JMP | 0x40 | X,
    ];
    OPS.contains(&code)
}

/// `bpf_check_classic`, and the ancillary loads rtrouter does not run.
fn check(p: &[Insn]) -> Result<(), String> {
    let n = p.len();
    for (pc, i) in p.iter().enumerate() {
        if !allowed(i.code) {
            return Err(format!("bpf: unknown instruction {} at {pc}", i.code));
        }
        let class = i.code & 0x07;
        let op = i.code & 0xf0;
        match class {
            ALU if i.code & X == 0 && (op == 0x30 || op == 0x90) && i.k == 0 => {
                return Err(format!("bpf: division by zero at {pc}"))
            }
            ALU if i.code & X == 0 && (op == 0x60 || op == 0x70) && i.k >= 32 => {
                return Err(format!("bpf: shift by {} at {pc}", i.k))
            }
            LD | LDX if i.code & 0xe0 == MEM && i.k >= MEMWORDS => {
                return Err(format!("bpf: scratch word {} at {pc}", i.k))
            }
            ST | STX if i.k >= MEMWORDS => return Err(format!("bpf: scratch word {} at {pc}", i.k)),
            JMP if op == 0x00 && i.k as usize >= n - pc - 1 => {
                return Err(format!("bpf: jump out of the program at {pc}"));
            }
            JMP if op != 0x00 && (pc + usize::from(i.jt) + 1 >= n || pc + usize::from(i.jf) + 1 >= n) => {
                return Err(format!("bpf: jump out of the program at {pc}"));
            }
            _ => {}
        }
        // `SKF_AD_OFF` (-0x1000) and above are the ancillary loads: an absolute load there must
        // be a known one.
        if class == LD
            && i.code & 0xe0 == ABS
            && (i.k as i32) >= SKF_AD_OFF
            && (i.k as i32) < 0
            && ancillary(i.k).is_none()
        {
            return Err(format!("bpf: unknown ancillary load at {pc}"));
        }
    }
    if p.last().is_none_or(|i| i.code & 0x07 != RET) {
        return Err("bpf: the program must end with a return".into());
    }
    // `check_load_and_stores`: no scratch word read before every path has written it.
    let mut masks = vec![u16::MAX; n];
    let mut memvalid: u16 = 0;
    for (pc, i) in p.iter().enumerate() {
        memvalid &= masks[pc];
        let class = i.code & 0x07;
        match class {
            ST | STX => memvalid |= 1 << i.k,
            LD | LDX if i.code & 0xe0 == MEM && memvalid & (1 << i.k) == 0 => {
                return Err(format!("bpf: scratch word {} read before it is written at {pc}", i.k));
            }
            JMP => {
                if i.code & 0xf0 == 0x00 {
                    masks[pc + 1 + i.k as usize] &= memvalid;
                    memvalid = u16::MAX;
                } else {
                    masks[pc + 1 + usize::from(i.jt)] &= memvalid;
                    masks[pc + 1 + usize::from(i.jf)] &= memvalid;
                    memvalid = u16::MAX;
                }
            }
            RET => memvalid = u16::MAX,
            _ => {}
        }
    }
    Ok(())
}

/// `"N,code jt jf k,..."` as `bpf_parse_string` reads it.
fn parse(v: &str) -> Result<Vec<Insn>, String> {
    let (head, rest) = v.split_once(',').ok_or("bpf: error parsing program length")?;
    let len: usize = head.trim().parse().map_err(|_| "bpf: error parsing program length")?;
    if len == 0 {
        return Err("bpf: illegal zero length program".into());
    }
    if len > MAX_INSNS {
        return Err("bpf: number of instructions exceeds maximum".into());
    }
    let mut p = Vec::with_capacity(len);
    for (i, item) in rest.split(',').filter(|s| !s.is_empty()).enumerate() {
        if i >= len {
            return Err("bpf: real program length exceeds the encoded length parameter".into());
        }
        let w: Vec<&str> = item.split_whitespace().collect();
        let insn = match w.as_slice() {
            [c, t, f, k] => (|| {
                Some(Insn {
                    code: c.parse().ok()?,
                    jt: t.parse().ok()?,
                    jf: f.parse().ok()?,
                    k: k.parse().ok()?,
                })
            })(),
            _ => None,
        };
        p.push(insn.ok_or(format!("bpf: error at instr {i}"))?);
    }
    if p.len() != len {
        return Err("bpf: parsed program length is less than the encoded length parameter".into());
    }
    Ok(p)
}

/// Runs the program on `pkt` (from its IP header), the ancillary loads reading `meta`; its
/// return value.
fn run(p: &[Insn], pkt: &[u8], meta: &mut Meta) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut m = [0u32; MEMWORDS as usize];
    let load = |at: i64, size: usize| -> Option<u32> {
        let at = if at >= i64::from(SKF_NET_OFF) && at < 0 {
            // SKF_NET_OFF: the network header is where the packet starts here.
            at - i64::from(SKF_NET_OFF)
        } else if at < 0 && at >= 2 * i64::from(SKF_NET_OFF) {
            // SKF_LL_OFF: a TUN packet's link-layer header is where its network header is.
            at - 2 * i64::from(SKF_NET_OFF)
        } else {
            at
        };
        let at = usize::try_from(at).ok()?;
        let b = pkt.get(at..at.checked_add(size)?)?;
        Some(match size {
            4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            2 => u32::from(u16::from_be_bytes([b[0], b[1]])),
            _ => u32::from(b[0]),
        })
    };
    let size = |code: u16| match code & 0x18 {
        W => 4,
        H => 2,
        _ => 1,
    };
    let mut pc = 0;
    while let Some(i) = p.get(pc) {
        pc += 1;
        let class = i.code & 0x07;
        let src = if i.code & X != 0 { x } else { i.k };
        match class {
            LD => match i.code & 0xe0 {
                IMM => a = i.k,
                ABS if ancillary(i.k).is_some() => {
                    a = match ancillary(i.k).expect("just matched") {
                        Anc::Protocol => {
                            if pkt.first().is_some_and(|b| b >> 4 == 6) {
                                0x86dd
                            } else {
                                0x0800
                            }
                        }
                        Anc::PktType | Anc::Queue | Anc::VlanTag | Anc::VlanTagPresent | Anc::VlanTpid => 0,
                        Anc::IfIndex => match meta.iface {
                            Some(i) => u32::from(i) + 1,
                            None => return 0,
                        },
                        Anc::Mark => meta.mark,
                        Anc::HaType => 65534,
                        Anc::RxHash => flow_hash(pkt),
                        Anc::Cpu => meta.cpu,
                        Anc::Random => (meta.random)(),
                        Anc::AluXorX => a ^ x,
                        Anc::PayOffset => payload_offset(pkt),
                        Anc::NlAttr => {
                            let at = a as usize;
                            if pkt.len() < 4 || at > pkt.len() - 4 {
                                0
                            } else {
                                nla_find(&pkt[at..], x).map_or(0, |o| (at + o) as u32)
                            }
                        }
                        Anc::NlAttrNest => {
                            let at = a as usize;
                            if pkt.len() < 4 || at > pkt.len() - 4 {
                                0
                            } else {
                                let len = usize::from(u16::from_ne_bytes([pkt[at], pkt[at + 1]]));
                                if len > pkt.len() - at || len < 4 {
                                    0
                                } else {
                                    nla_find(&pkt[at + 4..at + len], x).map_or(0, |o| (at + 4 + o) as u32)
                                }
                            }
                        }
                    }
                }
                ABS => match load(i64::from(i.k as i32), size(i.code)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                IND => match load(i64::from(x) + i64::from(i.k as i32), size(i.code)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                MEM => a = m[i.k as usize],
                _ => a = pkt.len() as u32,
            },
            LDX => match i.code & 0xe0 {
                IMM => x = i.k,
                MEM => x = m[i.k as usize],
                LEN => x = pkt.len() as u32,
                _ => match load(i64::from(i.k as i32), 1) {
                    Some(v) => x = 4 * (v & 0x0f),
                    None => return 0,
                },
            },
            ST => m[i.k as usize] = a,
            STX => m[i.k as usize] = x,
            ALU => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 | 0x90 if src == 0 => return 0,
                    0x30 => a / src,
                    0x90 => a % src,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    0x80 => a.wrapping_neg(),
                    _ => a ^ src,
                }
            }
            JMP => {
                let hit = match i.code & 0xf0 {
                    0x00 => {
                        pc += i.k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    _ => a & src != 0,
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            RET => return if i.code & A != 0 { a } else { i.k },
            _ => {
                if i.code & 0x80 == 0 {
                    x = a;
                } else {
                    a = x;
                }
            }
        }
    }
    0
}

impl MatchExt for Bpf {
    type Builder = Option<Bpf>;
    type Compiled = Bpf;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["bytecode", "object-pinned"];

    fn option(b: &mut Option<Bpf>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        // libxt_bpf's revision 1 options exclude each other; each may be given once.
        let given = |b: &Option<Bpf>, pinned: bool| match b {
            Some(Bpf::Pinned(..)) if pinned => c.err(format!("bpf: option \"--{opt}\" can only be used once.")),
            Some(Bpf::Classic(_)) if !pinned => c.err(format!("bpf: option \"--{opt}\" can only be used once.")),
            Some(_) => c.err("bpf: one of --bytecode or --pinned is required"),
            None if inv => c.err(format!("bpf: option \"--{opt}\" cannot be inverted.")),
            None => Ok(()),
        };
        match opt {
            "bytecode" => {
                given(b, false)?;
                let v = c.value("--bytecode")?;
                match parse(&v).and_then(|p| check(&p).map(|()| p)) {
                    Ok(p) => *b = Some(Bpf::Classic(p)),
                    Err(e) => return c.err_value(e),
                }
            }
            "object-pinned" => {
                given(b, true)?;
                let path = c.value("--object-pinned")?;
                match PinnedProg::open(&path) {
                    Ok(p) => *b = Some(Bpf::Pinned(path, Arc::new(p))),
                    Err(e) => return c.err_value(e.to_string()),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Option<Bpf>, _: RuleProto) -> Result<Bpf, String> {
        b.ok_or_else(|| "bpf: one of --bytecode or --pinned is required".into())
    }

    fn save(&self, out: &mut String) {
        match self {
            Bpf::Classic(p) => {
                let _ = write!(out, " --bytecode \"{},", p.len());
                for (n, i) in p.iter().enumerate() {
                    let _ = write!(out, "{} {} {} {}", i.code, i.jt, i.jf, i.k);
                    out.push(if n + 1 < p.len() { ',' } else { '"' });
                }
            }
            Bpf::Pinned(path, _) => {
                let _ = write!(out, " --object-pinned {path}");
            }
        }
    }

    fn compile(&self, _: &CompileEnv) -> Bpf {
        self.clone()
    }

    fn test(m: &Bpf, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let prog = match m {
            Bpf::Classic(prog) => prog,
            Bpf::Pinned(_, prog) => return prog.run(p.buf, p.mark) != 0,
        };
        let cpu = if prog
            .iter()
            .any(|i| i.code & 0x07 == LD && ancillary(i.k) == Some(Anc::Cpu))
        {
            (cx.cpu)()
        } else {
            0
        };
        let rng = &mut *cx.rng;
        let mut random = || rng.below(u32::MAX);
        let mut meta = Meta {
            mark: p.mark,
            iface: p.in_if.or(p.out_if).map(|i| i.0),
            cpu,
            random: &mut random,
        };
        run(prog, p.buf, &mut meta) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &[Insn], pkt: &[u8]) -> u32 {
        let mut r = || 4;
        super::run(
            p,
            pkt,
            &mut Meta {
                mark: 0x2a,
                iface: Some(1),
                cpu: 3,
                random: &mut r,
            },
        )
    }

    #[test]
    fn programs_run_as_the_classic_interpreter_runs_them() {
        // IPv4 TCP with IHL 5: ldb [9]; jeq #6, 0, 1; ret #1; ret #0.
        let tcp = parse("4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0").unwrap();
        check(&tcp).unwrap();
        let mut pkt = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        pkt.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(run(&tcp, &pkt), 1);
        pkt[9] = 17;
        assert_eq!(run(&tcp, &pkt), 0);
        // The destination port through the header length: ldxb 4*([0]&0xf); ldh [x+2];
        // jeq #80; ret #0xffff; ret #0.
        let port = parse("5,177 0 0 0,72 0 0 2,21 0 1 80,6 0 0 65535,6 0 0 0").unwrap();
        check(&port).unwrap();
        assert_eq!(run(&port, &pkt), 65535);
        // A load past the end ends with 0; the length is the packet's.
        let far = parse("2,32 0 0 1000,6 0 0 1").unwrap();
        assert_eq!(run(&far, &pkt), 0);
        let len = parse("2,128 0 0 0,22 0 0 0").unwrap();
        assert_eq!(run(&len, &pkt), 40);
        // Scratch memory and arithmetic: st M[3]; ldx M[3]; txa; add #2; ret a.
        let mem = parse("6,0 0 0 5,2 0 0 3,97 0 0 3,135 0 0 0,4 0 0 2,22 0 0 0").unwrap();
        check(&mem).unwrap();
        assert_eq!(run(&mem, &pkt), 7);
    }

    #[test]
    fn ancillary_loads_read_the_packets_metadata() {
        let mut pkt = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        pkt.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0]);
        // ld [SKF_AD_OFF + off] (word, half and byte alike); ret a.
        let anc = |code: u16, off: u32| {
            let p = parse(&format!("2,{code} 0 0 {},22 0 0 0", 4_294_963_200u32 + off)).unwrap();
            check(&p).unwrap();
            run(&p, &pkt)
        };
        for code in [32, 40, 48] {
            assert_eq!(anc(code, 0), 0x0800, "protocol");
        }
        assert_eq!(anc(32, 4), 0, "pkttype: PACKET_HOST");
        assert_eq!(anc(32, 8), 2, "ifindex");
        assert_eq!(anc(32, 20), 0x2a, "mark");
        assert_eq!(anc(32, 24), 0, "queue");
        assert_eq!(anc(32, 28), 65534, "hatype: ARPHRD_NONE");
        assert_eq!(anc(32, 36), 3, "cpu");
        assert_eq!(anc(32, 44), 0, "vlan tag");
        assert_eq!(anc(32, 48), 0, "vlan tag present");
        assert_eq!(anc(32, 52), 40, "payload offset: IP 20 + TCP 20");
        assert_eq!(anc(32, 56), 4, "random");
        assert_eq!(anc(32, 60), 0, "vlan tpid");
        // The flow hash is the same both ways and never 0.
        let h = anc(32, 32);
        let mut back = pkt.clone();
        back[12..16].copy_from_slice(&[10, 0, 0, 2]);
        back[16..20].copy_from_slice(&[10, 0, 0, 1]);
        back[20..24].copy_from_slice(&[0, 80, 0x30, 0x39]);
        assert!(h != 0 && h == flow_hash(&back));
        back[20..24].copy_from_slice(&[0, 81, 0x30, 0x39]);
        assert_ne!(h, flow_hash(&back), "another flow (almost surely) hashes apart");
        // ldx #5; ld #3; A ^= X; ret a.
        let xor = parse("4,1 0 0 5,0 0 0 3,32 0 0 4294963240,22 0 0 0").unwrap();
        assert_eq!(run(&xor, &pkt), 6);
        // No interface (a packet without a device): the program ends with 0.
        let p = parse("2,32 0 0 4294963208,6 0 0 9").unwrap();
        let mut r = || 0;
        let mut meta = Meta {
            mark: 0,
            iface: None,
            cpu: 0,
            random: &mut r,
        };
        assert_eq!(super::run(&p, &pkt, &mut meta), 0);
        // Netlink attributes after offset 20: (len 8, type 1), (len 6, type 7): the search
        // for type 7 from A = 20 finds it at 28; a nested search inside the first finds none.
        let mut nl = pkt[..20].to_vec();
        nl.extend_from_slice(&8u16.to_ne_bytes());
        nl.extend_from_slice(&1u16.to_ne_bytes());
        nl.extend_from_slice(&[0; 4]);
        nl.extend_from_slice(&6u16.to_ne_bytes());
        nl.extend_from_slice(&7u16.to_ne_bytes());
        nl.extend_from_slice(&[0; 2]);
        let find = |off: u32| {
            let p = parse(&format!(
                "4,0 0 0 20,1 0 0 7,32 0 0 {},22 0 0 0",
                4_294_963_200u32 + off
            ))
            .unwrap();
            run(&p, &nl)
        };
        assert_eq!(find(12), 28);
        assert_eq!(find(16), 0);
    }

    #[test]
    fn programs_are_checked_as_bpf_check_classic_checks_them() {
        for (bad, why) in [
            ("0,", "zero length"),
            ("65,6 0 0 0", "exceeds maximum"),
            ("2,6 0 0 0", "less than"),
            ("1,6 0 0 0,6 0 0 0", "exceeds the encoded"),
            ("1,48 0 0 9", "end with a return"),
            ("2,21 0 5 6,6 0 0 0", "jump out"),
            ("2,5 0 0 7,6 0 0 0", "jump out"),
            ("2,52 0 0 0,6 0 0 0", "division by zero"),
            ("2,100 0 0 32,6 0 0 0", "shift"),
            ("2,96 0 0 2,6 0 0 0", "read before"),
            ("2,2 0 0 16,6 0 0 0", "scratch word 16"),
            ("2,255 0 0 0,6 0 0 0", "unknown instruction"),
            ("2,48 0 0 4294963201,6 0 0 0", "unknown ancillary"),
            ("2,48 0 0 4294963264,6 0 0 0", "unknown ancillary"),
            ("1,6 0 x 0", "error at instr 0"),
        ] {
            let e = parse(bad).and_then(|p| check(&p)).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
