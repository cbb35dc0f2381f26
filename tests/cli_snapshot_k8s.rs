//! `aicr snapshot` against a real kube-apiserver (started by `.ci/run` from
//! `.ci/kube/`): server version, this node's details, labels and taints,
//! images in use, the ClusterPolicy, and what an unreachable server, a wrong
//! token or missing permissions look like. The tests that need the server
//! are ignored in a plain `cargo test` and fail, never skip, when run
//! without it; `unreachable_server` needs none.

mod common;

use std::path::PathBuf;

use common::cluster::*;
use common::*;
use serde_json::Value;

impl Cluster {
    /// A copy of the admin kubeconfig that authenticates with `token`.
    fn with_token(&self, token: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kubeconfig");
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("token:") {
                    format!("    token: {token}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&kc, text.join("\n")).unwrap();
        (dir, kc)
    }

    fn snapshot(&self, kubeconfig: &std::path::Path, node: &str) -> Value {
        let out = aicr()
            .args([
                "snapshot",
                "--filter",
                "k8s",
                "-t",
                "json",
                "--no-timestamp",
                "-k",
                kubeconfig.to_str().unwrap(),
                "--node-name",
                node,
            ])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    }
}

fn sub<'a>(snap: &'a Value, kind: &str, name: &str) -> &'a Value {
    let m = snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind}: {snap}"));
    m["subtypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subtype"] == name)
        .unwrap_or_else(|| panic!("no {kind}.{name}: {m}"))
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn reads_the_cluster() {
    let c = cluster();
    let node = unique("gpu-node");
    let ns = unique("aicr-snap");
    c.kubectl(&["apply", "-f", "-"], Some(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n  labels:\n    nvidia.com/gpu.product: NVIDIA-H200\n    node.kubernetes.io/instance-type: p5e.48xlarge\nspec:\n  providerID: aws:///us-east-1a/i-0123456789abcdef0\n  taints:\n    - key: nvidia.com/gpu\n      value: present\n      effect: NoSchedule\nstatus:\n  capacity:\n    nvidia.com/gpu: \"8\"\n  nodeInfo:\n    kubeletVersion: v1.33.5-eks-3025e55\n    containerRuntimeVersion: containerd://1.7.27\n    osImage: Ubuntu 24.04.3 LTS\n    kernelVersion: 6.8.0-1024-aws\n    architecture: amd64\n    operatingSystem: linux\n    bootID: \"\"\n    machineID: \"\"\n    systemUUID: \"\"\n    kubeProxyVersion: \"\"\n"
    )));
    c.kubectl(&["create", "namespace", &ns], None);
    c.kubectl(&["apply", "-n", &ns, "-f", "-"], Some(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: trainer\nspec:\n  automountServiceAccountToken: false\n  initContainers:\n    - name: init\n      image: registry.example/aicr-test/init:1\n  containers:\n    - name: a\n      image: nvcr.io/nvidia/pytorch:25.01-py3\n    - name: b\n      image: registry.example/aicr-test/sidecar:2\n",
    ));
    let crd = std::fs::read_to_string(fixture("crds/gpu-operator-clusterpolicy-crd.yaml")).unwrap();
    c.kubectl(&["create", "-f", "-"], Some(&crd));
    // The CRD is served a moment after it is created.
    let policy = "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata:\n  name: cluster-policy\nspec:\n  driver:\n    enabled: true\n    version: 580.105.08\n  toolkit:\n    enabled: true\n  devicePlugin:\n    enabled: true\n  dcgm:\n    enabled: true\n  dcgmExporter:\n    enabled: true\n  gfd:\n    enabled: true\n  nodeStatusExporter:\n    enabled: false\n  operator:\n    defaultRuntime: containerd\n  daemonsets:\n    tolerations:\n      - operator: Exists\n";
    let mut last_error = String::new();
    let mut applied = false;
    for _ in 0..50 {
        let (ok, out) = c.try_kubectl(&["apply", "-f", "-"], policy);
        if ok {
            applied = true;
            break;
        }
        last_error = out;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(applied, "ClusterPolicy could not be created: {last_error}");

    let snap = c.snapshot(&c.kubeconfig, &node);
    assert_eq!(snap["metadata"]["source-node"], node.as_str());
    let server = &sub(&snap, "K8s", "server")["data"];
    assert!(
        server["version"].as_str().unwrap().starts_with("v1."),
        "{server}"
    );
    assert_eq!(server["major"], "1");
    let n = &sub(&snap, "K8s", "node")["data"];
    assert_eq!(n["name"], node.as_str());
    assert_eq!(n["kubelet-version"], "v1.33.5-eks-3025e55");
    assert_eq!(n["container-runtime"], "containerd://1.7.27");
    assert_eq!(n["os-image"], "Ubuntu 24.04.3 LTS");
    assert_eq!(n["provider-id"], "aws:///us-east-1a/i-0123456789abcdef0");
    assert_eq!(n["capacity.nvidia.com/gpu"], "8");
    let images = &sub(&snap, "K8s", "image")["data"];
    assert!(
        images["nvcr.io/nvidia/pytorch:25.01-py3"].as_i64().unwrap() >= 1,
        "{images}"
    );
    assert!(
        images["registry.example/aicr-test/init:1"]
            .as_i64()
            .unwrap()
            >= 1,
        "init containers count: {images}"
    );
    let policy = &sub(&snap, "K8s", "policy")["data"];
    assert_eq!(policy["name"], "cluster-policy");
    assert_eq!(policy["driver.version"], "580.105.08");
    assert_eq!(policy["driver.enabled"], true);
    assert_eq!(
        policy["daemonsets.tolerations"],
        "[{\"operator\":\"Exists\"}]"
    );
    let labels = &sub(&snap, "NodeTopology", "label")["data"];
    assert_eq!(labels["nvidia.com/gpu.product"], "NVIDIA-H200");
    let taints = &sub(&snap, "NodeTopology", "taint")["data"];
    assert_eq!(taints["nvidia.com/gpu"], "present:NoSchedule");
    let summary = &sub(&snap, "NodeTopology", "summary")["data"];
    assert!(summary["gpu-nodes"].as_i64().unwrap() >= 1, "{summary}");
    assert!(summary["nodes"].as_i64().unwrap() >= summary["gpu-nodes"].as_i64().unwrap());

    // A node the cluster does not have: its subtypes say so, the rest stays.
    let snap = c.snapshot(&c.kubeconfig, "no-such-node");
    assert_eq!(
        sub(&snap, "K8s", "node")["context"]["unavailable"],
        "node \"no-such-node\" is not in the cluster"
    );
    assert_eq!(
        sub(&snap, "NodeTopology", "taint")["context"]["unavailable"],
        "node \"no-such-node\" is not in the cluster"
    );
    assert!(sub(&snap, "K8s", "server")["data"]["version"].is_string());
}

