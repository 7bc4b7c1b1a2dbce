//! Embeds the git commit the server is built from (`EITWATCH_COMMIT`, for `/health` and
//! `eitwatch_build_info`): `unknown` outside a git checkout (a source tarball) or without git.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=EITWATCH_COMMIT={commit}");
    // Run again when HEAD moves (a commit, a checkout), not at every build: HEAD, the branch
    // it names and the packed refs. Only files that exist: a missing one reruns every build.
    let mut watched = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watched.push(format!("{dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        watched.push(format!("{common}/packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(format!("{common}/{branch}"));
        }
    }
    let mut any = false;
    for path in watched.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
        any = true;
    }
    if !any {
        // Not a checkout: nothing to watch but this script.
        println!("cargo:rerun-if-changed=build.rs");
    }
}
