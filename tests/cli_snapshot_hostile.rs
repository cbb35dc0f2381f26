//! `aicr snapshot` against hostile input: a `--root` full of secrets, FIFOs
//! and symbolic links that point out of it; an `nvidia-smi` that floods
//! stderr or hangs with a child; malformed kubeconfigs holding tokens; an
//! unreachable API server; absurd durations. Each run must end promptly,
//! leave no process behind, quote no secret, and say what was wrong.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Secrets planted in the fixtures and files below; none may come out.
const SECRETS: &[&str] = &[
    "hunter2",
    "123456",
    "AKIAIOSFODNN7EXAMPLE",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    "eyJhbGciOiJIUzI1NiJ9",
    "proxyuser",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "0123456789abcdef0123456789abcdef",
];

fn assert_no_secret(out: &std::process::Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for s in SECRETS {
        assert!(!all.contains(s), "{s} leaked:\n{all}");
    }
}

fn snapshot(args: &[&str], path_dir: Option<&Path>) -> (std::process::Output, Duration) {
    let mut cmd = aicr();
    cmd.arg("snapshot").args(args);
    let path = match path_dir {
        Some(d) => format!("{}:/usr/bin:/bin", d.display()),
        None => "/usr/bin:/bin".into(),
    };
    let started = Instant::now();
    // A run that hangs fails here rather than hanging the test suite.
    let out = cmd
        .env("PATH", path)
        .env_remove("HOME")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (out, started.elapsed())
}

fn transcript_of(args: &[&str], out: &std::process::Output) -> String {
    format!(
        "$ aicr snapshot {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        code(out),
        stdout(out),
        stderr(out)
    )
}

fn sub<'a>(snap: &'a Value, kind: &str, name: &str) -> &'a Value {
    snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == kind)
        .and_then(|m| {
            m["subtypes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["subtype"] == name)
        })
        .unwrap_or_else(|| panic!("no {kind}.{name}: {snap}"))
}

fn mkfifo(p: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", p.display());
}

