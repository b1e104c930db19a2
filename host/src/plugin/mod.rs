//! Wasm plugins: the only module that uses wasmtime.
//!
//! [`Plugins`] is one loaded generation of the config's `[[plugin]]`s. Loading checks each
//! module before anything runs: it may import only the host functions of the ABI
//! (`rtrouter_sdk::abi::IMPORTS`, module `rtrouter`: no WASI, no other capability) and must
//! export the ABI's memory and functions with their exact types and the right ABI version.
//! Compiled code is cached on disk, keyed by the module's bytes and the engine's settings.
//!
//! Per call: each worker thread keeps one long-lived store and instance per plugin (created
//! from an `InstancePre`, with cached `TypedFunc`s); the host writes the metadata record and
//! the packet (cut to `max_bytes`) into the guest's exchange buffer, sets an epoch deadline
//! (a ticker thread advances the epoch every [`TICK_US`] µs) and calls. A trap, a timeout or
//! an out-of-memory counts as the plugin's `on_error` outcome and a failure; after
//! `disable_after` consecutive failures the plugin is disabled, with a log line, until the
//! next load. `StoreLimits` cap each instance's memory.

use crate::config::Config;
use crate::eval::{Ct, CtState, Cx, Pkt, PluginHost, Verdict};
use crate::ruleset::validate::Binding;
use crate::ruleset::{Errors, PluginBinder, ValidRuleset};
use rtrouter_sdk::abi;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::{
    Caller, Engine, Extern, InstancePre, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
    TypedFunc,
};

/// Epoch tick: call deadlines are rounded up to this.
pub const TICK_US: u64 = 100;

/// The deadline of load-time calls (instantiation, `rtrouter_abi_version`, the buffer,
/// `rtrouter_init`): far longer than a packet's, so a good plugin is not refused because the
/// router is busy while it loads.
pub const LOAD_DEADLINE_US: u64 = 1_000_000;

/// [`LOAD_DEADLINE_US`] in epoch ticks.
const LOAD_TICKS: u64 = LOAD_DEADLINE_US / TICK_US;

/// The epoch ticks elapsed since the ticker started: the time base of the plugins' CPU budget
/// (a call spanning k tick boundaries is charged k ticks: on average, its duration).
static TICKS: AtomicU64 = AtomicU64::new(0);
/// When the ticker started: epoch n is due at `n` ticks after it.
static TICKER_START: OnceLock<std::time::Instant> = OnceLock::new();

/// The deadline to set for a call that may run `ticks` ticks: that many after the tick the
/// clock is in now. When the ticker has fallen behind the clock (it wakes late on a busy
/// machine, then makes the missed ticks up at once), the ticks it still owes are added, so its
/// catching up never cuts a call before its time.
fn deadline_from_now(ticks: u64) -> u64 {
    let owed = TICKER_START.get().map_or(0, |s| {
        (s.elapsed().as_micros() as u64 / TICK_US).saturating_sub(TICKS.load(Ordering::Relaxed))
    });
    ticks + owed
}
/// Entries the shared key–value store of one plugin holds at most.
pub const KV_MAX_ENTRIES: usize = 1 << 16;

/// The process-wide engine, with epoch interruption and its ticker thread.
pub fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let mut c = wasmtime::Config::new();
        c.epoch_interruption(true);
        let e = Engine::new(&c).expect("the wasmtime configuration is valid");
        let ticker = e.clone();
        let start = *TICKER_START.get_or_init(std::time::Instant::now);
        std::thread::Builder::new()
            .name("rtrouter-epoch".into())
            .spawn(move || {
                // The epoch follows the clock, not the number of wake-ups: a sleep that
                // overshoots (timer slack, a busy machine) is made up for at once, so a
                // deadline of n ticks ends within n ticks of time (plus the wake-up latency).
                let _ = nix::sys::prctl::set_timerslack(1);
                let mut epochs = 0u64;
                loop {
                    std::thread::sleep(std::time::Duration::from_micros(TICK_US));
                    let due = start.elapsed().as_micros() as u64 / TICK_US;
                    while epochs < due {
                        ticker.increment_epoch();
                        epochs += 1;
                    }
                    TICKS.store(epochs, Ordering::Relaxed);
                }
            })
            .expect("spawn the epoch ticker");
        e
    })
}

/// What a failed call counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    NoMatch,
    Drop,
}

/// A plugin's counters.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    pub timeouts: AtomicU64,
    pub traps: AtomicU64,
    /// Times the plugin was disabled for exceeding its failure or time budget.
    pub over_budget: AtomicU64,
    /// The plugin's own counters (`counter_add`).
    pub user: [AtomicI64; 16],
}

/// The key–value store a plugin shares across workers (and across reloads).
#[derive(Debug, Default)]
pub struct Kv {
    map: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

/// A key and its value.
pub type KvEntry = (Vec<u8>, Vec<u8>);

impl Kv {
    /// The entries, sorted by key, at most `max` of them, and how many there are.
    pub fn entries(&self, max: usize) -> (Vec<KvEntry>, usize) {
        let map = crate::eval::state::lock(&self.map);
        let mut v: Vec<KvEntry> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let n = v.len();
        v.sort();
        v.truncate(max);
        (v, n)
    }
}

impl Plugin {
    /// The plugin's key–value store.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }
}

/// One loaded plugin.
pub struct Plugin {
    pub name: String,
    pre: InstancePre<HostState>,
    memory_bytes: usize,
    deadline_ticks: u64,
    on_error: OnError,
    max_bytes: usize,
    disable_after: u32,
    has_match: bool,
    has_target: bool,
    kv: Arc<Kv>,
    pub stats: Arc<PluginStats>,
    consecutive: AtomicU32,
    pub disabled: AtomicBool,
    /// The bindings by handle: each rule's `--args`, the binding rules hold, free handles.
    rules: Arc<Mutex<Handles>>,
    /// Bumped by every binding made (or handle reused), read on every call without the lock:
    /// an instance that saw another value initialises the handles bound since.
    bound: std::sync::atomic::AtomicUsize,
    /// Where each instance's `random` stream starts: this mixed with the instance's number.
    seed: u64,
    instances: AtomicU64,
    /// The rate limit of the plugin's `log` lines, shared by its instances.
    log: Arc<crate::eval::log::PacketLog>,
    /// The failure and time budget over one-second windows of packet time.
    budget: Budget,
}

/// A plugin's handles: per handle, the `--args` it was bound with, how many times it has been
/// bound (so that a release and an instance can tell one use from the next), and the binding
/// rules hold (dead once the last rule holding it is gone).
#[derive(Debug, Default)]
struct Handles {
    slots: Vec<HandleSlot>,
    /// Handles whose binding is gone, to bind again.
    free: Vec<u32>,
}

#[derive(Debug)]
struct HandleSlot {
    args: String,
    uses: u64,
    live: std::sync::Weak<crate::ruleset::validate::Binding>,
}

/// What a binding holds: dropped with the last rule holding the binding, it frees the handle
/// (unless it has been bound again meanwhile).
struct Release {
    handles: std::sync::Weak<Mutex<Handles>>,
    handle: u32,
    uses: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        let Some(h) = self.handles.upgrade() else { return };
        let mut h = crate::eval::state::lock(&h);
        let i = self.handle as usize;
        if h.slots.get(i).is_some_and(|s| s.uses == self.uses) {
            h.slots[i].live = std::sync::Weak::new();
            h.free.push(self.handle);
        }
    }
}

