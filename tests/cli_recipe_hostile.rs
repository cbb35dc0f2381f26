//! Hostile and inconsistent inputs across `recipe`, `query`, `bundle` and
//! `diff`: paths and documents deep enough to overflow a stack, inheritance
//! chains long enough to take minutes, recipes that repeat a component or
//! point outside it, names that are paths; and the bundle settings that must
//! agree (`--nodes`, `--revision`). Each refusal is checked with its exact
//! message and exit code, and the bundle output is checked to be absent.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The eks/h100/training/ubuntu recipe as text.
fn recipe_text() -> String {
    let out = run(&[&["recipe"][..], &words(EKS_H100_TRAINING)].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

fn write(dir: &Path, rel: &str, text: &str) -> String {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A bundle that must fail: (exit code, stderr), with nothing written.
fn bundle_fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out_dir = dir.join("out");
    let out = run(&[&["bundle", "-o", out_dir.to_str().unwrap()][..], args].concat());
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(!out_dir.exists(), "the bundle was written");
    (code(&out), stderr(&out))
}

const REGISTRY_HEAD: &str = "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\n";

#[test]
fn deep_paths_are_refused_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let r = write(tmp.path(), "recipe.yaml", &recipe_text());
    let deep = vec!["a"; 5000].join(".");
    let limit = "a path may have at most 64 keys and indexes at character 129";

    let set = format!("gpu-operator:{deep}=1");
    let (status, err) = bundle_fails(tmp.path(), &["-r", &r, "--set", &set]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        format!(
            "error: --set {:?}: invalid path {:?}: {limit}\n",
            aicr::error::excerpt(&set),
            aicr::error::excerpt(&deep)
        )
    );

    let out = run(&[
        &["query"][..],
        &words(EKS_H100_TRAINING),
        &["--selector", &deep],
    ]
    .concat());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: invalid selector {:?}: {limit}; ",
            aicr::error::excerpt(&deep)
        )),
        "{}",
        stderr(&out)
    );

    // 64 keys is allowed, with a JSON value nested 60 deep below them:
    // every walker (merge, sort, YAML, templates, checksums) copes. One
    // level more than 128 in all is refused: no reader would take it back.
    let ok = vec!["k"; 64].join(".");
    let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let set = format!("gpu-operator:{ok}={}", nested(65));
    let (status, err) = bundle_fails(tmp.path(), &["-r", &r, "--set-json", &set]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        format!("error: --set-json {:?}: the path and value nest 129 levels deep; values may nest at most 128 levels (what YAML and JSON readers accept)\n", aicr::error::excerpt(&set))
    );
    let value = nested(60);
    let out_dir = tmp.path().join("deep");
    let out = run(&[
        "bundle",
        "-r",
        &r,
        "-o",
        out_dir.to_str().unwrap(),
        "--set-json",
        &format!("gpu-operator:{ok}={value}"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = read_yaml(&out_dir.join("gpu-operator/values.yaml"));
    let mut cur = &v;
    for _ in 0..64 {
        cur = &cur["k"];
    }
    for _ in 0..60 {
        cur = &cur[0];
    }
    assert_eq!(cur, &json!(1));
}

#[test]
fn deep_documents_are_refused_by_diff_and_deep_paths_are_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let head = "{\"kind\": \"RecipeResult\", \"apiVersion\": \"aicr.nvidia.com/v1alpha1\", \"componentRefs\": [{\"name\": \"a\"}], \"x\": ";
    let nested = |depth: usize, leaf: &str| {
        format!(
            "{head}{}{leaf}{}}}",
            "{\"k\": ".repeat(depth),
            "}".repeat(depth)
        )
    };
    let a = write(tmp.path(), "a.json", &nested(5000, "1"));
    let out = run(&["diff", &a, &a]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("recursion limit"), "{}", stderr(&out));

    let a = write(tmp.path(), "a.json", &nested(100, "1"));
    let b = write(tmp.path(), "b.json", &nested(100, "2"));
    let out = run(&["diff", &a, &b, "--fail-on-drift"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let path = format!("x.{}", vec!["k"; 100].join("."));
    assert!(stdout(&out).contains(&path), "{}", stdout(&out));
}

/// A `--data` directory with `n` overlays, `o1` based on `base` and each
/// next one on the one before.
fn chain_data(n: usize) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    write(
        data.path(),
        "registry.yaml",
        &format!("{REGISTRY_HEAD}components: []\n"),
    );
    for i in 1..=n {
        let base = if i == 1 {
            "base".to_string()
        } else {
            format!("o{}", i - 1)
        };
        write(
            data.path(),
            &format!("overlays/o{i}.yaml"),
            &format!("kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: o{i}\nspec:\n  base: {base}\n"),
        );
    }
    data
}

#[test]
fn inheritance_is_linear_and_bounded() {
    let data = chain_data(2000);
    let d = data.path().to_str().unwrap();
    let started = Instant::now();
    let out = run(&["recipe", "--data", d, "--service", "eks"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("error: overlay \"o64\" ({d}/overlays/o64.yaml): its spec.base chain is longer than 64 overlays (o64 -> o63 -> o62 -> ... -> o1 -> base); inheritance may be at most 64 deep\n")
    );
    // 63 overlays and the root are within the limit.
    let data = chain_data(63);
    let out = run(&[
        &["recipe", "--data", data.path().to_str().unwrap()][..],
        &words(EKS_H100_TRAINING),
    ]
    .concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn recipes_that_repeat_or_leave_a_component_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text = recipe_text();
    let dup = text.replacen(
        "componentRefs:\n",
        "componentRefs:\n  - name: gpu-operator\n    version: v1.0.0\n",
        1,
    );
    let r = write(tmp.path(), "dup.yaml", &dup);
    let (status, err) = bundle_fails(tmp.path(), &["-r", &r]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        format!("error: {r} is not a valid RecipeResult: componentRefs lists component \"gpu-operator\" twice; each component may appear once\n")
    );

    let outside = text.replacen(
        "components/gpu-operator/manifests/dcgm-exporter.yaml",
        "registry.yaml",
        1,
    );
    assert_ne!(outside, text);
    let r = write(tmp.path(), "outside.yaml", &outside);
    let (status, err) = bundle_fails(tmp.path(), &["-r", &r]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        "error: component \"gpu-operator\": manifestFiles \"registry.yaml\" is not a manifest of this component: manifest files are paths under components/gpu-operator/manifests/ (no '..'), ending in .yaml or .yml\n"
    );

    for bad in ["../../etc", "a/b"] {
        let named = text.replacen("name: aws-efa", &format!("name: {bad}"), 1);
        let r = write(tmp.path(), "named.yaml", &named);
        let (status, err) = bundle_fails(tmp.path(), &["-r", &r]);
        assert_eq!(status, 2, "{err}");
        assert_eq!(
            err,
            format!("error: {r} is not a valid RecipeResult: component name {bad:?} is not valid: a component name is a DNS label (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)\n")
        );
    }

    // diff refuses a recipe with no components.
    let empty = write(
        tmp.path(),
        "empty.yaml",
        "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\ncomponentRefs: []\n",
    );
    let full = write(tmp.path(), "full.yaml", &text);
    let out = run(&["diff", &full, &empty]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("error: {empty} is a RecipeResult with no components (componentRefs is missing or empty); a recipe lists at least one component\n")
    );
}

#[test]
fn recipe_refuses_names_bundle_would_refuse() {
    for (rel, text) in [
        (
            "registry.yaml",
            format!("{REGISTRY_HEAD}components:\n  - name: a/b\n"),
        ),
        (
            "overlays/bad.yaml",
            "kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: bad\nspec:\n  criteria:\n    service: eks\n  componentRefs:\n    - name: ../../etc\n".to_string(),
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        write(data.path(), "registry.yaml", &format!("{REGISTRY_HEAD}components: []\n"));
        write(data.path(), rel, &text);
        let out = run(&[
            &["recipe", "--data", data.path().to_str().unwrap()][..],
            &words(EKS_H100_TRAINING),
        ]
        .concat());
        assert_eq!(code(&out), 2, "{rel}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is not valid: a component name is a DNS label (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)"),
            "{rel}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn nodes_and_revision_are_resolved_once() {
    let tmp = tempfile::tempdir().unwrap();
    let text = recipe_text().replacen("criteria:\n", "criteria:\n  nodes: 8\n", 1);
    let r = write(tmp.path(), "recipe.yaml", &text);
    let dir = tmp.path().join("b");
    let out = run(&[
        "bundle",
        "-r",
        &r,
        "-o",
        dir.to_str().unwrap(),
        "--nodes",
        "3",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bundled = read_yaml(&dir.join("recipe.yaml"));
    assert_eq!(bundled["criteria"]["nodes"], json!(3));
    let values = read_yaml(&dir.join("skyhook-operator/values.yaml"));
    assert_eq!(values["estimatedNodeCount"], json!(3));
    // Without --nodes, the recipe's count is used in both.
    let out = run(&["bundle", "-r", &r, "-o", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        read_yaml(&dir.join("recipe.yaml"))["criteria"]["nodes"],
        json!(8)
    );
    let values = read_yaml(&dir.join("skyhook-operator/values.yaml"));
    assert_eq!(values["estimatedNodeCount"], json!(8));

    let sha = "0123456789abcdef0123456789abcdef01234567";
    for (rev, field, name) in [
        ("main", "branch", "main"),
        ("v1.2.3", "tag", "v1.2.3"),
        ("refs/tags/stable", "tag", "stable"),
        ("branch:v2.0.0", "branch", "v2.0.0"),
        (sha, "commit", sha),
    ] {
        let flux = tmp.path().join("flux");
        let out = run(&[
            "bundle",
            "-r",
            &r,
            "-o",
            flux.to_str().unwrap(),
            "-d",
            "flux",
            "--repo",
            "https://git.example.com/gpu.git",
            "--revision",
            rev,
        ]);
        assert_eq!(code(&out), 0, "{rev}: {}", stderr(&out));
        let git = read_yaml(&flux.join("gitrepository.yaml"));
        assert_eq!(git["spec"]["ref"], json!({ field: name }), "{rev}");
        let argo = tmp.path().join("argo");
        let out = run(&[
            "bundle",
            "-r",
            &r,
            "-o",
            argo.to_str().unwrap(),
            "-d",
            "argocd",
            "--repo",
            "https://git.example.com/gpu.git",
            "--revision",
            rev,
        ]);
        assert_eq!(code(&out), 0, "{rev}: {}", stderr(&out));
        let app = read_yaml(&argo.join("app-of-apps.yaml"));
        assert_eq!(
            app["spec"]["source"]["targetRevision"],
            json!(name),
            "{rev}"
        );
    }
    let (status, err) = bundle_fails(
        tmp.path(),
        &["-r", &r, "-d", "flux", "--revision", "commit:abc"],
    );
    assert_eq!(status, 2, "{err}");
    assert_eq!(
        err,
        "error: --revision \"commit:abc\": a commit is a full SHA: 40 (or 64) hexadecimal digits\n"
    );
}
