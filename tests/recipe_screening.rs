//! `recipe -s SNAPSHOT` (and `query -s`, `bundle -s`): each candidate
//! overlay's constraints evaluated against the snapshot. Overlays whose
//! constraints fail are left out and listed in `metadata.excludedOverlays`
//! with the failing constraint in `metadata.constraintWarnings`; a
//! constraint that cannot be evaluated keeps its overlay, with a warning;
//! when exclusion leaves a stated criterion unhonoured the command fails
//! with exit 2 naming the constraint. Snapshots: Go aicr's mock snapshot
//! (`v1.33.0`, Ubuntu 24.04, no kernel sysctl, no GPU) and a snapshot of
//! the real H200 node (kernel 6.18.44, no cluster).

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

const H200_NODE: &str = "tests/fixtures/snapshots/h200-node.yaml";
const CUJ1: &str = "tests/fixtures/go-aicr-v0.11.1/golden/mock-snapshot-cuj1.yaml";

/// A whole run with the recipe's `metadata` instead of the whole recipe
/// (the rest is the recipe the flags give, tested elsewhere).
fn metadata_transcript(args: &[&str]) -> (String, Option<Value>) {
    let out = run(args);
    let metadata = (code(&out) == 0).then(|| {
        let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON recipe");
        v["metadata"].clone()
    });
    let shown = match &metadata {
        Some(m) => serde_json::to_string_pretty(m).unwrap() + "\n",
        None => stdout(&out),
    };
    (
        format!(
            "$ aicr {}\nexit: {}\n--- stdout: metadata\n{shown}--- stderr\n{}",
            args.join(" "),
            code(&out),
            stderr(&out)
        ),
        metadata,
    )
}

fn recipe_args<'a>(snapshot: &'a str, flags: &'a str) -> Vec<&'a str> {
    let mut args = vec!["recipe", "-s", snapshot];
    args.extend(words(flags));
    args.extend(["-t", "json"]);
    args
}

#[test]
fn go_mock_snapshot_keeps_the_overlay_whose_kernel_it_cannot_see() {
    // Go aicr excludes h100-eks-ubuntu-training here (its kernel
    // constraint has no measurement) and still exits 0; we keep it and
    // say the constraint was not evaluated.
    let (t, metadata) = metadata_transcript(&recipe_args(
        CUJ1,
        "--service eks --gpu h100 --intent training",
    ));
    let m = metadata.expect("exit 0");
    assert_eq!(
        m["appliedOverlays"],
        json!([
            "base",
            "monitoring-hpa",
            "eks",
            "eks-training",
            "h100-eks-training",
            "h100-eks-ubuntu-training"
        ])
    );
    assert!(m.get("excludedOverlays").is_none(), "{m}");
    assert_eq!(
        m["constraintWarnings"],
        json!([{
            "overlay": "h100-eks-ubuntu-training",
            "constraint": "OS.sysctl./proc/sys/kernel/osrelease",
            "expected": ">= 6.8",
            "actual": "",
            "reason": "measurement absent: the snapshot's OS measurement has no subtype \"sysctl\"; overlay kept"
        }])
    );
    settings().bind(|| insta::assert_snapshot!("screening_cuj1_eks_h100_training", t));
    // bundle -s writes the same recipe, warnings included, into the bundle.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("b");
    let mut b = vec!["bundle", "-s", CUJ1, "-o", target.to_str().unwrap()];
    b.extend(words("--service eks --gpu h100 --intent training"));
    let out = run(&b);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(read_yaml(&target.join("recipe.yaml"))["metadata"], m);
}

