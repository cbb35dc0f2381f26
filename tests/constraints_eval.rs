//! `constraints::evaluate_recipe`: a whole recipe's constraints (top level
//! and validation phases) against a snapshot, one check each, every check's
//! status and message asserted; the skip reasons (measurement type absent,
//! collector or subtype unavailable, key absent, value only a live cluster
//! has); the first of duplicate measurements wins; a malformed constraint
//! anywhere in the recipe is an error before anything is evaluated.

mod common;

use aicr::constraints::evaluate_recipe;
use aicr::error::{Class, Classify};
use aicr::measurement::Snapshot;
use aicr::recipe::result::RecipeResult;
use aicr::validate::{Check, Phase, Status};
use common::*;

fn recipe() -> RecipeResult {
    let p = fixture("validate/recipe-eks-h100-training-ubuntu.yaml");
    RecipeResult::parse(&std::fs::read(&p).unwrap(), "recipe").unwrap()
}

fn snapshot(yaml: &str) -> Snapshot {
    Snapshot::parse(yaml.as_bytes(), "snapshot").unwrap()
}

fn cuj1() -> Snapshot {
    Snapshot::parse(
        &std::fs::read(golden("mock-snapshot-cuj1.yaml")).unwrap(),
        "cuj1",
    )
    .unwrap()
}

/// One line per check: status, suite, name, message, object.
fn render(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| {
            format!(
                "{:?} [{}] {}\n    {}\n    object: {}\n",
                c.status,
                c.suite,
                c.name,
                c.message,
                c.object.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {}", render(checks)))
}

#[test]
fn eks_h100_training_recipe_against_the_go_mock_snapshot() {
    let checks = evaluate_recipe(&recipe(), &cuj1()).unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "K8s.server.version >= 1.32.4",
            "OS.release.ID ubuntu",
            "OS.release.VERSION_ID 24.04",
            "OS.sysctl./proc/sys/kernel/osrelease >= 6.8",
            "Deployment.gpu-operator.version >= v24.6.0",
            "nccl-all-reduce-bw >= 300",
        ]
    );
    assert!(checks.iter().all(|c| c.phase == Phase::Constraints));
    let k8s = find(&checks, "K8s.server.version >= 1.32.4");
    assert_eq!(k8s.status, Status::Passed);
    assert_eq!(k8s.suite, "constraints");
    assert_eq!(k8s.message, "expected >= 1.32.4, got v1.33.0");
    assert_eq!(k8s.object.as_deref(), Some("K8s.server.version = v1.33.0"));
    let id = find(&checks, "OS.release.ID ubuntu");
    assert_eq!(
        (id.status, id.message.as_str()),
        (Status::Passed, "expected ubuntu, got ubuntu")
    );
    // The mock snapshot has no kernel sysctl: skipped, never passed.
    let kernel = find(&checks, "OS.sysctl./proc/sys/kernel/osrelease >= 6.8");
    assert_eq!(kernel.status, Status::Skipped);
    assert_eq!(
        kernel.message,
        "measurement absent: the snapshot's OS measurement has no subtype \"sysctl\"; expected >= 6.8"
    );
    assert_eq!(kernel.object, None);
    let deployed = find(&checks, "Deployment.gpu-operator.version >= v24.6.0");
    assert_eq!(
        (deployed.status, deployed.suite.as_str()),
        (Status::Skipped, "deployment")
    );
    assert_eq!(
        deployed.message,
        "not in a snapshot: the deployment phase measures it in a live cluster; expected >= v24.6.0"
    );
    let perf = find(&checks, "nccl-all-reduce-bw >= 300");
    assert_eq!(
        (perf.status, perf.suite.as_str()),
        (Status::Skipped, "performance")
    );
    insta::with_settings!({prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("constraints_eval_cuj1", render(&checks));
    });
}

#[test]
fn every_skip_reason() {
    let r = recipe();
    // No OS measurement at all; K8s unavailable (a collector's reason).
    let snap = snapshot(
        "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements:\n  - type: K8s\n    subtypes: []\n    unavailable: no kubeconfig or in-cluster config\n",
    );
    let checks = evaluate_recipe(&r, &snap).unwrap();
    assert!(
        checks.iter().all(|c| c.status == Status::Skipped),
        "{}",
        render(&checks)
    );
    assert_eq!(
        find(&checks, "K8s.server.version >= 1.32.4").message,
        "K8s collector unavailable: no kubeconfig or in-cluster config; expected >= 1.32.4"
    );
    assert_eq!(
        find(&checks, "OS.release.ID ubuntu").message,
        "measurement absent: the snapshot has no OS measurement; expected ubuntu"
    );
    // A subtype marked unavailable, a key absent, a value not comparable.
    let snap = snapshot(
        "measurements:\n  - type: K8s\n    subtypes:\n      - subtype: server\n        data:\n          version: unknown\n  - type: OS\n    subtypes:\n      - subtype: release\n        data:\n          ID: ubuntu\n      - subtype: sysctl\n        context:\n          unavailable: 'cannot read /proc/sys: permission denied'\n",
    );
    let checks = evaluate_recipe(&r, &snap).unwrap();
    let got: Vec<(Status, &str)> = checks
        .iter()
        .map(|c| (c.status, c.message.as_str()))
        .collect();
    assert_eq!(
        got[..4],
        [
            (
                Status::Skipped,
                "value not comparable: \"unknown\" is not a version; expected >= 1.32.4"
            ),
            (Status::Passed, "expected ubuntu, got ubuntu"),
            (
                Status::Skipped,
                "measurement absent: OS.release has no key \"VERSION_ID\"; expected 24.04"
            ),
            (
                Status::Skipped,
                "OS.sysctl unavailable: cannot read /proc/sys: permission denied; expected >= 6.8"
            ),
        ]
    );
    assert_eq!(
        find(&checks, "K8s.server.version >= 1.32.4")
            .object
            .as_deref(),
        Some("K8s.server.version = unknown")
    );
}

