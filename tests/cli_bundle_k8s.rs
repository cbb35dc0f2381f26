//! Generated bundles against real tools: every Argo CD Application and every
//! manifest whose kind the test kube-apiserver knows (built-in kinds, CRDs,
//! the Argo CD Application, GPU Operator ClusterPolicy and Flux CRDs from
//! tests/fixtures/crds) passes a server-side dry-run; on a current server
//! with strict field validation (`fieldValidation=Strict`), which refuses
//! what an old server dropped silently: an unknown field; and `helm
//! template` reads a generated values.yaml back exactly. They are ignored in
//! a plain `cargo test` and fail, never skip, when run without the server or
//! helm (the strict ones also on a server older than 1.25).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cluster::*;
use common::*;
use serde_json::{json, Value};

fn bundle(dir: &Path, args: &[&str]) {
    let out = aicr()
        .args(["bundle", "-o", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "bundle {args:?}: {}", stderr(&out));
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && !matches!(
                p.file_name().unwrap().to_str().unwrap(),
                "values.yaml" | "recipe.yaml" | "kustomization.yaml"
            )
        {
            out.push(p);
        }
    }
}

/// The CRDs of tests/fixtures/crds: Argo CD, GPU Operator, Flux.
const FIXTURE_CRDS: &[(&str, &str)] = &[
    ("argocd-application-crd.yaml", "applications.argoproj.io"),
    (
        "gpu-operator-clusterpolicy-crd.yaml",
        "clusterpolicies.nvidia.com",
    ),
    (
        "flux-gitrepository-crd.yaml",
        "gitrepositories.source.toolkit.fluxcd.io",
    ),
    (
        "flux-helmrepository-crd.yaml",
        "helmrepositories.source.toolkit.fluxcd.io",
    ),
    (
        "flux-ocirepository-crd.yaml",
        "ocirepositories.source.toolkit.fluxcd.io",
    ),
    (
        "flux-helmrelease-crd.yaml",
        "helmreleases.helm.toolkit.fluxcd.io",
    ),
    (
        "flux-kustomization-crd.yaml",
        "kustomizations.kustomize.toolkit.fluxcd.io",
    ),
];

/// The bundles' criteria: four recipes that between them use every
/// component source (Helm repositories, OCI charts, manifests only).
const CRITERIA: &[(&str, &str)] = &[
    ("eks", EKS_H100_TRAINING),
    (
        "dynamo",
        "--service gke --accelerator h100 --intent inference --os cos --platform dynamo",
    ),
    (
        "gke",
        "--service gke --accelerator h200 --intent training --os cos",
    ),
    (
        "kubeflow",
        "--service aks --accelerator h100 --intent training --os ubuntu --platform kubeflow",
    ),
];

/// One object of a generated file: where it came from, and the object.
struct Doc {
    what: String,
    v: Value,
}

impl Cluster {
    /// Creates a CRD from tests/fixtures/crds and waits until it is served.
    fn crd(&self, file: &str, resource: &str) {
        let text = std::fs::read_to_string(fixture("crds").join(file)).unwrap();
        self.kubectl(&["create", "-f", "-"], Some(&text));
        self.wait_crd_served(resource);
    }

    fn fixture_crds(&self) {
        for (file, resource) in FIXTURE_CRDS {
            self.crd(file, resource);
        }
    }

    /// Creates each namespace the objects name (their own, and Argo CD's
    /// destination), so that namespaced objects can be dry-run there.
    fn namespaces_of(&self, docs: &[Doc]) {
        let mut namespaces = BTreeSet::from(["argocd".to_string(), "flux-system".to_string()]);
        for d in docs {
            for ns in [
                &d.v["metadata"]["namespace"],
                &d.v["spec"]["destination"]["namespace"],
            ] {
                if let Some(ns) = ns.as_str() {
                    namespaces.insert(ns.to_string());
                }
            }
        }
        for ns in &namespaces {
            self.kubectl(&["create", "namespace", ns], None);
        }
    }

