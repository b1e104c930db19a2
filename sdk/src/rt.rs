//! Glue the export macros expand to: the exchange buffer, the per-rule table, and on wasm the
//! allocator and panic handler. Guest code is single-threaded (one instance per host worker).
#![allow(unsafe_code)]

use crate::abi::{META_LEN, META_OUT_FLAGS};
use crate::{Match, Packet, PacketMut, Target};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

/// Size of the exchange buffer: the metadata record and up to 64 KiB of packet.
pub const BUFFER_LEN: usize = META_LEN + 65536;

struct Buffer(UnsafeCell<[u8; BUFFER_LEN]>);
// SAFETY: a plugin instance runs on one thread; the host never calls into it concurrently.
unsafe impl Sync for Buffer {}
static BUFFER: Buffer = Buffer(UnsafeCell::new([0; BUFFER_LEN]));

/// The buffer's address in linear memory.
pub fn buffer_addr() -> i32 {
    BUFFER.0.get() as usize as i32
}

fn buffer() -> &'static mut [u8; BUFFER_LEN] {
    // SAFETY: single-threaded guest, and no caller holds a previous reference across a call
    // (each export takes the buffer once and drops it before returning).
    unsafe { &mut *BUFFER.0.get() }
}

/// Values of one rule kind, indexed by the host's handle.
pub struct Rules<T>(UnsafeCell<Vec<Option<T>>>);
// SAFETY: as for the buffer: one thread per instance.
unsafe impl<T> Sync for Rules<T> {}

impl<T> Rules<T> {
    pub const fn new() -> Self {
        Rules(UnsafeCell::new(Vec::new()))
    }
    // The table lives in a static and is reached through `&self`; the guest is single-threaded
    // and no reference outlives one export call, so handing out `&mut` is sound here.
    #[allow(clippy::mut_from_ref)]
    fn slots(&self) -> &mut Vec<Option<T>> {
        // SAFETY: single-threaded guest; no reference outlives one export call.
        unsafe { &mut *self.0.get() }
    }
}

impl<T> core::fmt::Debug for Rules<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rules")
    }
}

impl<T> Default for Rules<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn refuse(msg: &str) -> i32 {
    let b = buffer();
    let n = msg.len().min(BUFFER_LEN - 4);
    b[..4].copy_from_slice(&(n as u32).to_le_bytes());
    b[4..4 + n].copy_from_slice(&msg.as_bytes()[..n]);
    1
}

fn store<T>(rules: &Rules<T>, handle: i32, value: T) -> i32 {
    let Ok(h) = usize::try_from(handle) else {
        return refuse("negative handle");
    };
    let slots = rules.slots();
    if slots.len() <= h {
        slots.resize_with(h + 1, || None);
    }
    slots[h] = Some(value);
    0
}

fn args(len: i32) -> Result<&'static str, i32> {
    let n = usize::try_from(len).unwrap_or(0).min(BUFFER_LEN);
    core::str::from_utf8(&buffer()[..n]).map_err(|_| refuse("--args is not UTF-8"))
}

/// Builds a rule's value from its `--args` with `new` and stores it under `handle`; a refusal
/// leaves its message in the buffer.
fn init<T>(rules: &Rules<T>, handle: i32, args_len: i32, new: fn(&str) -> Result<T, String>) -> i32 {
    let a = match args(args_len) {
        Ok(a) => a,
        Err(e) => return e,
    };
    match new(a) {
        Ok(v) => store(rules, handle, v),
        Err(e) => refuse(&e),
    }
}

pub fn init_match<T: Match>(rules: &Rules<T>, handle: i32, args_len: i32) -> i32 {
    init(rules, handle, args_len, T::new)
}

pub fn init_target<T: Target>(rules: &Rules<T>, handle: i32, args_len: i32) -> i32 {
    init(rules, handle, args_len, T::new)
}

fn rule<T>(rules: &Rules<T>, handle: i32) -> Option<&T> {
    rules.slots().get(usize::try_from(handle).ok()?)?.as_ref()
}

pub fn run_match<T: Match>(rules: &Rules<T>, handle: i32, len: i32) -> i32 {
    let Some(m) = rule(rules, handle) else { return 0 };
    let n = (META_LEN + usize::try_from(len).unwrap_or(0)).min(BUFFER_LEN);
    i32::from(m.matches(&Packet::new(&buffer()[..n])))
}

pub fn run_target<T: Target>(rules: &Rules<T>, handle: i32, len: i32) -> i32 {
    let Some(t) = rule(rules, handle) else {
        return crate::abi::VERDICT_CONTINUE;
    };
    let n = (META_LEN + usize::try_from(len).unwrap_or(0)).min(BUFFER_LEN);
    let b = &mut buffer()[..n];
    b[META_OUT_FLAGS..META_OUT_FLAGS + 4].copy_from_slice(&[0; 4]);
    t.apply(&mut PacketMut::new(b)).code()
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    /// A bump allocator: allocations at rule setup, never freed (an instance lives until the
    /// plugin is reloaded, which starts a fresh one).
    struct Bump(UnsafeCell<usize>);
    // SAFETY: single-threaded guest.
    unsafe impl Sync for Bump {}

    // SAFETY: hands out disjoint, aligned ranges of linear memory grown on demand; returns
    // null when memory cannot grow, as the contract allows.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: single-threaded; the cell is only touched here.
            let next = unsafe { &mut *self.0.get() };
            if *next == 0 {
                *next = core::arch::wasm32::memory_size(0) * 65536;
            }
            let start = (*next + l.align() - 1) & !(l.align() - 1);
            let end = start + l.size();
            let have = core::arch::wasm32::memory_size(0) * 65536;
            if end > have {
                let pages = (end - have).div_ceil(65536);
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
            }
            *next = end;
            start as *mut u8
        }
        unsafe fn dealloc(&self, _p: *mut u8, _l: Layout) {}
    }

    #[global_allocator]
    static ALLOC: Bump = Bump(UnsafeCell::new(0));

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        core::arch::wasm32::unreachable()
    }
}
