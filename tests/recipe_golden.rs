//! `aicr recipe` against Go aicr v0.11.1's golden recipes: same components,
//! versions, values references and constraints, compared semantically, on
//! the embedded data and with `--data` on Go aicr's own data.

mod common;

use common::*;
use serde_json::Value;

/// What must agree with Go aicr: everything but our own version number, and
/// an empty `source` (Go writes `source: ""`, we omit it).
fn normalise(mut v: Value) -> Value {
    v["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("version");
    for c in v["componentRefs"].as_array_mut().expect("componentRefs") {
        let c = c.as_object_mut().expect("component");
        if c.get("source") == Some(&Value::String(String::new())) {
            c.remove("source");
        }
    }
    v
}

/// Our recipe for `args` (plus `extra`) equals the golden one, field by field
/// then whole.
fn check_with(golden_file: &str, args: &[&str], extra: &[&str]) {
    let gold = normalise(read_yaml(&golden(golden_file)));
    let mut all: Vec<&str> = vec!["recipe"];
    all.extend_from_slice(args);
    all.extend_from_slice(extra);
    let out = run(&all);
    assert_eq!(code(&out), 0, "{all:?}: {}", stderr(&out));
    let ours = normalise(parse_yaml(&stdout(&out)));
    for key in [
        "criteria",
        "constraints",
        "componentRefs",
        "deploymentOrder",
        "validation",
        "metadata",
    ] {
        assert_eq!(ours[key], gold[key], "{golden_file} {all:?}: {key} differs");
    }
    assert_eq!(ours, gold, "{golden_file} {all:?}");
    assert_dependencies_first(&ours);
}

/// On the embedded data.
fn check(golden_file: &str, args: &[&str]) {
    check_with(golden_file, args, &[]);
}

/// Each golden recipe and the flags that ask for it.
const GOLDEN: [(&str, &str); 4] = [
    (
        "recipe-eks-h100-training-ubuntu.yaml",
        "--service eks --accelerator h100 --intent training --os ubuntu",
    ),
    (
        "recipe-aks-h100-training-ubuntu.yaml",
        "--service aks --accelerator h100 --intent training --os ubuntu",
    ),
    (
        "recipe-eks-gb200-inference-ubuntu-dynamo.yaml",
        "--service eks --gpu gb200 --intent inference --os ubuntu --platform dynamo",
    ),
    (
        "recipe-gke-cos-h100-inference.yaml",
        "--service GKE --accelerator H100 --intent Inference --os cos",
    ),
];

pub fn assert_dependencies_first(recipe: &Value) {
    let order: Vec<&str> = recipe["deploymentOrder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let comps = recipe["componentRefs"].as_array().unwrap();
    assert_eq!(order.len(), comps.len(), "every component is ordered once");
    for c in comps {
        let name = c["name"].as_str().unwrap();
        let pos = order
            .iter()
            .position(|n| *n == name)
            .expect("component in order");
        for d in c["dependencyRefs"].as_array().into_iter().flatten() {
            let dpos = order
                .iter()
                .position(|n| n == d)
                .expect("dependency in order");
            assert!(dpos < pos, "{name} is deployed before its dependency {d}");
        }
    }
}

#[test]
fn eks_h100_training_ubuntu() {
    check(GOLDEN[0].0, &words(GOLDEN[0].1));
}

#[test]
fn aks_h100_training_ubuntu() {
    check(GOLDEN[1].0, &words(GOLDEN[1].1));
}

#[test]
fn eks_gb200_inference_ubuntu_dynamo() {
    check(GOLDEN[2].0, &words(GOLDEN[2].1));
}

#[test]
fn gke_cos_h100_inference() {
    check(GOLDEN[3].0, &words(GOLDEN[3].1));
}

/// The same recipes from Go aicr's own data, through `--data`.
#[test]
#[ignore = "needs ../shared/reference/aicr-v0.11.1/recipes"]
fn go_data_gives_the_golden_recipes() {
    let data = go_recipes();
    for (file, args) in GOLDEN {
        check_with(file, &words(args), &["--data", data.to_str().unwrap()]);
    }
}

/// Every combination `--list` offers resolves, with dependencies first.
#[test]
fn every_listed_combination_resolves() {
    let out = run(&["recipe", "--list", "-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 50, "{} combinations", list.len());
    for entry in list {
        let flags = entry["flags"].as_str().unwrap();
        let mut args = vec!["recipe", "-t", "json"];
        args.extend(flags.split(' '));
        let out = run(&args);
        assert_eq!(code(&out), 0, "{flags}: {}", stderr(&out));
        let recipe: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let applied = recipe["metadata"]["appliedOverlays"].as_array().unwrap();
        assert!(
            applied.contains(&entry["overlay"]),
            "{flags} does not apply {}",
            entry["overlay"]
        );
        assert_dependencies_first(&recipe);
    }
}

/// The h200 overlays carry the same stack as their h100 twins.
#[test]
fn h200_matches_h100_stack() {
    let get = |gpu: &str| {
        let out = run(&[
            "recipe",
            "--service",
            "eks",
            "--accelerator",
            gpu,
            "--intent",
            "training",
            "--os",
            "ubuntu",
            "-t",
            "json",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    let (h100, h200) = (get("h100"), get("h200"));
    assert_eq!(h100["deploymentOrder"], h200["deploymentOrder"]);
    assert_eq!(h100["constraints"], h200["constraints"]);
    assert_eq!(
        h200["metadata"]["appliedOverlays"],
        serde_json::json!([
            "base",
            "monitoring-hpa",
            "eks",
            "eks-training",
            "h200-eks-training",
            "h200-eks-ubuntu-training"
        ])
    );
}
