//! `aicr bundle` and `aicr verify` as whole CLI runs: the helm and argocd
//! bundles against Go aicr's golden bundles (semantically, less its
//! defects), the generated scripts under shellcheck, `--set` and scheduling
//! flags, re-bundling, verification, and bad inputs that must fail with
//! their message and exit code and leave nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// The eks/h100/training/ubuntu recipe, written to `dir/recipe.yaml`.
fn recipe_file(dir: &Path) -> PathBuf {
    let out = run(&[&["recipe"][..], &words(EKS_H100_TRAINING)].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let p = dir.join("recipe.yaml");
    std::fs::write(&p, &out.stdout).unwrap();
    p
}

/// Runs `aicr bundle -r RECIPE -o DIR extra...` and expects success.
fn bundle(recipe: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    let out = aicr()
        .args([
            "bundle",
            "-r",
            recipe.to_str().unwrap(),
            "-o",
            dir.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "bundle {extra:?}: {}", stderr(&out));
    out
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else if e.file_name() == ".aicr-bundle" {
                // aicr's ownership marker, not part of the bundle's content.
                assert!(d == root, "the marker sits at the top only");
            } else {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn components(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// All YAML documents of a file, nulls (comment-only documents) left out.
fn documents(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Checks that `dir` has the golden bundle's components, each with the same
/// values; returns the component names.
fn same_components_and_values(dir: &Path, gold: &Path) -> BTreeSet<String> {
    let names = components(gold);
    assert_eq!(components(dir), names);
    for c in &names {
        assert_eq!(
            read_yaml(&dir.join(c).join("values.yaml")),
            golden_values(&gold.join(c).join("values.yaml")),
            "values of {c}"
        );
    }
    names
}

/// The golden values file's document (it starts with a comment and `---`).
fn golden_values(path: &Path) -> Value {
    documents(path).pop().unwrap_or(json!({}))
}

#[test]
fn helm_bundle_matches_go_golden_semantically() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("bundle");
    bundle(&recipe, &dir, &[]);
    let gold = golden("bundle-helm-eks-h100-training");

    for c in same_components_and_values(&dir, &gold) {
        let gm = gold.join(&c).join("manifests");
        let om = dir.join(&c).join("manifests");
        assert_eq!(gm.is_dir(), om.is_dir(), "manifests of {c}");
        if gm.is_dir() {
            let names = |d: &Path| {
                std::fs::read_dir(d)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect::<BTreeSet<_>>()
            };
            assert_eq!(names(&om), names(&gm), "manifest files of {c}");
            for f in names(&gm) {
                assert_eq!(
                    documents(&om.join(&f)),
                    documents(&gm.join(&f)),
                    "{c}/manifests/{f}"
                );
            }
        }
    }
    // Go's files, plus nothing it lacks at the top level.
    let top = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file() && e.file_name() != ".aicr-bundle")
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(top(&dir), top(&gold));
    // recipe.yaml is the input recipe.
    assert_eq!(read_yaml(&dir.join("recipe.yaml")), read_yaml(&recipe));

    // The same components, installed in the same order as Go's deploy.sh.
    // (deploy.sh lists its components in order, one array of quoted names.)
    let ours: Vec<String> = std::fs::read_to_string(dir.join("deploy.sh"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("COMPONENTS=("))
        .unwrap()
        .trim_end_matches(')')
        .split(' ')
        .map(|w| w.trim_matches('\'').to_string())
        .collect();
    let theirs: Vec<String> = std::fs::read_to_string(gold.join("deploy.sh"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("echo \"Installing ")
                .map(|r| r.split(' ').next().unwrap().to_string())
                .or_else(|| {
                    l.strip_prefix("echo \"Applying manifests for ")
                        .map(|r| r.trim_end_matches("...\"").to_string())
                })
        })
        .collect();
    assert_eq!(ours.len(), 12, "{ours:?}");
    assert_eq!(ours, theirs);
}

#[test]
fn argocd_bundle_matches_go_golden_without_its_defects() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("bundle");
    let repo = "https://git.example.com/platform/gpu-stack.git";
    bundle(&recipe, &dir, &["-d", "argocd", "--repo", repo]);
    let gold = golden("bundle-argocd-eks-h100-training");

    for c in same_components_and_values(&dir, &gold) {
        let ours = read_yaml(&dir.join(&c).join("application.yaml"));
        let theirs = read_yaml(&gold.join(&c).join("application.yaml"));
        for p in [
            "/kind",
            "/metadata/name",
            "/metadata/namespace",
            "/metadata/annotations/argocd.argoproj.io~1sync-wave",
            "/spec/destination",
            "/spec/project",
        ] {
            assert_eq!(ours.pointer(p), theirs.pointer(p), "{c} {p}");
        }
        let text = std::fs::read_to_string(dir.join(&c).join("application.yaml")).unwrap();
        assert!(!text.contains("{{"), "{c}: a template placeholder is left");
        let manifests = dir.join(&c).join("manifests");
        match ours["spec"]["sources"].as_array() {
            Some(sources) => {
                // chart, then $values from --repo, then manifests if any.
                let chart = &theirs["spec"]["sources"][0];
                assert_eq!(sources[0]["chart"], chart["chart"], "{c}");
                assert_eq!(
                    sources[0]["targetRevision"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches('v'),
                    chart["targetRevision"].as_str().unwrap(),
                    "{c}"
                );
                assert_eq!(
                    sources[1],
                    json!({"repoURL": repo, "targetRevision": "main", "ref": "values"})
                );
                assert_eq!(sources.len(), 2 + usize::from(manifests.is_dir()), "{c}");
                if manifests.is_dir() {
                    assert_eq!(sources[2]["path"], json!(format!("{c}/manifests")));
                    assert_eq!(sources[2]["repoURL"], json!(repo));
                }
            }
            None => {
                // Manifest-only: a directory Application from --repo.
                assert_eq!(
                    ours["spec"]["source"],
                    json!({"repoURL": repo, "targetRevision": "main", "path": format!("{c}/manifests")})
                );
                assert!(manifests.is_dir());
            }
        }
    }
    // The manifests Go dropped are here.
    assert!(dir
        .join("gpu-operator/manifests/dcgm-exporter.yaml")
        .is_file());
    assert!(dir
        .join("skyhook-customizations/manifests/tuning.yaml")
        .is_file());
    let app = read_yaml(&dir.join("app-of-apps.yaml"));
    assert_eq!(app["spec"]["source"]["repoURL"], json!(repo));
    assert_eq!(
        app["spec"]["source"]["directory"],
        read_yaml(&gold.join("app-of-apps.yaml"))["spec"]["source"]["directory"]
    );
    assert!(dir.join("recipe.yaml").is_file());
}

#[test]
fn argocd_without_repo_uses_a_placeholder_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("b");
    let out = bundle(&recipe, &dir, &["-d", "ArgoCD"]);
    let err = stderr(&out);
    assert!(
        err.contains("--repo is not set: the bundle points at the placeholder https://github.com/YOUR-ORG/YOUR-REPO.git"),
        "{err}"
    );
    assert!(stdout(&out).contains("Replace https://github.com/YOUR-ORG/YOUR-REPO.git"));
    let app = read_yaml(&dir.join("gpu-operator/application.yaml"));
    assert_eq!(
        app["spec"]["sources"][1]["repoURL"],
        json!("https://github.com/YOUR-ORG/YOUR-REPO.git")
    );
}

#[test]
fn transcript_of_a_helm_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("bundle");
    let mut s = settings();
    s.add_filter(&regex_escape(&tmp.path().display().to_string()), "[DIR]");
    s.bind(|| {
        insta::assert_snapshot!(transcript(&[
            "bundle",
            "-r",
            recipe.to_str().unwrap(),
            "-o",
            dir.to_str().unwrap(),
        ]));
        insta::assert_snapshot!(
            "helm_deploy_sh",
            std::fs::read_to_string(dir.join("deploy.sh")).unwrap()
        );
        insta::assert_snapshot!(
            "helm_undeploy_sh",
            std::fs::read_to_string(dir.join("undeploy.sh")).unwrap()
        );
        insta::assert_snapshot!(
            "helm_readme",
            std::fs::read_to_string(dir.join("README.md")).unwrap()
        );
        insta::assert_snapshot!(
            "helm_gpu_operator_readme",
            std::fs::read_to_string(dir.join("gpu-operator/README.md")).unwrap()
        );
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        // 0755 and 0644 less the umask: scripts executable, the rest not.
        assert_eq!(mode("deploy.sh") & 0o700, 0o700);
        assert_eq!(mode("undeploy.sh") & 0o700, 0o700);
        assert_eq!(mode("gpu-operator/values.yaml") & 0o711, 0o600);
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[test]
fn flux_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("flux");
    bundle(
        &recipe,
        &dir,
        &["-d", "flux", "--repo", "https://git.example.com/gpu.git"],
    );
    let k = read_yaml(&dir.join("kustomization.yaml"));
    let resources: Vec<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // Every listed file exists, and every Flux object is listed.
    for r in &resources {
        assert!(dir.join(r).is_file(), "{r}");
    }
    for f in files(&dir) {
        if f.ends_with("helmrelease.yaml")
            || f.ends_with("repository.yaml")
            || f.ends_with("flux-kustomization.yaml")
        {
            assert!(resources.contains(&f), "{f} not in kustomization.yaml");
        }
    }
    let gpu = read_yaml(&dir.join("gpu-operator/helmrelease.yaml"));
    assert_eq!(
        gpu["spec"]["dependsOn"],
        json!([{"name": "cert-manager"}, {"name": "kube-prometheus-stack"}])
    );
    assert_eq!(gpu["spec"]["chart"]["spec"]["version"], json!("v25.10.1"));
    assert_eq!(
        gpu["spec"]["values"],
        read_yaml(&dir.join("gpu-operator/values.yaml"))
    );
    let kai = read_yaml(&dir.join("kai-scheduler/helmrelease.yaml"));
    assert_eq!(
        kai["spec"]["chartRef"],
        json!({"kind": "OCIRepository", "name": "kai-scheduler"})
    );
    let oci = read_yaml(&dir.join("kai-scheduler/ocirepository.yaml"));
    assert_eq!(
        oci["spec"]["url"],
        json!("oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler")
    );
    let git = read_yaml(&dir.join("gitrepository.yaml"));
    assert_eq!(git["spec"]["url"], json!("https://git.example.com/gpu.git"));
    let sky = read_yaml(&dir.join("skyhook-customizations/flux-kustomization.yaml"));
    assert_eq!(
        sky["spec"]["path"],
        json!("./skyhook-customizations/manifests")
    );
    assert!(!dir.join("skyhook-customizations/helmrelease.yaml").exists());
}

/// deploy.sh and undeploy.sh of three helm bundles (eks, gke with dynamo,
/// aks with kubeflow), written under `tmp/<service>/`.
fn generated_scripts(tmp: &Path) -> Vec<PathBuf> {
    let mut scripts = Vec::new();
    for (name, criteria) in [
        ("eks", &words(EKS_H100_TRAINING)[..]),
        (
            "gke",
            &words("--service gke --accelerator h100 --intent inference --os cos --platform dynamo")[..],
        ),
        (
            "aks",
            &words("--service aks --accelerator h200 --intent training --os ubuntu --platform kubeflow")[..],
        ),
    ] {
        let dir = tmp.join(name);
        let out = aicr()
            .args(["bundle", "-o", dir.to_str().unwrap()])
            .args(criteria)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        scripts.push(dir.join("deploy.sh"));
        scripts.push(dir.join("undeploy.sh"));
    }
    scripts
}

/// shellcheck from Debian (`.ci/run` installs it); a missing shellcheck
/// fails the test that asked for it.
#[test]
#[ignore = "needs shellcheck"]
fn generated_scripts_pass_shellcheck() {
    let tmp = tempfile::tempdir().unwrap();
    let scripts = generated_scripts(tmp.path());
    let out = Command::new("shellcheck")
        .args(&scripts)
        .output()
        .unwrap_or_else(|e| panic!("shellcheck cannot run ({e}): .ci/run installs it"));
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn generated_scripts_pass_bash_n_and_take_their_options() {
    let tmp = tempfile::tempdir().unwrap();
    let scripts = generated_scripts(tmp.path());
    for s in &scripts {
        let out = Command::new("bash").arg("-n").arg(s).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {}: {}",
            s.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // --dry-run prints every command and runs none (no helm or kubectl here).
    let out = Command::new("bash")
        .arg(tmp.path().join("eks/deploy.sh"))
        .arg("--dry-run")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("helm upgrade --install").count(), 11, "{text}");
    assert!(text.contains("helm upgrade --install kai-scheduler oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler --version v0.13.0"));
    let out = Command::new("bash")
        .arg(tmp.path().join("eks/deploy.sh"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("Usage: ./deploy.sh [options]\n  --context NAME "));
    let out = Command::new("bash")
        .arg(tmp.path().join("eks/deploy.sh"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: unknown option: --bogus"));
}

#[test]
fn set_follows_helm_conventions() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("b");
    bundle(
        &recipe,
        &dir,
        &[
            "--set",
            "gpuoperator:driver.version=1.50",
            "--set",
            "gpu-operator:driver.count=570",
            "--set",
            "gpu-operator:driver.flag=false",
            "--set",
            "gpu-operator:driver.gone=null",
            "--set",
            "gpu-operator:driver.env[1].name=X",
            "--set",
            "gpu-operator:driver.arg=a=b,c",
            "--set-string",
            "gpu-operator:driver.str=true",
            "--set-json",
            r#"gpu-operator:driver.obj={"a":[1,"2"]}"#,
            "--set",
            r"gpu-operator:nfd.labels.feature\.node\.kubernetes\.io/x=y",
            "--set",
            "cert-manager:enabled=false",
        ],
    );
    let v = read_yaml(&dir.join("gpu-operator/values.yaml"));
    let d = &v["driver"];
    assert_eq!(d["version"], json!("1.50"));
    assert_eq!(d["count"], json!(570));
    assert_eq!(d["flag"], json!(false));
    assert_eq!(d["gone"], Value::Null);
    assert!(d.as_object().unwrap().contains_key("gone"));
    assert_eq!(d["env"], json!([null, {"name": "X"}]));
    assert_eq!(d["arg"], json!("a=b,c"));
    assert_eq!(d["str"], json!("true"));
    assert_eq!(d["obj"], json!({"a": [1, "2"]}));
    assert_eq!(
        v["nfd"]["labels"]["feature.node.kubernetes.io/x"],
        json!("y")
    );
    assert!(!v.as_object().unwrap().contains_key("enabled"));

    // cert-manager is gone from the directory, the scripts, the README and
    // recipe.yaml; gpu-operator's dependency on it is dropped, with a warning.
    assert!(!dir.join("cert-manager").exists());
    for f in ["deploy.sh", "undeploy.sh"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(!text.contains("cert-manager"), "{f} names cert-manager");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(!readme.contains("| cert-manager |"), "{readme}");
    assert!(readme.contains(
        "- gpu-operator depends on cert-manager, which is disabled; install cert-manager yourself before gpu-operator"
    ));
    let r = read_yaml(&dir.join("recipe.yaml"));
    assert!(!r.to_string().contains("\"cert-manager\""), "{r}");
}

#[test]
fn scheduling_flags_land_at_registry_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("b");
    let out = bundle(
        &recipe,
        &dir,
        &[
            "--system-node-selector",
            "node-role.example.com/system=true",
            "--system-node-toleration",
            "dedicated=system:NoSchedule",
            "--accelerated-node-selector",
            "nvidia.com/gpu.present=true",
            "--accelerated-node-toleration",
            "nvidia.com/gpu:NoSchedule",
            "--workload-gate",
            "skyhook.nvidia.com=runtime-required:NoSchedule",
            "--workload-selector",
            "app=training",
            "--nodes",
            "8",
        ],
    );
    // Both validations are satisfied: no warnings.
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let gpu = read_yaml(&dir.join("gpu-operator/values.yaml"));
    assert_eq!(
        gpu["operator"]["nodeSelector"],
        json!({"node-role.example.com/system": "true"})
    );
    assert_eq!(
        gpu["operator"]["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}])
    );
    assert_eq!(
        gpu["daemonsets"]["nodeSelector"],
        json!({"nvidia.com/gpu.present": "true"})
    );
    assert_eq!(
        gpu["node-feature-discovery"]["worker"]["tolerations"],
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );
    assert!(gpu["node-feature-discovery"]["worker"]
        .get("nodeSelector")
        .is_none());
    let sky = read_yaml(&dir.join("skyhook-operator/values.yaml"));
    assert_eq!(sky["estimatedNodeCount"], json!(8));
    assert_eq!(
        sky["controllerManager"]["manager"]["env"]["runtimeRequiredTaint"],
        json!("skyhook.nvidia.com=runtime-required:NoSchedule")
    );
    let cust = read_yaml(&dir.join("skyhook-customizations/values.yaml"));
    assert_eq!(cust["workloadSelector"], json!({"app": "training"}));
    // The tuning manifest is rendered from those values.
    let tuning = documents(&dir.join("skyhook-customizations/manifests/tuning.yaml"));
    let spec = &tuning[0]["spec"];
    assert_eq!(
        spec["nodeSelectors"]["matchLabels"],
        json!({"nvidia.com/gpu.present": "true"})
    );
    assert_eq!(
        spec["podNonInterruptLabels"]["matchLabels"],
        json!({"app": "training"})
    );
    assert_eq!(
        spec["additionalTolerations"],
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );
}

#[test]
fn rebundle_replaces_the_directory_and_verify_checks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let dir = tmp.path().join("b");
    bundle(&recipe, &dir, &[]);
    let first = files(&dir);
    // Same input, same bytes.
    let snapshot: Vec<Vec<u8>> = first
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    // A re-run with the same input leaves the bundle untouched.
    let mtime = std::fs::metadata(dir.join("deploy.sh"))
        .unwrap()
        .modified()
        .unwrap();
    let out = bundle(&recipe, &dir, &[]);
    assert!(
        stdout(&out).starts_with("Bundle unchanged in "),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::metadata(dir.join("deploy.sh"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert_eq!(files(&dir), first);
    // Same input, same bytes: a second directory is identical.
    let twin = tmp.path().join("twin");
    bundle(&recipe, &twin, &[]);
    assert_eq!(files(&twin), first);
    let again: Vec<Vec<u8>> = first
        .iter()
        .map(|f| std::fs::read(twin.join(f)).unwrap())
        .collect();
    assert!(snapshot == again, "a second run wrote different bytes");

    // A re-run without a component leaves no stale directory.
    bundle(&recipe, &dir, &["--set", "aws-efa:enabled=false"]);
    assert!(!dir.join("aws-efa").exists());
    assert_eq!(files(&dir).len(), first.len() - 2);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("aicr-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // checksums.txt covers every file, recipe.yaml included.
    let sums = std::fs::read_to_string(dir.join("checksums.txt")).unwrap();
    assert!(sums.lines().any(|l| l.ends_with("  recipe.yaml")));
    assert_eq!(sums.lines().count(), files(&dir).len() - 1);
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg("checksums.txt")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let d = dir.to_str().unwrap();
    let out = run(&["verify", d]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "verified: {} files match checksums.txt\n",
            files(&dir).len() - 1
        )
    );
    let out = run(&["bundle", "--verify", d]);
    assert_eq!(code(&out), 0);

    // Tamper: change recipe.yaml, remove a values file, add a file.
    std::fs::write(dir.join("recipe.yaml"), "kind: RecipeResult\n").unwrap();
    std::fs::remove_file(dir.join("kai-scheduler/values.yaml")).unwrap();
    std::fs::write(dir.join("gpu-operator/extra.yaml"), "a: 1\n").unwrap();
    let mut s = settings();
    s.add_filter(&regex_escape(&tmp.path().display().to_string()), "[DIR]");
    s.bind(|| {
        insta::assert_snapshot!(transcript(&["verify", d]));
        insta::assert_snapshot!(transcript(&["verify", d, "-t", "json"]));
    });
    assert_eq!(code(&run(&["verify", d])), 1);
    assert_eq!(code(&run(&["bundle", "--verify", d])), 1);
    // A file aicr did not write inside the bundle's own directories is never
    // deleted: bundling again is refused and says which file is in the way.
    let out = run(&[
        "bundle",
        "-r",
        recipe.to_str().unwrap(),
        "-o",
        d,
        "--set",
        "aws-efa:enabled=false",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("gpu-operator/extra.yaml was not written by aicr, and aicr replaces the bundle's own directories whole"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("gpu-operator/extra.yaml")).unwrap(),
        "a: 1\n"
    );
    // Once it is moved away, the edited recipe.yaml is still someone's
    // work: refused, and kept.
    std::fs::remove_file(dir.join("gpu-operator/extra.yaml")).unwrap();
    let out = run(&[
        "bundle",
        "-r",
        recipe.to_str().unwrap(),
        "-o",
        d,
        "--set",
        "aws-efa:enabled=false",
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!("error: output {d}: recipe.yaml changed since aicr wrote them (they no longer match checksums.txt; `aicr verify {d}` lists them); keep your changes elsewhere, or give --force to overwrite them\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("recipe.yaml")).unwrap(),
        "kind: RecipeResult\n"
    );
    // With --force, bundling again repairs it (the removed file comes back).
    let out = bundle(
        &recipe,
        &dir,
        &["--set", "aws-efa:enabled=false", "--force"],
    );
    assert!(
        stdout(&out).starts_with("Bundle written to "),
        "{}",
        stdout(&out)
    );
    assert!(!dir.join("gpu-operator/extra.yaml").exists());
    assert_eq!(code(&run(&["verify", d])), 0);
}

/// Runs a bundle that must fail; returns (exit code, stderr) and checks
/// that nothing was left at the output path or beside it.
fn fails(dir: &tempfile::TempDir, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let out_dir = dir.path().join("out");
    let mut cmd = aicr();
    cmd.arg("bundle").args(args);
    if !args.contains(&"-o") {
        cmd.args(["-o", out_dir.to_str().unwrap()]);
    }
    if let Some(s) = stdin {
        cmd.write_stdin(s);
    }
    let out = cmd.output().unwrap();
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n == "out" || n.contains("aicr-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    (code(&out), stderr(&out))
}

#[test]
fn bad_inputs_fail_with_their_message_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe_dir = tempfile::tempdir().unwrap();
    let recipe = recipe_file(recipe_dir.path());
    let r = recipe.to_str().unwrap();
    let snap = fixture("snapshots/eks-h200-ubuntu.yaml");
    let mut s = settings();
    s.add_filter(&regex_escape(&tmp.path().display().to_string()), "[DIR]");
    s.add_filter(
        &regex_escape(&recipe_dir.path().display().to_string()),
        "[RECIPE]",
    );
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "missing_recipe",
            vec!["-r".into(), "/nonexistent/recipe.yaml".into()],
        ),
        ("wrong_kind", vec!["-r".into(), snap.display().to_string()]),
        ("no_recipe", vec![]),
        (
            "set_unknown_component",
            vec!["-r".into(), r.into(), "--set".into(), "foo:bar=1".into()],
        ),
        (
            "set_not_in_recipe",
            vec![
                "-r".into(),
                r.into(),
                "--set".into(),
                "networkoperator:rdma.enabled=true".into(),
            ],
        ),
        (
            "set_bad_format",
            vec![
                "-r".into(),
                r.into(),
                "--set".into(),
                "driver.version=1".into(),
            ],
        ),
        (
            "set_bad_path",
            vec![
                "-r".into(),
                r.into(),
                "--set".into(),
                "gpu-operator:a[x]=1".into(),
            ],
        ),
        (
            "set_bad_json",
            vec![
                "-r".into(),
                r.into(),
                "--set-json".into(),
                "gpu-operator:a={".into(),
            ],
        ),
        (
            "bad_toleration",
            vec![
                "-r".into(),
                r.into(),
                "--accelerated-node-toleration".into(),
                "bad".into(),
            ],
        ),
        (
            "bad_effect",
            vec![
                "-r".into(),
                r.into(),
                "--system-node-toleration".into(),
                "k=v:Sometimes".into(),
            ],
        ),
        (
            "bad_selector",
            vec![
                "-r".into(),
                r.into(),
                "--workload-selector".into(),
                "novalue".into(),
            ],
        ),
        (
            "unknown_deployer",
            vec!["-r".into(), r.into(), "-d".into(), "kustomize".into()],
        ),
        (
            "repo_with_helm",
            vec![
                "-r".into(),
                r.into(),
                "--repo".into(),
                "https://x.example/r.git".into(),
            ],
        ),
        (
            "bad_repo",
            vec![
                "-r".into(),
                r.into(),
                "-d".into(),
                "argocd".into(),
                "--repo".into(),
                "https://x/$(id)".into(),
            ],
        ),
        (
            "recipe_and_criteria",
            vec!["-r".into(), r.into(), "--service".into(), "eks".into()],
        ),
        (
            "enabled_not_bool",
            vec![
                "-r".into(),
                r.into(),
                "--set".into(),
                "gpu-operator:enabled=maybe".into(),
            ],
        ),
    ];
    for (name, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = fails(&tmp, &args, None);
        s.bind(|| {
            insta::assert_snapshot!(
                format!("bundle_bad_{name}"),
                format!(
                    "$ aicr bundle {}\nexit: {code}\n--- stderr\n{err}",
                    args.join(" ")
                )
            )
        });
    }

    // Output path that is a file, and a directory that is not a bundle.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = run(&["bundle", "-r", r, "-o", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("a-file: exists and is not a directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let out = run(&["bundle", "-r", r, "-o", mine.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(
            "is a directory that is not an aicr bundle (it is not empty and aicr did not write it)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep"
    );
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir_all(&mine).unwrap();

    // A recipe naming a component the registry does not know, or a path.
    let text = std::fs::read_to_string(&recipe).unwrap();
    for (name, bad) in [
        ("unknown_component", "my-unknown"),
        ("path_component", "../../etc"),
    ] {
        let edited = text.replacen("name: aws-efa", &format!("name: {bad}"), 1);
        let (code, err) = fails(&tmp, &["-r", "-"], Some(&edited));
        s.bind(|| {
            insta::assert_snapshot!(
                format!("bundle_bad_{name}"),
                format!("exit: {code}\n--- stderr\n{err}")
            )
        });
    }
    // A failure after the work started (a manifest that is not YAML, from
    // --data) leaves nothing either.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("components/gpu-operator/manifests")).unwrap();
    std::fs::write(
        data.path()
            .join("components/gpu-operator/manifests/dcgm-exporter.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n",
    )
    .unwrap();
    std::fs::write(
        data.path().join("registry.yaml"),
        "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents: []\n",
    )
    .unwrap();
    let (status, err) = fails(
        &tmp,
        &["-r", r, "--data", data.path().to_str().unwrap()],
        None,
    );
    assert_eq!(status, 2, "{err}");
    assert!(
        err.contains("component \"gpu-operator\": manifest components/gpu-operator/manifests/dcgm-exporter.yaml: document 1:"),
        "{err}"
    );

    // The current directory (or one above it) is never replaced.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("sub")).unwrap();
    for o in [".", "..", "sub/.."] {
        let out = aicr()
            .current_dir(cwd.path())
            .args(["bundle", "-r", r, "-o", o])
            .output()
            .unwrap();
        assert_eq!(code(&out), 2);
        assert_eq!(
            stderr(&out),
            format!("error: output {o}: is the current directory or one above it; give a directory for the bundle, such as ./bundle\n")
        );
    }
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        1,
        "only sub/"
    );

    // An OCI destination names a tag (pushes: tests/cli_oci.rs).
    let (status, err) = fails(&tmp, &["-r", r, "-o", "oci://ghcr.io/acme/bundle"], None);
    assert_eq!(status, 2);
    assert_eq!(
        err,
        "error: oci://ghcr.io/acme/bundle: name a tag (oci://REGISTRY/REPOSITORY:TAG) or, to verify, a digest (@sha256:...)\n"
    );

    // verify: not a directory, not a bundle.
    let out = run(&["verify", "/nonexistent/bundle"]);
    assert_eq!(code(&out), 3);
    assert_eq!(
        stderr(&out),
        "error: /nonexistent/bundle: no such bundle directory\n"
    );
    let out = run(&["verify", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a bundle: it has no checksums.txt"));
}

/// Go aicr's data directory: its manifests are Helm (Go) templates, which
/// are refused by name rather than rendered wrong.
#[test]
#[ignore = "needs ../shared/reference/aicr-v0.11.1/recipes"]
fn go_data_manifests_are_refused_as_helm_templates() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe_dir = tempfile::tempdir().unwrap();
    let recipe = recipe_file(recipe_dir.path());
    let go_data = go_recipes();
    let (status, err) = fails(
        &tmp,
        &[
            "-r",
            recipe.to_str().unwrap(),
            "--data",
            go_data.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(status, 2, "{err}");
    assert!(
        err.contains(
            "this looks like a Helm (Go) template, but aicr renders manifests as Jinja templates"
        ),
        "{err}"
    );
}

#[test]
fn bundle_from_criteria_and_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_file(tmp.path());
    let a = tmp.path().join("a");
    let out = aicr()
        .args(["bundle", "-o", a.to_str().unwrap()])
        .args(words(EKS_H100_TRAINING))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b = tmp.path().join("b");
    let out = aicr()
        .args(["bundle", "-r", "-", "-o", b.to_str().unwrap()])
        .write_stdin(std::fs::read(&recipe).unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(a.join("checksums.txt")).unwrap(),
        std::fs::read(b.join("checksums.txt")).unwrap()
    );
    // From a snapshot plus --intent: the recipe is built first.
    let c = tmp.path().join("c");
    let out = aicr()
        .args(["bundle", "-s"])
        .arg(fixture("snapshots/eks-h200-ubuntu.yaml"))
        .args(["--intent", "training", "-o", c.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = read_yaml(&c.join("recipe.yaml"));
    assert_eq!(
        r["criteria"],
        json!({"service": "eks", "accelerator": "h200", "intent": "training", "os": "ubuntu", "platform": "any"})
    );
    assert!(c.join("gpu-operator/values.yaml").is_file());

    // The default output is ./bundle, never the current directory.
    let cwd = tempfile::tempdir().unwrap();
    let out = aicr()
        .current_dir(cwd.path())
        .args(["bundle", "-r", recipe.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let entries: Vec<_> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("bundle")]);
}