/// A plugin's budget: failures and time in calls (epoch ticks) per one-second window of real
/// time (the ticker's clock). Exceeding either disables the plugin until the next load.
/// Updated without a lock by every worker; a window boundary may be seen a call late, which
/// does not matter at this granularity.
#[derive(Debug)]
struct Budget {
    max_failures: u32,
    max_ticks: u64,
    window: AtomicU64,
    failures: AtomicU32,
    ticks: AtomicU64,
}

impl Budget {
    fn new(l: &Limits) -> Budget {
        Budget {
            max_failures: l.max_failures_per_sec.max(1),
            max_ticks: (1_000_000 / TICK_US) * u64::from(l.max_cpu_percent.clamp(1, 100)) / 100,
            window: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            ticks: AtomicU64::new(0),
        }
    }

    /// Charges one call ending at tick `now`; `Some(reason)` when the budget is now exceeded.
    fn charge(&self, now: u64, ticks: u64, failed: bool) -> Option<String> {
        let start = self.window.load(Ordering::Relaxed);
        if now < start || now - start >= 1_000_000 / TICK_US {
            self.window.store(now, Ordering::Relaxed);
            self.failures.store(0, Ordering::Relaxed);
            self.ticks.store(0, Ordering::Relaxed);
        }
        if failed {
            let f = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if f > self.max_failures {
                return Some(format!("{f} failures within one second (budget {})", self.max_failures));
            }
        }
        if ticks > 0 {
            let t = self.ticks.fetch_add(ticks, Ordering::Relaxed) + ticks;
            if t > self.max_ticks {
                return Some(format!(
                    "its calls took {} ms within one second (budget {} ms)",
                    t * TICK_US / 1000,
                    self.max_ticks * TICK_US / 1000
                ));
            }
        }
        None
    }
}

/// A seed from the OS's randomness (std keys every `RandomState` from it).
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Monotonic nanoseconds for the plugin runtime's own rate limits (this shell, not the core,
/// reads the clock).
fn mono_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

impl Plugin {
    /// `log` lines the rate limit held back.
    pub fn log_suppressed(&self) -> u64 {
        self.log.suppressed.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("disabled", &self.disabled)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A rule's handle: the plugin's index in the high 16 bits, the plugin's own handle for the
/// rule in the low 16.
fn handle(plugin: usize, local: u32) -> u32 {
    ((plugin as u32) << 16) | (local & 0xffff)
}

fn unhandle(h: u32) -> (usize, u32) {
    ((h >> 16) as usize, h & 0xffff)
}

/// One generation of loaded plugins.
#[derive(Debug)]
pub struct Plugins {
    id: u64,
    pub plugins: Vec<Plugin>,
    /// NFQUEUE queue number → the plugin whose target listens on it, and its arguments.
    queues: std::collections::BTreeMap<u16, (String, String)>,
}

/// A store's data: its limits and what the host functions need.
#[derive(Debug)]
pub struct HostState {
    limits: StoreLimits,
    kv: Arc<Kv>,
    stats: Arc<PluginStats>,
    name: Arc<str>,
    /// This instance's own `random` stream.
    rng: crate::eval::SplitMix,
    log: Arc<crate::eval::log::PacketLog>,
}

/// A worker's instance of one plugin.
struct Worker {
    store: Store<HostState>,
    memory: Memory,
    buf: usize,
    buf_len: usize,
    init: TypedFunc<(i32, i32), i32>,
    f_match: Option<TypedFunc<(i32, i32), i32>>,
    f_target: Option<TypedFunc<(i32, i32), i32>>,
    /// Rules initialised in this instance.
    /// The value of the plugin's `bound` this instance last caught up with.
    inited: usize,
    /// Per handle: which binding of it this instance initialised (`HandleSlot::uses`).
    uses: Vec<u64>,
}

/// One generation's instances on one thread, by plugin index.
struct Slot {
    generation: u64,
    workers: Vec<Option<Worker>>,
}

thread_local! {
    /// This thread's instances; usually one generation, two while a reload is swapping.
    static WORKERS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

fn next_generation() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A loading error, about the config's `[[plugin]]` entry: its line and column are those of
/// the entry's `name`.
fn load_err(cfg: &Config, name: &str, msg: String) -> Errors {
    let file: Arc<str> = Arc::from(cfg.path.display().to_string());
    let (line, col) = cfg
        .plugin
        .iter()
        .find(|p| p.name.get_ref() == name)
        .zip(crate::ruleset::read_text(&cfg.path, "config").ok())
        .map_or((0, 0), |(p, text)| crate::config::line_col(&text, p.name.span().start));
    Errors(vec![crate::ruleset::Error {
        file,
        line,
        col,
        token: name.to_string(),
        msg: format!("plugin `{name}': {msg}"),
    }])
}

/// The directory compiled modules are cached in: `RTROUTER_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/rtrouter`, else `~/.cache/rtrouter`; `None` (no cache: every load
/// compiles) when none is set. Never a shared temporary directory.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RTROUTER_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("rtrouter"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("rtrouter"))
}

/// How much the cache may hold; the oldest entries go first.
pub const CACHE_MAX_BYTES: u64 = 256 << 20;

/// A cache entry: this magic, a keyed hash (8 bytes), the compiled module.
const CACHE_MAGIC: &[u8; 8] = b"RTRCWASM";

/// Whether `dir` is safe to load native code from: a real directory (not a symlink) owned by
/// this process's user and closed to everyone else (no group or other bits). It is created so
/// when missing.
fn trusted_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create it: {e}"))?;
            std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "it belongs to uid {}, not to this process's uid {me}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "its mode is {:o}: others may write to it (0700 is needed)",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// The per-user secret the cache entries' hashes are keyed with (`key` in the cache
/// directory, 0600, made from the OS's randomness once).
fn cache_key(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = dir.join("key");
    let read = |path: &std::path::Path| -> Option<(u64, u64)> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
            return None;
        }
        let b = std::fs::read(path).ok()?;
        let k: [u8; 16] = b.get(..16)?.try_into().ok()?;
        Some((
            u64::from_le_bytes(k[..8].try_into().ok()?),
            u64::from_le_bytes(k[8..].try_into().ok()?),
        ))
    };
    if let Some(k) = read(&path) {
        return Some(k);
    }
    let (a, b) = (os_seed(), os_seed());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .ok()?;
    f.write_all(&a.to_le_bytes()).ok()?;
    f.write_all(&b.to_le_bytes()).ok()?;
    read(&path)
}

