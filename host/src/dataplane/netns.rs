//! Named network namespaces, as `ip netns` keeps them: a bind mount of a namespace at
//! `/run/netns/NAME`. Work inside one runs on a short-lived thread that joins it, so the rest
//! of the process stays where it is.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::io;
use std::path::PathBuf;

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

fn nix_err(what: &str, e: nix::Error) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Creates the namespace `name` (like `ip netns add`).
pub fn create(name: &str) -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let p = path(name);
    File::options()
        .write(true)
        .create_new(true)
        .open(&p)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", p.display())))?;
    let target = p.clone();
    let made = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| nix_err("unshare(CLONE_NEWNET)", e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| nix_err("bind-mounting the namespace", e))
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if made.is_err() {
        let _ = std::fs::remove_file(&p);
    }
    made
}

/// Deletes the namespace `name` (like `ip netns del`); its devices go with it.
pub fn delete(name: &str) -> io::Result<()> {
    let p = path(name);
    umount2(&p, MntFlags::MNT_DETACH).map_err(|e| nix_err("unmounting the namespace", e))?;
    std::fs::remove_file(&p)
}

/// Runs `f` on a thread inside namespace `name`.
pub fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    let p = path(name);
    let ns = File::open(&p).map_err(|e| io::Error::new(e.kind(), format!("opening namespace {}: {e}", p.display())))?;
    std::thread::spawn(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| nix_err("joining the namespace", e))?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// The namespace open as a file, for moving links into it.
pub fn open(name: &str) -> io::Result<File> {
    File::open(path(name))
}
