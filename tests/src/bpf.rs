//! eBPF programs pinned in a bpffs of the test's own, for `-m bpf --object-pinned`: a bpffs
//! mounted on a fresh directory (unmounted and removed in `Drop`, even after a panic), and
//! small socket-filter programs loaded and pinned there with the `bpf` system call.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

const BPF_PROG_LOAD: nix::libc::c_long = 5;
const BPF_OBJ_PIN: nix::libc::c_long = 6;
/// `BPF_PROG_TYPE_SOCKET_FILTER`, what `-m bpf` runs.
pub const SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_SCHED_CLS`, a program type `-m bpf` refuses.
pub const SCHED_CLS: u32 = 3;

/// One eBPF instruction: opcode, destination and source registers, offset, immediate.
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut i = [0u8; 8];
    i[0] = code;
    i[1] = (src << 4) | dst;
    i[2..4].copy_from_slice(&off.to_le_bytes());
    i[4..8].copy_from_slice(&imm.to_le_bytes());
    i
}

/// Returns 1 when the IPv4 protocol byte is `proto`, else 0: `r6 = r1; r0 = skb[9] (ld_abs
/// byte); if r0 != proto goto +2; r0 = 1; exit; r0 = 0; exit`.
pub fn protocol_is(proto: u8) -> Vec<[u8; 8]> {
    vec![
        insn(0xbf, 6, 1, 0, 0),
        insn(0x30, 0, 0, 0, 9),
        insn(0x55, 0, 0, 2, i32::from(proto)),
        insn(0xb7, 0, 0, 0, 1),
        insn(0x95, 0, 0, 0, 0),
        insn(0xb7, 0, 0, 0, 0),
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// Returns the packet's mark: `r0 = *(u32 *)(r1 + offsetof(__sk_buff, mark)); exit`.
pub fn mark() -> Vec<[u8; 8]> {
    vec![insn(0x61, 0, 1, 8, 0), insn(0x95, 0, 0, 0, 0)]
}

/// Returns the packet's length (`__sk_buff.len`).
pub fn length() -> Vec<[u8; 8]> {
    vec![insn(0x61, 0, 1, 0, 0), insn(0x95, 0, 0, 0, 0)]
}

/// A bpffs of the test's own.
#[derive(Debug)]
pub struct BpfFs {
    dir: PathBuf,
}

impl BpfFs {
    /// Mounts one on a unique directory; `Err` with the reason when this machine cannot (not
    /// root, no bpffs).
    pub fn new(tag: &str) -> Result<BpfFs, String> {
        let dir = std::env::temp_dir().join(format!("rtrouter-bpffs-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let fs = BpfFs { dir };
        nix::mount::mount(
            Some("bpf"),
            &fs.dir,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("mount -t bpf: {e}"))?;
        Ok(fs)
    }

    /// A bpffs for a test, or `None` after printing one line saying why the test is skipped
    /// (not root, or no bpffs on this machine).
    pub fn or_skip(tag: &str) -> Option<BpfFs> {
        if !nix::unistd::geteuid().is_root() {
            println!("SKIP: loading and pinning eBPF programs needs root");
            return None;
        }
        BpfFs::new(tag).map_err(|e| println!("SKIP: no bpffs here ({e})")).ok()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Loads `prog` as a program of `kind` and pins it as `name`: the path.
    pub fn pin(&self, name: &str, kind: u32, prog: &[[u8; 8]]) -> Result<PathBuf, String> {
        let fd = load(kind, prog)?;
        let path = self.path(name);
        pin(&fd, &path)?;
        Ok(path)
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn bpf(cmd: nix::libc::c_long, attr: &mut [u64]) -> Result<i64, String> {
    // SAFETY: `attr` is a live, exclusively borrowed buffer of the size passed, laid out as
    // the prefix of `union bpf_attr` the command reads; the pointers in it point to live
    // buffers of the sizes written beside them.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr() as *mut nix::libc::c_void,
            std::mem::size_of_val(attr) as nix::libc::c_uint,
        )
    };
    if r < 0 {
        Err(nix::errno::Errno::last().to_string())
    } else {
        Ok(r)
    }
}

fn load(kind: u32, prog: &[[u8; 8]]) -> Result<OwnedFd, String> {
    let code: Vec<u8> = prog.iter().flatten().copied().collect();
    let license = b"GPL\0";
    // prog_type, insn_cnt; insns; license; log_level, log_size; log_buf; ...
    let mut attr = [0u64; 16];
    attr[0] = u64::from(kind) | ((prog.len() as u64) << 32);
    attr[1] = code.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    let fd = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| format!("BPF_PROG_LOAD: {e}"))?;
    // SAFETY: BPF_PROG_LOAD returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pin(fd: &OwnedFd, path: &Path) -> Result<(), String> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // pathname; bpf_fd, file_flags
    let mut attr = [0u64; 2];
    attr[0] = c.as_ptr() as u64;
    attr[1] = fd.as_raw_fd() as u64;
    bpf(BPF_OBJ_PIN, &mut attr).map_err(|e| format!("BPF_OBJ_PIN {}: {e}", path.display()))?;
    Ok(())
}
