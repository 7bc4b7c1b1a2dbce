//! Link options of the agent as shipped (profile `agent-release`, see the root Cargo.toml
//! and `shipped/build.sh`).
//!
//! - `shipped/link-order.txt`: the functions the agent runs (start-up and steady state, as
//!   recorded by `shipped/link-order.sh`) placed together at the start of `.text`. The
//!   kernel maps a program's pages around each one touched (fault-around, 64 KiB), so code
//!   run once or rarely scattered among code never run made most of a 4 MB `.text`
//!   resident; together they fill about a megabyte. A name missing from the build (another
//!   dependency version) is skipped: a stale list costs memory, never correctness.
//! - `-z pack-relative-relocs` (DT_RELR): the position-independent binary's relative
//!   relocations packed into a bitmap instead of 24 bytes each (≈ 390 KB that were read, and
//!   so kept resident, at every start). A dynamically linked build then needs glibc ≥ 2.36;
//!   the shipped, static build needs none.
//!
//! Only for the `agent-release` profile (Cargo gives build scripts no profile name; its
//! output directory is under `target/agent-release/`), and only with lld (Rust's default
//! linker on x86_64 Linux).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=shipped/link-order.txt");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
    let shipped = Path::new(&out_dir).components().any(|c| c.as_os_str() == "agent-release");
    let linux_x86_64 = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    if !shipped || !linux_x86_64 {
        return;
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = Path::new(&manifest).join("shipped/link-order.txt");
    if order.exists() {
        println!("cargo:rustc-link-arg-bin=eitwatch-agent=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bin=eitwatch-agent=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bin=eitwatch-agent=-Wl,-z,pack-relative-relocs");
}
