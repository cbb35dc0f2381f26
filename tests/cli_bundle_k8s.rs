//! Generated bundles against real tools: every Argo CD Application and every
//! manifest whose kind the test kube-apiserver knows (built-in kinds, CRDs,
//! the Argo CD Application and GPU Operator ClusterPolicy CRDs from
//! tests/fixtures/crds) passes a server-side dry-run; and `helm template`
//! reads a generated values.yaml back exactly. They are ignored in a plain
//! `cargo test` and fail, never skip, when run without the server or helm.

mod common;

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

impl Cluster {
    /// Creates a CRD from tests/fixtures/crds and waits until it is served.
    fn crd(&self, file: &str, resource: &str) {
        let text = std::fs::read_to_string(fixture("crds").join(file)).unwrap();
        self.kubectl(&["create", "-f", "-"], Some(&text));
        for _ in 0..100 {
            if self.try_kubectl(&["get", resource, "-A"], "").0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{resource} is not served");
    }
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn generated_objects_pass_server_side_dry_run() {
    let c = cluster();
    c.crd("argocd-application-crd.yaml", "applications.argoproj.io");
    c.crd(
        "gpu-operator-clusterpolicy-crd.yaml",
        "clusterpolicies.nvidia.com",
    );

    let tmp = tempfile::tempdir().unwrap();
    let repo = ["--repo", "https://git.example.com/platform/gpu.git"];
    let eks = words(EKS_H100_TRAINING);
    let dynamo =
        words("--service gke --accelerator h100 --intent inference --os cos --platform dynamo");
    let gke_training = words("--service gke --accelerator h200 --intent training --os cos");
    let kubeflow =
        words("--service aks --accelerator h100 --intent training --os ubuntu --platform kubeflow");
    let mut dirs = Vec::new();
    for (name, criteria) in [
        ("eks", &eks[..]),
        ("dynamo", &dynamo[..]),
        ("gke", &gke_training[..]),
        ("kubeflow", &kubeflow[..]),
    ] {
        let d = tmp.path().join(format!("{name}-argocd"));
        bundle(&d, &[criteria, &["-d", "argocd"], &repo[..]].concat());
        dirs.push(d);
    }
    // Scheduling flags change the rendered manifests: check that form too.
    let d = tmp.path().join("eks-scheduled");
    bundle(
        &d,
        &[
            &eks[..],
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
    dirs.push(d);

    let mut files = Vec::new();
    for d in &dirs {
        yaml_files(d, &mut files);
    }
    let mut accepted: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut namespaces = std::collections::BTreeSet::from(["argocd".to_string()]);
    let mut docs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        use serde::Deserialize;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            if v.is_null() {
                continue;
            }
            if let Some(ns) = v["metadata"]["namespace"].as_str() {
                namespaces.insert(ns.to_string());
            }
            if let Some(ns) = v["spec"]["destination"]["namespace"].as_str() {
                namespaces.insert(ns.to_string());
            }
            let parent = f.parent().unwrap();
            let comp_dir = if parent.ends_with("manifests") {
                parent.parent().unwrap()
            } else {
                parent
            };
            docs.push((f.clone(), comp_dir.to_path_buf(), v));
        }
    }
    for ns in &namespaces {
        c.kubectl(&["create", "namespace", ns], None);
    }
    // The bundles' own CRDs are created for real, so the custom resources
    // that use them are checked too. The test server (Kubernetes 1.20)
    // predates `x-kubernetes-validations` (1.25), which the upstream Gateway
    // API CRDs use, so kubectl's client-side schema check is off for CRDs.
    let mut crds = Vec::new();
    let mut too_new = Vec::new();
    for (_, _, v) in &docs {
        if v["kind"] == "CustomResourceDefinition" {
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            let (ok, out) = c.try_kubectl(
                &["create", "--validate=false", "-f", "-"],
                &serde_json::to_string(v).unwrap(),
            );
            if ok || out.contains("AlreadyExists") {
                crds.push(name);
            } else if out.contains("default: Invalid value: \"null\"") {
                // The upstream Gateway API (v1.2) and Inference Extension
                // CRDs need Kubernetes 1.26+: a 1.20 server refuses their
                // `default: ""` fields. Their custom resources are left
                // out below.
                too_new.push(name);
            } else {
                panic!("the server refused CRD {name}:\n{out}");
            }
        }
    }
    eprintln!("CRDs this 1.20 server is too old for: {too_new:?}");
    for crd in &crds {
        c.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{crd}"),
            ],
            None,
        );
    }
    for (f, _, v) in &docs {
        let kind = v["kind"].as_str().unwrap();
        let name = v["metadata"]["name"].as_str().unwrap_or("?");
        let api = v["apiVersion"].as_str().unwrap();
        let what = format!(
            "{} {kind}/{name}",
            f.strip_prefix(tmp.path()).unwrap().display()
        );
        if kind == "CustomResourceDefinition" {
            if crds.iter().any(|c| c == name) {
                accepted.push(what);
            } else {
                unknown.push(what);
            }
            continue;
        }
        let body = serde_json::to_string(v).unwrap();
        // create, not apply: the last-applied annotation of a large object
        // can be over the server's annotation limit.
        let (ok, out) = c.try_kubectl(&["create", "--dry-run=server", "-f", "-"], &body);
        if ok || out.contains("AlreadyExists") {
            accepted.push(what);
        } else if out.contains("no matches for kind")
            && !matches!(
                api,
                "v1" | "apps/v1" | "argoproj.io/v1alpha1" | "nvidia.com/v1"
            )
        {
            unknown.push(what);
        } else {
            panic!(
                "the server refused {what}:\n{out}\n{}",
                serde_yaml_ng::to_string(v).unwrap()
            );
        }
    }
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
            u.contains(" Skyhook/")
                || u.contains(" ClusterTrainingRuntime/")
                || u.contains(" GatewayParameters/")
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
    c.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/skyhooks.skyhook.nvidia.com",
        ],
        None,
    );
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
    let script = |name: &str| {
        let out = Command::new("bash")
            .arg(dir.join(name))
            .args(["--retries", "0"])
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
        .map(|l| {
            l.strip_prefix("upgrade --install ")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(installed, order);
    assert!(calls.contains(&format!(
        "upgrade --install gpu-operator gpu-operator --version v25.10.1 --namespace gpu-operator --create-namespace --values {}/gpu-operator/values.yaml --repo https://helm.ngc.nvidia.com/nvidia --wait --timeout 10m",
        dir.display()
    )), "{calls}");
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
