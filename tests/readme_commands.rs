//! The README is true line by line: every `aicr ...` command line in its
//! code blocks is run, in order, in one scratch directory (so a file one
//! line writes is there for the next, as for a reader following along), and
//! its exit code is checked: 0, unless [`EXCEPTIONS`] says otherwise and
//! why. Commands that need a cluster or the network are skipped by that
//! same list, with the reason; every entry of the list must still match a
//! README line. The other tests here check the README's promises that are
//! not a command's exit code: `--version` after a subcommand, the fields
//! of `--log-json` errors, `--debug` sources, the file counts of `bundle`
//! and `verify`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, fixture, run, stderr, stdout};

/// The criteria flags `...` stands for in the README's command lines.
const CRITERIA: &str = "--service eks --accelerator h100 --intent training --os ubuntu";

enum Expect {
    /// Runs, and exits with this code, for the reason given.
    Exit(i32, &'static str),
    /// Not run here, for the reason given.
    Skip(&'static str),
}

/// Command lines (as the README writes them, comment removed) whose outcome
/// here is not exit 0.
const EXCEPTIONS: &[(&str, Expect)] = &[
    (
        "aicr snapshot --root /host",
        Expect::Exit(3, "no /host here: the root must exist"),
    ),
    (
        "aicr snapshot -k ~/.kube/config --node-name gpu-node-1",
        Expect::Exit(3, "the test's HOME has no ~/.kube/config: -k names a missing file"),
    ),
    (
        "aicr snapshot --agent -n gpu-team -o node.yaml",
        Expect::Skip("needs a cluster with a GPU node (tests/cli_snapshot_agent.rs runs it)"),
    ),
    (
        "aicr snapshot --agent --privileged --timeout 10m",
        Expect::Skip("needs a cluster with a GPU node"),
    ),
    (
        "aicr snapshot --agent --node-selector kubernetes.io/hostname=gpu-1 --toleration dedicated=gpu:NoSchedule",
        Expect::Skip("needs a cluster with a GPU node"),
    ),
    (
        "aicr snapshot --agent --all-nodes --dry-run",
        Expect::Exit(6, "lists the cluster's nodes: no cluster is configured here"),
    ),
    (
        "aicr snapshot --agent --all-nodes -o snaps/ --parallel 20",
        Expect::Skip("needs a cluster with GPU nodes (tests/cli_snapshot_agent.rs)"),
    ),
    (
        "aicr snapshot --agent --all-nodes --node-selector pool=h100",
        Expect::Skip("needs a cluster with GPU nodes"),
    ),
    (
        "aicr query ... --selector 'components.\"name.with.dots\".values'",
        Expect::Exit(3, "shows how to quote a key with dots; no component has one: a missing key is exit 3"),
    ),
    (
        "aicr diff before.yaml after.yaml --fail-on-drift",
        Expect::Exit(1, "the two snapshots differ: drift is exit 1"),
    ),
    (
        "aicr diff --baseline golden.yaml snaps/ cm://gpu/extra",
        Expect::Skip("reads a ConfigMap: needs a cluster"),
    ),
    (
        "aicr validate -r recipe.yaml -s snapshot.yaml -t json --strict",
        Expect::Exit(1, "--strict: the checks skipped without a cluster fail the run"),
    ),
    (
        "aicr validate -r https://config.example.com/recipe.yaml -s - --ca-file corp-ca.pem < snapshot.yaml",
        Expect::Skip("needs the network and a private CA (tests/cli_validate_https.rs)"),
    ),
    (
        "aicr validate -r recipe.yaml --phase deployment -k ~/.kube/config --context prod",
        Expect::Exit(3, "the test's HOME has no ~/.kube/config"),
    ),
    (
        "aicr snapshot -o cm://gpu-operator/aicr-snapshot",
        Expect::Skip("writes a ConfigMap: needs a cluster (tests/cli_configmap.rs)"),
    ),
    (
        "aicr recipe -s cm://gpu-operator/aicr-snapshot --intent training -o cm://gpu-operator/aicr-recipe",
        Expect::Skip("ConfigMaps: needs a cluster (tests/cli_configmap.rs)"),
    ),
    (
        "aicr validate -r cm://gpu-operator/aicr-recipe -s cm://gpu-operator/aicr-snapshot --phase constraints",
        Expect::Skip("ConfigMaps: needs a cluster (tests/cli_configmap.rs)"),
    ),
    (
        "aicr bundle -r cm://gpu-operator/aicr-recipe -o ./bundle",
        Expect::Skip("ConfigMaps: needs a cluster (tests/cli_configmap.rs)"),
    ),
    (
        "aicr diff cm://gpu-operator/snap-monday cm://gpu-operator/snap-tuesday -k ~/.kube/config --context prod",
        Expect::Skip("ConfigMaps: needs a cluster"),
    ),
    (
        "aicr mirror list -r recipe.yaml",
        Expect::Skip("needs helm and the charts' repositories on the network (tests/cli_mirror.rs runs it against a local one)"),
    ),
    (
        "aicr mirror list -b ./bundle -t hauler > hauler.yaml",
        Expect::Skip("needs helm and the charts' repositories on the network (tests/cli_mirror.rs)"),
    ),
    (
        "aicr bundle -r recipe.yaml --vendor-charts --registry-mirror mirror.example.com:5000/gpu",
        Expect::Skip("needs helm and the charts' repositories on the network (tests/cli_airgap.rs)"),
    ),
    (
        "aicr recipe -n gpu-operator -s cm://aicr-snapshot --intent training",
        Expect::Exit(6, "reads a ConfigMap: no cluster is configured here (tests/cli_configmap.rs runs it on one)"),
    ),
];

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md reads")
}

/// The `aicr ...` command lines of the README's code blocks, continuation
/// lines joined and trailing comments removed, in order.
fn readme_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending: Option<String> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.trim();
        let joined = match pending.take() {
            Some(p) => format!("{p} {line}"),
            None if line.starts_with("aicr ") => line.to_string(),
            None => continue,
        };
        if let Some(head) = joined.strip_suffix('\\') {
            pending = Some(head.trim_end().to_string());
            continue;
        }
        let command = match joined.find(" #") {
            Some(at) => joined[..at].trim_end().to_string(),
            None => joined,
        };
        out.push(command);
    }
    out
}