/// SipHash-2-4 keyed with the cache's secret over what an entry must belong to: the engine's
/// configuration, the module's bytes and the compiled code.
#[allow(deprecated)] // `SipHasher` is the std's keyed SipHash; nothing else in std takes keys.
fn cache_tag(key: (u64, u64), config: u64, wasm: &[u8], compiled: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::SipHasher::new_with_keys(key.0, key.1);
    h.write_u64(config);
    h.write_usize(wasm.len());
    h.write(wasm);
    h.write(compiled);
    h.finish()
}

/// Removes stale temporary files and, beyond `max` bytes, the least recently used entries.
fn evict(dir: &std::path::Path, max: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let now = std::time::SystemTime::now();
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(now);
        match path.extension().and_then(|x| x.to_str()) {
            Some("tmp") if now.duration_since(modified).is_ok_and(|d| d.as_secs() > 3600) => {
                let _ = std::fs::remove_file(&path);
            }
            Some("cwasm") => entries.push((modified, meta.len(), path)),
            _ => {}
        }
    }
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

/// FNV-1a, a stable hash for cache file names (the std hasher is not promised to be stable).
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Compiles `wasm` (binary or text), or loads it from the cache ([`cache_dir`]).
pub fn compile(wasm: &[u8]) -> Result<Module, String> {
    compile_cached(wasm, cache_dir().as_deref(), CACHE_MAX_BYTES)
}

/// Compiles `wasm`, caching the native code in `dir` (none: no cache) up to `max` bytes.
///
/// Native code is only ever loaded from a directory [`trusted_dir`] accepts, and only when the
/// entry's keyed hash matches this module, this engine and the code; anything else is
/// compiled again and replaced.
pub fn compile_cached(wasm: &[u8], dir: Option<&std::path::Path>, max: u64) -> Result<Module, String> {
    let e = engine();
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&e.precompile_compatibility_hash(), &mut h);
    let config = std::hash::Hasher::finish(&h);
    let name = format!("{:016x}.cwasm", fnv(wasm, config ^ 0xcbf2_9ce4_8422_2325));
    let cache = dir.and_then(|d| match trusted_dir(d) {
        Ok(()) => cache_key(d).map(|k| (d, k)),
        Err(why) => {
            tracing::warn!(target: "rtrouter::plugin", dir = %d.display(), "not using the compile cache: {why}");
            None
        }
    });
    if let Some((d, key)) = cache {
        let path = d.join(&name);
        let entry = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|_| std::fs::read(&path).ok());
        if let Some(bytes) = entry {
            let ok = bytes.len() > 16
                && &bytes[..8] == CACHE_MAGIC
                && bytes[8..16] == cache_tag(key, config, wasm, &bytes[16..]).to_le_bytes();
            if ok {
                // SAFETY: the bytes carry a hash keyed with this user's secret over this module,
                // this engine's configuration and the code itself, so they are what
                // `precompile_module` below wrote for this module, in a directory only this user
                // can write to.
                #[allow(unsafe_code)]
                if let Ok(m) = unsafe { Module::deserialize(e, &bytes[16..]) } {
                    if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                        let _ = f.set_modified(std::time::SystemTime::now());
                    }
                    return Ok(m);
                }
            }
        }
    }
    // Text (`.wat`) is accepted too, which small test fixtures use.
    let compiled = e
        .precompile_module(wasm)
        .map_err(|err| format!("is not a loadable wasm module: {err}"))?;
    if let Some((d, key)) = cache {
        let tmp = d.join(format!("{name}.{}.tmp", std::process::id()));
        let mut entry = Vec::with_capacity(16 + compiled.len());
        entry.extend_from_slice(CACHE_MAGIC);
        entry.extend_from_slice(&cache_tag(key, config, wasm, &compiled).to_le_bytes());
        entry.extend_from_slice(&compiled);
        if std::fs::write(&tmp, &entry).is_ok() {
            let _ = std::fs::rename(&tmp, d.join(&name));
        }
        evict(d, max);
    }
    // SAFETY: `compiled` was just produced by this engine's `precompile_module`.
    #[allow(unsafe_code)]
    unsafe { Module::deserialize(e, &compiled) }.map_err(|err| format!("does not load: {err}"))
}