#[test]
fn go_mock_snapshot_rules_out_dynamo_and_aks() {
    // K8s v1.33.0 fails the dynamo overlay's `>= 1.34`, the only overlay
    // that honours --platform dynamo: exit 2, naming the constraint.
    let (t, _) = metadata_transcript(&recipe_args(
        CUJ1,
        "--service eks --gpu h100 --intent inference --platform dynamo",
    ));
    assert!(t.contains("exit: 2\n"), "{t}");
    assert!(
        t.contains("error: the snapshot rules out --platform dynamo (asked: --service eks --accelerator h100 --intent inference --os ubuntu --platform dynamo): no overlay left honours it after excluding\n  h100-eks-ubuntu-inference-dynamo: constraint K8s.server.version >= 1.34 failed (got v1.33.0)\n"),
        "{t}"
    );
    let mut all = t;
    // aks.yaml wants `>= 1.34`: aks is excluded, and with it every overlay
    // that inherits from it.
    let (t, _) = metadata_transcript(&recipe_args(
        CUJ1,
        "--service aks --gpu h100 --intent training",
    ));
    assert!(t.contains("exit: 2\n"), "{t}");
    assert!(
        t.contains("  aks: constraint K8s.server.version >= 1.34 failed (got v1.33.0)\n  aks-training: its base overlay aks is excluded\n"),
        "{t}"
    );
    all.push_str(&t);
    // The same through query and bundle.
    let mut q = vec!["query", "-s", CUJ1];
    q.extend(words(
        "--service eks --gpu h100 --intent inference --platform dynamo --selector metadata",
    ));
    let out = run(&q);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("h100-eks-ubuntu-inference-dynamo: constraint K8s.server.version >= 1.34 failed (got v1.33.0)"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("b");
    let mut b = vec!["bundle", "-s", CUJ1, "-o", target.to_str().unwrap()];
    b.extend(words(
        "--service eks --gpu h100 --intent inference --platform dynamo",
    ));
    let out = run(&b);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("h100-eks-ubuntu-inference-dynamo: constraint K8s.server.version >= 1.34 failed (got v1.33.0)"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists(), "nothing written");
    settings().bind(|| insta::assert_snapshot!("screening_cuj1_refused", all));
}

#[test]
fn h200_node_snapshot_without_a_cluster() {
    // The node's kernel (6.18.44) meets `>= 6.8`; its snapshot has no
    // cluster, so every K8s.server.version constraint is not evaluated and
    // its overlay kept, one warning each.
    let (t, metadata) =
        metadata_transcript(&recipe_args(H200_NODE, "--service eks --intent training"));
    let m = metadata.expect("exit 0");
    assert_eq!(
        m["appliedOverlays"],
        json!([
            "base",
            "monitoring-hpa",
            "eks",
            "eks-training",
            "h200-eks-training",
            "h200-eks-ubuntu-training"
        ])
    );
    assert!(m.get("excludedOverlays").is_none(), "{m}");
    let warned: Vec<(&str, &str, &str)> = m["constraintWarnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["overlay"].as_str().unwrap(),
                w["constraint"].as_str().unwrap(),
                w["reason"].as_str().unwrap(),
            )
        })
        .collect();
    let reason = "K8s collector unavailable: no kubeconfig or in-cluster config; overlay kept";
    assert_eq!(
        warned,
        [
            ("base", "K8s.server.version", reason),
            ("eks", "K8s.server.version", reason),
            ("eks-training", "K8s.server.version", reason),
            ("h200-eks-training", "K8s.server.version", reason),
            ("h200-eks-ubuntu-training", "K8s.server.version", reason),
        ]
    );
    settings().bind(|| insta::assert_snapshot!("screening_h200_node", t));
}

const REGISTRY: &str =
    "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents: []\n";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn overlay(name: &str, body: &str) -> String {
    format!("kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: {name}\nspec:\n{body}")
}