    /// A server-side dry-run create of one object: strict (the server
    /// refuses unknown and duplicate fields: `fieldValidation=Strict`) or
    /// not (`Ignore`: what a server before 1.25 does with any request).
    /// Create, not apply: the last-applied annotation of a large object can
    /// be over the server's annotation limit.
    fn dry_run(&self, v: &Value, strict: bool) -> (bool, String) {
        let validate = if strict {
            "--validate=strict"
        } else {
            "--validate=false"
        };
        self.try_kubectl(
            &["create", "--dry-run=server", validate, "-f", "-"],
            &serde_json::to_string(v).unwrap(),
        )
    }
}

/// Every object of every YAML file under `dirs` but values, recipes and
/// kustomize's kustomization.yaml, named by its path under `root`.
fn documents(root: &Path, dirs: &[PathBuf]) -> Vec<Doc> {
    let mut files = Vec::new();
    for d in dirs {
        yaml_files(d, &mut files);
    }
    let mut docs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        use serde::Deserialize;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            if v.is_null() {
                continue;
            }
            let what = format!(
                "{} {}/{}",
                f.strip_prefix(root).unwrap().display(),
                v["kind"].as_str().unwrap(),
                v["metadata"]["name"].as_str().unwrap_or("?")
            );
            docs.push(Doc { what, v });
        }
    }
    docs
}

/// Creates, for real, the CRDs the bundles carry, so the custom resources
/// that use them are checked too; returns those created and those the
/// server is too old for (a 1.20 server refuses the `default: ""` fields of
/// the upstream Gateway API (v1.2) and Inference Extension CRDs, which need
/// 1.26+). kubectl's client-side schema check is off for CRDs: a 1.20
/// server's schema predates `x-kubernetes-validations` (1.25).
fn bundle_crds(c: &Cluster, docs: &[Doc]) -> (Vec<String>, Vec<String>) {
    let (mut crds, mut too_new) = (Vec::new(), Vec::new());
    for d in docs
        .iter()
        .filter(|d| d.v["kind"] == "CustomResourceDefinition")
    {
        let name = d.v["metadata"]["name"].as_str().unwrap().to_string();
        let (ok, out) = c.try_kubectl(
            &["create", "--validate=false", "-f", "-"],
            &serde_json::to_string(&d.v).unwrap(),
        );
        if ok || out.contains("AlreadyExists") {
            crds.push(name);
        } else if out.contains("default: Invalid value: \"null\"") {
            too_new.push(name);
        } else {
            panic!("the server refused CRD {name}:\n{out}");
        }
    }
    for crd in &crds {
        c.wait_crd_served(crd);
    }
    (crds, too_new)
}

/// Custom resources whose CRDs neither the bundles nor the fixtures carry
/// (charts install them in a real deployment).
fn crd_not_here(what: &str) -> bool {
    what.contains(" Skyhook/")
        || what.contains(" ClusterTrainingRuntime/")
        || what.contains(" GatewayParameters/")
}

/// Dry-runs every object of `docs` but the CRDs (created for real by
/// [`bundle_crds`]); returns the objects accepted and those whose kind the
/// server does not know. Any other refusal fails the test.
fn dry_run_all(
    c: &Cluster,
    docs: &[Doc],
    crds: &[String],
    strict: bool,
) -> (Vec<String>, Vec<String>) {
    let (mut accepted, mut unknown) = (Vec::new(), Vec::new());
    for d in docs {
        let api = d.v["apiVersion"].as_str().unwrap();
        if d.v["kind"] == "CustomResourceDefinition" {
            let name = d.v["metadata"]["name"].as_str().unwrap();
            if crds.iter().any(|c| c == name) {
                accepted.push(d.what.clone());
            } else {
                unknown.push(d.what.clone());
            }
            continue;
        }
        let (ok, out) = c.dry_run(&d.v, strict);
        if ok || out.contains("AlreadyExists") {
            accepted.push(d.what.clone());
        } else if out.contains("no matches for kind")
            && !matches!(
                api,
                "v1" | "apps/v1"
                    | "argoproj.io/v1alpha1"
                    | "nvidia.com/v1"
                    | "source.toolkit.fluxcd.io/v1"
                    | "helm.toolkit.fluxcd.io/v2"
                    | "kustomize.toolkit.fluxcd.io/v1"
            )
        {
            unknown.push(d.what.clone());
        } else {
            panic!(
                "the server refused {}{}:\n{out}\n{}",
                d.what,
                if strict { " (strict)" } else { "" },
                serde_yaml_ng::to_string(&d.v).unwrap()
            );
        }
    }
    (accepted, unknown)
}

