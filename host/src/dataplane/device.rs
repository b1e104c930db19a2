//! TUN devices: the one place that knows the device crate (`tun-tap`), so that moving to
//! another (multi-queue, offloads) touches this module only. Devices are non-blocking and
//! registered with tokio's reactor; writes never wait (a full device drops the packet).
//!
//! This module opts into `unsafe` for one call: registering the device's file descriptor
//! with tokio.
#![allow(unsafe_code)]

use std::io;
use tokio::io::unix::AsyncFd;
use tun_tap::{Iface, Mode};

/// What the dataplane needs from a packet device: read one IP packet (waiting), write one
/// (never waiting). `Dev` below names the implementation in use, so another device crate
/// (multi-queue, offloads) replaces this module alone.
pub trait PacketDevice: Send + Sync {
    fn name(&self) -> &str;
    fn recv(&self, buf: &mut [u8]) -> impl std::future::Future<Output = io::Result<usize>> + Send;
    fn send(&self, pkt: &[u8]) -> io::Result<usize>;
}

/// The device type the dataplane uses.
pub type Dev = Tun;

/// An open TUN device (IP packets, no packet-information header).
#[derive(Debug)]
pub struct Tun {
    fd: AsyncFd<Iface>,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`. Must run inside the tokio runtime.
    pub fn open(name: &str) -> io::Result<Tun> {
        let iface = Iface::without_packet_info(name, Mode::Tun)?;
        iface.set_non_blocking()?;
        // SAFETY: the AsyncFd owns the Iface, so the descriptor stays open for exactly as long
        // as it is registered, and nothing else closes or reuses it.
        let fd = unsafe { AsyncFd::register(iface) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Tun { fd })
    }
}

impl PacketDevice for Tun {
    fn name(&self) -> &str {
        self.fd.get_ref().name()
    }

    /// Waits for and reads one packet.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|inner| inner.get_ref().recv(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes one packet without waiting.
    fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        self.fd.get_ref().send(pkt)
    }
}
