//! `-m bpf --bytecode "N,code jt jf k,..."` (`libxt_bpf.c`, `xt_bpf.c`): a classic BPF
//! program (as `nfbpf_compile RAW` writes it) run on the packet from its IP header; the rule
//! matches when it returns non-zero. Programs are checked as the kernel's
//! `bpf_check_classic` checks them (known opcodes, jumps inside the program, a return at the
//! end, scratch memory written before it is read, no division by a constant 0, constant
//! shifts below 32), and run as its interpreter runs them: a load past the end of the packet
//! or a division by a zero X ends the program with 0.
//!
//! Not supported, and refused with a message: `--object-pinned` (an eBPF program in bpffs;
//! rtrouter runs no eBPF) and the ancillary loads at negative offsets other than
//! `SKF_NET_OFF` (skb fields such as the ifindex or rxhash, which a TUN router does not have
//! in the kernel's form).

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use std::fmt::Write as _;

/// `XT_BPF_MAX_NUM_INSTR`.
const MAX_INSNS: usize = 64;
/// `BPF_MEMWORDS`.
const MEMWORDS: u32 = 16;
/// `SKF_NET_OFF`: loads relative to the network header.
const SKF_NET_OFF: i32 = -0x10_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bpf(pub Vec<Insn>);

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
        if class == LD
            && matches!(i.code & 0xe0, ABS | IND)
            && (i.k as i32) < 0
            && (i.k as i32) > SKF_NET_OFF - 0x10_0000
        {
            // `SKF_AD_OFF` (-0x1000) and above are the ancillary loads, below is SKF_NET_OFF's.
            let net = (i.k as i32) >= SKF_NET_OFF && (i.k as i32) < -0x1000;
            if !net || i.code & 0xe0 == IND {
                return Err(format!("bpf: ancillary load at {pc} is not supported by rtrouter"));
            }
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

/// Runs the program on `pkt` (from its IP header); its return value.
fn run(p: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut m = [0u32; MEMWORDS as usize];
    let load = |at: i64, size: usize| -> Option<u32> {
        let at = if at < 0 {
            // SKF_NET_OFF: the network header is where the packet starts here.
            at - i64::from(SKF_NET_OFF)
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
    type Builder = Option<Vec<Insn>>;
    type Compiled = Bpf;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["bytecode", "object-pinned"];

    fn option(b: &mut Option<Vec<Insn>>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "bytecode" => {
                c.no_invert(inv, "--bytecode")?;
                c.once(b, "--bytecode")?;
                let v = c.value("--bytecode")?;
                match parse(&v).and_then(|p| check(&p).map(|()| p)) {
                    Ok(p) => *b = Some(p),
                    Err(e) => return c.err_value(e),
                }
            }
            "object-pinned" => {
                return c
                    .err("bpf: --object-pinned (an eBPF program) is not supported by rtrouter, which runs no eBPF");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Option<Vec<Insn>>, _: RuleProto) -> Result<Bpf, String> {
        b.map(Bpf).ok_or_else(|| "bpf: missing --bytecode parameter".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --bytecode \"{},", self.0.len());
        for (n, i) in self.0.iter().enumerate() {
            let _ = write!(out, "{} {} {} {}", i.code, i.jt, i.jf, i.k);
            out.push(if n + 1 < self.0.len() { ',' } else { '"' });
        }
    }

    fn compile(&self, _: &CompileEnv) -> Bpf {
        self.clone()
    }

    fn test(m: &Bpf, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        run(&m.0, p.buf) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("2,48 0 0 4294963200,6 0 0 0", "ancillary"),
            ("1,6 0 x 0", "error at instr 0"),
        ] {
            let e = parse(bad).and_then(|p| check(&p)).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
