//! Loading a config file and reporting every problem in it at once, each with the file and
//! the key path: `agent.toml: modbus[0].register[3].type: unknown variant "f33", expected one of …`.
//!
//! Serde stops at the first error, so the loader collects by pruning: it records the error,
//! removes the array element that holds it, and deserializes again, mapping later paths back
//! to the file's own indices. Once the file deserializes, [`Validate`] collects the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// One problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path (`modbus[0].register[3].type`); empty for the file as a whole.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Every problem found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    /// The file's name, as given to the loader.
    pub file: String,
    /// The problems, in the order found.
    pub list: Vec<Problem>,
}

impl Problems {
    /// Records a problem at a key path.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem { path: path.into(), message: message.into() });
    }

    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.path.is_empty() {
                true => write!(f, "{}: {}", self.file, p.message)?,
                false => write!(f, "{}: {}: {}", self.file, p.path, p.message)?,
            }
        }
        Ok(())
    }
}

/// Checks that need the whole, deserialized file.
pub trait Validate {
    /// Adds every problem found to `problems`.
    fn validate(&self, problems: &mut Problems);
}

/// At most this many deserialization problems are collected from one file.
const MAX_PROBLEMS: usize = 50;

/// Parses `text` as TOML into `T` and validates it; `file` names it in every problem.
pub fn load<T: DeserializeOwned + Validate>(text: &str, file: &str) -> Result<T, Problems> {
    let mut problems = Problems { file: file.to_string(), list: Vec::new() };
    let mut doc: toml::Value = match toml::from_str::<toml::Table>(text) {
        Ok(table) => toml::Value::Table(table),
        Err(e) => {
            let at = e.span().map(|s| line_col(text, s.start)).map(|(l, c)| format!("line {l}, column {c}"));
            problems.push(at.unwrap_or_default(), format!("not valid TOML: {}", e.message()));
            return Err(problems);
        }
    };
    let mut removed: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(doc.clone()) {
            Ok(value) if problems.is_empty() => {
                value.validate(&mut problems);
                return if problems.is_empty() { Ok(value) } else { Err(problems) };
            }
            Ok(_) => return Err(problems),
            Err(e) => {
                let segments: Vec<Segment> = e.path().iter().cloned().collect();
                let (original, last_seq) = to_original(&segments, &removed);
                problems.push(original.clone(), e.inner().message().to_string());
                // Prune the innermost array element holding the error, and go again.
                let Some((array_path, index_original, depth)) = last_seq else {
                    return Err(problems);
                };
                if problems.list.len() >= MAX_PROBLEMS || !prune(&mut doc, &segments[..=depth]) {
                    return Err(problems);
                }
                removed.entry(array_path).or_default().insert(index_original);
            }
        }
    }
}

/// Maps a path in the pruned document to the file's own indices. Also returns, for the
/// innermost array element, the array's original path, the element's original index and
/// the segment's depth.
fn to_original(
    segments: &[Segment],
    removed: &BTreeMap<String, BTreeSet<usize>>,
) -> (String, Option<(String, usize, usize)>) {
    let mut path = String::new();
    let mut last = None;
    for (depth, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Seq { index } => {
                let gone = removed.get(&path);
                let original = (0..).filter(|i| gone.is_none_or(|g| !g.contains(i))).nth(*index).unwrap_or(*index);
                last = Some((path.clone(), original, depth));
                path.push_str(&format!("[{original}]"));
            }
            Segment::Map { key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Enum { variant } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    (path, last)
}

/// Removes the array element the path ends at; false when the path does not lead there.
fn prune(doc: &mut toml::Value, segments: &[Segment]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = doc;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key }, toml::Value::Table(t)) => match t.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, toml::Value::Array(a)) => match a.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Seq { index }, toml::Value::Array(a)) if *index < a.len() => {
            a.remove(*index);
            true
        }
        _ => false,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
