//! `aicr recipe -s SNAPSHOT`: criteria detected from a snapshot (ours and Go
//! aicr's format), flags laid over them, and snapshots that are refused.

mod common;

use common::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(out), 0, "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

#[test]
fn detects_service_accelerator_and_os() {
    let snap = fixture("snapshots/eks-h200-ubuntu.yaml");
    let out = run(&[
        "recipe",
        "-s",
        snap.to_str().unwrap(),
        "--intent",
        "training",
        "-t",
        "json",
    ]);
    let v = json(&out);
    assert_eq!(
        v["criteria"],
        serde_json::json!({"service": "eks", "accelerator": "h200", "intent": "training", "os": "ubuntu", "platform": "any"})
    );
    assert!(
        stderr(&out)
            .contains("detected from the snapshot: --service eks --accelerator h200 --os ubuntu"),
        "{}",
        stderr(&out)
    );
    // The snapshot has no kernel sysctl: the overlay's constraint on it is
    // not evaluated, and the overlay is kept with a warning.
    let mut v = v;
    let warnings = v["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("constraintWarnings");
    assert_eq!(
        warnings,
        Some(serde_json::json!([{
            "overlay": "h200-eks-ubuntu-training",
            "constraint": "OS.sysctl./proc/sys/kernel/osrelease",
            "expected": ">= 6.8",
            "actual": "",
            "reason": "measurement absent: the snapshot's OS measurement has no subtype \"sysctl\"; overlay kept"
        }]))
    );
    let flags = run(&words(
        "recipe --service eks --gpu h200 --intent training --os ubuntu -t json",
    ));
    assert_eq!(
        v,
        json(&flags),
        "otherwise the same recipe as the equivalent flags"
    );
}

#[test]
fn flags_override_the_snapshot() {
    let snap = fixture("snapshots/eks-h200-ubuntu.yaml");
    let out = run(&[
        "recipe",
        "--snapshot",
        snap.to_str().unwrap(),
        "--gpu",
        "h100",
        "--intent",
        "inference",
        "-t",
        "json",
    ]);
    let v = json(&out);
    assert_eq!(v["criteria"]["accelerator"], "h100");
    assert!(
        stderr(&out)
            .contains("--accelerator h100 overrides accelerator \"h200\" from the snapshot"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn go_aicr_snapshot_loads() {
    let snap = golden("mock-snapshot-cuj1.yaml");
    let out = run(&[
        "recipe",
        "-s",
        snap.to_str().unwrap(),
        "--service",
        "eks",
        "--gpu",
        "h100",
        "--intent",
        "training",
        "-t",
        "json",
    ]);
    let v = json(&out);
    assert_eq!(
        v["criteria"]["os"], "ubuntu",
        "OS.release.ID of the Go snapshot"
    );
    let out = run(&[
        "query",
        "-s",
        snap.to_str().unwrap(),
        "--service",
        "eks",
        "--gpu",
        "h100",
        "--intent",
        "training",
        "--selector",
        "criteria.os",
    ]);
    assert_eq!(stdout(&out), "ubuntu\n");
}

#[test]
fn refused_snapshots() {
    let mut all = String::new();
    for (name, args) in [
        (
            "name_keyed_subtype",
            vec![
                "recipe",
                "-s",
                "tests/fixtures/snapshots/name-keyed.yaml",
                "--service",
                "eks",
            ],
        ),
        (
            "unknown_measurement_type",
            vec![
                "recipe",
                "-s",
                "tests/fixtures/snapshots/unknown-type.yaml",
                "--service",
                "eks",
            ],
        ),
        (
            "recipe_is_not_a_snapshot",
            vec![
                "recipe",
                "-s",
                "tests/fixtures/criteria/eks-h100-training.yaml",
            ],
        ),
        (
            "missing_file",
            vec!["recipe", "-s", "tests/fixtures/snapshots/nope.yaml"],
        ),
        (
            "configmap",
            vec!["recipe", "-s", "cm://gpu-operator/aicr_snapshot"],
        ),
        (
            "with_criteria_file",
            vec![
                "recipe",
                "-s",
                "tests/fixtures/snapshots/eks-h200-ubuntu.yaml",
                "-c",
                "tests/fixtures/criteria/eks-h100-training.yaml",
            ],
        ),
        (
            "nothing_detected_nothing_given",
            vec!["recipe", "-s", "tests/fixtures/snapshots/nothing.yaml"],
        ),
    ] {
        all.push_str(&format!("## {name}\n{}\n", transcript(&args)));
    }
    settings().bind(|| insta::assert_snapshot!("snapshot_mode_refused", all));
}
