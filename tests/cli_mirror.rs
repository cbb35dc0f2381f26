//! `aicr mirror list` as whole CLI runs: the eks/h100/training/ubuntu
//! recipe with its charts served from a chart repository on 127.0.0.1 (the
//! test chart of tests/fixtures/charts-airgap, packaged once per chart of
//! the recipe), rendered by a real helm; the images the rendered charts
//! reference, asserted one by one; the Hauler and Zarf outputs checked
//! against those tools' schemas (tests/fixtures/airgap). The tests that
//! need helm are `#[ignore = "needs helm"]`; failures of helm itself (not
//! there, too slow, the repository gone) are provoked with stand-ins.

mod cli_airgap_support;
mod common;

use cli_airgap_support::{check_schema, eks_recipe, ChartRepo, HelmEnv, EKS_CHARTS};
use common::{code, stderr, stdout};

/// The images of the eks recipe's rendered charts and its manifests.
fn expected_images() -> Vec<String> {
    let mut want = vec![
        // From the bundle's values: aws-efa sets image.repository and tag,
        // aws-ebs-csi-driver the repository (the tag is the chart's
        // appVersion).
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin:v0.5.3"
            .to_string(),
        "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:1.0.0".into(),
        // skyhook-customizations' own manifest: a Skyhook resource's
        // packages (image and version).
        "ghcr.io/nvidia/skyhook-packages/nvidia-setup:0.2.1".into(),
        "ghcr.io/nvidia/skyhook-packages/nvidia-tuned:0.2.3".into(),
        // Shared by every chart: listed once.
        "registry.test/shared/agent:1.0".into(),
        "registry.test/shared/cron:1.0".into(),
        "registry.test/shared/db@sha256:0000000000000000000000000000000000000000000000000000000000000001"
            .into(),
    ];
    for (chart, version) in EKS_CHARTS {
        want.push(format!("registry.test/{chart}/init:{version}"));
        if !matches!(chart, "aws-efa-k8s-device-plugin" | "aws-ebs-csi-driver") {
            want.push(format!("registry.test/{chart}/controller:1.0.0"));
        }
    }
    want.sort();
    want
}