fn check_imports(m: &Module) -> Result<(), String> {
    for imp in m.imports() {
        let want = abi::IMPORTS
            .iter()
            .find(|(n, ..)| *n == imp.name())
            .filter(|_| imp.module() == abi::IMPORT_MODULE);
        let Some((_, params, results)) = want else {
            return Err(format!(
                "imports `{}::{}`, which rtrouter does not provide: plugins run without WASI or any capability but the `{}' host functions",
                imp.module(),
                imp.name(),
                abi::IMPORT_MODULE
            ));
        };
        let wasmtime::ExternType::Func(f) = imp.ty() else {
            return Err(format!("imports `{}` as something other than a function", imp.name()));
        };
        let conv = |v: &abi::ValType| match v {
            abi::ValType::I32 => wasmtime::ValType::I32,
            abi::ValType::I64 => wasmtime::ValType::I64,
        };
        let same = f.params().len() == params.len()
            && f.results().len() == results.len()
            && f.params().zip(params.iter()).all(|(a, b)| a.matches(&conv(b)))
            && f.results().zip(results.iter()).all(|(a, b)| a.matches(&conv(b)));
        if !same {
            return Err(format!("imports `{}` with the wrong signature", imp.name()));
        }
    }
    Ok(())
}

fn mem<'a>(caller: &'a mut Caller<'_, HostState>) -> Option<(&'a mut [u8], &'a mut HostState)> {
    let m = caller.get_export("memory").and_then(Extern::into_memory)?;
    Some(m.data_and_store_mut(caller))
}

fn slice(m: &[u8], ptr: i32, len: i32) -> Option<std::ops::Range<usize>> {
    let (p, l) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    (p.checked_add(l)? <= m.len()).then_some(p..p + l)
}

fn linker() -> Result<Linker<HostState>, String> {
    let mut l = Linker::new(engine());
    let e = |err: wasmtime::Error| err.to_string();
    l.func_wrap(
        abi::IMPORT_MODULE,
        "log",
        |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            if let Some((m, st)) = mem(&mut c) {
                // The same rate limit as LOG lines; what it holds back is counted.
                if !st.log.admit(mono_ns()) {
                    return;
                }
                if let Some(r) = slice(m, ptr, len.min(1024)) {
                    let msg = String::from_utf8_lossy(&m[r]);
                    match level {
                        0 => tracing::error!(target: "rtrouter::plugin", plugin = %st.name, "{msg}"),
                        1 => tracing::warn!(target: "rtrouter::plugin", plugin = %st.name, "{msg}"),
                        2 => tracing::info!(target: "rtrouter::plugin", plugin = %st.name, "{msg}"),
                        3 => tracing::debug!(target: "rtrouter::plugin", plugin = %st.name, "{msg}"),
                        _ => tracing::trace!(target: "rtrouter::plugin", plugin = %st.name, "{msg}"),
                    }
                }
            }
        },
    )
    .map_err(e)?;
    l.func_wrap(abi::IMPORT_MODULE, "random", |mut c: Caller<'_, HostState>| -> i64 {
        c.data_mut().rng.next_u64() as i64
    })
    .map_err(e)?;
    l.func_wrap(
        abi::IMPORT_MODULE,
        "counter_add",
        |c: Caller<'_, HostState>, id: i32, delta: i64| {
            if let Some(ctr) = usize::try_from(id).ok().and_then(|i| c.data().stats.user.get(i)) {
                ctr.fetch_add(delta, Ordering::Relaxed);
            }
        },
    )
    .map_err(e)?;
    l.func_wrap(
        abi::IMPORT_MODULE,
        "kv_get",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vc: i32| -> i32 {
            let Some((m, st)) = mem(&mut c) else { return -1 };
            let (Some(k), Some(v)) = (slice(m, kp, kl.min(abi::KV_MAX_KEY as i32)), slice(m, vp, vc)) else {
                return -1;
            };
            let key = m[k].to_vec();
            let map = crate::eval::state::lock(&st.kv.map);
            let Some(val) = map.get(&key) else { return -1 };
            let n = val.len().min(v.len());
            m[v.start..v.start + n].copy_from_slice(&val[..n]);
            val.len() as i32
        },
    )
    .map_err(e)?;
    l.func_wrap(
        abi::IMPORT_MODULE,
        "kv_set",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32| -> i32 {
            let Some((m, st)) = mem(&mut c) else { return -1 };
            let (Some(k), Some(v)) = (slice(m, kp, kl), slice(m, vp, vl)) else {
                return -1;
            };
            if k.len() > abi::KV_MAX_KEY || v.len() > abi::KV_MAX_VALUE {
                return -1;
            }
            let mut map = crate::eval::state::lock(&st.kv.map);
            if map.len() >= KV_MAX_ENTRIES && !map.contains_key(&m[k.clone()]) {
                return -1;
            }
            map.insert(m[k].to_vec(), m[v].to_vec());
            0
        },
    )
    .map_err(e)?;
    l.func_wrap(
        abi::IMPORT_MODULE,
        "kv_cas",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, op: i32, ol: i32, np: i32, nl: i32| -> i32 {
            let Some((m, st)) = mem(&mut c) else { return -1 };
            let (Some(k), Some(n)) = (slice(m, kp, kl), slice(m, np, nl)) else {
                return -1;
            };
            if k.len() > abi::KV_MAX_KEY || n.len() > abi::KV_MAX_VALUE {
                return -1;
            }
            let old = if ol < 0 { None } else { slice(m, op, ol) };
            if ol >= 0 && old.is_none() {
                return -1;
            }
            let mut map = crate::eval::state::lock(&st.kv.map);
            let cur = map.get(&m[k.clone()]).map(Vec::as_slice);
            if cur != old.map(|o| &m[o]) {
                return 0;
            }
            if cur.is_none() && map.len() >= KV_MAX_ENTRIES {
                return -1;
            }
            map.insert(m[k].to_vec(), m[n].to_vec());
            1
        },
    )
    .map_err(e)?;
    Ok(l)
}

