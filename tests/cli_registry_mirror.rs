//! `bundle --registry-mirror` over whole recipes: every image path the
//! component registry names (recipes/registry.yaml, walked here, not listed
//! by hand) resolves under the mirror in the bundle's values, the warnings
//! that remain are the reviewed ones (snapshot), and data that cannot be
//! applied is refused with its message and exit code.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

const MIRROR: &str = "mirror.example.com:5000/gpu";

/// One recipe per component group: the EKS training stack (the Go golden
/// one), AKS (network-operator), GKE COS (manifest images), Dynamo
/// (dynamo, kgateway) and Kubeflow.
const RECIPES: &[&str] = &[
    EKS_H100_TRAINING,
    "--service aks --accelerator h100 --intent training --os ubuntu",
    "--service gke --accelerator h100 --intent training --os cos",
    "--service eks --accelerator h100 --intent inference --os ubuntu --platform dynamo",
    "--service eks --accelerator h100 --intent training --os ubuntu --platform kubeflow",
];

/// The embedded component registry, as the binary reads it.
fn registry() -> Value {
    read_yaml(&Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/registry.yaml"))
}

/// The value at a dotted registry path (the embedded data uses plain keys).
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn bundle(criteria: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["bundle"];
    args.extend(words(criteria));
    args.extend(["-o", out.to_str().unwrap(), "--registry-mirror", MIRROR]);
    args.extend(extra);
    run(&args)
}

/// Checks every image path of every bundled component; returns how many
/// were checked.
fn assert_mirrored(bundle: &Path, registry: &Value) -> usize {
    let mut checked = 0;
    for c in registry["components"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let values_file = bundle.join(name).join("values.yaml");
        if !values_file.exists() {
            continue;
        }
        let values = read_yaml(&values_file);
        let Some(paths) = c["images"]["repositoryPaths"].as_array() else {
            continue;
        };
        for p in paths {
            let (path, kind, default, optional) = match p {
                Value::String(path) => (path.as_str(), "repository", None, false),
                _ => (
                    p["path"].as_str().unwrap(),
                    p["kind"].as_str().unwrap_or("repository"),
                    p["default"].as_str(),
                    p["optional"].as_bool().unwrap_or(false),
                ),
            };
            let got = at(&values, path);
            if (optional || default == Some("")) && got.is_none() {
                // The chart pulls nothing from here (or the warning names
                // it): left unset.
                continue;
            }
            let got = got
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{name}: {path} is not set: {got:?}"));
            if kind == "registry" {
                assert_eq!(got, MIRROR, "{name}: {path}");
            } else {
                assert!(
                    got.starts_with(&format!("{MIRROR}/")),
                    "{name}: {path} = {got}"
                );
            }
            checked += 1;
        }
    }
    checked
}

/// Every container image in the bundle's manifests (Pod templates at any
/// depth); returns how many were checked.
fn assert_manifest_containers_mirrored(bundle: &Path) -> usize {
    fn walk(v: &Value, file: &Path, n: &mut usize) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if matches!(k.as_str(), "containers" | "initContainers") {
                        for c in child.as_array().into_iter().flatten() {
                            let image = c["image"].as_str().unwrap_or_default();
                            assert!(
                                image.starts_with(&format!("{MIRROR}/")),
                                "{}: {image}",
                                file.display()
                            );
                            *n += 1;
                        }
                    }
                    walk(child, file, n);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, file, n)),
            _ => {}
        }
    }
    let mut n = 0;
    for dir in fs::read_dir(bundle).unwrap() {
        let manifests = dir.unwrap().path().join("manifests");
        for f in fs::read_dir(&manifests).into_iter().flatten() {
            let f = f.unwrap().path();
            let text = fs::read_to_string(&f).unwrap();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                use serde::Deserialize;
                walk(&Value::deserialize(doc).unwrap(), &f, &mut n);
            }
        }
    }
    n
}