/// The flags of a bundle of `criteria` with `deployer` (and a repository
/// for the GitOps deployers, which the helm one refuses).
fn bundle_args<'a>(criteria: &'a str, deployer: &'a str) -> Vec<&'a str> {
    let mut args = words(criteria);
    args.extend(["-d", deployer]);
    if deployer != "helm" {
        args.extend(["--repo", "https://git.example.com/platform/gpu.git"]);
    }
    args
}

/// Bundles each of [`CRITERIA`] with `deployer` under `root`.
fn bundles(root: &Path, deployer: &str) -> Vec<PathBuf> {
    CRITERIA
        .iter()
        .map(|(name, criteria)| {
            let d = root.join(format!("{name}-{deployer}"));
            bundle(&d, &bundle_args(criteria, deployer));
            d
        })
        .collect()
}

/// The Helm bundle with the scheduling flags, which change the rendered
/// manifests.
fn scheduled_bundle(root: &Path) -> PathBuf {
    let d = root.join("eks-scheduled");
    bundle(
        &d,
        &[
            &words(EKS_H100_TRAINING)[..],
            &[
                "--accelerated-node-selector",
                "nvidia.com/gpu.present=true",
                "--accelerated-node-toleration",
                "nvidia.com/gpu=present:NoSchedule",
                "--workload-selector",
                "app=train",
            ],
        ]
        .concat(),
    );
    d
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn generated_objects_pass_server_side_dry_run() {
    let c = cluster();
    for (file, resource) in &FIXTURE_CRDS[..2] {
        c.crd(file, resource);
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = bundles(tmp.path(), "argocd");
    dirs.push(scheduled_bundle(tmp.path()));
    let docs = documents(tmp.path(), &dirs);
    c.namespaces_of(&docs);
    let (crds, too_new) = bundle_crds(&c, &docs);
    let (minor, git) = c.server_version();
    eprintln!("CRDs this {git} server is too old for: {too_new:?}");
    if minor >= 26 {
        assert_eq!(too_new, Vec::<String>::new(), "on {git}");
    }
    let (accepted, unknown) = dry_run_all(&c, &docs, &crds, false);
    let apps = accepted
        .iter()
        .filter(|a| a.contains(" Application/"))
        .count();
    // 12 + 1 app-of-apps for eks, and the other three bundles' Applications.
    assert!(
        apps >= 4 * 13,
        "{apps} Applications accepted: {accepted:#?}"
    );
    for must in [
        "eks-argocd/gpu-operator/manifests/dcgm-exporter.yaml ConfigMap/",
        "gke-argocd/gpu-operator/manifests/gke-resource-quota.yaml ResourceQuota/",
        "gke-argocd/gke-nccl-tcpxo/manifests/nccl-tcpxo-installer.yaml DaemonSet/",
    ] {
        assert!(
            accepted.iter().any(|a| a.starts_with(must)),
            "{must} not accepted: {accepted:#?}"
        );
    }
    // Only custom resources of CRDs this server does not have are left out.
    for u in &unknown {
        assert!(
            crd_not_here(u)
                || (u.contains(" CustomResourceDefinition/")
                    && too_new.iter().any(|t| u.ends_with(t.as_str())))
                || (u.contains("inference-gateway.yaml") && !too_new.is_empty()),
            "unexpectedly unknown: {u}"
        );
    }
    eprintln!(
        "{} objects accepted, {} left out (CRD not on the server)",
        accepted.len(),
        unknown.len()
    );
}

/// Every object `bundle` writes, from all three deployers (Helm manifests,
/// Argo CD Applications, Flux sources, HelmReleases and Kustomizations),
/// passes a server-side dry-run with strict field validation against the
/// real CRDs; only custom resources of CRDs that no bundle or fixture
/// carries are left out.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn strict_field_validation_passes_every_object_bundle_writes() {
    let c = cluster();
    c.require_minor(25, "strict field validation (fieldValidation=Strict)");
    c.fixture_crds();
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = bundles(tmp.path(), "argocd");
    dirs.extend(bundles(tmp.path(), "flux"));
    dirs.extend(bundles(tmp.path(), "helm"));
    dirs.push(scheduled_bundle(tmp.path()));
    let docs = documents(tmp.path(), &dirs);
    c.namespaces_of(&docs);
    let (crds, too_new) = bundle_crds(&c, &docs);
    assert_eq!(too_new, Vec::<String>::new(), "CRDs the server refused");
    let (accepted, unknown) = dry_run_all(&c, &docs, &crds, true);
    for u in &unknown {
        assert!(crd_not_here(u), "unexpectedly unknown: {u}");
    }
    let count = |suffix: &str, kind: &str| {
        accepted
            .iter()
            .filter(|a| a.split(' ').next().unwrap().contains(suffix) && a.contains(kind))
            .count()
    };
    // Each deployer's own objects, in every bundle of it.
    for (suffix, kind) in [
        ("-argocd/", " Application/"),
        ("-flux/", " HelmRepository/"),
        ("-flux/", " HelmRelease/"),
        ("-flux/", " Kustomization/"),
        ("-flux/", " GitRepository/aicr-bundle"),
    ] {
        assert!(
            count(suffix, kind) >= CRITERIA.len(),
            "{kind} of {suffix}: {accepted:#?}"
        );
    }
    assert!(count("-flux/", " OCIRepository/") >= 1, "{accepted:#?}");
    // The manifests of the Helm bundles (what deploy.sh applies).
    assert!(
        count("-helm/", "/manifests/") >= CRITERIA.len(),
        "{accepted:#?}"
    );
    eprintln!(
        "{} objects accepted with fieldValidation=Strict, {} left out (CRD not on the server)",
        accepted.len(),
        unknown.len()
    );
}

/// Sets `value` at the dotted `path` of `v`, making the objects on the way.
fn set(v: &mut Value, path: &str, value: Value) {
    let mut at = v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = &mut at[*p];
    }
    at[parts[parts.len() - 1]] = value;
}