/// A directory holding an executable `nvidia-smi` that runs `body`.
fn fake_nvidia_smi(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nvidia-smi");
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The os collector over a root full of secrets: every kind of the
/// redaction table that a node's files can carry, in one transcript.
#[test]
fn secrets_under_the_root_are_redacted() {
    let root = fixture("snapshot-secrets");
    let args = [
        "--root",
        root.to_str().unwrap(),
        "--filter",
        "os",
        "--no-timestamp",
    ];
    let (out, _) = snapshot(&args, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_no_secret(&out);
    settings()
        .bind(|| insta::assert_snapshot!("snapshot_secrets_redacted", transcript_of(&args, &out)));
}

/// FIFOs where files should be: refused at once, never opened for a
/// blocking read (the hostname included, which is read before the
/// collectors start).
#[test]
fn fifos_under_the_root_do_not_hang() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::create_dir_all(r.join("proc/sys/kernel")).unwrap();
    for f in [
        "etc/os-release",
        "etc/hostname",
        "proc/cmdline",
        "proc/modules",
        "proc/sys/kernel/hostname",
        "proc/sys/kernel/osrelease",
    ] {
        mkfifo(&r.join(f));
    }
    let args = [
        "--root",
        r.to_str().unwrap(),
        "--filter",
        "os",
        "--no-timestamp",
        "--timeout",
        "20s",
    ];
    let (out, took) = snapshot(&args, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    settings()
        .bind(|| insta::assert_snapshot!("snapshot_fifos_refused", transcript_of(&args, &out)));
}

/// Links out of the root resolve inside it, as under chroot: an absolute
/// target is taken from the root, `..` stops at the root, and a link to
/// itself is a loop, never the live host's file.
#[test]
fn symlinks_under_the_root_stay_inside() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::create_dir_all(r.join("proc")).unwrap();
    fs::create_dir_all(r.join("usr/lib")).unwrap();
    fs::write(r.join("usr/lib/os-release"), "ID=inside\nNAME=\"Inside\"\n").unwrap();
    symlink("/usr/lib/os-release", r.join("etc/os-release")).unwrap();
    symlink("/etc/hostname", r.join("etc/hostname")).unwrap();
    symlink("/proc/sys", r.join("proc/sys")).unwrap();
    symlink(
        "../../../../../../../../proc/cmdline",
        r.join("proc/cmdline"),
    )
    .unwrap();
    symlink("/dev/zero", r.join("proc/modules")).unwrap();
    let args = [
        "--root",
        r.to_str().unwrap(),
        "--filter",
        "os",
        "--no-timestamp",
        "-t",
        "json",
    ];
    let (out, took) = snapshot(&args, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(sub(&snap, "OS", "release")["data"]["ID"], "inside");
    assert_eq!(snap["metadata"]["source-node"], "unknown");
    let loop_ = "too many levels of symbolic links";
    for (name, want) in [
        (
            "kernel",
            format!("cannot read /proc/sys/kernel/osrelease: {loop_}"),
        ),
        ("grub", format!("cannot read /proc/cmdline: {loop_}")),
        (
            "kmod",
            "cannot read /proc/modules: No such file or directory".into(),
        ),
        ("sysctl", format!("cannot read /proc/sys: {loop_}")),
    ] {
        assert_eq!(
            sub(&snap, "OS", name)["context"]["unavailable"],
            want.as_str()
        );
        assert!(sub(&snap, "OS", name)["data"]
            .as_object()
            .unwrap()
            .is_empty());
    }
}

/// Files too large, or not UTF-8: capped and reported, or read with the
/// bad bytes replaced; never a panic.
#[test]
fn huge_and_binary_files_under_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::create_dir_all(r.join("proc/sys/kernel")).unwrap();
    fs::write(r.join("etc/os-release"), vec![b'A'; 65 * 1024]).unwrap();
    fs::write(
        r.join("proc/cmdline"),
        b"ro quiet \xff\xfe=\x80 x=\xc3\x28\n",
    )
    .unwrap();
    fs::write(r.join("proc/sys/kernel/osrelease"), b"\x00\x01\xff\n").unwrap();
    let args = [
        "--root",
        r.to_str().unwrap(),
        "--filter",
        "os",
        "--no-timestamp",
        "-t",
        "json",
    ];
    let (out, _) = snapshot(&args, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        sub(&snap, "OS", "release")["context"]["unavailable"],
        "cannot read /etc/os-release: larger than 65536 bytes"
    );
    let grub = &sub(&snap, "OS", "grub")["data"];
    assert_eq!(grub["ro"], true);
    assert_eq!(grub["\u{fffd}\u{fffd}"], "\u{fffd}");
    assert_eq!(grub["x"], "\u{fffd}(");
    assert_eq!(
        sub(&snap, "OS", "kernel")["data"]["release"],
        "\u{0}\u{1}\u{fffd}"
    );
}

/// An `nvidia-smi` that writes a megabyte to stderr before its XML: both
/// pipes are drained, so the GPU is read, well before the deadline.
#[test]
fn nvidia_smi_flooding_stderr_is_read() {
    let xml = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nodes/h200-ubuntu2404/nvidia-smi-q.xml");
    let smi = fake_nvidia_smi(&format!(
        "head -c 1048576 /dev/zero | tr '\\0' e >&2\ncat '{}'",
        xml.display()
    ));
    let args = [
        "--gpu-source",
        "smi",
        "--filter",
        "gpu",
        "--timeout",
        "30s",
        "-t",
        "json",
    ];
    let (out, took) = snapshot(&args, Some(smi.path()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(sub(&snap, "GPU", "smi")["data"]["gpu.model"], "h200");
    assert_eq!(stderr(&out), "");
}

fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its parent's reaping is left.
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

/// A hung `nvidia-smi` with a child of its own: aicr gives up at the
/// deadline and neither process outlives it.
#[test]
fn a_hung_nvidia_smi_does_not_outlive_aicr() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let smi = fake_nvidia_smi(&format!(
        "echo $$ > '{p}'\nsleep 120 &\necho $! >> '{p}'\nwait",
        p = pids.display()
    ));
    let args = [
        "--gpu-source",
        "smi",
        "--filter",
        "gpu",
        // Long enough for a loaded machine to start the script and its child.
        "--timeout",
        "2s",
        "-t",
        "json",
    ];
    let (out, took) = snapshot(&args, Some(smi.path()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = stderr(&out);
    assert!(
        err.starts_with("warning: gpu: unavailable: ")
            && err.ends_with("/nvidia-smi did not finish within 2s\n")
            && err.lines().count() == 1,
        "{err}"
    );
    let pids: Vec<i32> = fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let gone = (0..100).any(|_| {
        if pids.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(20));
            false
        } else {
            true
        }
    });
    assert!(gone, "{pids:?} outlived aicr");
}

fn kubeconfig(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("kubeconfig");
    fs::write(&p, text).unwrap();
    p
}

/// A kubeconfig that does not parse: the snapshot and the warning name the
/// file, line, column and kind of error, never its token or password.
#[test]
fn a_malformed_kubeconfig_is_not_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: hunter2-token\n   password: hunter2-password\n",
    );
    let args = [
        "--filter",
        "k8s",
        "--no-timestamp",
        "--node-name",
        "n1",
        "-k",
        kc.to_str().unwrap(),
    ];
    let (out, _) = snapshot(&args, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_no_secret(&out);
    settings().bind(|| {
        insta::assert_snapshot!("snapshot_malformed_kubeconfig", transcript_of(&args, &out))
    });
}

/// An unreachable API server: the reason is in the snapshot and one
/// warning; no log line of the client library reaches stderr.
#[test]
fn an_unreachable_server_logs_only_our_warning() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: hunter2-token\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
    );
    let args = [
        "--filter",
        "k8s",
        "--no-timestamp",
        "--node-name",
        "n1",
        "--timeout",
        "5s",
        "-k",
        kc.to_str().unwrap(),
    ];
    let (out, _) = snapshot(&args, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_no_secret(&out);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("warning: k8s: unavailable: cannot reach the API server: "),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("error")), "{err}");
}

/// Durations out of range and kubeconfigs that are not files: exit 2 with
/// what is allowed.
#[test]
fn bad_durations_and_kubeconfigs() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let mut all = String::new();
    for args in [
        &["snapshot", "--timeout", "500000000000years"][..],
        &["snapshot", "--timeout", "2h"][..],
        &["snapshot", "--timeout", "3601s"][..],
        &["snapshot", "--timeout", "99999999999999999999999999s"][..],
        &["snapshot", "-k", "tests"][..],
        &["snapshot", "-k", "/dev/null"][..],
        &["snapshot", "-k", fifo.to_str().unwrap()][..],
    ] {
        all.push_str(&transcript(args));
        all.push('\n');
    }
    settings().bind(|| insta::assert_snapshot!("snapshot_bad_durations_and_kubeconfigs", all));
    // The largest deadline allowed works.
    let (out, _) = snapshot(
        &[
            "--timeout",
            "1h",
            "--filter",
            "os",
            "--root",
            fixture("snapshot-secrets").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
