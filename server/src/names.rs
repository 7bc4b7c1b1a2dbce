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
