//! Freeing what a change replaced, off the control transaction: the job `call_rcu` does for
//! the kernel's rule blobs. Freeing a generation whose 100,000-rule chain changed takes
//! milliseconds (every rule's reference count, the chain's arrays, its classifier); a
//! transaction hands such garbage here and ends, and one thread of its own frees it in the
//! order it came.
//!
//! Used by the running router (the dataplane), whose packet workers must never be the ones to
//! free a generation: a replaced engine is dropped here once no worker holds it (bounded, as
//! before, by a second; after that its last holder frees it).

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// The reclaimer's queue; `None` when its thread could not be started (then callers free in
/// place, as they did before).
fn queue() -> &'static Mutex<Option<Sender<Job>>> {
    static QUEUE: OnceLock<Mutex<Option<Sender<Job>>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let started = std::thread::Builder::new()
            .name("rtrouter-reclaim".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            });
        Mutex::new(started.ok().map(|_| tx))
    })
}

/// Runs `job` on the reclaimer, or here when there is none.
fn run(job: Job) {
    let job = match crate::eval::state::lock(queue()).as_ref() {
        Some(tx) => match tx.send(job) {
            Ok(()) => return,
            Err(e) => e.0,
        },
        None => job,
    };
    job();
}

/// Frees `garbage` on the reclaimer.
pub fn defer<T: Send + 'static>(garbage: T) {
    run(Box::new(move || drop(garbage)));
}

/// Frees a replaced generation once nobody else holds it: it waits (at most a second) for the
/// packets still using it, then drops its reference, the last one unless a holder outlived
/// the wait.
pub fn retire<T: Send + Sync + 'static>(old: Arc<T>) {
    run(Box::new(move || {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        drop(old);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn garbage_is_freed_elsewhere_and_a_held_generation_only_after_its_holder() {
        let freed = Arc::new(AtomicUsize::new(0));
        defer(Counted(freed.clone()));
        let generation = Arc::new(Counted(freed.clone()));
        let holder = generation.clone();
        retire(generation);
        let deadline = Instant::now() + Duration::from_secs(5);
        while freed.load(Ordering::SeqCst) < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(freed.load(Ordering::SeqCst), 1, "the deferred garbage is freed");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(freed.load(Ordering::SeqCst), 1, "a generation still held is not");
        drop(holder);
        // The holder dropped the last reference or the reclaimer will: either way it goes.
        let deadline = Instant::now() + Duration::from_secs(5);
        while freed.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(freed.load(Ordering::SeqCst), 2);
    }
}
