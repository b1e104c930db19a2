//! Event streams the control plane subscribes to (`rtrouter monitor trace`, `rtrouter
//! conntrack -E`): a subscriber takes a line and says whether it still listens; one that
//! cannot keep up loses lines rather than slowing packets. Publishers ask [`Monitor::listening`]
//! before they build a line, so an unwatched stream costs one relaxed load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A monitor's subscriber: takes a line, says whether it still listens.
pub type Subscriber = Box<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Default)]
pub struct Monitor {
    subscribers: Mutex<Vec<Subscriber>>,
    /// Whether anyone listens, read on the packet path without the lock.
    listening: AtomicBool,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

impl Monitor {
    /// Adds a subscriber.
    pub fn subscribe(&self, f: Subscriber) {
        let mut s = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        s.push(f);
        self.listening.store(true, Ordering::Relaxed);
    }

    /// Whether a subscriber may be listening.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Hands a line to every subscriber, forgetting the ones that are gone.
    pub fn publish(&self, line: &str) {
        if !self.listening() {
            return;
        }
        let mut s = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|f| f(line));
        self.listening.store(!s.is_empty(), Ordering::Relaxed);
    }
}