#[test]
fn every_image_path_of_every_component_resolves_under_the_mirror() {
    let registry = registry();
    let work = tempfile::tempdir().unwrap();
    let mut warnings = String::new();
    for (i, criteria) in RECIPES.iter().enumerate() {
        let b = work.path().join(i.to_string());
        let out = bundle(criteria, &b, &[]);
        assert_eq!(code(&out), 0, "{criteria}: {}", stderr(&out));
        let checked = assert_mirrored(&b, &registry);
        assert!(checked >= 40, "{criteria}: only {checked} image paths");
        let containers = assert_manifest_containers_mirrored(&b);
        // GKE's two DaemonSets, Kubeflow's training runtime.
        if criteria.contains("gke") {
            assert_eq!(containers, 4, "{criteria}");
        }
        if criteria.contains("kubeflow") {
            assert_eq!(containers, 1, "{criteria}");
        }
        // The warnings that remain, reviewed in the snapshot.
        warnings.push_str(&format!("$ aicr bundle {criteria}\n"));
        for l in stderr(&out).lines() {
            if l.starts_with("warning: --registry-mirror") {
                warnings.push_str(l);
                warnings.push('\n');
            }
        }
        let out = run(&["verify", b.to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    insta::assert_snapshot!("remaining_mirror_warnings", warnings);

    // Spot checks of each shape in the EKS training bundle.
    let b = work.path().join("0");
    let gpu = read_yaml(&b.join("gpu-operator/values.yaml"));
    assert_eq!(gpu["operator"]["repository"], format!("{MIRROR}/nvidia"));
    assert_eq!(
        gpu["driver"]["manager"]["repository"],
        format!("{MIRROR}/nvidia/cloud-native")
    );
    assert_eq!(
        gpu["node-feature-discovery"]["image"]["repository"],
        format!("{MIRROR}/nfd/node-feature-discovery")
    );
    // The recipe's own settings beside the written paths are kept.
    assert_eq!(gpu["driver"]["version"], "580.105.08");
    assert!(gpu["vgpuManager"].get("repository").is_none());
    let kps = read_yaml(&b.join("kube-prometheus-stack/values.yaml"));
    assert_eq!(kps["prometheusOperator"]["image"]["registry"], MIRROR);
    assert!(kps["prometheusOperator"]["image"]
        .get("repository")
        .is_none());
    assert!(kps.get("global").is_none());
    let cm = read_yaml(&b.join("cert-manager/values.yaml"));
    assert_eq!(
        cm["webhook"]["image"]["repository"],
        format!("{MIRROR}/jetstack/cert-manager-webhook")
    );
}

/// A --data registry that replaces one component's entry.
fn data_with(component: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("registry.yaml"),
        format!("apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents:\n{component}"),
    )
    .unwrap();
    dir
}

const ADAPTER: &str = "  - name: prometheus-adapter\n    helm:\n      defaultRepository: https://prometheus-community.github.io/helm-charts\n      defaultChart: prometheus-community/prometheus-adapter\n      defaultNamespace: monitoring\n";

#[test]
fn old_plain_path_data_still_loads_and_a_path_without_value_or_default_is_refused() {
    // Old data: a plain string. The recipe's values do not set it and the
    // data records no default: refused, nothing written.
    let data = data_with(&format!(
        "{ADAPTER}    images:\n      repositoryPaths:\n        - image.repository\n"
    ));
    let work = tempfile::tempdir().unwrap();
    let b = work.path().join("b");
    let out = bundle(
        EKS_H100_TRAINING,
        &b,
        &["--data", data.path().to_str().unwrap()],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: component \"prometheus-adapter\": registry path \"image.repository\": --registry-mirror: the component's values set no image repository here, so its chart's default would be pulled from the internet; set it with --set prometheus-adapter:image.repository=REPOSITORY\n"
    );
    assert!(!b.exists());

    // Set with --set, the same old data rewrites it.
    let out = bundle(
        EKS_H100_TRAINING,
        &b,
        &[
            "--data",
            data.path().to_str().unwrap(),
            "--set",
            "prometheus-adapter:image.repository=registry.k8s.io/prometheus-adapter/prometheus-adapter",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = read_yaml(&b.join("prometheus-adapter/values.yaml"));
    assert_eq!(
        v["image"]["repository"],
        format!("{MIRROR}/prometheus-adapter/prometheus-adapter")
    );
}

#[test]
fn bad_image_data_is_refused_with_what_is_allowed() {
    for (entry, want) in [
        (
            "{path: image.repository, kind: tag}",
            "unknown variant `tag`, expected one of `repository`, `prefix`, `registry`",
        ),
        (
            "{path: image.repository, default: \"https://registry.k8s.io/x\"}",
            "image path \"image.repository\": default \"https://registry.k8s.io/x\" is not an image repository: give it as the chart's values.yaml does, without a scheme (nvcr.io/nvidia, quay.io, registry.k8s.io/nfd/node-feature-discovery)",
        ),
        (
            "{path: image.repository, default: a.io/b, optional: true}",
            "image path \"image.repository\": `optional` is for a path whose chart default is not recorded; give `default` or `optional: true`, not both",
        ),
    ] {
        let data = data_with(&format!(
            "{ADAPTER}    images:\n      repositoryPaths:\n        - {entry}\n"
        ));
        let work = tempfile::tempdir().unwrap();
        let out = bundle(
            EKS_H100_TRAINING,
            &work.path().join("b"),
            &["--data", data.path().to_str().unwrap()],
        );
        assert_eq!(code(&out), 2, "{entry}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{entry}: {}", stderr(&out));
    }
}

#[test]
fn a_value_in_the_way_of_an_image_path_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let out = bundle(
        EKS_H100_TRAINING,
        &work.path().join("b"),
        &[
            "--set",
            "cert-manager:webhook.image=quay.io/jetstack/cert-manager-webhook:v1",
        ],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: component \"cert-manager\": registry path \"webhook.image.repository\": --registry-mirror: the value at \"webhook.image\" is not a map, so no image can be set below it\n"
    );
}
