//! Shared names: the store's series keys and the compliance engine's series hold factory,
//! point, parameter and area ids as `Arc<str>`, one allocation per distinct name however
//! many series carry it (a factory's ten parameters share its id).

use std::sync::Arc;

use rustc_hash::FxHashSet;

/// Every distinct name seen, held once.
#[derive(Debug, Default)]
pub(crate) struct Names(FxHashSet<Arc<str>>);

impl Names {
    /// The shared copy of `name`, added when new.
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = name.into();
        self.0.insert(n.clone());
        n
    }
}

/// `a == b` for the short names of a series (`cod`, `outfall-1`, `f0001`), inline: `str`'s
/// `==` calls libc's `memcmp`, and the call costs more than comparing these few bytes. Ingest
/// compares names several times a reading.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // No early exit: the loop stays a loop (an exiting one may be turned back into `memcmp`).
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_is_str_eq(a in "[a-c]{0,4}", b in "[a-c]{0,4}") {
            prop_assert_eq!(super::same(&a, &b), a == b);
        }
    }
}
