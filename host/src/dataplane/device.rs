//! TUN devices, opened with the kernel's ioctls (`Documentation/networking/tuntap.rst`):
//! `IFF_MULTI_QUEUE` with one queue per packet worker, and `IFF_VNET_HDR` with checksum and
//! segmentation offloads (`TUNSETOFFLOAD`), so that the kernel hands the router TCP (and, from
//! Linux 6.2, UDP) super-packets of up to 64 KiB with a virtio-net header ([`crate::packet::gso`])
//! and takes them back the same way. Where the kernel refuses an offload the device works without
//! it (logged). Queues are non-blocking; the worker that reads one registers it with its own
//! tokio runtime; writes never wait (a full queue drops the packet).
//!
//! Reads go straight into the caller's packet buffer (no copy between a read buffer and the
//! core), the virtio-net header into its own 10 bytes (`readv`).
//!
//! This module opts into `unsafe` for the system calls (`open`, `ioctl`, `readv`, `writev`)
//! and for registering the queues with tokio.
#![allow(unsafe_code)]

use crate::packet::gso::{VnetHdr, HDR_LEN};
use nix::libc;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// What the dataplane needs from a packet device: a reader per queue, for the worker that owns
/// it, and writes to any queue that never wait, each packet with its offload header.
/// `Dev` below names the implementation in use.
pub trait PacketDevice: Send + Sync {
    /// Reads one queue; made inside the runtime that polls it.
    type Reader: Send + Sync;
    fn name(&self) -> &str;
    /// How many queues the device has (each read by one worker).
    fn queues(&self) -> usize;
    /// Whether packets carry a virtio-net header with segmentation offload.
    fn offloads(&self) -> bool;
    /// A reader of `queue`, registered with the calling thread's tokio runtime.
    fn reader(&self, queue: usize) -> io::Result<Self::Reader>;
    /// Waits for and reads one packet through `r` into `buf` (cleared first; its capacity
    /// must hold the largest packet, 65,535 bytes), its offload header into `hdr` (all zero
    /// without offloads).
    fn recv(
        &self,
        r: &Self::Reader,
        hdr: &mut VnetHdr,
        buf: &mut Vec<u8>,
    ) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Writes one packet to `queue` (any queue will do) without waiting; `hdr` is ignored
    /// without offloads.
    fn send(&self, queue: usize, hdr: &VnetHdr, pkt: &[u8]) -> io::Result<usize>;
}

/// The device type the dataplane uses.
pub type Dev = Tun;

/// What to ask of a TUN device.
#[derive(Debug, Clone, Copy)]
pub struct TunOptions {
    /// Queues to open (1: a single-queue device).
    pub queues: usize,
    /// Ask for the virtio-net header and offloads.
    pub offload: bool,
}

/// An open TUN device (IP packets, no packet-information header).
#[derive(Debug)]
pub struct Tun {
    name: String,
    queues: Vec<OwnedFd>,
    vnet: bool,
}

// <linux/if_tun.h>
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_ulong = 0x01;
const TUN_F_TSO4: libc::c_ulong = 0x02;
const TUN_F_TSO6: libc::c_ulong = 0x04;
const TUN_F_TSO_ECN: libc::c_ulong = 0x08;
const TUN_F_USO4: libc::c_ulong = 0x20;
const TUN_F_USO6: libc::c_ulong = 0x40;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Opens one queue of the TUN device `name` with `flags`; the name the kernel gave it.
fn open_queue(name: &str, flags: libc::c_short) -> io::Result<(OwnedFd, String)> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name `{name}' is too long"),
        ));
    }
    // SAFETY: a C string literal; open either fails or returns a descriptor nobody else owns.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    check(fd)?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out (name, then
    // the flags of the union, padded to its 40 bytes); it lives across the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) })?;
    let len = req.name.iter().position(|b| *b == 0).unwrap_or(libc::IFNAMSIZ);
    Ok((fd, String::from_utf8_lossy(&req.name[..len]).into_owned()))
}

/// Asks for as many offloads as the kernel has, from TSO and USO down to none; which it took.
fn set_offloads(fd: &OwnedFd) -> Option<&'static str> {
    let tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    for (flags, what) in [
        (tso | TUN_F_USO4 | TUN_F_USO6, "checksum, TSO and USO"),
        (tso, "checksum and TSO"),
    ] {
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, flags) } == 0 {
            return Some(what);
        }
    }
    None
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name` with `opts.queues` queues, offloads
    /// where asked and the kernel has them.
    pub fn open(name: &str, opts: TunOptions) -> io::Result<Tun> {
        let queues = opts.queues.max(1);
        let mut flags = IFF_TUN | IFF_NO_PI;
        if queues > 1 {
            flags |= IFF_MULTI_QUEUE;
        }
        if opts.offload {
            flags |= IFF_VNET_HDR;
        }
        let (first, name) = open_queue(name, flags)?;
        let mut vnet = false;
        if opts.offload {
            let size: libc::c_int = HDR_LEN as libc::c_int;
            // SAFETY: TUNSETVNETHDRSZ reads an int through the pointer, valid for the call.
            check(unsafe { libc::ioctl(first.as_raw_fd(), TUNSETVNETHDRSZ, &size as *const libc::c_int) })?;
            match set_offloads(&first) {
                Some(what) => {
                    vnet = true;
                    tracing::debug!("{name}: {what} offload");
                }
                None => tracing::warn!("{name}: the kernel refused TUN offloads; packets move one by one"),
            }
        }
        let mut fds = vec![first];
        for _ in 1..queues {
            fds.push(open_queue(&name, flags)?.0);
        }
        Ok(Tun {
            name,
            queues: fds,
            vnet,
        })
    }
}

