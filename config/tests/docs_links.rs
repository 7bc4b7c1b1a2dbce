//! Every relative link in README.md and docs/*.md points at a file of the repository, and a
//! `#fragment` into a Markdown file names one of its headings.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("config/ is inside the repository").to_path_buf()
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/ exists");
    let mut in_docs: Vec<PathBuf> =
        docs.map(|e| e.expect("docs/ entry").path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect();
    in_docs.sort();
    files.extend(in_docs);
    files
}

/// The lines outside fenced code blocks, with their 1-based numbers.
fn prose(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter_map(move |(i, line)| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return None;
        }
        (!fenced).then_some((i + 1, line))
    })
}

/// Targets of inline links `[text](target)` in a line, outside inline code.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => in_code = !in_code,
            b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    targets.push(line[i + 2..i + 2 + end].to_string());
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    prose(&text).filter_map(|(_, line)| line.strip_prefix('#')).map(|h| anchor(h.trim_start_matches('#'))).collect()
}

#[test]
fn every_relative_link_resolves() {
    let root = repository();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).expect("readable markdown");
        let dir = file.parent().expect("a file has a directory");
        let name = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        for (n, line) in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
                let resolved = if path.is_empty() { file.clone() } else { dir.join(path) };
                if !resolved.exists() {
                    broken.push(format!("{name}:{n}: {target}: no such file"));
                } else if !fragment.is_empty()
                    && resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&resolved).contains(fragment)
                {
                    broken.push(format!("{name}:{n}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found: is the parser still reading the docs?");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor(" Grafana (for InfluxDB 2 deployments)"), "grafana-for-influxdb-2-deployments");
    assert_eq!(anchor(" `[[ingest.mapping]]`"), "ingestmapping");
    assert_eq!(link_targets("see [a](x.md#y) and `[b](not-a-link)`"), ["x.md#y"]);
}