impl Plugins {
    /// Loads every `[[plugin]]` of `cfg`; `kvs` carries key–value stores over from the
    /// previous generation by plugin name.
    pub fn load(cfg: &Config, kvs: &HashMap<String, Arc<Kv>>) -> Result<Plugins, Errors> {
        let linker = linker().map_err(|m| load_err(cfg, "-", m))?;
        let mut plugins = Vec::new();
        for p in &cfg.plugin {
            let name = p.name.get_ref().clone();
            let path = cfg.base_dir().join(p.path.get_ref());
            let bytes = std::fs::read(&path)
                .map_err(|e| load_err(cfg, &name, format!("cannot read {}: {e}", path.display())))?;
            let module = compile(&bytes).map_err(|m| load_err(cfg, &name, m))?;
            let on_error = if p.on_error.get_ref() == "drop" {
                OnError::Drop
            } else {
                OnError::NoMatch
            };
            let limits = Limits {
                memory_bytes: p.memory_mib as usize * 1024 * 1024,
                timeout_us: p.timeout_us,
                on_error,
                max_bytes: p.max_bytes as usize,
                disable_after: p.disable_after,
                log_rate: cfg.log.packet_log_rate,
                seed: cfg.router.seed,
                max_failures_per_sec: p.max_failures_per_sec,
                max_cpu_percent: p.max_cpu_percent,
            };
            plugins.push(
                Plugin::new(&linker, &name, module, &limits, kvs.get(&name).cloned())
                    .map_err(|m| load_err(cfg, &name, m))?,
            );
        }
        Ok(Plugins {
            id: next_generation(),
            plugins,
            queues: cfg
                .queue
                .iter()
                .map(|q| (*q.num.get_ref(), (q.plugin.get_ref().clone(), q.args.clone())))
                .collect(),
        })
    }

    /// The same plugins listening on NFQUEUE queues: (queue, plugin, args), as `[[queue]]`.
    pub fn with_queues(mut self, queues: &[(u16, &str, &str)]) -> Plugins {
        self.queues = queues
            .iter()
            .map(|&(n, p, a)| (n, (p.to_string(), a.to_string())))
            .collect();
        self
    }

    /// Plugins from already compiled modules (tests, benchmarks): (name, module, limits).
    /// `kvs` carries key–value stores over from a previous generation, as a reload does.
    pub fn from_modules(
        mods: Vec<(String, Module, Limits)>,
        kvs: &HashMap<String, Arc<Kv>>,
    ) -> Result<Plugins, String> {
        let linker = linker()?;
        let mut plugins = Vec::new();
        for (name, m, l) in mods {
            plugins.push(Plugin::new(&linker, &name, m, &l, kvs.get(&name).cloned())?);
        }
        Ok(Plugins {
            id: next_generation(),
            plugins,
            queues: Default::default(),
        })
    }

    /// The key–value stores by plugin name, to carry into the next generation.
    pub fn kvs(&self) -> HashMap<String, Arc<Kv>> {
        self.plugins.iter().map(|p| (p.name.clone(), p.kv.clone())).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// Runs `f` with this thread's instance of plugin `idx`, creating it (and initialising
    /// every rule bound so far) when needed.
    fn with_worker<R>(
        &self,
        idx: usize,
        f: impl FnOnce(&mut Worker, &Plugin) -> Result<R, wasmtime::Error>,
    ) -> Result<R, wasmtime::Error> {
        let p = &self.plugins[idx];
        WORKERS.with(|w| {
            let mut slots = w.borrow_mut();
            let si = match slots.iter().position(|s| s.generation == self.id) {
                Some(i) => i,
                None => {
                    // A new generation on this thread: forget instances of older ones.
                    slots.retain(|s| s.generation > self.id);
                    slots.push(Slot {
                        generation: self.id,
                        workers: Vec::new(),
                    });
                    slots.len() - 1
                }
            };
            let workers = &mut slots[si].workers;
            if workers.len() <= idx {
                workers.resize_with(idx + 1, || None);
            }
            if workers[idx].is_none() {
                workers[idx] = Some(p.instantiate()?);
            }
            let worker = workers[idx].as_mut().expect("just created");
            // Rules bound since this instance last looked (or was made) are initialised here;
            // a handle bound again for other `--args` is initialised again.
            let bound = p.bound.load(Ordering::Acquire);
            if worker.inited != bound {
                let todo: Vec<(usize, u64, String)> = {
                    let h = crate::eval::state::lock(&p.rules);
                    h.slots
                        .iter()
                        .enumerate()
                        .filter(|(i, s)| s.live.strong_count() > 0 && worker.uses.get(*i) != Some(&s.uses))
                        .map(|(i, s)| (i, s.uses, s.args.clone()))
                        .collect()
                };
                for (h, uses, args) in todo {
                    let code = worker.init_rule(h as i32, &args, LOAD_TICKS)?;
                    if code != 0 {
                        return Err(wasmtime::Error::msg(worker.message()));
                    }
                    if worker.uses.len() <= h {
                        worker.uses.resize(h + 1, 0);
                    }
                    worker.uses[h] = uses;
                }
                worker.inited = bound;
            }
            let r = f(worker, p);
            if r.is_err() {
                // A trapped instance may be inconsistent: start afresh next time.
                workers[idx] = None;
            }
            r
        })
    }

    /// Charges a finished call to the plugin's budget (`since`: the tick its code started
    /// in, `None` when it never ran); disables the plugin when the budget is exceeded.
    fn charge(&self, p: &Plugin, since: Option<u64>, failed: bool) {
        let now = TICKS.load(Ordering::Relaxed);
        let ticks = since.map_or(0, |t| now.saturating_sub(t));
        if let Some(why) = p.budget.charge(now, ticks, failed) {
            if !p.disabled.swap(true, Ordering::Relaxed) {
                p.stats.over_budget.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target: "rtrouter::plugin", plugin = %p.name, "disabled: {why}; it stays off until the next load");
            }
        }
    }