impl PacketDevice for Tun {
    type Reader = AsyncFd<OwnedFd>;

    fn name(&self) -> &str {
        &self.name
    }

    fn queues(&self) -> usize {
        self.queues.len()
    }

    fn offloads(&self) -> bool {
        self.vnet
    }

    fn reader(&self, queue: usize) -> io::Result<AsyncFd<OwnedFd>> {
        let fd = self.queues[queue % self.queues.len()].try_clone()?;
        // SAFETY: the AsyncFd owns this descriptor (a duplicate of the queue's), so it stays
        // open for exactly as long as it is registered, and nothing else closes or reuses it.
        unsafe { AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))
    }

    async fn recv(&self, fd: &AsyncFd<OwnedFd>, hdr: &mut VnetHdr, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        let mut h = [0u8; HDR_LEN];
        loop {
            let mut guard = fd.readable().await?;
            let r = guard.try_io(|inner| {
                let spare = buf.spare_capacity_mut();
                let mut iov = [
                    libc::iovec {
                        iov_base: h.as_mut_ptr().cast(),
                        iov_len: HDR_LEN,
                    },
                    libc::iovec {
                        iov_base: spare.as_mut_ptr().cast(),
                        iov_len: spare.len(),
                    },
                ];
                let (iov, skip) = if self.vnet {
                    (&mut iov[..], 0)
                } else {
                    (&mut iov[1..], HDR_LEN)
                };
                // SAFETY: every iovec points into memory valid for writing for its length (the
                // header array and the vector's spare capacity), alive across the call.
                let n = unsafe { libc::readv(inner.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(n as usize + skip)
            });
            match r {
                Ok(Ok(n)) if n >= HDR_LEN => {
                    // SAFETY: readv initialised the first `n - HDR_LEN` bytes of the spare
                    // capacity, which it never exceeds.
                    unsafe { buf.set_len(n - HDR_LEN) };
                    *hdr = if self.vnet {
                        VnetHdr::parse(&h)
                    } else {
                        VnetHdr::default()
                    };
                    return Ok(());
                }
                // A read shorter than the header: nothing usable; read the next.
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    fn send(&self, queue: usize, hdr: &VnetHdr, pkt: &[u8]) -> io::Result<usize> {
        let fd = &self.queues[queue % self.queues.len()];
        let mut h = [0u8; HDR_LEN];
        hdr.write(&mut h);
        let iov = [
            libc::iovec {
                iov_base: h.as_mut_ptr().cast(),
                iov_len: HDR_LEN,
            },
            libc::iovec {
                iov_base: pkt.as_ptr() as *mut libc::c_void,
                iov_len: pkt.len(),
            },
        ];
        let iov = if self.vnet { &iov[..] } else { &iov[1..] };
        // SAFETY: both iovecs point to memory valid for reading for their lengths; writev
        // does not write through them.
        let n = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((n as usize).saturating_sub(if self.vnet { HDR_LEN } else { 0 }))
    }
}
