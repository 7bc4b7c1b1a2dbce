//! The Debian packages of `scripts/release.sh`: their files, modes, owners, conffiles,
//! dependencies and debug symbols read with `dpkg-deb`; then installed on this machine with
//! `dpkg -i` (the CI machine runs as root), the units checked by `systemd-analyze`, the
//! binaries run, the users and directories checked, a reinstall with an edited config, a
//! `remove` that keeps config and data, and a `purge` after which nothing of them is left.
//!
//! The machine is left as it was however the test ends: the install runs only where no
//! eitwatch package, user or directory exists yet, and a guard purges whatever it installed.
//! Two runs (two checkouts testing at once) take turns by an exclusive `flock` on
//! `/var/lib/dpkg`, a directory every Debian system has (dpkg itself locks files inside it
//! with `fcntl`, which does not interact with `flock`).
//!
//! The release build of both binaries runs here, once.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PACKAGES: [&str; 4] = ["eitwatch-server-dbgsym", "eitwatch-agent-dbgsym", "eitwatch-server", "eitwatch-agent"];
/// What the packages may create; none may exist before the install, none after the purge.
const USERS: [&str; 2] = ["eitwatch", "eitwatch-agent"];
const PATHS: [&str; 13] = [
    "/usr/bin/eitwatch-server",
    "/usr/bin/eitwatch-agent",
    "/etc/eitwatch",
    "/etc/default/eitwatch-server",
    "/var/lib/eitwatch",
    "/var/lib/eitwatch-agent",
    "/usr/lib/systemd/system/eitwatch-server.service",
    "/usr/lib/systemd/system/eitwatch-agent.service",
    "/etc/systemd/system/multi-user.target.wants/eitwatch-server.service",
    "/etc/systemd/system/multi-user.target.wants/eitwatch-agent.service",
    "/etc/systemd/system/eitwatch-server.service",
    "/usr/share/doc/eitwatch-server",
    "/usr/share/doc/eitwatch-agent",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// stdout of a command that must succeed.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `scripts/release.sh` into a new directory.
fn build_packages() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("eitwatch-packages.").tempdir().expect("a temp dir");
    let mut release = Command::new("bash");
    // Without what cargo sets for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR…): ring's build
    // script reruns when they change, so the release build would be redone here and again by
    // the next release.sh from a shell.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_test = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_TARGET_TMPDIR"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || name == "CARGO_PRIMARY_PACKAGE";
        if set_for_test {
            release.env_remove(name.as_ref());
        }
    }
    let out = release
        .arg(root().join("scripts/release.sh"))
        .env("OUT", dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("bash scripts/release.sh");
    assert!(
        out.status.success(),
        "scripts/release.sh: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    dir
}

/// The packages in their directory.
struct Debs {
    dir: PathBuf,
    arch: String,
}

impl Debs {
    fn path(&self, package: &str) -> String {
        self.dir.join(format!("{package}_{VERSION}_{}.deb", self.arch)).to_string_lossy().into_owned()
    }

    fn field(&self, package: &str, name: &str) -> String {
        ok("dpkg-deb", &["--field", &self.path(package), name]).trim().to_string()
    }

    /// `mode owner path` of every entry of a package's data, sorted; a symlink ends `-> target`.
    fn contents(&self, package: &str) -> Vec<String> {
        let mut entries: Vec<String> = ok("dpkg-deb", &["--contents", &self.path(package)])
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                format!("{} {} {}", f[0], f[1], f[5..].join(" "))
            })
            .collect();
        entries.sort();
        entries
    }

    /// A package's data extracted into a directory.
    fn extract(&self, package: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temp dir");
        ok("dpkg-deb", &["--extract", &self.path(package), &dir.path().to_string_lossy()]);
        dir
    }

    /// A package's control files, in `<dir>/DEBIAN`.
    fn control(&self, package: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temp dir");
        ok("dpkg-deb", &["--control", &self.path(package), &dir.path().join("DEBIAN").to_string_lossy()]);
        dir
    }
}