    fn failure(&self, p: &Plugin, e: &wasmtime::Error) {
        p.stats.failures.fetch_add(1, Ordering::Relaxed);
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => p.stats.timeouts.fetch_add(1, Ordering::Relaxed),
            _ => p.stats.traps.fetch_add(1, Ordering::Relaxed),
        };
        let n = p.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= p.disable_after && !p.disabled.swap(true, Ordering::Relaxed) {
            tracing::error!(target: "rtrouter::plugin", plugin = %p.name, "disabled after {n} consecutive failures (last: {e}); it stays off until the next load");
        }
    }

    /// Writes the metadata record and the packet into the worker's buffer; returns the
    /// packet bytes copied.
    fn fill(w: &mut Worker, p: &Plugin, pkt: &Pkt, cx: &Cx) -> usize {
        let data = w.memory.data_mut(&mut w.store);
        let room = w.buf_len.saturating_sub(abi::META_LEN).min(p.max_bytes);
        let n = pkt.buf.len().min(room);
        let Some(b) = data.get_mut(w.buf..w.buf + abi::META_LEN + n) else {
            return 0;
        };
        let (meta, body) = b.split_at_mut(abi::META_LEN);
        meta.fill(0);
        let put32 = |m: &mut [u8], at: usize, v: u32| m[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put32(meta, abi::META_VERSION, abi::ABI_VERSION as u32);
        put32(meta, abi::META_HOOK, cx.hook as u32);
        put32(
            meta,
            abi::META_IN_FLAGS,
            if n < pkt.buf.len() { abi::IN_TRUNCATED } else { 0 },
        );
        put32(meta, abi::META_PKT_LEN, n as u32);
        put32(meta, abi::META_ORIG_LEN, pkt.buf.len() as u32);
        meta[abi::META_L4_OFF..abi::META_L4_OFF + 2].copy_from_slice(&pkt.h.l4_off.to_le_bytes());
        meta[abi::META_IP_VERSION] = if pkt.h.is_v4() { 4 } else { 6 };
        meta[abi::META_PROTO] = pkt.h.proto;
        let (state, dir, ctmark) = match pkt.ct {
            Ct::Invalid => (abi::CT_INVALID, 0, 0),
            Ct::Untracked => (abi::CT_UNTRACKED, 0, 0),
            Ct::Tracked(c) => (
                match c.state {
                    CtState::New => abi::CT_NEW,
                    CtState::Established => abi::CT_ESTABLISHED,
                    CtState::Related => abi::CT_RELATED,
                },
                u8::from(c.reply_dir),
                c.mark,
            ),
        };
        meta[abi::META_CT_STATE] = state;
        meta[abi::META_CT_DIR] = dir;
        put32(meta, abi::META_MARK, pkt.mark);
        put32(meta, abi::META_CT_MARK, ctmark);
        put32(meta, abi::META_IN_IF, pkt.in_if.map_or(0, |i| u32::from(i.0) + 1));
        put32(meta, abi::META_OUT_IF, pkt.out_if.map_or(0, |i| u32::from(i.0) + 1));
        meta[abi::META_NOW_NS..abi::META_NOW_NS + 8].copy_from_slice(&cx.now.to_le_bytes());
        body.copy_from_slice(&pkt.buf[..n]);
        n
    }
}

/// Limits of one plugin (as `[[plugin]]` gives them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout_us: u64,
    pub on_error: OnError,
    pub max_bytes: usize,
    pub disable_after: u32,
    /// Lines per second the plugin may log (`log.packet_log_rate`, as LOG).
    pub log_rate: u32,
    /// Seeds the plugin's `random` (`router.seed`); `None`: from the OS.
    pub seed: Option<u64>,
    /// Failures allowed in one second before the plugin is disabled.
    pub max_failures_per_sec: u32,
    /// Percent of one core its calls may take in one second before it is disabled.
    pub max_cpu_percent: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 << 20,
            timeout_us: 1000,
            on_error: OnError::NoMatch,
            max_bytes: 2048,
            disable_after: 100,
            log_rate: 10,
            seed: None,
            max_failures_per_sec: 100,
            max_cpu_percent: 50,
        }
    }
}

impl Plugin {
    fn new(
        linker: &Linker<HostState>,
        name: &str,
        module: Module,
        l: &Limits,
        kv: Option<Arc<Kv>>,
    ) -> Result<Plugin, String> {
        check_imports(&module)?;
        let export_fn = |n: &str| {
            module
                .exports()
                .find(|e| e.name() == n)
                .and_then(|e| e.ty().func().cloned())
        };
        let sig = |n: &str, params: usize| -> Result<bool, String> {
            let Some(f) = export_fn(n) else { return Ok(false) };
            let ok = f.params().len() == params
                && f.params().all(|p| p.matches(&wasmtime::ValType::I32))
                && f.results().len() == 1
                && f.results().all(|r| r.matches(&wasmtime::ValType::I32));
            if ok {
                Ok(true)
            } else {
                Err(format!("exports `{n}` with the wrong signature"))
            }
        };
        for (n, params) in [
            ("rtrouter_abi_version", 0),
            ("rtrouter_buffer", 0),
            ("rtrouter_buffer_len", 0),
            ("rtrouter_init", 2),
        ] {
            if !sig(n, params)? {
                return Err(format!(
                    "does not export `{n}` (is it built with rtrouter-sdk, ABI {}?)",
                    abi::ABI_VERSION
                ));
            }
        }
        if !module
            .exports()
            .any(|e| e.name() == "memory" && e.ty().memory().is_some())
        {
            return Err("does not export its memory as `memory`".into());
        }
        let has_match = sig("rtrouter_match", 2)?;
        let has_target = sig("rtrouter_target", 2)?;
        if !has_match && !has_target {
            return Err("exports neither `rtrouter_match` nor `rtrouter_target`".into());
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| e.to_string())?;
        let p = Plugin {
            name: name.to_string(),
            pre,
            memory_bytes: l.memory_bytes,
            // The deadline falls between n - 1 and n ticks after a call starts (its tick
            // boundaries are not aligned with it): one tick more than the limit, rounded up,
            // holds, so that no call is cut before `timeout_us`, and none runs more than two
            // ticks past it (plus the ticker's wake-up latency).
            deadline_ticks: l.timeout_us.div_ceil(TICK_US) + 1,
            on_error: l.on_error,
            max_bytes: l.max_bytes,
            disable_after: l.disable_after.max(1),
            seed: l.seed.unwrap_or_else(os_seed),
            budget: Budget::new(l),
            instances: AtomicU64::new(0),
            log: Arc::new(crate::eval::log::PacketLog::new(l.log_rate)),
            has_match,
            has_target,
            kv: kv.unwrap_or_default(),
            stats: Arc::new(PluginStats::default()),
            consecutive: AtomicU32::new(0),
            disabled: AtomicBool::new(false),
            rules: Arc::new(Mutex::new(Handles::default())),
            bound: std::sync::atomic::AtomicUsize::new(0),
        };
        // Instantiate once now: the ABI version, the buffer and the limits are checked before
        // any packet arrives.
        p.instantiate().map_err(|e| format!("does not instantiate: {e}"))?;
        Ok(p)
    }