/// One object of each kind `bundle` writes, with a field its schema does not
/// have: a server with strict field validation refuses it and says which
/// field, and the same object is accepted when the field is ignored (what a
/// server before 1.25 did with every request), so the field is the reason.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn strict_field_validation_refuses_an_unknown_field() {
    let c = cluster();
    c.require_minor(25, "strict field validation (fieldValidation=Strict)");
    c.fixture_crds();
    let tmp = tempfile::tempdir().unwrap();
    for (name, criteria, deployer) in [
        ("helm", EKS_H100_TRAINING, "helm"),
        ("argocd", EKS_H100_TRAINING, "argocd"),
        ("flux", EKS_H100_TRAINING, "flux"),
        ("flux-oci", CRITERIA[3].1, "flux"),
        ("helm-gke", CRITERIA[2].1, "helm"),
    ] {
        bundle(&tmp.path().join(name), &bundle_args(criteria, deployer));
    }
    let docs = documents(tmp.path(), &[tmp.path().to_path_buf()]);
    c.namespaces_of(&docs);
    let find = |prefix: &str, kind: &str| -> &Doc {
        docs.iter()
            .find(|d| d.what.starts_with(prefix) && d.v["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} under {prefix}"))
    };
    let cases: [(&Doc, &str, &str); 9] = [
        (
            find(
                "helm/gpu-operator/manifests/dcgm-exporter.yaml",
                "ConfigMap",
            ),
            "dataa",
            "unknown field \"dataa\"",
        ),
        (
            find("argocd/gpu-operator/", "Application"),
            "spec.syncPolicy.automatedd",
            "unknown field \"spec.syncPolicy.automatedd\"",
        ),
        (
            find("argocd/app-of-apps.yaml", "Application"),
            "spec.sourcee",
            "unknown field \"spec.sourcee\"",
        ),
        (
            find("flux/gpu-operator/helmrepository.yaml", "HelmRepository"),
            "spec.urll",
            "unknown field \"spec.urll\"",
        ),
        (
            find("flux/gpu-operator/helmrelease.yaml", "HelmRelease"),
            "spec.install.remediation.retriess",
            "unknown field \"spec.install.remediation.retriess\"",
        ),
        (
            find("flux/gitrepository.yaml", "GitRepository"),
            "spec.ref.branchh",
            "unknown field \"spec.ref.branchh\"",
        ),
        (
            find("flux/gpu-operator/flux-kustomization.yaml", "Kustomization"),
            "spec.prunee",
            "unknown field \"spec.prunee\"",
        ),
        (
            find("flux-oci/", "OCIRepository"),
            "spec.layerSelector.operationn",
            "unknown field \"spec.layerSelector.operationn\"",
        ),
        (
            find("helm-gke/gke-nccl-tcpxo/manifests/", "DaemonSet"),
            "spec.template.spec.hostNetworkk",
            "unknown field \"spec.template.spec.hostNetworkk\"",
        ),
    ];
    for (doc, path, message) in cases {
        let (ok, out) = c.dry_run(&doc.v, true);
        assert!(ok, "{} as written: {out}", doc.what);
        let mut wrong = doc.v.clone();
        set(&mut wrong, path, json!(true));
        let (ok, out) = c.dry_run(&wrong, true);
        assert!(
            !ok && out.contains("strict decoding error") && out.contains(message),
            "{} with {path}: expected the server to refuse it saying {message}; it said ({}):\n{out}",
            doc.what,
            if ok { "accepted" } else { "refused" }
        );
        let (ok, out) = c.dry_run(&wrong, false);
        assert!(ok, "{} with {path}, the field ignored: {out}", doc.what);
    }
}