fn dirs(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| format!("drwxr-xr-x root/root ./{p}")).collect()
}

fn expected(mut entries: Vec<String>) -> Vec<String> {
    entries.sort();
    entries
}

fn build_id(binary: &Path) -> String {
    let notes = ok("readelf", &["-n", &binary.to_string_lossy()]);
    notes.lines().find_map(|l| l.trim().strip_prefix("Build ID: ")).expect("a build id").to_string()
}

fn sections(file: &Path) -> BTreeSet<String> {
    ok("readelf", &["-SW", &file.to_string_lossy()])
        .lines()
        .filter_map(|l| l.split(']').nth(1).and_then(|rest| rest.split_whitespace().next()).map(str::to_string))
        .collect()
}

/// One test: the release build runs once, and its directory is removed at the end.
#[test]
fn packages_build_install_upgrade_remove_and_purge() {
    // SAFETY: geteuid reads the process's user id; it cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(uid, 0, "the package test installs with dpkg and runs as root (the CI machine is root)");
    let dir = build_packages();
    let debs = Debs { dir: dir.path().to_path_buf(), arch: ok("dpkg", &["--print-architecture"]).trim().to_string() };
    the_packages_hold_their_files_with_root_as_owner(&debs);
    install_upgrade_remove_and_purge_leave_the_machine_as_it_was(&debs);
}

