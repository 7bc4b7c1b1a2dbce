//! Exponential backoff with jitter, for every retry loop of the agent (reconnects, polls of a
//! silent device, deliveries): 0.5 s doubling to 30 s, each delay ±25 % at random so that
//! agents and sources that failed together do not retry in step.

use std::time::Duration;

const FIRST_MS: u64 = 500;
const MAX_MS: u64 = 30_000;

/// The delays of one retry loop.
#[derive(Debug)]
pub(crate) struct Backoff {
    next_ms: u64,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { next_ms: FIRST_MS }
    }

    /// The next delay.
    pub(crate) fn next(&mut self) -> Duration {
        let base = self.next_ms;
        self.next_ms = (self.next_ms * 2).min(MAX_MS);
        let mut r = [0u8; 8];
        let random = match getrandom::fill(&mut r) {
            Ok(()) => u64::from_le_bytes(r),
            Err(_) => crate::now_ns().unsigned_abs(),
        };
        Duration::from_millis(base - base / 4 + random % (base / 2 + 1))
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.next_ms = FIRST_MS;
    }

    /// The longest delay: a connection that lasted longer than this was a success.
    pub(crate) const fn max() -> Duration {
        Duration::from_millis(MAX_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_bound_with_a_quarter_of_jitter_either_way() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..10).map(|_| b.next().as_millis() as u64).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = (FIRST_MS << i).min(MAX_MS);
            assert!((base - base / 4..=base + base / 4).contains(d), "delay {i}: {d} ms, base {base} ms");
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(FIRST_MS + FIRST_MS / 4));
    }
}
