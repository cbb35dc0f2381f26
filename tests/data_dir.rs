//! `--data DIR`: layering over the embedded data, and every way a data
//! directory can be refused (symlinks, large files, paths leaving the root,
//! broken overlays), each with its message and exit code.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const REGISTRY: &str =
    "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents: []\n";

fn overlay(name: &str, body: &str) -> String {
    format!("kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: {name}\nspec:\n{body}")
}

/// A data directory with a registry and the given files.
fn data_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "registry.yaml", REGISTRY);
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn recipe_with(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["recipe", "--data", dir.to_str().unwrap()];
    args.extend(extra);
    run(&args)
}

const CUSTOM: &str = "  criteria:\n    service: eks\n    intent: training\n    accelerator: l40\n  base: eks-training\n  componentRefs:\n    - name: gpu-operator\n      valuesFile: components/gpu-operator/my..values.yaml\n      overrides:\n        driver:\n          version: \"570.1\"\n";

#[test]
fn layered_data_adds_overlays_and_files() {
    let dir = data_dir(&[
        (
            "overlays/l40-eks-training.yaml",
            &overlay("l40-eks-training", CUSTOM),
        ),
        (
            "components/gpu-operator/my..values.yaml",
            "mig:\n  strategy: mixed\n",
        ),
    ]);
    let out = recipe_with(
        dir.path(),
        &words("--service eks --accelerator l40 --intent training -t json"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["metadata"]["appliedOverlays"],
        serde_json::json!([
            "base",
            "monitoring-hpa",
            "eks",
            "eks-training",
            "l40-eks-training"
        ])
    );
    let mut args = vec!["query", "--data", dir.path().to_str().unwrap()];
    args.extend([
        "--service",
        "eks",
        "--accelerator",
        "l40",
        "--intent",
        "training",
        "--selector",
        "components.gpu-operator.values",
        "-t",
        "json",
    ]);
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let values: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        values["mig"]["strategy"], "mixed",
        "variant file from --data"
    );
    assert_eq!(values["driver"]["version"], "570.1", "override wins");
    assert_eq!(
        values["driver"]["enabled"], true,
        "embedded base values kept"
    );
}

