//! Whole runs of `aicr snapshot --agent`: the manifests of `--dry-run`
//! (nothing created, no cluster needed), the flags refused before any
//! request, and, on a test cluster with a scheduler, controller-manager and
//! kwok, whole agent runs (see the cluster tests below).

mod common;

use common::*;

fn dry_run(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["snapshot", "--agent", "--dry-run", "--run-id", "0123abcd"];
    args.extend_from_slice(extra);
    aicr().args(&args).output().unwrap()
}

/// The default objects: restricted pod, GPU nodes only, least rights.
#[test]
fn dry_run_prints_the_objects_and_needs_no_cluster() {
    let out = aicr()
        .args([
            "snapshot",
            "--agent",
            "--dry-run",
            "--run-id",
            "0123abcd",
            "-n",
            "gpu-team",
        ])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let text = stdout(&out).replace(env!("CARGO_PKG_VERSION"), "[VERSION]");
    settings().bind(|| insta::assert_snapshot!("agent_dry_run_default", text));
    let docs: Vec<serde_json::Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(parse_yaml)
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "Job"
        ]
    );
    for d in &docs {
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/instance"],
            "0123abcd"
        );
    }
    // Same input, same bytes.
    assert_eq!(
        stdout(&out),
        stdout(&dry_run(&["-n", "gpu-team"])),
        "the dry run is deterministic with --run-id"
    );
}

#[test]
fn dry_run_options() {
    let out = dry_run(&[
        "--privileged",
        "--image",
        "registry.example/aicr:test",
        "--image-pull-secret",
        "regcred",
        "--service-account-name",
        "snapshotter",
        "--node-selector",
        "kubernetes.io/hostname=gpu-1",
        "--toleration",
        "dedicated=gpu:NoSchedule",
        "--toleration",
        "example.com/maintenance",
        "--require-gpu",
        "--job-name",
        "mine",
        "--timeout",
        "90s",
        "--filter",
        "gpu,os",
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    // An existing ServiceAccount: none is created.
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i["kind"] != "ServiceAccount"));
    let job = items.last().unwrap();
    assert_eq!(job["metadata"]["name"], "mine-snapshot-0123abcd");
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 90);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "snapshotter");
    assert_eq!(pod["hostPID"], true);
    assert_eq!(
        pod["nodeSelector"],
        serde_json::json!({"kubernetes.io/hostname": "gpu-1"})
    );
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
            {"key": "example.com/maintenance", "operator": "Exists"}
        ])
    );
    assert_eq!(
        pod["imagePullSecrets"],
        serde_json::json!([{"name": "regcred"}])
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/aicr:test");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(
        c["args"],
        serde_json::json!([
            "snapshot",
            "-o",
            "cm://default/mine-snapshot-0123abcd",
            "--root",
            "/host",
            "--filter",
            "gpu,os"
        ])
    );
    assert_eq!(
        c["volumeMounts"],
        serde_json::json!([{"name": "host", "mountPath": "/host", "readOnly": true}])
    );
}

/// Environment variables of Go aicr's flags.
#[test]
fn dry_run_environment() {
    let out = aicr()
        .args(["snapshot", "--agent", "--dry-run", "--run-id", "x1"])
        .env("AICR_NAMESPACE", "from-env")
        .env("AICR_IMAGE", "example/aicr:env")
        .env("AICR_RUNTIME_CLASS", "nvidia")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("namespace: from-env"), "{text}");
    assert!(text.contains("image: example/aicr:env"), "{text}");
    assert!(text.contains("runtimeClassName: nvidia"), "{text}");
}

/// Bad agent flags: exit 2 with what is allowed, before any request.
#[test]
fn bad_agent_flags() {
    let cases: &[&[&str]] = &[
        &["snapshot", "--dry-run"],
        &["snapshot", "--privileged"],
        &["snapshot", "-n", "x"],
        &["snapshot", "--agent", "--dry-run", "-n", "Bad_NS"],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--toleration",
            "k=v:Sometimes",
        ],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--toleration",
            "bad key",
        ],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--node-selector",
            "novalue",
        ],
        &["snapshot", "--agent", "--dry-run", "--run-id", "NOT-HEX"],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--job-name",
            "a-very-long-job-name-prefix",
        ],
        &["snapshot", "--agent", "--dry-run", "--filter", "os"],
        &["snapshot", "--agent", "--dry-run", "--exclude", "gpu,k8s"],
        &["snapshot", "--agent", "--dry-run", "--root", "/tmp"],
        &["snapshot", "--agent", "--dry-run", "--timeout", "2h"],
        &["snapshot", "--agent", "--dry-run", "-t", "table"],
        &["snapshot", "--agent", "--dry-run", "-o", "cm://ns/name"],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--require-gpu",
            "--runtime-class",
            "nvidia",
        ],
    ];
    let mut all = String::new();
    for args in cases {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        all.push_str(&transcript(args));
    }
    settings().bind(|| insta::assert_snapshot!("agent_bad_flags", all));
}

/// Without a cluster the run stops before creating anything: exit 6.
#[test]
fn no_cluster_is_unavailable() {
    let out = aicr()
        .args(["snapshot", "--agent"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("no cluster configured"),
        "{}",
        stderr(&out)
    );
}