#[test]
fn failures_say_expected_and_actual() {
    let snap = snapshot(
        "measurements:\n  - type: K8s\n    subtypes:\n      - subtype: server\n        data:\n          version: v1.31.2\n  - type: OS\n    subtypes:\n      - subtype: release\n        data:\n          ID: Ubuntu\n          VERSION_ID: 22.04\n      - subtype: sysctl\n        data:\n          /proc/sys/kernel/osrelease: 5.15.0-1050-azure\n",
    );
    let checks = evaluate_recipe(&recipe(), &snap).unwrap();
    let got: Vec<(Status, &str)> = checks[..4]
        .iter()
        .map(|c| (c.status, c.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Status::Failed, "expected >= 1.32.4, got v1.31.2"),
            (Status::Failed, "expected ubuntu, got Ubuntu"),
            (Status::Failed, "expected 24.04, got 22.04"),
            (Status::Failed, "expected >= 6.8, got 5.15.0-1050-azure"),
        ]
    );
}

#[test]
fn the_first_of_duplicate_measurements_wins() {
    let snap = snapshot(
        "measurements:\n  - type: K8s\n    subtypes:\n      - subtype: server\n        data:\n          version: v1.33.5-eks-4f4795d\n      - subtype: server\n        data:\n          version: v1.20.0\n  - type: K8s\n    subtypes:\n      - subtype: server\n        data:\n          version: v1.19.0\n",
    );
    let checks = evaluate_recipe(&recipe(), &snap).unwrap();
    let k8s = find(&checks, "K8s.server.version >= 1.32.4");
    assert_eq!(k8s.status, Status::Passed);
    assert_eq!(k8s.message, "expected >= 1.32.4, got v1.33.5-eks-4f4795d");
}

#[test]
fn a_malformed_constraint_anywhere_is_an_error_before_any_evaluation() {
    let cases = [
        (
            (None, "K8s.server.version", ">="),
            "constraint \"K8s.server.version\": value \">=\" has no version after the operator >=",
        ),
        (
            (None, "Foo.bar.baz", ">= 1.0"),
            "constraint \"Foo.bar.baz\": unknown measurement type \"Foo\"; types are K8s, OS, GPU, SystemD, NodeTopology",
        ),
        (
            (Some("deployment"), "Deployment.gpu-operator", ">= v24.6.0"),
            "constraint \"Deployment.gpu-operator\": the path has no key; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version, OS.sysctl./proc/sys/kernel/osrelease) (in validation.deployment.constraints)",
        ),
        (
            (Some("deployment"), "nccl-all-reduce-bw", ">= 300"),
            "constraint \"nccl-all-reduce-bw\": unknown measurement type \"nccl-all-reduce-bw\"; types are K8s, OS, GPU, SystemD, NodeTopology, Deployment (deployment phase only) (in validation.deployment.constraints)",
        ),
        (
            (Some("performance"), "nccl-all-reduce-bw", "=< 300"),
            "constraint \"nccl-all-reduce-bw\": value \"=< 300\" has unknown operator \"=<\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match) (in validation.performance.constraints)",
        ),
        (
            (None, "OS.release.ID", "ubuntu"),
            "constraint \"OS.release.ID\": listed twice with value \"ubuntu\"",
        ),
    ];
    for ((phase, name, value), want) in cases {
        let mut r = recipe();
        let c = aicr::recipe::metadata::Constraint {
            name: name.into(),
            value: value.into(),
            severity: None,
            remediation: None,
            unit: None,
        };
        // Appended last: the valid constraints before it are not evaluated.
        match phase {
            None => r.constraints.push(c),
            Some("deployment") => r
                .validation
                .deployment
                .as_mut()
                .unwrap()
                .constraints
                .push(c),
            Some(_) => r
                .validation
                .performance
                .as_mut()
                .unwrap()
                .constraints
                .push(c),
        }
        let e = evaluate_recipe(&r, &cuj1()).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert_eq!(e.class(), Class::InvalidInput);
        assert_eq!(e.class().exit_code(), 2);
    }
}
