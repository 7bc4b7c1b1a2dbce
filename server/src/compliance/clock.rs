//! Where the engine learns the time: the system clock in production, a manual one in tests,
//! so periods closing, no-data and deadlines are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        jiff::Timestamp::now().as_nanosecond() as i64
    }
}

/// A clock that moves only when told.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ns: AtomicI64,
}

impl ManualClock {
    /// Starting at `now_ns`.
    pub fn new(now_ns: i64) -> ManualClock {
        ManualClock { now_ns: AtomicI64::new(now_ns) }
    }
    /// Sets the time.
    pub fn set(&self, now_ns: i64) {
        self.now_ns.store(now_ns, Ordering::SeqCst);
    }
    /// Moves the time forward.
    pub fn advance(&self, by_ns: i64) {
        self.now_ns.fetch_add(by_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}
