//! The host's imports: logging, randomness, the plugin's counters, and a key–value store
//! shared by every worker (for state across packets, e.g. per-source rate limits). Natively
//! (unit tests) they are served in-process.
#![allow(unsafe_code)]

/// Log levels for [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
    Trace = 4,
}

/// The store is full (the host bounds its entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "rtrouter")]
    extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: i32);
        pub fn random() -> i64;
        pub fn counter_add(id: i32, delta: i64);
        pub fn kv_get(kp: *const u8, kl: i32, vp: *mut u8, vc: i32) -> i32;
        pub fn kv_set(kp: *const u8, kl: i32, vp: *const u8, vl: i32) -> i32;
        pub fn kv_cas(kp: *const u8, kl: i32, op: *const u8, ol: i32, np: *const u8, nl: i32) -> i32;
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{sys, Full};
    // SAFETY (all): pointers and lengths come from live Rust slices; the host reads or writes
    // exactly that range of linear memory during the call.
    pub fn log(level: i32, msg: &str) {
        unsafe { sys::log(level, msg.as_ptr(), msg.len() as i32) }
    }
    pub fn random() -> u64 {
        unsafe { sys::random() as u64 }
    }
    pub fn counter_add(id: i32, delta: i64) {
        unsafe { sys::counter_add(id, delta) }
    }
    pub fn kv_get(key: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = unsafe { sys::kv_get(key.as_ptr(), key.len() as i32, out.as_mut_ptr(), out.len() as i32) };
        usize::try_from(n).ok()
    }
    pub fn kv_set(key: &[u8], val: &[u8]) -> Result<(), Full> {
        match unsafe { sys::kv_set(key.as_ptr(), key.len() as i32, val.as_ptr(), val.len() as i32) } {
            0 => Ok(()),
            _ => Err(Full),
        }
    }
    pub fn kv_cas(key: &[u8], old: Option<&[u8]>, new: &[u8]) -> Result<bool, Full> {
        let (op, ol) = old.map_or((core::ptr::null(), -1), |o| (o.as_ptr(), o.len() as i32));
        match unsafe { sys::kv_cas(key.as_ptr(), key.len() as i32, op, ol, new.as_ptr(), new.len() as i32) } {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(Full),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Full;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::vec::Vec;

    static KV: Mutex<BTreeMap<Vec<u8>, Vec<u8>>> = Mutex::new(BTreeMap::new());
    static RNG: Mutex<u64> = Mutex::new(0x2545_f491_4f6c_dd1d);

    fn kv() -> std::sync::MutexGuard<'static, BTreeMap<Vec<u8>, Vec<u8>>> {
        KV.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn log(level: i32, msg: &str) {
        std::eprintln!("plugin log [{level}]: {msg}");
    }
    pub fn random() -> u64 {
        let mut s = RNG.lock().unwrap_or_else(|e| e.into_inner());
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }
    pub fn counter_add(_id: i32, _delta: i64) {}
    pub fn kv_get(key: &[u8], out: &mut [u8]) -> Option<usize> {
        let m = kv();
        let v = m.get(key)?;
        let n = v.len().min(out.len());
        out[..n].copy_from_slice(&v[..n]);
        Some(v.len())
    }
    pub fn kv_set(key: &[u8], val: &[u8]) -> Result<(), Full> {
        kv().insert(key.to_vec(), val.to_vec());
        Ok(())
    }
    pub fn kv_cas(key: &[u8], old: Option<&[u8]>, new: &[u8]) -> Result<bool, Full> {
        let mut m = kv();
        if m.get(key).map(Vec::as_slice) != old {
            return Ok(false);
        }
        m.insert(key.to_vec(), new.to_vec());
        Ok(true)
    }
}

/// Writes a line to the router's log (rate-limited by the host).
pub fn log(level: Level, msg: &str) {
    imp::log(level as i32, msg)
}

/// 64 random bits from the host.
pub fn random() -> u64 {
    imp::random()
}

/// Adds `delta` to the plugin's counter `id` (0–15), exported in the router's metrics.
pub fn counter_add(id: u8, delta: i64) {
    imp::counter_add(i32::from(id), delta)
}

/// Reads `key` into `out`; returns the value's full length (copying at most `out.len()`),
/// or `None` when absent.
pub fn kv_get(key: &[u8], out: &mut [u8]) -> Option<usize> {
    imp::kv_get(key, out)
}

pub fn kv_set(key: &[u8], val: &[u8]) -> Result<(), Full> {
    imp::kv_set(key, val)
}

/// Sets `key` to `new` if it currently holds `old` (`None`: if it is absent). `Ok(false)`
/// when another worker changed it first: read again and retry.
pub fn kv_cas(key: &[u8], old: Option<&[u8]>, new: &[u8]) -> Result<bool, Full> {
    imp::kv_cas(key, old, new)
}
