//! Whole runs of `aicr snapshot`: over a fixture tree built from a real H200
//! node's output (with a stand-in `nvidia-smi` that prints that node's real
//! XML), on this machine (GPU or none: both outcomes are checked), with no
//! GPU source, and bad inputs.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn node_file(name: &str) -> PathBuf {
    fixture("nodes/h200-ubuntu2404").join(name)
}

/// A root filesystem laid out from the captured node: /etc/os-release,
/// /proc/modules, /proc/sys from `sysctl -a`, /proc/driver/nvidia/version.
/// The node had no kernel command line captured, so /proc/cmdline is absent.
fn node_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: &str| {
        let p = root.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    put(
        "etc/os-release",
        &fs::read_to_string(node_file("etc-os-release")).unwrap(),
    );
    put(
        "proc/modules",
        &fs::read_to_string(node_file("proc-modules")).unwrap(),
    );
    put(
        "proc/driver/nvidia/version",
        &fs::read_to_string(node_file("proc-driver-nvidia-version")).unwrap(),
    );
    for line in fs::read_to_string(node_file("sysctl-a.txt"))
        .unwrap()
        .lines()
    {
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        put(
            &format!("proc/sys/{}", k.replace('.', "/")),
            &format!("{v}\n"),
        );
    }
    root
}

/// A directory holding an executable `nvidia-smi` that runs `body`.
fn fake_nvidia_smi(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nvidia-smi");
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn snapshot(args: &[&str], path_dir: Option<&Path>) -> std::process::Output {
    let mut cmd = aicr();
    cmd.arg("snapshot").args(args);
    let path = match path_dir {
        Some(d) => format!("{}:/usr/bin:/bin", d.display()),
        None => "/usr/bin:/bin".into(),
    };
    cmd.env("PATH", path).env_remove("HOME").output().unwrap()
}

fn reading<'a>(snap: &'a Value, kind: &str, sub: &str, key: &str) -> &'a Value {
    let m = snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"));
    let s = m["subtypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subtype"] == sub)
        .unwrap_or_else(|| panic!("no {kind}.{sub}: {m}"));
    &s["data"][key]
}

fn measurement<'a>(snap: &'a Value, kind: &str) -> &'a Value {
    snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == kind)
        .unwrap()
}

#[test]
fn h200_node_fixture() {
    let root = node_root();
    let xml = node_file("nvidia-smi-q.xml");
    let smi = fake_nvidia_smi(&format!(
        "[ \"$1 $2\" = \"-q -x\" ] || exit 9\ncat '{}'",
        xml.display()
    ));
    let out = snapshot(
        &[
            "--root",
            root.path().to_str().unwrap(),
            "--gpu-source",
            "smi",
            "-t",
            "json",
        ],
        Some(smi.path()),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(snap["kind"], "Snapshot");
    assert_eq!(snap["metadata"]["source-node"], "vm");
    // OS
    assert_eq!(reading(&snap, "OS", "release", "ID"), "ubuntu");
    assert_eq!(reading(&snap, "OS", "release", "VERSION_ID"), "24.04");
    assert_eq!(
        reading(&snap, "OS", "kernel", "release"),
        "6.18.44-fc-v657-gpu"
    );
    assert_eq!(reading(&snap, "OS", "kmod", "nvidia"), true);
    assert_eq!(reading(&snap, "OS", "kmod", "nvidia_uvm"), true);
    assert_eq!(
        reading(&snap, "OS", "sysctl", "/proc/sys/kernel/osrelease"),
        "6.18.44-fc-v657-gpu"
    );
    assert_eq!(
        reading(&snap, "OS", "sysctl", "/proc/sys/vm/swappiness"),
        "60"
    );
    let grub = measurement(&snap, "OS")["subtypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subtype"] == "grub")
        .unwrap()
        .clone();
    assert_eq!(
        grub["context"]["unavailable"],
        "cannot read /proc/cmdline: No such file or directory"
    );
    // GPU, from the real XML
    assert_eq!(reading(&snap, "GPU", "smi", "gpu-count"), 1);
    assert_eq!(reading(&snap, "GPU", "smi", "gpu.model"), "h200");
    assert_eq!(reading(&snap, "GPU", "smi", "gpu.name"), "NVIDIA H200");
    assert_eq!(reading(&snap, "GPU", "smi", "driver"), "580.159.04");
    assert_eq!(reading(&snap, "GPU", "smi", "cuda-version"), "13.0");
    assert_eq!(reading(&snap, "GPU", "smi", "source"), "nvidia-smi");
    assert_eq!(
        reading(&snap, "GPU", "device", "0.uuid"),
        "GPU-1f666bec-7a91-d815-b2a9-63daebb6e64f"
    );
    assert_eq!(
        reading(&snap, "GPU", "device", "0.memory-total-mib"),
        143771
    );
    // Sources the node did not have
    assert_eq!(
        measurement(&snap, "SystemD")["unavailable"],
        format!(
            "no systemd: services are read from the live host only, not from --root {}",
            root.path().display()
        )
    );
    assert_eq!(
        measurement(&snap, "K8s")["unavailable"],
        "no kubeconfig or in-cluster config"
    );
    assert_eq!(
        measurement(&snap, "NodeTopology")["unavailable"],
        "no kubeconfig or in-cluster config"
    );
    let order: Vec<&str> = snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["OS", "SystemD", "GPU", "K8s", "NodeTopology"]);
}

