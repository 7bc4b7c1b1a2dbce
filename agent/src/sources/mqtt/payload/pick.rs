//! The scalars at a few dotted paths of a JSON document, read in one pass without building
//! the document: the MQTT hot path reads `value`, `time`, `unit` and `quality` of every
//! message, and a `serde_json::Value` costs a map, a string per key and their frees each
//! time (with the path lookups, an eighth of the agent's instructions in a callgrind run of
//! `scripts/bench-agent.sh`'s load at 1 000 messages/s).
//!
//! Same answers as looking the paths up in the parsed `Value` (`payload::lookup`), or none:
//! anything else than a scalar or `null` at a path, or a document that does not parse, gives
//! `None` and the caller reads the document whole (which also words its errors). A key seen
//! twice keeps its last value, as `Value`'s map does.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// At most this many paths (a bit each).
const MAX_PATHS: usize = 64;

/// Dotted paths, split once (per subscription, not per message).
#[derive(Debug, Clone)]
pub(super) struct Paths {
    dotted: Vec<String>,
    steps: Vec<Vec<String>>,
}

impl Paths {
    /// `None` for more than 64 paths (the document is then always read whole).
    pub(super) fn new(paths: &[&str]) -> Option<Paths> {
        (paths.len() <= MAX_PATHS).then(|| Paths {
            dotted: paths.iter().map(|p| p.to_string()).collect(),
            steps: paths.iter().map(|p| p.split('.').map(str::to_string).collect()).collect(),
        })
    }

    /// The index of `path` among these (the first, if given twice).
    pub(super) fn index(&self, path: &str) -> Option<usize> {
        self.dotted.iter().position(|p| p == path)
    }

    /// Per path: the scalar there (`null` counts as absent), or `None` if the document must
    /// be read whole instead.
    pub(super) fn pick(&self, text: &str) -> Option<Vec<Option<Value>>> {
        let n = self.steps.len();
        let mut found = Found { values: vec![None; n], whole: false };
        let all = if n == MAX_PATHS { u64::MAX } else { (1u64 << n) - 1 };
        let mut de = serde_json::Deserializer::from_str(text);
        Node { steps: &self.steps, depth: 0, active: all, found: &mut found }.deserialize(&mut de).ok()?;
        de.end().ok()?;
        (!found.whole).then_some(found.values)
    }
}

/// [`Paths::pick`] for paths given once.
#[cfg(test)]
pub(super) fn pick(text: &str, paths: &[&str]) -> Option<Vec<Option<Value>>> {
    Paths::new(paths)?.pick(text)
}

struct Found {
    values: Vec<Option<Value>>,
    /// Something other than a scalar at a path.
    whole: bool,
}

/// A node at `depth` that the paths in `active` (a bit per path) go through or end at.
struct Node<'s, 'f> {
    steps: &'s [Vec<String>],
    depth: usize,
    active: u64,
    found: &'f mut Found,
}

impl Node<'_, '_> {
    fn paths(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.steps.len()).filter(|&i| self.active & (1 << i) != 0)
    }

    /// Whether path `i` ends here.
    fn ends(&self, i: usize) -> bool {
        self.active & (1 << i) != 0 && self.steps[i].len() == self.depth
    }

    fn scalar(self, v: Option<Value>) {
        for i in 0..self.steps.len() {
            if self.ends(i) {
                self.found.values[i] = v.clone();
            }
        }
    }

    /// Paths going on into a member named `key` (an object's) or at `index` (an array's).
    fn below(&self, key: Option<&str>, index: Option<usize>) -> u64 {
        let mut mask = 0;
        for i in self.paths() {
            let Some(step) = self.steps[i].get(self.depth) else { continue };
            let hit = match (key, index) {
                (Some(k), _) => step == k,
                (None, Some(n)) => step.parse::<usize>().ok() == Some(n),
                (None, None) => false,
            };
            if hit {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Entering a member: what its paths found in an earlier member of the same name is
    /// replaced (or cleared) by what this one holds.
    fn clear(&mut self, mask: u64) {
        for i in 0..self.steps.len() {
            if mask & (1 << i) != 0 {
                self.found.values[i] = None;
            }
        }
    }

    fn container(&mut self) {
        if (0..self.steps.len()).any(|i| self.ends(i)) {
            self.found.whole = true;
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! scalar {
    ($name:ident, $t:ty, $make:expr) => {
        fn $name<E: de::Error>(self, v: $t) -> Result<(), E> {
            let make: fn($t) -> Option<Value> = $make;
            self.scalar(make(v));
            Ok(())
        }
    };
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    scalar!(visit_bool, bool, |v| Some(Value::Bool(v)));
    scalar!(visit_i64, i64, |v| Some(Value::Number(v.into())));
    scalar!(visit_u64, u64, |v| Some(Value::Number(v.into())));
    scalar!(visit_f64, f64, |v| Number::from_f64(v).map(Value::Number));
    scalar!(visit_str, &str, |v| Some(Value::String(v.to_string())));

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.scalar(Some(Value::String(v)));
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(None);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.container();
        while let Some(mask) = map.next_key_seed(Key { node: &self })? {
            if mask == 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.clear(mask);
            map.next_value_seed(Node {
                steps: self.steps,
                depth: self.depth + 1,
                active: mask,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.container();
        let mut index = 0;
        loop {
            let mask = self.below(None, Some(index));
            let more = if mask == 0 {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                self.clear(mask);
                let node = Node { steps: self.steps, depth: self.depth + 1, active: mask, found: &mut *self.found };
                seq.next_element_seed(node)?.is_some()
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// An object's key, read as the paths that go on into its value (no allocation unless the
/// key has escapes).
struct Key<'n, 's, 'f> {
    node: &'n Node<'s, 'f>,
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_, '_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<u64, E> {
        Ok(self.node.below(Some(k), None))
    }
}
