//! Hostile values and templates against `aicr bundle`: values from `--set`
//! reach manifests as YAML scalars and cannot add documents or kinds; a
//! template that adds them anyway, or that runs without end, is refused with
//! its message and exit code and leaves nothing behind.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// The eks/h100/training/ubuntu recipe, written to `dir/recipe.yaml`.
fn recipe_file(dir: &Path) -> String {
    let out = run(&[&["recipe"][..], &words(EKS_H100_TRAINING)].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let p = dir.join("recipe.yaml");
    std::fs::write(&p, &out.stdout).unwrap();
    p.to_str().unwrap().to_string()
}

/// All YAML documents of a text, nulls left out.
fn documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// Runs `aicr bundle -o DIR/out args...`, which must fail: returns (exit
/// code, stderr) after checking that stdout is empty and nothing was written.
fn fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out_dir = dir.join("out");
    let out = run(&[&["bundle", "-o", out_dir.to_str().unwrap()][..], args].concat());
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n == "out" || n.contains("aicr-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    (code(&out), stderr(&out))
}

const CLUSTER_ADMIN: &str = "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwned\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: default\n";

#[test]
fn set_string_values_stay_one_scalar() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe_file(tmp.path());
    let dir = tmp.path().join("b");
    for (value, check) in [
        (CLUSTER_ADMIN, CLUSTER_ADMIN),
        ("a: b", "a: b"),
        ("\"quoted\" # comment", "\"quoted\" # comment"),
        ("24.04", "24.04"),
        ("true", "true"),
        ("{x: 1}", "{x: 1}"),
        ("plain-name", "plain-name"),
    ] {
        let out = run(&[
            "bundle",
            "-r",
            &r,
            "-o",
            dir.to_str().unwrap(),
            "--set-string",
            &format!("gpuoperator:dcgmExporter.config.name={value}"),
        ]);
        assert_eq!(code(&out), 0, "{value:?}: {}", stderr(&out));
        let text =
            std::fs::read_to_string(dir.join("gpu-operator/manifests/dcgm-exporter.yaml")).unwrap();
        let docs = documents(&text);
        assert_eq!(docs.len(), 1, "{value:?} gave\n{text}");
        assert_eq!(docs[0]["kind"], json!("ConfigMap"));
        assert_eq!(docs[0]["metadata"]["name"], json!(check), "{text}");
        assert!(!text.contains("\nkind: ClusterRoleBinding"), "{text}");
    }
    // The plain value is written plain, as before.
    let text =
        std::fs::read_to_string(dir.join("gpu-operator/manifests/dcgm-exporter.yaml")).unwrap();
    assert!(text.contains("\n  name: plain-name\n"), "{text}");
    assert!(
        text.contains("\n    helm.sh/chart: gpu-operator-25.10.1\n"),
        "{text}"
    );
    // Booleans are YAML's (not minijinja's `True`).
    let text =
        std::fs::read_to_string(dir.join("skyhook-customizations/manifests/tuning.yaml")).unwrap();
    assert!(text.contains("\n  autoTaintNewNodes: true\n"), "{text}");
}

/// A `--data` directory that replaces gpu-operator's dcgm-exporter manifest.
fn data_with_manifest(template: &str) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("components/gpu-operator/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dcgm-exporter.yaml"), template).unwrap();
    std::fs::write(
        data.path().join("registry.yaml"),
        "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents: []\n",
    )
    .unwrap();
    data
}

const MANIFEST: &str = "error: component \"gpu-operator\": manifest components/gpu-operator/manifests/dcgm-exporter.yaml: ";

#[test]
fn templates_that_add_documents_or_kinds_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe_file(tmp.path());
    // A template that writes a value as is (`safe`) lets it add a document.
    let data = data_with_manifest(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ values.dcgmExporter.config.name | safe }}\n",
    );
    let d = data.path().to_str().unwrap();
    let set = format!("gpuoperator:dcgmExporter.config.name={CLUSTER_ADMIN}");
    let (status, err) = fails(tmp.path(), &["-r", &r, "--data", d, "--set-string", &set]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        format!("{MANIFEST}renders 2 documents but the template spells out 1; a manifest template must write each document out (no values or loops that add documents)\n")
    );
    // The same document count, but a kind the template does not name.
    let data = data_with_manifest(
        "apiVersion: v1\nkind: ConfigMap\n---\n{{ values.dcgmExporter.config.name | safe }}\n",
    );
    let d = data.path().to_str().unwrap();
    let set = "gpuoperator:dcgmExporter.config.name=apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding";
    let (status, err) = fails(tmp.path(), &["-r", &r, "--data", d, "--set-string", set]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        format!("{MANIFEST}renders an object of kind \"ClusterRoleBinding\", which the template does not name in a top-level `kind:` line; kinds it names: ConfigMap\n")
    );
}

#[test]
fn templates_that_quote_values_themselves_are_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe_file(tmp.path());
    let data = data_with_manifest(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"{{ values.dcgmExporter.config.name }}\"\n",
    );
    let d = data.path().to_str().unwrap();
    let set = "gpuoperator:dcgmExporter.config.name=24.04";
    let (status, err) = fails(tmp.path(), &["-r", &r, "--data", d, "--set-string", set]);
    assert_eq!(status, 2, "{err}");
    assert!(err.starts_with(&format!("{MANIFEST}document 1: ")), "{err}");
    assert!(
        err.ends_with("; interpolated values are written as YAML scalars, quoted where needed, so a template must not quote {{ ... }} itself\n"),
        "{err}"
    );
}

#[test]
fn templates_that_run_without_end_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe_file(tmp.path());
    let data = data_with_manifest(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}apiVersion: v1\nkind: ConfigMap\n",
    );
    let d = data.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let (status, err) = fails(tmp.path(), &["-r", &r, "--data", d]);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        format!("{MANIFEST}template error: the render used up its budget of 2000000 steps (about one per instruction or 64 bytes of output); a manifest template must not loop over large ranges\n")
    );
    // Deep nesting is refused too, not a crash.
    let data = data_with_manifest(&format!(
        "{}{}apiVersion: v1\nkind: ConfigMap\n",
        "{% if true %}".repeat(5000),
        "{% endif %}".repeat(5000)
    ));
    let d = data.path().to_str().unwrap();
    let (status, err) = fails(tmp.path(), &["-r", &r, "--data", d]);
    assert_eq!(status, 2, "{err}");
    assert!(err.starts_with(MANIFEST), "{err}");
    assert!(err.contains("recursion limit"), "{err}");
}