/// What `snapshot` writes, `recipe -s` reads: the H200 node on EKS.
#[test]
fn recipe_reads_what_snapshot_writes() {
    let root = node_root();
    let smi = fake_nvidia_smi(&format!(
        "cat '{}'",
        node_file("nvidia-smi-q.xml").display()
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.yaml");
    let out = snapshot(
        &[
            "--root",
            root.path().to_str().unwrap(),
            "--gpu-source",
            "smi",
            "-o",
            file.to_str().unwrap(),
        ],
        Some(smi.path()),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&[
        "recipe",
        "-s",
        file.to_str().unwrap(),
        "--service",
        "eks",
        "--intent",
        "training",
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let recipe: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(recipe["criteria"]["accelerator"], "h200");
    assert_eq!(recipe["criteria"]["os"], "ubuntu");
}

/// On this machine, whatever it has: exit 0, and each measurement has data
/// or the reason it is absent, never neither. The GPU is either reported in
/// full or unavailable with the reason; no cluster is configured here.
#[test]
fn this_machine_degrades_gracefully() {
    let out = snapshot(&["-t", "json", "--no-timestamp"], None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut absent = 0;
    for m in snap["measurements"].as_array().unwrap() {
        let ok = m["unavailable"].is_null();
        let has_data = m["subtypes"].as_array().is_some_and(|s| !s.is_empty());
        assert!(
            ok == has_data,
            "a measurement has data or a reason, not neither: {m}"
        );
        absent += usize::from(!ok);
    }
    let gpu = measurement(&snap, "GPU");
    match gpu["unavailable"].as_str() {
        Some(reason) => assert!(
            reason.starts_with("no NVIDIA GPU: ") && reason.contains("nvidia-smi"),
            "GPU reason: {reason}"
        ),
        None => {
            let count = reading(&snap, "GPU", "smi", "gpu-count");
            assert!(count.as_i64().is_some_and(|n| n >= 1), "gpu-count {count}");
            assert!(
                reading(&snap, "GPU", "smi", "driver")
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{gpu}"
            );
            let source = reading(&snap, "GPU", "smi", "source");
            assert!(source == "nvml" || source == "nvidia-smi", "{source}");
        }
    }
    assert_eq!(
        measurement(&snap, "K8s")["unavailable"],
        "no kubeconfig or in-cluster config"
    );
    assert!(absent >= 1);
    assert!(
        !stderr(&out).is_empty(),
        "absent sources are logged as warnings"
    );
    assert!(
        stderr(&out).lines().all(|l| l.starts_with("warning: ")),
        "{}",
        stderr(&out)
    );
}

/// No GPU source on the search path, whatever the host has: the GPU
/// measurement says why, and the snapshot still succeeds.
#[test]
fn an_absent_gpu_source_is_reported() {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = aicr();
    let out = cmd
        .args([
            "snapshot",
            "--filter",
            "gpu",
            "--gpu-source",
            "smi",
            "-t",
            "json",
        ])
        .env("PATH", empty.path())
        .env_remove("HOME")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        measurement(&snap, "GPU")["unavailable"],
        "no NVIDIA GPU: nvidia-smi is not on the search path"
    );
    assert_eq!(
        stderr(&out),
        "warning: gpu: unavailable: no NVIDIA GPU: nvidia-smi is not on the search path\n"
    );
}

#[test]
fn identical_runs_but_for_the_timestamp() {
    let a = snapshot(&[], None);
    let b = snapshot(&[], None);
    assert_eq!(code(&a), 0);
    let strip = |o: &std::process::Output| -> String {
        stdout(o)
            .lines()
            .filter(|l| !l.trim_start().starts_with("timestamp: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        stdout(&a).contains("\n  timestamp: "),
        "timestamp present by default"
    );
    assert_eq!(strip(&a), strip(&b));
    let c = snapshot(&["--no-timestamp"], None);
    let d = snapshot(&["--no-timestamp"], None);
    assert_eq!(c.stdout, d.stdout, "byte-identical without the timestamp");
    assert!(!stdout(&c).contains("\n  timestamp: "));
}

#[test]
fn filter_and_exclude_pick_collectors() {
    let out = snapshot(&["--filter", "os", "-t", "json"], None);
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let kinds: Vec<&str> = snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["OS"]);
    let out = snapshot(&["--exclude", "k8s,os", "-t", "json"], None);
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let kinds: Vec<&str> = snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["SystemD", "GPU"]);
}

/// A collector past its deadline is reported, and the rest still come out.
#[test]
fn a_hung_collector_times_out() {
    let smi = fake_nvidia_smi("sleep 5");
    let out = snapshot(
        &[
            "--gpu-source",
            "smi",
            "--timeout",
            "300ms",
            "-t",
            "json",
            "--filter",
            "gpu,os",
        ],
        Some(smi.path()),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let reason = measurement(&snap, "GPU")["unavailable"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("300ms"), "{reason}");
    assert!(measurement(&snap, "OS")["unavailable"].is_null());
}

#[test]
fn table_format() {
    let root = node_root();
    let out = snapshot(
        &[
            "--root",
            root.path().to_str().unwrap(),
            "--filter",
            "os,k8s",
            "-t",
            "table",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("TYPE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["OS", "release", "VERSION_ID", "24.04"]),
        "{text}"
    );
    assert!(
        text.contains("K8s           -         -  unavailable: no kubeconfig or in-cluster config")
            || text.contains("unavailable: no kubeconfig"),
        "{text}"
    );
}

#[test]
fn bad_inputs() {
    let mut all = String::new();
    for args in [
        &["snapshot", "--filter", "os,disk"][..],
        &["snapshot", "--exclude", "os,systemd,gpu,k8s"][..],
        &["snapshot", "--timeout", "0s"][..],
        &["snapshot", "--timeout", "soon"][..],
        &["snapshot", "--root", "/nonexistent/root"][..],
        &["snapshot", "-k", "/nonexistent/kubeconfig"][..],
        &["snapshot", "-o", "tests"][..],
        &["snapshot", "--gpu-source", "cuda"][..],
    ] {
        all.push_str(&transcript(args));
        all.push('\n');
    }
    settings().bind(|| insta::assert_snapshot!("snapshot_bad_inputs", all));
}