/// The YAML block of the README that starts with `# NAME`.
fn readme_file(text: &str, name: &str) -> String {
    let start = text
        .find(&format!("```yaml\n# {name}\n"))
        .unwrap_or_else(|| panic!("the README shows no {name}"));
    let body = &text[start + "```yaml\n".len()..];
    body[..body.find("```").expect("the block ends")].to_string()
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

/// The scratch directory: the files the README's commands read.
fn workspace(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::create_dir(p.join("home")).expect("home");
    std::fs::write(p.join("criteria.yaml"), readme_file(text, "criteria.yaml")).expect("criteria");
    // A snapshot aicr detects service, GPU and OS from (recipe -s).
    copy(
        &fixture("snapshots/eks-h200-ubuntu.yaml"),
        &p.join("snapshot.yaml"),
    );
    copy(
        &fixture("diff/snapshot-before.yaml"),
        &p.join("before.yaml"),
    );
    copy(&fixture("diff/snapshot-after.yaml"), &p.join("after.yaml"));
    std::fs::create_dir(p.join("my-recipes")).expect("my-recipes");
    std::fs::write(
        p.join("my-recipes/registry.yaml"),
        "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents: []\n",
    )
    .expect("registry");
    dir
}

fn bin_dir() -> PathBuf {
    assert_cmd::cargo::cargo_bin("aicr")
        .parent()
        .expect("the binary's directory")
        .to_path_buf()
}

/// Runs one README line in `dir` as a shell would (pipes, redirects, `~`),
/// with `aicr` on PATH, no cluster configured and a deadline.
fn sh(dir: &Path, line: &str) -> std::process::Output {
    let line = line.replace(" ... ", &format!(" {CRITERIA} "));
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "bash", "-c", &format!("set -o pipefail; {line}")])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir.join("home"))
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AICR_")
            || matches!(
                k.as_str(),
                "KUBECONFIG" | "NODE_NAME" | "KUBERNETES_SERVICE_HOST" | "KUBERNETES_SERVICE_PORT"
            )
        {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("bash runs")
}

