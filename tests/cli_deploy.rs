//! deploy.sh and undeploy.sh without a cluster (their options, refusals and
//! `--dry-run`), and the helmfile deployer's `helmfile.yaml`. The runs
//! against the test cluster are in `cli_deploy_k8s.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn bundle(dir: &Path, deployer: &str) -> PathBuf {
    let out = run(&[
        "bundle",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--os",
        "ubuntu",
        "-d",
        deployer,
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    dir.to_path_buf()
}

/// Runs a script with no helm or kubectl on PATH; (code, stdout, stderr).
fn script(dir: &Path, name: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg(dir.join(name))
        .args(args)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A script's output with its times replaced: the elapsed-time prefix of
/// each log line (`[   12s] `) by `[T] `, a table's time column by `Ns`.
fn untimed(out: &str) -> String {
    out.lines()
        .map(|l| {
            let l = match (l.strip_prefix('['), l.find("s] ")) {
                (Some(rest), Some(end)) if rest[..end - 1].trim().parse::<u64>().is_ok() => {
                    format!("[T] {}", &l[end + 3..])
                }
                _ => l.to_string(),
            };
            match l.rsplit_once(' ') {
                Some((head, last))
                    if last.len() > 1
                        && last.ends_with('s')
                        && last[..last.len() - 1].parse::<u64>().is_ok() =>
                {
                    format!("{head} Ns")
                }
                _ => l,
            }
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn deploy_sh_refuses_bad_options_with_what_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(&tmp.path().join("b"), "helm");
    for (args, want) in [
        (&["--timeout", "5x"][..], "error: --timeout needs seconds or a duration such as 300, 90s, 10m or 1h\n"),
        (&["--timeout", "0"], "error: --timeout must be between 1 second and 24h\n"),
        (&["--timeout", "25h"], "error: --timeout must be between 1 second and 24h\n"),
        (&["--retries", "x"], "error: --retries needs a non-negative integer\n"),
        (&["--only", "nope"], "error: --only: no component nope in this bundle; its components: aws-ebs-csi-driver aws-efa cert-manager kube-prometheus-stack k8s-ephemeral-storage-metrics prometheus-adapter skyhook-operator skyhook-customizations gpu-operator kai-scheduler nvidia-dra-driver-gpu nvsentinel\n"),
        (&["--skip", "cert-manager,nope"], "error: --skip: no component nope in this bundle; its components: aws-ebs-csi-driver aws-efa cert-manager kube-prometheus-stack k8s-ephemeral-storage-metrics prometheus-adapter skyhook-operator skyhook-customizations gpu-operator kai-scheduler nvidia-dra-driver-gpu nvsentinel\n"),
        (&["--only", "cert-manager", "--skip", "cert-manager"], "error: --only/--skip leave no component to deploy\n"),
        (&["--skip-preflight=nope"], "error: --skip-preflight: no check nope; the checks: cluster, namespaces, webhooks, crds, dependencies\n"),
        (&["--context", ""], "error: --context needs a context name\n"),
    ] {
        let (code, out, err) = script(&b, "deploy.sh", args);
        assert_eq!((code, out.as_str(), err.as_str()), (2, "", want), "{args:?}");
    }
    // --help: the options, the pre-flight checks and the exit codes.
    let (code, out, _) = script(&b, "deploy.sh", &["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Usage: ./deploy.sh [options]\n  --context NAME "),
        "{out}"
    );
    assert!(
        out.contains(
            "\n  webhooks      no webhook configuration points at a missing service in a\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("Exit codes: 0 deployed; 1 a pre-flight check or a component failed;\n2 bad usage; 3 the context does not exist; 6 helm, kubectl or the cluster\nis unavailable.\n"), "{out}");
    let (code, out, _) = script(&b, "undeploy.sh", &["-h"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("\n  --delete-crds        delete the CRDs of the charts too"),
        "{out}"
    );
    assert!(
        out.contains("\nExit codes: 0 removed; 1 a step failed"),
        "{out}"
    );

    // Without helm or kubectl, a real run stops before doing anything.
    let (code, _, err) = script(&b, "deploy.sh", &[]);
    assert_eq!(code, 6);
    assert_eq!(err, "error: helm is not installed or not on PATH\n");
    let (code, _, err) = script(&b, "undeploy.sh", &["--timeout", "1d"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: --timeout needs seconds or a duration such as 300, 90s, 10m or 1h\n"
    );
}

#[test]
fn deploy_sh_dry_run_prints_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(&tmp.path().join("b"), "helm");
    let dir = b.display().to_string();
    // A plain number of seconds is a --timeout; the asynchronous component
    // (kai-scheduler) goes without --wait, its readiness awaited after.
    let (code, out, err) = script(
        &b,
        "deploy.sh",
        &[
            "--dry-run",
            "--timeout",
            "300",
            "--only",
            "cert-manager,kai-scheduler",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = untimed(&out.replace(&dir, "[BUNDLE]"));
    let plan: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("--description"))
        .collect();
    assert_eq!(
        plan,
        [
            "[T] pre-flight checks not run (--dry-run reads nothing from the cluster)",
            "[T] warning: kai-scheduler depends on gpu-operator, which is not selected",
            "[T] pre-flight dependencies: warnings above",
            "[T] ==> 3/12 cert-manager (cert-manager)",
            "kubectl get namespace cert-manager || { kubectl create namespace cert-manager && kubectl label namespace cert-manager aicr.nvidia.com/created-by=deploy.sh; }",
            "[T] ==> 10/12 kai-scheduler (kai-scheduler)",
            "kubectl get namespace kai-scheduler || { kubectl create namespace kai-scheduler && kubectl label namespace kai-scheduler aicr.nvidia.com/created-by=deploy.sh; }",
            "# await deployment/kai-operator in kai-scheduler rolled out",
            "# await CRD queues.scheduling.run.ai Established",
            "# await CRD podgroups.scheduling.run.ai Established",
            "",
            "COMPONENT                        NAMESPACE                RESULT     TIME",
            "aws-ebs-csi-driver               kube-system              skipped    -",
            "aws-efa                          kube-system              skipped    -",
            "cert-manager                     cert-manager             installed  Ns",
            "kube-prometheus-stack            monitoring               skipped    -",
            "k8s-ephemeral-storage-metrics    monitoring               skipped    -",
            "prometheus-adapter               monitoring               skipped    -",
            "skyhook-operator                 skyhook                  skipped    -",
            "skyhook-customizations           skyhook                  skipped    -",
            "gpu-operator                     gpu-operator             skipped    -",
            "kai-scheduler                    kai-scheduler            installed  Ns",
            "nvidia-dra-driver-gpu            nvidia-dra-driver        skipped    -",
            "nvsentinel                       nvsentinel               skipped    -",
            "[T] deployed: every selected component",
        ],
        "{out}"
    );
    let installs: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("--description"))
        .collect();
    assert_eq!(installs.len(), 2, "{out}");
    assert!(installs[0].starts_with("helm upgrade --install cert-manager cert-manager --version v1.17.2 --namespace cert-manager --create-namespace --values [BUNDLE]/cert-manager/values.yaml --description aicr-bundle\\ "), "{out}");
    assert!(
        installs[0].ends_with(" --repo https://charts.jetstack.io --wait --timeout 300s "),
        "{out}"
    );
    assert!(installs[1].starts_with("helm upgrade --install kai-scheduler oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler --version v0.13.0 "), "{out}");
    assert!(!installs[1].contains("--wait"), "{out}");

    // A dependency left out is named (checked against the cluster in a
    // real run; only a warning in a dry run).
    let (code, out, _) = script(
        &b,
        "deploy.sh",
        &["--dry-run", "--skip", "cert-manager", "--context", "prod"],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("] warning: gpu-operator depends on cert-manager, which is not selected\n"),
        "{out}"
    );
    assert!(
        out.contains("] pre-flight dependencies: warnings above\n"),
        "{out}"
    );
    assert!(
        out.contains("helm --kube-context prod upgrade --install gpu-operator "),
        "{out}"
    );
    assert!(
        out.contains("kubectl --context prod apply --namespace gpu-operator -f "),
        "{out}"
    );

    // undeploy.sh: reverse order; the CRDs only with --delete-crds.
    let (code, out, err) = script(
        &b,
        "undeploy.sh",
        &[
            "--dry-run",
            "--only",
            "gpu-operator,cert-manager",
            "--delete-crds",
            "--timeout",
            "90",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = untimed(&out.replace(&dir, "[BUNDLE]"));
    assert_eq!(
        out.lines().collect::<Vec<_>>()[..8],
        [
            "[T] ==> gpu-operator (gpu-operator)",
            "helm uninstall gpu-operator --namespace gpu-operator --ignore-not-found --wait --timeout 90s ",
            "kubectl delete --namespace gpu-operator --ignore-not-found -f [BUNDLE]/gpu-operator/manifests/dcgm-exporter.yaml ",
            "[T] ==> cert-manager (cert-manager)",
            "helm uninstall cert-manager --namespace cert-manager --ignore-not-found --wait --timeout 90s ",
            "kubectl delete crd -l aicr.nvidia.com/component=cert-manager\\,aicr.nvidia.com/namespace=cert-manager ",
            "kubectl delete crd -l aicr.nvidia.com/component=gpu-operator\\,aicr.nvidia.com/namespace=gpu-operator ",
            "# namespace cert-manager: deleted when labelled aicr.nvidia.com/created-by=deploy.sh and it holds no other release (nor PVCs, without --delete-pvcs)",
        ],
        "{out}"
    );
}

#[test]
fn helmfile_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(&tmp.path().join("b"), "helmfile");
    let mut files: Vec<String> = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files.sort();
    assert!(files.contains(&"helmfile.yaml".to_string()), "{files:?}");
    assert!(!files.contains(&"deploy.sh".to_string()), "{files:?}");
    let text = std::fs::read_to_string(b.join("helmfile.yaml")).unwrap();
    insta::assert_snapshot!("helmfile_yaml", text);
    let doc = parse_yaml(&text);
    // Releases in deployment order, each needing the one before it.
    let recipe = read_yaml(&b.join("recipe.yaml"));
    let order: Vec<&str> = recipe["deploymentOrder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let releases = doc["releases"].as_array().unwrap();
    let names: Vec<&str> = releases
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, order);
    for pair in releases.windows(2) {
        let want = format!(
            "{}/{}",
            pair[0]["namespace"].as_str().unwrap(),
            pair[0]["name"].as_str().unwrap()
        );
        assert_eq!(pair[1]["needs"][0].as_str(), Some(want.as_str()));
    }
    // The same run twice writes the same bytes.
    let again = bundle(&tmp.path().join("again"), "helmfile");
    assert_eq!(
        std::fs::read_to_string(again.join("helmfile.yaml")).unwrap(),
        text
    );
    // verify covers it.
    let out = run(&["verify", b.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
