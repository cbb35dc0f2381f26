//! The configuration file's cluster settings against the test cluster
//! (`.ci/kube`; ignored in a plain `cargo test`, failing when it is not
//! running): the shared `cluster` section's kubeconfig reaches `recipe -o
//! cm://` and `bundle -r cm://`, `AICR_KUBECONFIG` beats it, `-k` beats
//! both.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cluster::{cluster, unique, Cluster};
use common::*;

/// A namespace of this test, deleted at the end.
struct Ns<'a> {
    name: String,
    cluster: &'a Cluster,
}

impl Drop for Ns<'_> {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .try_kubectl(&["delete", "namespace", &self.name, "--wait=false"], "");
    }
}

/// The test cluster's kubeconfig with its server moved to a closed port.
fn unreachable_kubeconfig(c: &Cluster, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&c.kubeconfig).unwrap();
    let server = c.server();
    assert!(text.contains(&server), "the kubeconfig names {server}");
    let p = dir.join("unreachable-kubeconfig");
    std::fs::write(&p, text.replace(&server, "https://127.0.0.1:1")).unwrap();
    p
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = aicr();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("binary runs")
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn the_cluster_section_reaches_configmaps_and_each_layer_beats_it() {
    let c = cluster();
    let ns = Ns {
        name: unique("aicr-cfg"),
        cluster: &c,
    };
    c.kubectl(&["create", "namespace", &ns.name], None);
    let tmp = tempfile::tempdir().unwrap();
    let real = c.kubeconfig.to_str().unwrap().to_string();
    let bad = unreachable_kubeconfig(&c, tmp.path());
    let bad = bad.to_str().unwrap();
    let cm = format!("cm://{}/recipe", ns.name);
    let config = |kubeconfig: &str| {
        let p = tmp.path().join("aicr.yaml");
        std::fs::write(
            &p,
            format!(
                "apiVersion: aicr.nvidia.com/v1alpha1\nkind: AICRConfig\ncluster:\n  kubeconfig: {kubeconfig}\nrecipe:\n  service: eks\n  accelerator: h100\n  intent: training\n  os: ubuntu\n  output: {cm}\nbundle:\n  recipe: {cm}\n"
            ),
        )
        .unwrap();
        p
    };

    // The file alone: recipe written to the ConfigMap, bundle reads it.
    let cfg = config(&real);
    let cfg = cfg.to_str().unwrap();
    let out = run_env(&["--config", cfg, "recipe"], &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let data = c.kubectl(
        &[
            "get",
            "configmap",
            "recipe",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.data}",
        ],
        None,
    );
    assert!(data.contains("RecipeResult"), "{data}");
    let dir = tmp.path().join("b");
    let out = run_env(
        &["--config", cfg, "bundle", "-o", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(dir.join("checksums.txt").is_file());

    // The file names an unreachable server: AICR_KUBECONFIG beats it.
    let cfg = config(bad);
    let cfg = cfg.to_str().unwrap();
    let out = run_env(&["--config", cfg, "recipe"], &[]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let out = run_env(&["--config", cfg, "recipe"], &[("AICR_KUBECONFIG", &real)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // ... and -k beats AICR_KUBECONFIG.
    let out = run_env(
        &["--config", cfg, "recipe", "-k", &real],
        &[("AICR_KUBECONFIG", bad)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_env(
        &[
            "--config",
            cfg,
            "bundle",
            "-o",
            dir.to_str().unwrap(),
            "-k",
            bad,
        ],
        &[("AICR_KUBECONFIG", &real)],
    );
    assert_eq!(code(&out), 6, "{}", stderr(&out));
}