#[test]
#[ignore = "needs helm"]
fn helm_template_reads_generated_values_back_exactly() {
    let helm = tool("helm");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    bundle(
        &dir,
        &[
            &words(EKS_H100_TRAINING)[..],
            &[
            "--set",
            "gpu-operator:t.version=1.50",
            "--set",
            "gpu-operator:t.int=570",
            "--set",
            "gpu-operator:t.octal=0123",
            "--set",
            "gpu-operator:t.bool=true",
            "--set",
            "gpu-operator:t.nil=null",
            "--set",
            "gpu-operator:t.list[2]=x",
            "--set-string",
            "gpu-operator:t.on=on",
            "--set-string",
            "gpu-operator:t.yes=yes",
            "--set-string",
            "gpu-operator:t.tilde=~",
            "--set-string",
            "gpu-operator:t.exp=1e3",
            "--set-string",
            "gpu-operator:t.str_true=true",
            "--set-string",
            "gpu-operator:t.empty=",
            "--set-string",
            "gpu-operator:t.hash=#not a comment",
            "--set-string",
            "gpu-operator:t.dash=- item",
            "--set-string",
            "gpu-operator:t.colon=a: b",
            "--set-string",
            r"gpu-operator:t.key\.with\.dots=v",
            "--set-json",
            r#"gpu-operator:t.json={"multi":"line one\nline two\n","space":"  lead","quote":"it's \"q\"","unicode":"Grüße ✓","float":1.5,"neg":-3,"empty_map":{},"empty_list":[]}"#,
            ],
        ]
        .concat(),
    );
    let values = dir.join("gpu-operator/values.yaml");
    let chart = fixture("chart");
    let out = Command::new(&helm)
        .args(["template", "t"])
        .arg(&chart)
        .arg("-f")
        .arg(&values)
        .env("HELM_CACHE_HOME", tmp.path().join("cache"))
        .env("HELM_CONFIG_HOME", tmp.path().join("config"))
        .env("HELM_DATA_HOME", tmp.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = parse_yaml(&String::from_utf8(out.stdout).unwrap());
    let back: Value =
        serde_json::from_str(rendered["data"]["values.json"].as_str().unwrap()).unwrap();
    let ours = read_yaml(&values);
    assert_eq!(back, ours);
    assert_eq!(ours["t"]["version"], json!("1.50"));
    assert_eq!(ours["t"]["octal"], json!("0123"));
    assert_eq!(ours["t"]["on"], json!("on"));
    assert_eq!(ours["t"]["json"]["multi"], json!("line one\nline two\n"));
    assert!(ours["t"].as_object().unwrap().contains_key("nil"));
}

/// A permissive stand-in for the Skyhook CRD, which the skyhook-operator
/// chart installs in a real deployment.
const SKYHOOK_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: skyhooks.skyhook.nvidia.com
spec:
  group: skyhook.nvidia.com
  scope: Namespaced
  names: {plural: skyhooks, singular: skyhook, kind: Skyhook}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn deploy_and_undeploy_scripts_run_against_the_cluster() {
    let c = cluster();
    c.kubectl(&["create", "-f", "-"], Some(SKYHOOK_CRD));
    c.wait_crd_served("skyhooks.skyhook.nvidia.com");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    bundle(&dir, &words(EKS_H100_TRAINING));
    // helm cannot reach chart repositories here: a stand-in records each call.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = tmp.path().join("helm.log");
    std::fs::write(
        bin.join("helm"),
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$HELM_LOG\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("helm"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        bin.display(),
        c.kubectl.parent().unwrap().display()
    );
    // helm is a stand-in (nothing is installed: --no-wait, and the CRD
    // check, which reads the charts, is skipped). The namespaces are kept:
    // other tests of this file use them.
    let script = |name: &str| {
        let extra: &[&str] = if name == "undeploy.sh" {
            &["--keep-namespaces"]
        } else {
            &["--skip-preflight=crds", "--no-wait"]
        };
        let out = Command::new("bash")
            .arg(dir.join(name))
            .args(["--retries", "1"])
            .args(extra)
            .env("PATH", &path)
            .env("KUBECONFIG", &c.kubeconfig)
            .env("HELM_LOG", &log)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let recipe = read_yaml(&dir.join("recipe.yaml"));
    let order: Vec<&str> = recipe["deploymentOrder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .filter(|n| *n != "skyhook-customizations")
        .collect();

    script("deploy.sh");
    let calls = std::fs::read_to_string(&log).unwrap();
    let installed: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("upgrade --install "))
        .map(|l| {
            l.strip_prefix("upgrade --install ")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(installed, order);
    let gpu = calls
        .lines()
        .find(|l| l.starts_with("upgrade --install gpu-operator "))
        .unwrap();
    assert!(gpu.starts_with(&format!(
        "upgrade --install gpu-operator gpu-operator --version v25.10.1 --namespace gpu-operator --create-namespace --values {}/gpu-operator/values.yaml --description aicr-bundle ",
        dir.display()
    )), "{gpu}");
    assert!(
        gpu.ends_with(" --repo https://helm.ngc.nvidia.com/nvidia"),
        "{gpu}"
    );
    // The manifests were applied for real.
    c.kubectl(
        &["get", "configmap", "-n", "gpu-operator", "dcgm-exporter"],
        None,
    );
    c.kubectl(
        &[
            "get",
            "skyhooks.skyhook.nvidia.com",
            "-n",
            "skyhook",
            "tuning",
        ],
        None,
    );

    std::fs::remove_file(&log).unwrap();
    script("undeploy.sh");
    let calls = std::fs::read_to_string(&log).unwrap();
    let removed: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("uninstall "))
        .map(|l| {
            l.strip_prefix("uninstall ")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    let mut reversed = order.clone();
    reversed.reverse();
    assert_eq!(removed, reversed);
    let (found, _) = c.try_kubectl(
        &["get", "configmap", "-n", "gpu-operator", "dcgm-exporter"],
        "",
    );
    assert!(!found, "the ConfigMap is still there after undeploy.sh");
    let (found, _) = c.try_kubectl(
        &[
            "get",
            "skyhooks.skyhook.nvidia.com",
            "-n",
            "skyhook",
            "tuning",
        ],
        "",
    );
    assert!(!found, "the Skyhook is still there after undeploy.sh");
}
