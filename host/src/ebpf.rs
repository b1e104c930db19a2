//! eBPF socket-filter programs pinned in bpffs, for `-m bpf --object-pinned PATH`
//! (`xt_bpf.c` revision 1, mode `XT_BPF_MODE_FD_PINNED`).
//!
//! rtrouter does not interpret eBPF: it asks the kernel to run the program. The object is
//! opened once, when the rule is read, as `libxt_bpf.c` opens it (`BPF_OBJ_GET`, read-only
//! when the kernel allows it), and checked to be a `BPF_PROG_TYPE_SOCKET_FILTER` program, as
//! `__bpf_mt_check_fd` checks it. Each packet is then one `BPF_PROG_TEST_RUN` system call
//! (`bpf_prog_test_run_skb`): the kernel builds an skb of the packet behind a zeroed Ethernet
//! header carrying the packet's ethertype (so `skb->protocol` is IPv4 or IPv6, `pkt_type`
//! `PACKET_HOST`, the device the loopback of the router's network namespace), with the
//! packet's mark, and returns the program's return value; the rule matches when it is not 0,
//! as `bpf_mt_v1` does. The kernel takes at most about one page per test run: a longer packet
//! (a reassembled datagram, a TCP super-packet) is handed over cut to [`MAX_DATA`] bytes, its
//! headers whole. A failed call (the object's program cannot run) is no match.
//!
//! This is the one place the packet path makes a system call; it costs about 2 µs per packet
//! that reaches such a rule (measured here, 64- and 1500-byte packets alike).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

const BPF_PROG_TEST_RUN: nix::libc::c_long = 10;
const BPF_OBJ_GET: nix::libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: nix::libc::c_long = 15;
const BPF_F_RDONLY: u32 = 1 << 3;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const ETH_HLEN: usize = 14;

/// The most bytes handed to one test run, the Ethernet header included: a page less the skb's
/// head and tail room (`bpf_test_init` refuses more), rounded down for every architecture.
pub const MAX_DATA: usize = 3584;

/// Why a pinned object cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// `BPF_OBJ_GET` failed: no such file, not a bpffs object, no permission.
    #[error("bpf: failed to get bpf object")]
    Get(nix::errno::Errno),
    /// The object is not a socket-filter program (the kernel's checkentry: `EINVAL`).
    #[error("bpf: {0} is not a socket filter program (Invalid argument)")]
    NotSocketFilter(String),
}

/// A pinned socket-filter program, held open for as long as rules use it (the kernel's rule
/// holds its reference in the same way: removing the pin does not stop it).
pub struct PinnedProg {
    fd: OwnedFd,
    /// The kernel accepts the packet's mark in the test run's context (`__sk_buff.mark`);
    /// cleared the first time it refuses one, after which the mark reads as 0.
    with_mark: AtomicBool,
}

impl std::fmt::Debug for PinnedProg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedProg").field("fd", &self.fd.as_raw_fd()).finish()
    }
}

#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `bpf(cmd, attr, sizeof attr)`.
fn bpf<T>(cmd: nix::libc::c_long, attr: &mut T) -> Result<nix::libc::c_long, nix::errno::Errno> {
    // SAFETY: `attr` is a live, exclusively borrowed `repr(C)` prefix of `union bpf_attr` of
    // the size passed; the kernel reads and writes only inside it, and follows only the
    // pointers the caller put in it, which point to live buffers of the sizes given there.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut nix::libc::c_void,
            std::mem::size_of::<T>() as nix::libc::c_uint,
        )
    };
    if r < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(r)
    }
}

impl PinnedProg {
    /// Opens the program pinned at `path` (relative paths from the router's working
    /// directory, as iptables resolves them from its own).
    pub fn open(path: &str) -> Result<PinnedProg, PinError> {
        let c = CString::new(path).map_err(|_| PinError::Get(nix::errno::Errno::EINVAL))?;
        let get = |flags| {
            let mut a = ObjAttr {
                pathname: c.as_ptr() as u64,
                file_flags: flags,
                ..Default::default()
            };
            bpf(BPF_OBJ_GET, &mut a)
        };
        // Read-only first, as libxt_bpf asks; kernels before 4.15 know no flags.
        let raw = get(BPF_F_RDONLY).or_else(|_| get(0)).map_err(PinError::Get)?;
        let raw = i32::try_from(raw).map_err(|_| PinError::Get(nix::errno::Errno::EBADF))?;
        // SAFETY: BPF_OBJ_GET returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // `struct bpf_prog_info` starts with its `__u32 type`.
        let mut info = [0u32; 2];
        let mut a = InfoAttr {
            bpf_fd: fd.as_raw_fd() as u32,
            info_len: std::mem::size_of_val(&info) as u32,
            info: info.as_mut_ptr() as u64,
        };
        match bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a) {
            Ok(_) if info[0] == BPF_PROG_TYPE_SOCKET_FILTER => Ok(PinnedProg {
                fd,
                with_mark: AtomicBool::new(true),
            }),
            _ => Err(PinError::NotSocketFilter(path.to_string())),
        }
    }

    /// Runs the program on `pkt` (an IPv4 or IPv6 packet from its network header) with
    /// `mark`: its return value, 0 when the kernel could not run it.
    pub fn run(&self, pkt: &[u8], mark: u32) -> u32 {
        let mut data = [0u8; MAX_DATA];
        let ethertype: u16 = if pkt.first().is_some_and(|b| b >> 4 == 6) {
            0x86dd
        } else {
            0x0800
        };
        data[12..ETH_HLEN].copy_from_slice(&ethertype.to_be_bytes());
        let n = pkt.len().min(MAX_DATA - ETH_HLEN);
        data[ETH_HLEN..ETH_HLEN + n].copy_from_slice(&pkt[..n]);
        // `struct __sk_buff` up to its `mark`: len and pkt_type must be 0.
        let mut ctx = [0u32, 0, mark];
        let with_mark = mark != 0 && self.with_mark.load(Ordering::Relaxed);
        let mut attr = TestAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: (ETH_HLEN + n) as u32,
            data_in: data.as_ptr() as u64,
            repeat: 1,
            ..Default::default()
        };
        if with_mark {
            attr.ctx_size_in = std::mem::size_of_val(&ctx) as u32;
            attr.ctx_in = ctx.as_mut_ptr() as u64;
        }
        match bpf(BPF_PROG_TEST_RUN, &mut attr) {
            Ok(_) => attr.retval,
            Err(nix::errno::Errno::EINVAL) if with_mark => {
                self.with_mark.store(false, Ordering::Relaxed);
                self.run(pkt, 0)
            }
            Err(_) => 0,
        }
    }
}