#[test]
fn an_excluded_overlay_that_no_criterion_needs_is_left_out() {
    // Two overlays added with --data: one wants kernel >= 7.0 (the H200
    // node has 6.18.44), the other inherits from it. Both are left out;
    // every stated criterion is still honoured, so the recipe is made.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "registry.yaml", REGISTRY);
    write(
        dir.path(),
        "overlays/h200-kernel7.yaml",
        &overlay(
            "h200-kernel7",
            "  criteria:\n    accelerator: h200\n  constraints:\n    - name: OS.sysctl./proc/sys/kernel/osrelease\n      value: \">= 7.0\"\n    - name: GPU.smi.driver\n      value: \">= 580\"\n",
        ),
    );
    write(
        dir.path(),
        "overlays/h200-kernel7-training.yaml",
        &overlay(
            "h200-kernel7-training",
            "  base: h200-kernel7\n  criteria:\n    accelerator: h200\n    intent: training\n",
        ),
    );
    let mut args = recipe_args(H200_NODE, "--service eks --intent training");
    args.extend(["--data", dir.path().to_str().unwrap()]);
    let (t, metadata) = metadata_transcript(&args);
    let m = metadata.expect("exit 0");
    assert_eq!(
        m["excludedOverlays"],
        json!(["h200-kernel7", "h200-kernel7-training"])
    );
    let w = m["constraintWarnings"].as_array().unwrap();
    assert!(
        w.contains(&json!({
            "overlay": "h200-kernel7",
            "constraint": "OS.sysctl./proc/sys/kernel/osrelease",
            "expected": ">= 7.0",
            "actual": "6.18.44-fc-v657-gpu",
            "reason": "constraint not met; overlay excluded"
        })),
        "{m}"
    );
    assert!(
        w.contains(&json!({
            "overlay": "h200-kernel7-training",
            "constraint": "",
            "expected": "",
            "actual": "",
            "reason": "its base overlay h200-kernel7 is excluded; overlay excluded"
        })),
        "{m}"
    );
    assert!(
        !m["appliedOverlays"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str().unwrap().starts_with("h200-kernel7")),
        "{m}"
    );
    settings().bind(|| insta::assert_snapshot!("screening_data_overlay_excluded", t));
    // The table says so too.
    let mut table = recipe_args(H200_NODE, "--service eks --intent training");
    table.truncate(table.len() - 2);
    table.extend(["--data", dir.path().to_str().unwrap(), "-t", "table"]);
    let out = run(&table);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\nExcluded by the snapshot: h200-kernel7, h200-kernel7-training\nConstraint warnings: 7 (see metadata.constraintWarnings in -t yaml)\n\n"),
        "{}",
        stdout(&out)
    );
    // Without the snapshot both overlays apply.
    let out = run(&[
        "recipe",
        "--data",
        dir.path().to_str().unwrap(),
        "--service",
        "eks",
        "--gpu",
        "h200",
        "--intent",
        "training",
        "--os",
        "ubuntu",
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let applied = v["metadata"]["appliedOverlays"].to_string();
    assert!(applied.contains("\"h200-kernel7-training\""), "{applied}");
    assert!(v["metadata"].get("constraintWarnings").is_none());
}

#[test]
fn a_malformed_overlay_constraint_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "registry.yaml", REGISTRY);
    write(
        dir.path(),
        "overlays/bad.yaml",
        &overlay(
            "bad",
            "  criteria:\n    accelerator: h200\n  constraints:\n    - name: K8s.server.version\n      value: \"=> 1.30\"\n",
        ),
    );
    // With or without a snapshot: the overlay is checked as it is loaded.
    for snapshot in [None, Some(H200_NODE)] {
        let mut args = vec!["recipe", "--data", dir.path().to_str().unwrap()];
        args.extend(words("--service eks --gpu h200 --intent training"));
        if let Some(s) = snapshot {
            args.extend(["-s", s]);
        }
        let out = run(&args);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        let err = stderr(&out);
        let want = format!(
            "error: {}/overlays/bad.yaml: constraint \"K8s.server.version\": value \"=> 1.30\" has unknown operator \"=>\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)\n",
            dir.path().display()
        );
        assert!(err.ends_with(&want), "{err}");
        assert_eq!(stdout(&out), "");
    }
}
