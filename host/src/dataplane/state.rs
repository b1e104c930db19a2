//! What a run created, recorded so that the next start can clean up after a run that died
//! without doing so itself (SIGKILL, a crash, power loss of a container).
//!
//! The record is a small JSON file under `/run/rtrouter/` (or `$RTROUTER_STATE_DIR`), one per
//! config file: the process id, the network namespaces the run created, and its control
//! socket. It is rewritten as each namespace is created (so a run killed while starting
//! leaves an exact record) and removed at a clean stop. At start, a record whose process is
//! gone is acted on: its namespaces are deleted and its socket file removed; a record whose
//! process still runs is left alone (that router owns them).

use std::io;
use std::path::{Path, PathBuf};

/// Where the records live.
fn dir() -> PathBuf {
    std::env::var_os("RTROUTER_STATE_DIR").map_or_else(|| PathBuf::from("/run/rtrouter"), PathBuf::from)
}

/// The record of runs of the config at `config` (FNV-1a of its absolute path: one file per
/// config, whatever the working directory).
pub fn path_for(config: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in abs.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    dir().join(format!("run-{h:016x}.json"))
}

/// One run's record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub pid: u32,
    /// The config the run was started with (for a person reading the file).
    pub config: String,
    pub netns: Vec<String>,
    pub socket: Option<PathBuf>,
}

impl Record {
    /// Writes the record atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    fn load(path: &Path) -> Option<Record> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

/// Whether process `pid` is alive and is an rtrouter.
fn running(pid: u32) -> bool {
    if pid == 0 || pid == std::process::id() {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim().starts_with("rtrouter"))
}

/// What a start found of an earlier run.
#[derive(Debug, Clone, PartialEq)]
pub enum Earlier {
    /// No record.
    None,
    /// The run is still alive: its namespaces are its own.
    Running(u32),
    /// The run died: these namespaces and this socket were removed.
    Cleaned { pid: u32, netns: Vec<String>, socket: bool },
}

/// Looks for the record at `path` and cleans up after a dead run.
pub fn clean_up_dead_run(path: &Path) -> Earlier {
    let Some(r) = Record::load(path) else {
        let _ = std::fs::remove_file(path);
        return Earlier::None;
    };
    if running(r.pid) {
        return Earlier::Running(r.pid);
    }
    let mut removed = Vec::new();
    for ns in &r.netns {
        if super::netns::exists(ns) && super::netns::delete(ns).is_ok() {
            removed.push(ns.clone());
        }
    }
    let socket = r.socket.as_ref().is_some_and(|s| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::symlink_metadata(s).is_ok_and(|m| m.file_type().is_socket()) && std::fs::remove_file(s).is_ok()
    });
    let _ = std::fs::remove_file(path);
    Earlier::Cleaned {
        pid: r.pid,
        netns: removed,
        socket,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runs_record_is_cleaned_and_a_live_one_kept() {
        let d = std::env::temp_dir().join(format!("rtrouter-state-{}", std::process::id()));
        let path = d.join("run-test.json");
        // A pid that is certainly not an rtrouter (and a socket path that is not a socket).
        let plain = d.join("not-a-socket");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(&plain, "x").unwrap();
        let r = Record {
            pid: u32::MAX - 1,
            config: "c.toml".into(),
            netns: vec![],
            socket: Some(plain.clone()),
        };
        r.save(&path).unwrap();
        assert_eq!(
            clean_up_dead_run(&path),
            Earlier::Cleaned {
                pid: u32::MAX - 1,
                netns: vec![],
                socket: false
            }
        );
        assert!(!path.exists(), "the record goes");
        assert!(plain.exists(), "a file that is not a socket is never removed");
        assert_eq!(clean_up_dead_run(&path), Earlier::None);
        // Unreadable records are dropped.
        std::fs::write(&path, "{").unwrap();
        assert_eq!(clean_up_dead_run(&path), Earlier::None);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&d);
        assert_ne!(path_for(Path::new("/a/r.toml")), path_for(Path::new("/b/r.toml")));
    }
}