#[test]
#[ignore = "needs helm"]
fn list_of_the_eks_recipe_names_every_image_the_rendered_charts_reference() {
    let env = HelmEnv::new();
    let repo = ChartRepo::start(&env, &EKS_CHARTS);
    let work = tempfile::tempdir().unwrap();
    let recipe = eks_recipe(work.path(), &repo.url);
    let helm = env.helm.to_str().unwrap();
    let r = recipe.to_str().unwrap();

    let out = env
        .aicr()
        .args(["mirror", "list", "-r", r, "--helm", helm])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(got, expected_images());
    assert!(!stdout(&out).contains("registry.test/not/listed"));
    assert!(
        stderr(&out).contains("11 charts, 27 images in 12 components"),
        "{}",
        stderr(&out)
    );

    // JSON: every chart with its repository, and who runs each image.
    let out = env
        .aicr()
        .args(["mirror", "list", "-r", r, "--helm", helm, "-t", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let charts = v["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 11);
    let efa = charts.iter().find(|c| c["component"] == "aws-efa").unwrap();
    assert_eq!(
        efa,
        &serde_json::json!({"component": "aws-efa", "name": "aws-efa-k8s-device-plugin",
            "version": "v0.5.3", "repository": repo.url, "oci": null, "namespace": "kube-system"})
    );
    let agent = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "registry.test/shared/agent:1.0")
        .unwrap();
    assert_eq!(agent["components"].as_array().unwrap().len(), 11);
    let tuned = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "ghcr.io/nvidia/skyhook-packages/nvidia-tuned:0.2.3")
        .unwrap();
    assert_eq!(
        tuned["components"],
        serde_json::json!(["skyhook-customizations"])
    );
}

#[test]
#[ignore = "needs helm"]
fn hauler_and_zarf_outputs_parse_as_those_tools_formats() {
    let env = HelmEnv::new();
    let repo = ChartRepo::start(&env, &EKS_CHARTS);
    let work = tempfile::tempdir().unwrap();
    let recipe = eks_recipe(work.path(), &repo.url);
    let helm = env.helm.to_str().unwrap();
    let r = recipe.to_str().unwrap();
    let bundle = work.path().join("bundle");
    let out = env
        .aicr()
        .args(["bundle", "-r", r, "-o", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    for input in [["-r", r], ["-b", bundle.to_str().unwrap()]] {
        let out = env
            .aicr()
            .args(["mirror", "list", "--helm", helm, "-t", "hauler"])
            .args(input)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        check_schema("hauler-v1.schema.json", &text);
        let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "Images");
        let names: Vec<&str> = docs[0]["spec"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected_images());
        assert_eq!(docs[1]["kind"], "Charts");
        assert_eq!(
            docs[1]["spec"]["charts"][0],
            serde_json::json!({"name": "aws-ebs-csi-driver", "repoURL": repo.url, "version": "2.55.0"})
        );

        let out = env
            .aicr()
            .args(["mirror", "list", "--helm", helm, "-t", "zarf"])
            .args(input)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        check_schema("zarf.schema.json", &text);
        let z = common::parse_yaml(&text);
        let comps = z["components"].as_array().unwrap();
        assert_eq!(comps.len(), 12);
        let sky = comps
            .iter()
            .find(|c| c["name"] == "skyhook-customizations")
            .unwrap();
        assert!(sky.get("charts").is_none());
        assert_eq!(
            sky["images"],
            serde_json::json!([
                "ghcr.io/nvidia/skyhook-packages/nvidia-setup:0.2.1",
                "ghcr.io/nvidia/skyhook-packages/nvidia-tuned:0.2.3"
            ])
        );
        if input[0] == "-b" {
            // From a bundle: its values and manifests, by their paths in it.
            let gpu = comps.iter().find(|c| c["name"] == "gpu-operator").unwrap();
            assert_eq!(
                gpu["charts"][0]["valuesFiles"],
                serde_json::json!(["gpu-operator/values.yaml"])
            );
            assert_eq!(
                sky["manifests"][0]["files"],
                serde_json::json!(["skyhook-customizations/manifests/tuning.yaml"])
            );
            for f in [
                "gpu-operator/values.yaml",
                "skyhook-customizations/manifests/tuning.yaml",
            ] {
                assert!(bundle.join(f).is_file(), "{f}");
            }
        }
    }
}

#[test]
#[ignore = "needs helm"]
fn a_bundle_is_listed_with_its_own_values() {
    let env = HelmEnv::new();
    let repo = ChartRepo::start(&env, &EKS_CHARTS);
    let work = tempfile::tempdir().unwrap();
    let recipe = eks_recipe(work.path(), &repo.url);
    let bundle = work.path().join("bundle");
    let out = env
        .aicr()
        .args([
            "bundle",
            "-r",
            recipe.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ])
        .args(["--set", "aws-efa:image.tag=v9.9.9"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env
        .aicr()
        .args(["mirror", "list", "--helm", env.helm.to_str().unwrap()])
        .args(["-b", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l
            == "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin:v9.9.9"),
        "{text}"
    );
    assert!(!text.contains("aws-efa-k8s-device-plugin:v0.5.3"), "{text}");
    assert!(!stderr(&out).contains("does not match its checksums.txt"));

    // A bundle edited since it was written is listed as it is, with a
    // warning.
    let values = bundle.join("aws-efa/values.yaml");
    let edited = std::fs::read_to_string(&values)
        .unwrap()
        .replace("tag: v9.9.9", "tag: v8.8.8");
    std::fs::write(&values, edited).unwrap();
    let out = env
        .aicr()
        .args(["mirror", "list", "--helm", env.helm.to_str().unwrap()])
        .args(["-b", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("aws-efa-k8s-device-plugin:v8.8.8\n"));
    assert!(
        stderr(&out).contains(
            "the bundle does not match its checksums.txt (1 changed, 0 missing, 0 extra)"
        ),
        "{}",
        stderr(&out)
    );

    // The repository gone: helm cannot fetch the charts (exit 6).
    let mut repo = repo;
    repo.stop();
    let out = env
        .aicr()
        .args(["mirror", "list", "--helm", env.helm.to_str().unwrap()])
        .args(["-r", recipe.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rendering the chart of "),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// A stand-in for helm: a shell script.
fn fake_helm(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("helm");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn golden_recipe() -> String {
    common::golden("recipe-eks-h100-training-ubuntu.yaml")
        .to_string_lossy()
        .into_owned()
}

/// A helm that never finishes fails the run at one deadline: once a chart
/// has timed out no further chart is rendered (each would wait its own
/// --helm-timeout: 11 charts two at a time took 6 of them).
#[test]
fn a_hung_helm_stops_the_run_at_the_first_deadline() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("runs");
    let slow = fake_helm(
        work.path(),
        &format!("echo run >> '{}'\nsleep 30", log.display()),
    );
    let out = common::run(&[
        "mirror",
        "list",
        "-r",
        &golden_recipe(),
        "--helm",
        slow.to_str().unwrap(),
        "--helm-timeout",
        "1",
    ]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("helm did not finish within 1s"),
        "{}",
        stderr(&out)
    );
    let runs = std::fs::read_to_string(&log).unwrap().lines().count();
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        (1..=workers).contains(&runs),
        "{runs} helm runs for {workers} workers: charts were rendered after the first deadline"
    );
}

#[test]
fn helm_missing_too_slow_or_failing_is_reported_with_its_class() {
    let work = tempfile::tempdir().unwrap();
    let r = common::fixture("airgap/recipe-small.yaml");
    let r = r.to_str().unwrap();

    // No helm on PATH: unavailable (exit 6), saying what to do.
    let out = common::aicr()
        .env("PATH", work.path())
        .args(["mirror", "list", "-r", r])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(stderr(&out).contains(
        "helm is needed to render the charts but it is not on PATH; install helm 3, or name it with --helm PATH"
    ), "{}", stderr(&out));
    let out = common::run(&["mirror", "list", "-r", r, "--helm", "/nonexistent/helm"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(stderr(&out).contains("--helm /nonexistent/helm is not a file"));

    // Slower than --helm-timeout: killed, exit 5, in about that time.
    let slow = fake_helm(work.path(), "sleep 30");
    let started = std::time::Instant::now();
    let out = common::run(&[
        "mirror",
        "list",
        "-r",
        r,
        "--helm",
        slow.to_str().unwrap(),
        "--helm-timeout",
        "1",
    ]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        stderr(&out).contains("helm did not finish within 1s"),
        "{}",
        stderr(&out)
    );

    // helm fails saying nothing that tells why: unavailable, with what
    // helm said (its `Error: ` prefix dropped).
    let failing = fake_helm(
        work.path(),
        "echo 'Error: looks like the repo is down' >&2; exit 1",
    );
    let out = common::run(&[
        "mirror",
        "list",
        "-r",
        r,
        "--helm",
        failing.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "rendering the chart of aws-efa: helm failed (exit status: 1): looks like the repo is down"
        ),
        "{}",
        stderr(&out)
    );

    // helm prints something that is not YAML: invalid input, named.
    let garbage = fake_helm(work.path(), "echo 'a: [unclosed'");
    let out = common::run(&[
        "mirror",
        "list",
        "-r",
        r,
        "--helm",
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the rendered chart is not valid YAML"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors() {
    let out = common::run(&["mirror", "list"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--recipe <FILE|CM>"),
        "{}",
        stderr(&out)
    );
    let g = golden_recipe();
    let out = common::run(&["mirror", "list", "-r", &g, "-b", "/tmp"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = common::run(&["mirror", "list", "-r", &g, "-t", "yaml"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("[possible values: text, json, hauler, zarf]"),
        "{}",
        stderr(&out)
    );
    let out = common::run(&[
        "mirror",
        "list",
        "-b",
        "/nonexistent-bundle",
        "--helm",
        "/bin/true",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent-bundle: no such bundle directory"));
}