#[test]
fn every_readme_command_exits_as_documented() {
    let text = readme();
    let commands = readme_commands(&text);
    assert!(
        commands.len() > 40,
        "found only {} commands",
        commands.len()
    );
    // The list of exceptions names README lines that exist.
    for (line, _) in EXCEPTIONS {
        assert!(
            commands.iter().any(|c| c == line),
            "EXCEPTIONS names {line:?}, which the README no longer has"
        );
    }
    let dir = workspace(&text);
    let mut wrong = Vec::new();
    let mut ran = 0;
    for line in &commands {
        let expect = EXCEPTIONS.iter().find(|(l, _)| l == line).map(|(_, e)| e);
        let (want, why) = match expect {
            Some(Expect::Skip(why)) => {
                eprintln!("skipped: {line} ({why})");
                continue;
            }
            Some(Expect::Exit(code, why)) => (*code, *why),
            None => (0, "documented to succeed"),
        };
        let out = sh(dir.path(), line);
        ran += 1;
        let got = out.status.code().unwrap_or(-1);
        if got != want {
            wrong.push(format!(
                "{line}\n    exit {got}, want {want} ({why})\n    stderr: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(ran > 25, "ran only {ran} commands");
    assert!(wrong.is_empty(), "README commands:\n{}", wrong.join("\n"));
}

#[test]
fn the_extractor_joins_continuations_and_drops_comments() {
    let text = "x\n```sh\naicr a b   # note\naicr c \\\n  --d e\ncargo x\n```\naicr not-code\n";
    assert_eq!(readme_commands(text), ["aicr a b", "aicr c --d e"]);
}

#[test]
fn version_after_a_subcommand_is_the_version() {
    let top = run(&["--version"]);
    assert_eq!(code(&top), 0);
    assert!(stdout(&top).starts_with("aicr 0."), "{}", stdout(&top));
    for args in [
        &["recipe", "--version"][..],
        &["recipe", "-v"],
        &["bundle", "--version"],
        &["snapshot", "-v"],
        &["-v"],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), stdout(&top), "{args:?}");
    }
}

fn json_keys(line: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn log_json_usage_errors_have_the_fields_of_every_error() {
    let usage = run(&["--log-json", "recipe", "--bogus"]);
    let runtime = run(&["--log-json", "recipe", "--service", "nope"]);
    assert_eq!(code(&usage), 2);
    assert_eq!(code(&runtime), 2);
    let (u, r) = (stderr(&usage), stderr(&runtime));
    let u = u.lines().last().expect("a line");
    let r = r.lines().last().expect("a line");
    assert_eq!(json_keys(u), json_keys(r), "{u}\n{r}");
    assert_eq!(
        json_keys(u),
        ["class", "exit_code", "level", "message", "timestamp"]
    );
    let v: serde_json::Value = serde_json::from_str(u).expect("JSON");
    assert_eq!(v["class"], "INVALID_INPUT");
    assert_eq!(v["exit_code"], 2);
    assert!(v["message"].as_str().unwrap().contains("--bogus"), "{u}");
}

#[test]
fn debug_lines_name_the_module_never_a_source_path() {
    let out = run(&[
        "--debug",
        "recipe",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--os",
        "ubuntu",
    ]);
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("DEBUG") || l.contains(" INFO "))
        .collect();
    assert!(!lines.is_empty(), "no debug lines:\n{err}");
    for l in &lines {
        assert!(l.contains(" aicr::"), "no module: {l}");
        assert!(
            !l.contains(".rs:") && !l.contains("/src/") && !l.contains(".cargo"),
            "a path: {l}"
        );
    }
}

#[test]
fn bundle_and_verify_count_the_same_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("b");
    let b = run(&[
        "bundle",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--os",
        "ubuntu",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    let v = run(&["verify", out_dir.to_str().unwrap()]);
    assert_eq!(code(&v), 0, "{}", stderr(&v));
    let number = |text: &str, before: &str| -> usize {
        let at = text
            .find(before)
            .unwrap_or_else(|| panic!("{before:?} in {text}"));
        text[..at]
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a number before {before:?} in {text}"))
    };
    let bundled = number(&stdout(&b), " files and checksums.txt");
    let verified = number(&stdout(&v), " files match checksums.txt");
    assert_eq!(bundled, verified, "{}\n{}", stdout(&b), stdout(&v));
    let listed = std::fs::read_to_string(out_dir.join("checksums.txt"))
        .expect("checksums.txt")
        .lines()
        .count();
    assert_eq!(bundled, listed);
}