/// A token that the server does not know: both measurements say unauthorized.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn wrong_token_is_unauthorized() {
    let c = cluster();
    let (_dir, kc) = c.with_token("not-a-valid-token");
    let snap = c.snapshot(&kc, "any-node");
    for m in snap["measurements"].as_array().unwrap() {
        let reason = m["unavailable"].as_str().unwrap_or_else(|| panic!("{m}"));
        assert!(reason.starts_with("unauthorized"), "{reason}");
    }
}

/// A service account with no permissions: the version is public to any
/// authenticated user, the listings are forbidden and say so.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn missing_permissions_are_reported_per_subtype() {
    let c = cluster();
    let ns = unique("aicr-rbac");
    c.kubectl(&["create", "namespace", &ns], None);
    c.kubectl(&["create", "serviceaccount", "nobody", "-n", &ns], None);
    let token = c.kubectl(&["create", "token", "nobody", "-n", &ns], None);
    let (_dir, kc) = c.with_token(token.trim());
    let snap = c.snapshot(&kc, "any-node");
    assert!(
        sub(&snap, "K8s", "server")["data"]["version"].is_string(),
        "{snap}"
    );
    for (kind, name) in [
        ("K8s", "node"),
        ("K8s", "image"),
        ("K8s", "policy"),
        ("NodeTopology", "summary"),
    ] {
        let reason = sub(&snap, kind, name)["context"]["unavailable"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind}.{name}: {snap}"))
            .to_string();
        assert!(reason.starts_with("forbidden"), "{kind}.{name}: {reason}");
    }
}

/// Nothing listens: the measurements say the server cannot be reached, and
/// the snapshot still succeeds. Needs no cluster.
#[test]
fn unreachable_server() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n",
    )
    .unwrap();
    let out = aicr()
        .args([
            "snapshot",
            "--filter",
            "k8s",
            "-t",
            "json",
            "-k",
            kc.to_str().unwrap(),
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for m in snap["measurements"].as_array().unwrap() {
        let reason = m["unavailable"].as_str().unwrap_or_else(|| panic!("{m}"));
        assert!(
            reason.starts_with("cannot reach the API server"),
            "{reason}"
        );
    }
    assert!(
        stderr(&out).contains("warning: k8s: unavailable: cannot reach the API server"),
        "{}",
        stderr(&out)
    );
}