#[test]
fn external_files_replace_embedded_ones_by_path() {
    let eks = overlay("eks", "  criteria:\n    service: eks\n  constraints:\n    - name: K8s.server.version\n      value: \">= 1.99\"\n");
    let dir = data_dir(&[("overlays/eks.yaml", &eks)]);
    let out = recipe_with(dir.path(), &["--service", "eks", "-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["constraints"][0]["value"], ">= 1.99");
    let names: Vec<&str> = v["componentRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"aws-ebs-csi-driver"),
        "the embedded eks overlay is replaced whole: {names:?}"
    );
}

#[test]
fn registry_entries_merge_by_name() {
    let reg = "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents:\n  - name: cert-manager\n    helm:\n      defaultRepository: https://example.invalid/charts\n      defaultChart: cm/cert-manager\n      defaultNamespace: certs\n";
    let dir = data_dir(&[("registry.yaml", reg)]);
    let out = recipe_with(
        dir.path(),
        &words("--service eks --intent training -t json"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cm = v["componentRefs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cert-manager")
        .unwrap()
        .clone();
    assert_eq!(cm["namespace"], "certs", "external entry wins");
    assert_eq!(
        cm["source"], "https://charts.jetstack.io",
        "overlay values still beat registry defaults"
    );
    assert!(
        v["componentRefs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "gpu-operator"),
        "embedded entries stay"
    );
}

#[test]
fn refused_data_directories() {
    let mut all = String::new();
    let mut case = |name: &str, dir: &Path, extra: &[&str]| {
        let mut args = vec!["recipe", "--data", dir.to_str().unwrap()];
        args.extend(extra);
        let out = run(&args);
        assert!(out.stdout.is_empty(), "{name}");
        let err = stderr(&out).replace(dir.to_str().unwrap(), "[DATA]");
        all.push_str(&format!("## {name}\nexit: {}\n{err}\n", code(&out)));
    };
    let q = [
        "--service",
        "eks",
        "--accelerator",
        "l40",
        "--intent",
        "training",
    ];

    let dir = tempfile::tempdir().unwrap();
    case("registry_missing", dir.path(), &q);

    let dir = data_dir(&[]);
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("evil.yaml")).unwrap();
    case("symlink", dir.path(), &q);

    let dir = data_dir(&[]);
    let big = fs::File::create(dir.path().join("big.yaml")).unwrap();
    big.set_len(11_000_000).unwrap();
    case("too_large", dir.path(), &q);

    let escape = CUSTOM.replace(
        "components/gpu-operator/my..values.yaml",
        "../../../../etc/hostname",
    );
    let dir = data_dir(&[(
        "overlays/l40-eks-training.yaml",
        &overlay("l40-eks-training", &escape),
    )]);
    case("values_file_escapes_root", dir.path(), &q);

    let manifest =
        format!("{CUSTOM}      manifestFiles:\n        - components/../../secret.yaml\n");
    let dir = data_dir(&[
        (
            "overlays/l40-eks-training.yaml",
            &overlay("l40-eks-training", &manifest),
        ),
        ("components/gpu-operator/my..values.yaml", "{}\n"),
    ]);
    case("manifest_escapes_root", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/l40-eks-training.yaml",
        &overlay("l40-eks-training", CUSTOM),
    )]);
    case("values_file_missing", dir.path(), &q);

    let unknown = "  criteria:\n    service: eks\n    accelerator: l40\n    intent: training\n  componentRefs:\n    - name: my-unknown\n";
    let dir = data_dir(&[("overlays/x.yaml", &overlay("x", unknown))]);
    case("unknown_component", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/x.yaml",
        &overlay("x", "  base: nowhere\n  criteria:\n    accelerator: l40\n"),
    )]);
    case("missing_parent", dir.path(), &q);

    let dir = data_dir(&[
        ("overlays/a.yaml", &overlay("a", "  base: b\n")),
        ("overlays/b.yaml", &overlay("b", "  base: a\n")),
    ]);
    case("inheritance_cycle", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/copy.yaml",
        &overlay("eks", "  criteria:\n    service: eks\n"),
    )]);
    case("duplicate_overlay_name", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/x.yaml",
        "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: x\n",
    )]);
    case("wrong_kind_overlay", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/x.yaml",
        &overlay(
            "x",
            "  criteria:\n    service: eks\n  componentRef:\n    - name: gpu-operator\n",
        ),
    )]);
    case("misspelt_overlay_field", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/x.yaml",
        &overlay("x", "  criteria:\n    gpu: h100\n"),
    )]);
    case("unknown_criteria_field", dir.path(), &q);

    let dir = data_dir(&[(
        "overlays/x.yaml",
        &overlay("x", "  criteria:\n    accelerator: h300\n"),
    )]);
    case("bad_criteria_value", dir.path(), &q);

    let dir = data_dir(&[("overlays/x.yaml", "kind: RecipeMetadata\n  bad: [indent\n")]);
    case("malformed_overlay", dir.path(), &q);

    let dir = data_dir(&[("overlays/x.yaml", "")]);
    case("empty_overlay", dir.path(), &q);

    let deps = "  criteria:\n    service: eks\n    accelerator: l40\n    intent: training\n  componentRefs:\n    - name: cert-manager\n      dependencyRefs: [gpu-operator]\n";
    let dir = data_dir(&[("overlays/x.yaml", &overlay("x", deps))]);
    case("dependency_cycle", dir.path(), &q);

    let deps = "  criteria:\n    service: eks\n    accelerator: l40\n    intent: training\n  componentRefs:\n    - name: cert-manager\n      dependencyRefs: [network-operator]\n";
    let dir = data_dir(&[("overlays/x.yaml", &overlay("x", deps))]);
    case("dependency_missing", dir.path(), &q);

    let dir = data_dir(&[("registry.yaml", "kind: ComponentRegistry\napiVersion: aicr.nvidia.com/v1alpha1\ncomponents:\n  - name: x\n    helmm: {}\n")]);
    case("bad_registry", dir.path(), &q);

    let file = tempfile::NamedTempFile::new().unwrap();
    case("not_a_directory", file.path(), &q);

    case("no_such_directory", Path::new("/nonexistent/aicr-data"), &q);

    settings().bind(|| insta::assert_snapshot!("data_dir_refused", all));
}

#[test]
#[ignore = "needs ../shared/reference/aicr-v0.11.1/recipes"]
fn go_reference_data_is_accepted_whole() {
    let data = go_recipes();
    let out = recipe_with(&data, &["--list", "-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for entry in list.as_array().unwrap() {
        let mut args = vec![
            "query",
            "--data",
            data.to_str().unwrap(),
            "--selector",
            "components",
            "-t",
            "json",
        ];
        let flags = entry["flags"].as_str().unwrap();
        args.extend(flags.split(' '));
        let out = run(&args);
        assert_eq!(code(&out), 0, "{flags}: {}", stderr(&out));
    }
}

/// The embedded overlays' constraints are checked by a unit test, not on
/// each load; an overlay from --data is still checked as it loads, so a bad
/// constraint in one fails every recipe, even one that does not select it.
#[test]
fn data_overlay_with_a_bad_constraint_is_refused_at_load() {
    let bad = overlay(
        "my-l40",
        "  criteria:\n    service: eks\n    accelerator: l40\n  constraints:\n    - name: K8s.server.version\n      value: \"=< 1.30\"\n",
    );
    let dir = data_dir(&[("overlays/my-l40.yaml", &bad)]);
    let out = recipe_with(dir.path(), &words("--service eks --accelerator h100"));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}/overlays/my-l40.yaml: constraint \"K8s.server.version\": value \"=< 1.30\" has unknown operator \"=<\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)\n",
            dir.path().display()
        )
    );
}