    /// A call succeeded: the run of consecutive failures ends (written only when it changes,
    /// so workers do not share a cache line on every call).
    fn succeeded(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    fn instantiate(&self) -> Result<Worker, wasmtime::Error> {
        let state = HostState {
            limits: StoreLimitsBuilder::new()
                .memory_size(self.memory_bytes)
                .instances(1)
                .tables(4)
                .memories(1)
                .build(),
            kv: self.kv.clone(),
            stats: self.stats.clone(),
            name: Arc::from(self.name.as_str()),
            rng: {
                // Every instance (one per worker thread) its own stream, reproducible from
                // `router.seed`.
                let n = self.instances.fetch_add(1, Ordering::Relaxed);
                let mut m = crate::eval::SplitMix(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                crate::eval::SplitMix(m.next_u64())
            },
            log: self.log.clone(),
        };
        let mut store = Store::new(engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(LOAD_TICKS);
        let inst = self.pre.instantiate(&mut store)?;
        let memory = inst
            .get_memory(&mut store, "memory")
            .ok_or_else(|| wasmtime::Error::msg("no memory"))?;
        let version = inst.get_typed_func::<(), i32>(&mut store, "rtrouter_abi_version")?;
        store.set_epoch_deadline(LOAD_TICKS);
        let v = version.call(&mut store, ())?;
        if v != abi::ABI_VERSION {
            return Err(wasmtime::Error::msg(format!(
                "speaks ABI version {v}; this rtrouter speaks version {}",
                abi::ABI_VERSION
            )));
        }
        store.set_epoch_deadline(LOAD_TICKS);
        let buf = inst
            .get_typed_func::<(), i32>(&mut store, "rtrouter_buffer")?
            .call(&mut store, ())?;
        store.set_epoch_deadline(LOAD_TICKS);
        let buf_len = inst
            .get_typed_func::<(), i32>(&mut store, "rtrouter_buffer_len")?
            .call(&mut store, ())?;
        let (buf, buf_len) = (
            usize::try_from(buf).unwrap_or(usize::MAX),
            usize::try_from(buf_len).unwrap_or(0),
        );
        if buf_len < abi::META_LEN + 64
            || buf
                .checked_add(buf_len)
                .is_none_or(|end| end > memory.data_size(&store))
        {
            return Err(wasmtime::Error::msg(
                "its exchange buffer lies outside its memory or is too small",
            ));
        }
        Ok(Worker {
            init: inst.get_typed_func(&mut store, "rtrouter_init")?,
            f_match: if self.has_match {
                Some(inst.get_typed_func(&mut store, "rtrouter_match")?)
            } else {
                None
            },
            f_target: if self.has_target {
                Some(inst.get_typed_func(&mut store, "rtrouter_target")?)
            } else {
                None
            },
            store,
            memory,
            buf,
            buf_len,
            inited: usize::MAX,
            uses: Vec::new(),
        })
    }
}

impl Worker {
    fn init_rule(&mut self, handle: i32, args: &str, ticks: u64) -> Result<i32, wasmtime::Error> {
        if args.len() > self.buf_len {
            return Err(wasmtime::Error::msg(format!(
                "--args is {} bytes; the plugin's buffer holds {}",
                args.len(),
                self.buf_len
            )));
        }
        let n = args.len();
        let buf = self.buf;
        self.memory.data_mut(&mut self.store)[buf..buf + n].copy_from_slice(&args.as_bytes()[..n]);
        self.store.set_epoch_deadline(ticks);
        self.init.call(&mut self.store, (handle, n as i32))
    }

    /// The refusal message a failed `rtrouter_init` left in the buffer.
    fn message(&self) -> String {
        let d = self.memory.data(&self.store);
        let b = &d[self.buf..self.buf + self.buf_len];
        let n = (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize).min(self.buf_len - 4);
        String::from_utf8_lossy(&b[4..4 + n]).into_owned()
    }
}

impl PluginBinder for Plugins {
    fn bind(&self, name: &str, args: &str, target: bool) -> Result<Arc<Binding>, String> {
        let idx = self
            .plugins
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| format!("no plugin `{name}' is declared in the config"))?;
        let p = &self.plugins[idx];
        if target && !p.has_target {
            return Err(format!("plugin `{name}' has no target (it exports no rtrouter_target)"));
        }
        if !target && !p.has_match {
            return Err(format!("plugin `{name}' has no match (it exports no rtrouter_match)"));
        }
        let binding = {
            let mut h = crate::eval::state::lock(&p.rules);
            // Rules with the same `--args` share a binding: a rule's value is built from its
            // arguments alone (`Match::new(args)`), so sharing is invisible.
            if let Some(b) = h.slots.iter().filter(|s| s.args == args).find_map(|s| s.live.upgrade()) {
                return Ok(b);
            }
            // A handle no rule holds any more is bound again before a new one is made.
            let local = match h.free.pop() {
                Some(f) => f,
                None if h.slots.len() > 0xffff => {
                    return Err(format!("plugin `{name}' is used by too many rules (at most 65536)"));
                }
                None => {
                    h.slots.push(HandleSlot {
                        args: String::new(),
                        uses: 0,
                        live: std::sync::Weak::new(),
                    });
                    (h.slots.len() - 1) as u32
                }
            };
            let slot = &mut h.slots[local as usize];
            slot.args = args.to_string();
            slot.uses += 1;
            let release = Release {
                handles: Arc::downgrade(&p.rules),
                handle: local,
                uses: slot.uses,
            };
            let b = Arc::new(Binding::new(handle(idx, local), Some(Box::new(release))));
            slot.live = Arc::downgrade(&b);
            p.bound.fetch_add(1, Ordering::AcqRel);
            b
        };
        // Let the plugin check the arguments now, so a bad rule is a load error (dropping the
        // binding frees the handle again).
        if let Err(e) = self.with_worker(idx, |_, _| Ok(())) {
            drop(binding);
            return Err(format!("plugin `{name}' refused --args {:?}: {e}", args));
        }
        Ok(binding)
    }

    fn bind_queues(&self, first: u16, last: u16) -> Result<Vec<(u16, Arc<Binding>)>, String> {
        self.queues
            .range(first..=last)
            .map(|(&n, (plugin, args))| {
                self.bind(plugin, args, true)
                    .map(|h| (n, h))
                    .map_err(|e| format!("queue {n}: {e}"))
            })
            .collect()
    }
}

impl PluginHost for Plugins {
    fn call_match(&self, h: u32, pkt: &Pkt, cx: &mut Cx) -> Option<bool> {
        let (pi, local) = unhandle(h);
        let Some(p) = self.plugins.get(pi) else {
            return Some(false);
        };
        // A failed call gives the configured outcome: no match, or drop the packet.
        let fail = match p.on_error {
            OnError::Drop => None,
            OnError::NoMatch => Some(false),
        };
        if p.disabled.load(Ordering::Relaxed) {
            cx.obs
                .event(&|| format!("plugin {}: disabled (until the next reload)", p.name));
            return fail;
        }
        p.stats.calls.fetch_add(1, Ordering::Relaxed);
        // The time budget counts the call itself, not this thread's first instantiation.
        let mut since = None;
        let r = self.with_worker(pi, |w, p| {
            let n = Self::fill(w, p, pkt, cx);
            // Borrow the function and the store apart: cloning a `TypedFunc` per call costs
            // more than the call (it clones and drops its registered type).
            let f = w
                .f_match
                .as_ref()
                .ok_or_else(|| wasmtime::Error::msg("no match export"))?;
            w.store.set_epoch_deadline(deadline_from_now(p.deadline_ticks));
            since = Some(TICKS.load(Ordering::Relaxed));
            f.call(&mut w.store, (local as i32, n as i32))
        });
        self.charge(p, since, r.is_err());
        match r {
            Ok(v) => {
                p.succeeded();
                Some(v != 0)
            }
            Err(e) => {
                self.failure(p, &e);
                cx.obs
                    .event(&|| format!("plugin {} failed: {}", p.name, failure_text(&e)));
                fail
            }
        }
    }

    fn call_target(&self, h: u32, pkt: &mut Pkt, cx: &mut Cx) -> Option<Verdict> {
        let (pi, local) = unhandle(h);
        let p = self.plugins.get(pi)?;
        let fail = match p.on_error {
            OnError::Drop => Some(Verdict::Abort(crate::packet::DropReason::PluginFailure)),
            OnError::NoMatch => None,
        };
        if p.disabled.load(Ordering::Relaxed) {
            cx.obs
                .event(&|| format!("plugin {}: disabled (until the next reload)", p.name));
            return fail;
        }
        p.stats.calls.fetch_add(1, Ordering::Relaxed);
        let mut since = None;
        let r = self.with_worker(pi, |w, p| {
            let n = Self::fill(w, p, pkt, cx);
            let f = w
                .f_target
                .as_ref()
                .ok_or_else(|| wasmtime::Error::msg("no target export"))?;
            w.store.set_epoch_deadline(deadline_from_now(p.deadline_ticks));
            since = Some(TICKS.load(Ordering::Relaxed));
            let code = f.call(&mut w.store, (local as i32, n as i32))?;
            let d = w.memory.data(&w.store);
            let meta = &d[w.buf..w.buf + abi::META_LEN];
            let body = &d[w.buf + abi::META_LEN..w.buf + abi::META_LEN + n];
            Ok(crate::eval::plugin_out::apply(pkt, meta, body, code))
        });
        self.charge(p, since, r.is_err());
        match r {
            Ok(v) => {
                p.succeeded();
                v
            }
            Err(e) => {
                self.failure(p, &e);
                cx.obs
                    .event(&|| format!("plugin {} failed: {}", p.name, failure_text(&e)));
                fail
            }
        }
    }
}

/// What went wrong in a call, in one line: the trap (`wasm trap: wasm `unreachable`
/// instruction executed`, an interrupt for a timeout) or the root cause.
fn failure_text(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => "timed out (interrupted at its deadline)".into(),
        Some(t) => t.to_string(),
        None => e.root_cause().to_string(),
    }
}

/// A config's two rulesets: iptables' for IPv4 packets, ip6tables' for IPv6 ones.
#[derive(Debug, Clone)]
pub struct Rules {
    pub v4: ValidRuleset,
    pub v6: ValidRuleset,
}

/// Loads the config's plugins (carrying over key–value stores) and its rulesets bound to
/// them; every error of both rulesets is reported.
pub fn load(cfg: &Config, previous: Option<&Plugins>) -> Result<(Rules, Option<Arc<Plugins>>), Errors> {
    let plugins = if cfg.plugin.is_empty() {
        None
    } else {
        let kvs = previous.map(Plugins::kvs).unwrap_or_default();
        Some(Arc::new(Plugins::load(cfg, &kvs)?))
    };
    let binder = || plugins.clone().map(|p| p as Arc<dyn crate::ruleset::PluginBinder>);
    match (cfg.ruleset_with(binder()), cfg.ruleset6_with(binder())) {
        (Ok(v4), Ok(v6)) => Ok((Rules { v4, v6 }, plugins)),
        (a, b) => {
            let mut errors = Vec::new();
            errors.extend(a.err().into_iter().flat_map(|e| e.0));
            errors.extend(b.err().into_iter().flat_map(|e| e.0));
            Err(Errors(errors))
        }
    }
}

/// The module a `.wasm` or `.wat` file holds, compiled (for tests and tools).
pub fn module_from_file(path: &Path) -> Result<Module, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    compile(&bytes)
}