fn the_packages_hold_their_files_with_root_as_owner(debs: &Debs) {
    for (name, binary) in [("server", "eitwatch-server"), ("agent", "eitwatch-agent")] {
        let package = format!("eitwatch-{name}");
        assert_eq!(debs.field(&package, "Version"), VERSION);
        assert_eq!(debs.field(&package, "Architecture"), debs.arch);
        let mut entries = dirs(&[
            "",
            "etc/",
            "etc/eitwatch/",
            "usr/",
            "usr/bin/",
            "usr/lib/",
            "usr/lib/systemd/",
            "usr/lib/systemd/system/",
            "usr/share/",
            "usr/share/doc/",
        ]);
        entries.push(format!("drwxr-xr-x root/root ./usr/share/doc/{package}/"));
        entries.push(format!("-rw-r----- root/root ./etc/eitwatch/{name}.toml"));
        entries.push(format!("-rwxr-xr-x root/root ./usr/bin/{binary}"));
        entries.push(format!("-rw-r--r-- root/root ./usr/lib/systemd/system/{package}.service"));
        for doc in ["configuration.md", "copyright", "operations.md"] {
            entries.push(format!("-rw-r--r-- root/root ./usr/share/doc/{package}/{doc}"));
        }
        assert_eq!(debs.contents(&package), expected(entries), "{package}");

        let ctrl = debs.control(&package);
        let conffiles = std::fs::read_to_string(ctrl.path().join("DEBIAN/conffiles")).expect("DEBIAN/conffiles");
        assert_eq!(conffiles, format!("/etc/eitwatch/{name}.toml\n"));
        for script in ["postinst", "prerm", "postrm"] {
            let path = ctrl.path().join("DEBIAN").join(script);
            let text = std::fs::read_to_string(&path).expect("a maintainer script");
            assert!(!text.contains('@'), "{package} {script} has a placeholder left:\n{text}");
            assert!(text.contains(&format!("unit={package}.service\n")), "{package} {script}");
            assert_eq!(std::fs::metadata(&path).expect("a maintainer script").permissions().mode() & 0o777, 0o755);
        }

        // The config is the annotated example, byte for byte.
        let data = debs.extract(&package);
        assert_eq!(
            std::fs::read(data.path().join(format!("etc/eitwatch/{name}.toml"))).expect("the packaged config"),
            std::fs::read(root().join(format!("config/examples/{name}.toml"))).expect("the example config")
        );

        // Stripped; the debug file holds what strip took out, under the binary's build id.
        let bin = data.path().join("usr/bin").join(binary);
        let kept = sections(&bin);
        // .debug_gdb_scripts is loaded (it names Rust's pretty-printers for gdb): strip keeps it.
        let debug_info = kept.iter().any(|s| s.starts_with(".debug") && s != ".debug_gdb_scripts");
        assert!(!kept.contains(".symtab") && !debug_info, "{binary}: {kept:?}");
        assert!(kept.contains(".gnu_debuglink") && kept.contains(".note.gnu.build-id"), "{binary}: {kept:?}");
        let id = build_id(&bin);
        let dbgsym = format!("{package}-dbgsym");
        assert_eq!(debs.field(&dbgsym, "Build-Ids"), id);
        assert_eq!(debs.field(&dbgsym, "Depends"), format!("{package} (= {VERSION})"));
        let mut entries = dirs(&[
            "",
            "usr/",
            "usr/lib/",
            "usr/lib/debug/",
            "usr/lib/debug/.build-id/",
            "usr/share/",
            "usr/share/doc/",
        ]);
        entries.push(format!("drwxr-xr-x root/root ./usr/lib/debug/.build-id/{}/", &id[..2]));
        entries.push(format!("-rw-r--r-- root/root ./usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]));
        entries.push(format!("lrwxrwxrwx root/root ./usr/share/doc/{dbgsym} -> {package}"));
        assert_eq!(debs.contents(&dbgsym), expected(entries), "{dbgsym}");
        let symbols = debs.extract(&dbgsym);
        let debug = symbols.path().join(format!("usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]));
        assert_eq!(build_id(&debug), id);
        let in_debug = sections(&debug);
        assert!(in_debug.contains(".symtab"), "{binary}.debug: {in_debug:?}");
        if name == "server" {
            // The release profile keeps line tables; the agent's profile builds without any.
            assert!(in_debug.contains(".debug_line"), "{binary}.debug: {in_debug:?}");
        }
    }

    // The agent is static: its package needs no library. The server links glibc and libgcc_s.
    assert_eq!(debs.field("eitwatch-agent", "Depends"), "adduser");
    let depends = debs.field("eitwatch-server", "Depends");
    let names: Vec<&str> = depends.split(", ").filter_map(|d| d.split(' ').next()).collect();
    assert_eq!(names, ["adduser", "libc6", "libgcc-s1"], "{depends}");
}

fn installed(package: &str) -> bool {
    let out = run("dpkg-query", &["--show", "--showformat=${db:Status-Status}", package]);
    out.status.success() && !out.stdout.is_empty() && out.stdout != b"not-installed"
}

fn user_exists(user: &str) -> bool {
    run("getent", &["passwd", user]).status.success() || run("getent", &["group", user]).status.success()
}

/// Purges what the install test put on the machine, however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let mut args = vec!["--purge"];
        args.extend(PACKAGES.iter().filter(|p| installed(p)));
        if args.len() > 1 {
            let _ = run("dpkg", &args);
        }
        // Only what the packages made: none of it existed before the install.
        for user in USERS {
            if run("getent", &["passwd", user]).status.success() {
                let _ = run("userdel", &[user]);
            }
            if run("getent", &["group", user]).status.success() {
                let _ = run("groupdel", &[user]);
            }
        }
        for path in PATHS {
            let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
        }
    }
}

struct Lock {
    _dir: std::fs::File,
}

impl Lock {
    fn take() -> Lock {
        let dir = std::fs::File::open("/var/lib/dpkg").expect("/var/lib/dpkg");
        use std::os::fd::AsRawFd as _;
        // SAFETY: flock on a descriptor this struct owns; no memory is passed.
        let taken = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(taken, 0, "flock /var/lib/dpkg: {}", std::io::Error::last_os_error());
        Lock { _dir: dir }
    }
}

fn dpkg(args: &[&str]) {
    ok("dpkg", args);
}

fn stat(path: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn id_of(kind: &str, name: &str) -> u32 {
    let line = ok("getent", &[kind, name]);
    line.split(':').nth(2).and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no id in {line}"))
}

fn as_user(user: &str, command: &[&str]) -> Output {
    let mut args = vec!["-u", user, "--"];
    args.extend(command);
    run("runuser", &args)
}

fn install_upgrade_remove_and_purge_leave_the_machine_as_it_was(debs: &Debs) {
    let files: Vec<String> = PACKAGES.iter().map(|p| debs.path(p)).collect();
    let debug_files: Vec<String> = ["eitwatch-server", "eitwatch-agent"]
        .iter()
        .map(|binary| {
            let data = debs.extract(binary);
            let id = build_id(&data.path().join("usr/bin").join(binary));
            format!("/usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..])
        })
        .collect();
    let _lock = Lock::take();
    for package in PACKAGES {
        assert!(
            !installed(package),
            "{package} is installed here: the test installs and purges it, so it runs only where it is not"
        );
    }
    for user in USERS {
        assert!(!user_exists(user), "user or group {user} exists here: the purge would delete it");
    }
    for path in PATHS {
        assert!(std::fs::symlink_metadata(path).is_err(), "{path} exists here: the purge would delete it");
    }
    for path in &debug_files {
        assert!(std::fs::symlink_metadata(path).is_err(), "{path} exists here: the purge would delete it");
    }
    let _purge = Purge;

    let mut install = vec!["--install"];
    install.extend(files.iter().map(String::as_str));
    dpkg(&install);
    for package in PACKAGES {
        assert_eq!(ok("dpkg-query", &["--show", "--showformat=${Status}", package]), "install ok installed");
        assert_eq!(ok("dpkg", &["--verify", package]), "", "{package}: files differ from the package's");
    }

    // The units as installed.
    let units = ["/usr/lib/systemd/system/eitwatch-server.service", "/usr/lib/systemd/system/eitwatch-agent.service"];
    let verify = run("systemd-analyze", &["verify", units[0], units[1]]);
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(verify.status.success() && !said.contains("eitwatch"), "systemd-analyze verify: {}\n{said}", verify.status);
    for (unit, max) in [(units[0], 2.0), (units[1], 2.0)] {
        let report = ok("systemd-analyze", &["security", "--offline=yes", unit]);
        let exposure: f64 = report
            .lines()
            .find_map(|l| l.split_once("Overall exposure level for ").map(|(_, rest)| rest))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|score| score.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
        println!("{unit}: exposure {exposure}");
        assert!(exposure <= max, "{unit}: exposure {exposure} > {max}:\n{report}");
    }
    for unit in ["eitwatch-server.service", "eitwatch-agent.service"] {
        let link = format!("/etc/systemd/system/multi-user.target.wants/{unit}");
        let target = std::fs::read_link(&link).unwrap_or_else(|e| panic!("{link} (enabled): {e}"));
        assert_eq!(target.file_name().unwrap_or_default().to_string_lossy(), unit, "{link}");
        assert!(std::fs::metadata(&link).is_ok(), "{link} → {} resolves", target.display());
    }

    // The binaries are the workspace's version.
    assert_eq!(ok("/usr/bin/eitwatch-server", &["--version"]), format!("eitwatch-server {VERSION}\n"));
    assert_eq!(ok("/usr/bin/eitwatch-agent", &["--version"]), format!("eitwatch-agent {VERSION}\n"));

    // Users, groups, directories; the configs readable by the service's group only.
    for (user, dir, config, groups) in [
        ("eitwatch", "/var/lib/eitwatch", "/etc/eitwatch/server.toml", "eitwatch"),
        ("eitwatch-agent", "/var/lib/eitwatch-agent", "/etc/eitwatch/agent.toml", "eitwatch-agent dialout"),
    ] {
        let passwd = ok("getent", &["passwd", user]);
        let fields: Vec<&str> = passwd.trim().split(':').collect();
        assert_eq!((fields[5], fields[6]), (dir, "/usr/sbin/nologin"), "{passwd}");
        assert_eq!(fields[3].parse::<u32>().expect("a gid"), id_of("group", user), "{user}'s primary group is {user}");
        assert!(id_of("passwd", user) < 1000, "{user} is a system user: {passwd}");
        assert_eq!(ok("id", &["-nG", user]).trim(), groups);
        let meta = stat(dir);
        assert!(meta.is_dir());
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (id_of("passwd", user), id_of("group", user), 0o750)
        );
        let meta = stat(config);
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (0, id_of("group", user), 0o640), "{config}");
    }
    let check = as_user("eitwatch", &["/usr/bin/eitwatch-server", "check-config", "/etc/eitwatch/server.toml"]);
    assert!(check.status.success(), "check-config as eitwatch: {}", String::from_utf8_lossy(&check.stderr));
    let check = as_user("eitwatch-agent", &["/usr/bin/eitwatch-agent", "check-config", "/etc/eitwatch/agent.toml"]);
    assert!(check.status.success(), "check-config as eitwatch-agent: {}", String::from_utf8_lossy(&check.stderr));
    assert!(!as_user("nobody", &["cat", "/etc/eitwatch/server.toml"]).status.success(), "others cannot read it");
    assert!(!as_user("eitwatch-agent", &["cat", "/etc/eitwatch/server.toml"]).status.success());

    // What the server writes as its user (a token) stays over an upgrade, as does an edited
    // config: a reinstall of the package is dpkg's upgrade path.
    let token = as_user(
        "eitwatch",
        &["/usr/bin/eitwatch-server", "token", "create", "--data-dir", "/var/lib/eitwatch", "--read"],
    );
    assert!(token.status.success(), "token create: {}", String::from_utf8_lossy(&token.stderr));
    let tokens = stat("/var/lib/eitwatch/tokens.json");
    assert_eq!((tokens.uid(), tokens.mode() & 0o777), (id_of("passwd", "eitwatch"), 0o600));
    let edited = format!(
        "{}\n# edited by the operator\n",
        std::fs::read_to_string("/etc/eitwatch/server.toml").expect("/etc/eitwatch/server.toml")
    );
    std::fs::write("/etc/eitwatch/server.toml", &edited).expect("/etc/eitwatch/server.toml");
    dpkg(&["--install", &files[2]]);
    assert_eq!(std::fs::read_to_string("/etc/eitwatch/server.toml").expect("/etc/eitwatch/server.toml"), edited);
    assert!(stat("/var/lib/eitwatch/tokens.json").is_file());
    let meta = stat("/etc/eitwatch/server.toml");
    assert_eq!((meta.gid(), meta.mode() & 0o7777), (id_of("group", "eitwatch"), 0o640));

    // remove keeps config, data and user; purge takes them.
    dpkg(&["--remove", "eitwatch-server-dbgsym", "eitwatch-server"]);
    assert_eq!(ok("dpkg-query", &["--show", "--showformat=${Status}", "eitwatch-server"]), "deinstall ok config-files");
    assert!(std::fs::symlink_metadata("/usr/bin/eitwatch-server").is_err());
    assert!(stat("/var/lib/eitwatch/tokens.json").is_file());
    assert_eq!(std::fs::read_to_string("/etc/eitwatch/server.toml").expect("/etc/eitwatch/server.toml"), edited);
    assert!(user_exists("eitwatch"));

    let mut purge = vec!["--purge"];
    purge.extend(PACKAGES);
    dpkg(&purge);
    for package in PACKAGES {
        assert!(!installed(package), "{package} after the purge");
    }
    for user in USERS {
        assert!(!user_exists(user), "user or group {user} after the purge");
    }
    assert!(!ok("getent", &["group", "dialout"]).contains("eitwatch"));
    for path in PATHS {
        assert!(std::fs::symlink_metadata(path).is_err(), "{path} after the purge");
    }
    for path in &debug_files {
        assert!(std::fs::symlink_metadata(path).is_err(), "{path} after the purge");
    }
    for state in ["enabled", "masked"] {
        let dir = format!("/var/lib/systemd/deb-systemd-helper-{state}");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries {
                let name = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
                assert!(!name.contains("eitwatch"), "{dir}/{name} after the purge");
            }
        }
    }
}
