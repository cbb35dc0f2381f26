//! Whole runs of `aicr validate` offline: Go aicr's golden pair (the
//! eks/h100/training/ubuntu recipe against its mock snapshot) with every
//! check's status and reason, each exit code (0, 1, `--strict`,
//! `--fail-on-error=false`, 2, 3), the kind checks, the output formats and
//! reports (CTRF against CTRF's published schema, JUnit read back by a
//! parser and by a real JUnit consumer), several reports in one run, and
//! byte-identical output for the same input.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const RECIPE: &str = "tests/fixtures/go-aicr-v0.11.1/golden/recipe-eks-h100-training-ubuntu.yaml";
const SNAP: &str = "tests/fixtures/go-aicr-v0.11.1/golden/mock-snapshot-cuj1.yaml";

/// The golden recipe with its top-level constraints replaced by
/// `constraints` (a YAML list, or `[]`) and no validation phases, written
/// into `dir`.
fn recipe_with(dir: &Path, name: &str, constraints: &str) -> PathBuf {
    let golden = std::fs::read_to_string(RECIPE).unwrap();
    let head = &golden[..golden.find("constraints:\n").unwrap()];
    let refs =
        &golden[golden.find("componentRefs:\n").unwrap()..golden.find("validation:\n").unwrap()];
    let text = format!("{head}constraints:{constraints}\n{refs}");
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const PASSING: &str = "
  - name: K8s.server.version
    value: '>= 1.32.4'
  - name: OS.release.ID
    value: ubuntu";

const FAILING: &str = "
  - name: K8s.server.version
    value: '>= 1.34'
  - name: OS.release.ID
    value: ubuntu";

const SKIPPING: &str = "
  - name: OS.release.ID
    value: ubuntu
  - name: GPU.smi.gpu.model
    value: H100";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn golden_pair_every_check_as_a_table_and_as_yaml() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "validate_golden_table",
            transcript(&[
                "validate",
                "-r",
                RECIPE,
                "-s",
                SNAP,
                "--phase",
                "constraints",
                "-t",
                "table"
            ])
        );
        insta::assert_snapshot!(
            "validate_golden_yaml",
            transcript(&[
                "validate",
                "-r",
                RECIPE,
                "-s",
                SNAP,
                "--phase",
                "constraints"
            ])
        );
    });
}

#[test]
fn golden_pair_statuses_and_reasons() {
    let out = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "--phase",
        "constraints",
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["kind"], "ValidationResult");
    assert_eq!(doc["status"], "partial");
    assert_eq!(
        doc["summary"],
        serde_json::json!({"tests": 6, "passed": 3, "failed": 0, "skipped": 3})
    );
    let got: Vec<(String, String, String)> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("K8s.server.version >= 1.32.4", "passed", "expected >= 1.32.4, got v1.33.0"),
        ("OS.release.ID ubuntu", "passed", "expected ubuntu, got ubuntu"),
        ("OS.release.VERSION_ID 24.04", "passed", "expected 24.04, got 24.04"),
        (
            "OS.sysctl./proc/sys/kernel/osrelease >= 6.8",
            "skipped",
            "measurement absent: the snapshot's OS measurement has no subtype \"sysctl\"; expected >= 6.8",
        ),
        (
            "Deployment.gpu-operator.version >= v24.6.0",
            "skipped",
            "not in a snapshot: the deployment phase measures it in a live cluster; expected >= v24.6.0",
        ),
        (
            "nccl-all-reduce-bw >= 300",
            "skipped",
            "not in a snapshot: the performance phase measures it in a live cluster; expected >= 300",
        ),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
    // Partial is not a pass under --strict.
    let strict = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "--phase",
        "constraints",
        "--strict",
    ]);
    assert_eq!(code(&strict), 1, "{}", stderr(&strict));
}

#[test]
fn exit_codes_of_findings() {
    let dir = tempfile::tempdir().unwrap();
    let pass = recipe_with(dir.path(), "pass.yaml", PASSING);
    let fail = recipe_with(dir.path(), "fail.yaml", FAILING);
    let skip = recipe_with(dir.path(), "skip.yaml", SKIPPING);
    let (pass, fail, skip) = (s(&pass), s(&fail), s(&skip));
    for (args, want) in [
        (vec!["-r", pass], 0),
        (vec!["-r", pass, "--strict"], 0),
        (vec!["-r", fail], 1),
        (vec!["-r", fail, "--fail-on-error"], 1),
        (vec!["-r", fail, "--fail-on-error=true"], 1),
        (vec!["-r", fail, "--fail-on-error=false"], 0),
        (vec!["-r", fail, "--strict", "--fail-on-error=false"], 0),
        (vec!["-r", skip], 0),
        (vec!["-r", skip, "--strict"], 1),
        (vec!["-r", skip, "--strict", "--fail-on-error=false"], 0),
        (vec!["-r", pass, "--phase", "constraints"], 0),
        (vec!["-r", fail, "--phase", "all", "--no-cluster"], 1),
    ] {
        let mut full = vec![
            "validate",
            "-s",
            SNAP,
            "--phase",
            "constraints",
            "-t",
            "json",
        ];
        full.extend(&args);
        let out = run(&full);
        assert_eq!(code(&out), want, "{args:?}: {}", stderr(&out));
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        // The report is the same whatever the exit code.
        let status = if args[1] == fail {
            "fail"
        } else if args[1] == skip {
            "partial"
        } else {
            "pass"
        };
        assert_eq!(doc["status"], status, "{args:?}");
    }
    let out = run(&[
        "validate",
        "-s",
        SNAP,
        "-r",
        fail,
        "--phase",
        "constraints",
        "--fail-on-error=false",
    ]);
    assert!(
        stderr(&out).contains("exiting 0 despite the findings: --fail-on-error=false"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_check_says_what_was_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let fail = recipe_with(dir.path(), "fail.yaml", FAILING);
    settings().bind(|| {
        insta::assert_snapshot!(
            "validate_failed_table",
            transcript(&[
                "validate",
                "-r",
                s(&fail),
                "-s",
                SNAP,
                "--phase",
                "constraints",
                "-t",
                "table"
            ])
        );
    });
}

#[test]
fn bad_inputs_and_flags_are_refused_with_their_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let bad = recipe_with(
        dir.path(),
        "bad-constraint.yaml",
        "\n  - name: K8s.server.version\n    value: '>= banana'",
    );
    let named = dir.path().join("name-keyed.yaml");
    std::fs::write(
        &named,
        std::fs::read_to_string(SNAP)
            .unwrap()
            .replace("- subtype:", "- name:"),
    )
    .unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("snapshot_as_recipe", vec!["-r", SNAP, "-s", SNAP]),
        ("recipe_as_snapshot", vec!["-r", RECIPE, "-s", RECIPE]),
        ("name_keyed_subtypes", vec!["-r", RECIPE, "-s", s(&named)]),
        ("bad_constraint", vec!["-r", s(&bad), "-s", SNAP]),
        ("missing_recipe", vec!["-r", "nope.yaml", "-s", SNAP]),
        ("missing_snapshot", vec!["-r", RECIPE, "-s", "nope.yaml"]),
        ("no_recipe", vec!["-s", SNAP]),
        ("no_snapshot", vec!["-r", RECIPE]),
        ("both_stdin", vec!["-r", "-", "-s", "-"]),
        (
            "phase_performance",
            vec!["-r", RECIPE, "-s", SNAP, "--phase", "performance"],
        ),
        (
            "phase_conformance",
            vec!["-r", RECIPE, "-s", SNAP, "--phase", "conformance"],
        ),
        (
            "snapshot_with_deployment_only",
            vec!["-r", RECIPE, "-s", SNAP, "--phase", "deployment"],
        ),
        (
            "kubeconfig_missing",
            vec![
                "-r",
                RECIPE,
                "--phase",
                "deployment",
                "-k",
                "no-such-kubeconfig",
            ],
        ),
        (
            "kubeconfig_with_no_cluster",
            vec!["-r", RECIPE, "-s", SNAP, "--no-cluster", "-k", "x"],
        ),
        (
            "context_with_constraints_only",
            vec![
                "-r",
                RECIPE,
                "-s",
                SNAP,
                "--phase",
                "constraints",
                "--context",
                "x",
            ],
        ),
        (
            "kubeconfig_a_directory",
            vec!["-r", RECIPE, "--phase", "deployment", "-k", "tests"],
        ),
        (
            "phase_deployment_no_cluster",
            vec![
                "-r",
                RECIPE,
                "-s",
                SNAP,
                "--phase",
                "deployment",
                "--no-cluster",
            ],
        ),
        (
            "phase_bogus",
            vec!["-r", RECIPE, "-s", SNAP, "--phase", "readiness"],
        ),
        (
            "report_unknown",
            vec!["-r", RECIPE, "-s", SNAP, "--report", "tap"],
        ),
        (
            "report_empty_file",
            vec!["-r", RECIPE, "-s", SNAP, "--report", "ctrf="],
        ),
        (
            "two_on_stdout",
            vec![
                "-r", RECIPE, "-s", SNAP, "--report", "ctrf", "--report", "junit",
            ],
        ),
        (
            "report_and_format_on_stdout",
            vec!["-r", RECIPE, "-s", SNAP, "--report", "ctrf", "-t", "json"],
        ),
        (
            "same_file_twice",
            vec![
                "-r",
                RECIPE,
                "-s",
                SNAP,
                "--report",
                "ctrf=x.json",
                "--report",
                "junit=x.json",
            ],
        ),
        (
            "report_dir_missing",
            vec![
                "-r",
                RECIPE,
                "-s",
                SNAP,
                "--report",
                "junit=no/such/dir/x.xml",
            ],
        ),
        (
            "fail_on_error_bad",
            vec!["-r", RECIPE, "-s", SNAP, "--fail-on-error=maybe"],
        ),
        (
            "timeout_zero",
            vec!["-r", RECIPE, "-s", SNAP, "--timeout", "0s"],
        ),
        (
            "plain_http",
            vec!["-r", "http://127.0.0.1:9/recipe.yaml", "-s", SNAP],
        ),
        (
            "configmap_no_cluster",
            vec!["-r", "cm://default/recipe", "-s", SNAP, "--no-cluster"],
        ),
    ];
    let mut all = String::new();
    for (name, args) in cases {
        let mut full = vec!["validate"];
        full.extend(&args);
        all.push_str(&format!("## {name}\n{}\n", transcript(&full)));
    }
    settings().bind(|| insta::assert_snapshot!("validate_bad_inputs", all));
}

#[test]
fn inputs_from_stdin() {
    let recipe = std::fs::read(RECIPE).unwrap();
    let out = aicr()
        .args([
            "validate",
            "-r",
            "-",
            "-s",
            SNAP,
            "--phase",
            "constraints",
            "-t",
            "json",
        ])
        .write_stdin(recipe)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let snap = std::fs::read(SNAP).unwrap();
    let out2 = aicr()
        .args([
            "validate",
            "-r",
            RECIPE,
            "-s",
            "-",
            "--phase",
            "constraints",
            "-t",
            "json",
        ])
        .write_stdin(snap)
        .output()
        .unwrap();
    assert_eq!(code(&out2), 0, "{}", stderr(&out2));
    assert_eq!(out.stdout, out2.stdout);
}

fn ctrf_of(args: &[&str]) -> Value {
    let mut full = vec!["validate", "--report", "ctrf"];
    if !args.contains(&"--no-cluster") {
        full.extend(["--phase", "constraints"]);
    }
    full.extend(args);
    let out = run(&full);
    assert!(matches!(code(&out), 0 | 1), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn ctrf_report_has_go_aicr_fields_and_skip_reasons() {
    let doc = ctrf_of(&["-r", RECIPE, "-s", SNAP]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "validate_golden_ctrf",
            serde_json::to_string_pretty(&doc).unwrap()
        )
    });
    assert_eq!(doc["reportFormat"], "CTRF");
    assert_eq!(doc["results"]["tool"]["name"], "aicr");
    let summary = &doc["results"]["summary"];
    assert_eq!(summary["tests"], 6);
    assert_eq!(summary["skipped"], 3);
    assert_eq!(
        (summary["start"].clone(), summary["stop"].clone()),
        (0.into(), 0.into())
    );
    let skipped = &doc["results"]["tests"][3];
    assert_eq!(skipped["status"], "skipped");
    assert!(skipped["message"]
        .as_str()
        .unwrap()
        .starts_with("measurement absent"));
    assert_eq!(skipped["suite"], serde_json::json!(["constraints"]));
}

#[test]
fn timestamps_only_when_asked() {
    let plain = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "--no-cluster",
        "--report",
        "ctrf",
    ]);
    let again = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "--no-cluster",
        "--report",
        "ctrf",
    ]);
    assert_eq!(plain.stdout, again.stdout, "same input, same bytes");
    let doc = ctrf_of(&["-r", RECIPE, "-s", SNAP, "--timestamps"]);
    let summary = &doc["results"]["summary"];
    let start = summary["start"].as_u64().unwrap();
    let stop = summary["stop"].as_u64().unwrap();
    assert!(start > 1_700_000_000_000 && stop >= start, "{summary}");
    assert!(doc["timestamp"].as_str().unwrap().ends_with('Z'));
}

/// The CTRF report of each outcome (pass, fail, partial), checked against
/// CTRF's published JSON schema (vendored in tests/fixtures/ctrf) by
/// python3-jsonschema.
#[test]
#[ignore = "needs python3-jsonschema"]
fn ctrf_reports_validate_against_the_ctrf_schema() {
    let dir = tempfile::tempdir().unwrap();
    let fail = recipe_with(dir.path(), "fail.yaml", FAILING);
    let pass = recipe_with(dir.path(), "pass.yaml", PASSING);
    let empty = recipe_with(dir.path(), "empty.yaml", " []");
    let reports = [
        ctrf_of(&["-r", RECIPE, "-s", SNAP]),
        ctrf_of(&["-r", RECIPE, "-s", SNAP, "--timestamps"]),
        ctrf_of(&["-r", s(&fail), "-s", SNAP]),
        ctrf_of(&["-r", s(&pass), "-s", SNAP]),
        ctrf_of(&["-r", s(&empty), "-s", SNAP]),
        ctrf_of(&["-r", RECIPE, "-s", SNAP, "--no-cluster"]),
    ];
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
reports = json.load(sys.stdin)
v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
for i, r in enumerate(reports):
    errors = [f"{list(e.path)}: {e.message}" for e in v.iter_errors(r)]
    if errors:
        sys.exit(f"report {i}: " + "; ".join(errors))
print(len(reports))
"#;
    let got = python(
        script,
        &[fixture("ctrf/ctrf.schema.json").to_str().unwrap()],
        &serde_json::to_vec(&reports).unwrap(),
        "python3-jsonschema",
    );
    assert_eq!(got.trim(), "6");
}

/// Runs a python3 script with `stdin`; fails (never skips) when python3 or
/// the package is missing.
fn python(script: &str, args: &[&str], stdin: &[u8], package: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 cannot run ({e}): this test needs {package} (.ci/run installs it)")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 with {package} failed (.ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn junit_of(args: &[&str]) -> String {
    let mut full = vec!["validate", "--report", "junit", "--phase", "constraints"];
    full.extend(args);
    let out = run(&full);
    assert!(matches!(code(&out), 0 | 1), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn junit_report_parses_with_one_testcase_per_check() {
    let dir = tempfile::tempdir().unwrap();
    let fail = recipe_with(dir.path(), "fail.yaml", FAILING);
    let xml = junit_of(&["-r", RECIPE, "-s", SNAP]);
    settings().bind(|| insta::assert_snapshot!("validate_golden_junit", xml));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 6);
    let skipped = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .count();
    assert_eq!(skipped, 3);
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("6"));
    assert_eq!(root.attribute("skipped"), Some("3"));

    let xml = junit_of(&["-r", s(&fail), "-s", SNAP]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("expected >= 1.34, got v1.33.0")
    );
    assert_eq!(
        failure.parent().unwrap().attribute("name"),
        Some("K8s.server.version >= 1.34")
    );
}

/// A real JUnit consumer (PyPI junitparser) reads the report: cases,
/// results and messages.
#[test]
#[ignore = "needs python junitparser"]
fn junit_report_is_read_by_junitparser() {
    let dir = tempfile::tempdir().unwrap();
    let fail = recipe_with(dir.path(), "fail.yaml", FAILING);
    let mut lines = Vec::new();
    for recipe in [RECIPE, s(&fail)] {
        let xml = junit_of(&["-r", recipe, "-s", SNAP]);
        let script = r#"
import sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromstring(sys.stdin.read())
for suite in xml:
    for case in suite:
        kinds = [type(r).__name__ + ": " + (r.message or "") for r in case.result]
        print(suite.name, "|", case.name, "|", "; ".join(kinds) or "passed")
"#;
        lines.push(python(script, &[], xml.as_bytes(), "junitparser"));
    }
    settings().bind(|| insta::assert_snapshot!("validate_junitparser", lines.join("--\n")));
}

#[test]
fn several_reports_and_the_document_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let ctrf = dir.path().join("out.json");
    let junit = dir.path().join("out.xml");
    let doc = dir.path().join("checks.yaml");
    let out = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "--phase",
        "constraints",
        "--report",
        &format!("ctrf={}", ctrf.display()),
        "--report",
        &format!("junit={}", junit.display()),
        "-o",
        s(&doc),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&ctrf).unwrap()).unwrap();
    assert_eq!(c["results"]["summary"]["tests"], 6);
    roxmltree::Document::parse(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    assert_eq!(read_yaml(&doc)["status"], "partial");
    // The same run with one report on stdout, the other to a file, and no
    // document: what stdout carries is the CTRF, byte for byte.
    let out = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "--phase",
        "constraints",
        "--report",
        "ctrf",
        "--report",
        &format!("junit={}", junit.display()),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), std::fs::read_to_string(&ctrf).unwrap());
    // No temporary files left beside the outputs.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["checks.yaml", "out.json", "out.xml"]);
}

#[test]
fn a_recipe_without_constraints_checks_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let empty = recipe_with(dir.path(), "empty.yaml", " []");
    let out = run(&[
        "validate",
        "-r",
        s(&empty),
        "-s",
        SNAP,
        "--phase",
        "constraints",
        "-t",
        "table",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        "0 checks: 0 passed, 0 failed, 0 skipped; status: pass\n"
    );
    assert!(stderr(&out).contains("the recipe declares no constraints: nothing was checked"));
}

/// `aicr validate` with no cluster configured anywhere (no -k, no
/// KUBECONFIG, a HOME without ~/.kube/config, not in a pod).
fn without_cluster(args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    aicr()
        .env("HOME", home.path())
        .arg("validate")
        .args(args)
        .output()
        .unwrap()
}

fn deployment_checks(doc: &Value) -> Vec<(String, String, String)> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["phase"] == "deployment")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn phase_all_without_a_cluster_skips_each_component_with_the_reason() {
    let recipe: Value = read_yaml(Path::new(RECIPE));
    let components = recipe["componentRefs"].as_array().unwrap().len();
    for (args, reason) in [
        (
            vec!["-r", RECIPE, "-s", SNAP, "-t", "json"],
            "no cluster reachable: no cluster configured: give -k/--kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod",
        ),
        (
            vec!["-r", RECIPE, "-s", SNAP, "-t", "json", "--phase", "all", "--no-cluster"],
            "--no-cluster: the live cluster was not read",
        ),
    ] {
        let out = without_cluster(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(doc["status"], "partial");
        let checks = deployment_checks(&doc);
        assert_eq!(checks.len(), components, "{args:?}");
        // In deployment order: the first to deploy is checked first.
        assert_eq!(checks[0].0, format!("{}: readiness", recipe["deploymentOrder"][0].as_str().unwrap()));
        for (name, status, message) in &checks {
            assert_eq!((status.as_str(), message.as_str()), ("skipped", reason), "{name}");
        }
        // Skipped is not passed: --strict fails.
        let mut strict = args.clone();
        strict.push("--strict");
        assert_eq!(code(&without_cluster(&strict)), 1, "{strict:?}");
    }
    // Asked for explicitly, a missing cluster is an error, not a skip.
    let out = without_cluster(&["-r", RECIPE, "--phase", "deployment"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: no cluster configured: give -k/--kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod\n"
    );
}

/// A kubeconfig whose server is a closed port on 127.0.0.1.
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn an_unreachable_cluster_is_exit_6_when_asked_for_and_skipped_under_all() {
    let dir = tempfile::tempdir().unwrap();
    let kc = unreachable_kubeconfig(dir.path());
    let out = run(&[
        "validate",
        "-r",
        RECIPE,
        "--phase",
        "deployment",
        "-k",
        s(&kc),
    ]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "-k",
        s(&kc),
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let checks = deployment_checks(&doc);
    assert!(!checks.is_empty());
    for (name, status, message) in &checks {
        assert_eq!(status, "skipped", "{name}");
        assert!(
            message.starts_with("no cluster reachable: "),
            "{name}: {message}"
        );
    }
}

/// The deployment phase through the CLI against the test cluster, where
/// the recipe's stack is not installed: its checks fail (exit 1) and come
/// in the reports; --fail-on-error=false exits 0 with the same report.
/// (What each check finds is tested in tests/validate_deployment.rs.)
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn deployment_phase_on_the_test_cluster_fails_for_a_stack_not_installed() {
    let c = common::cluster::cluster();
    let kc = c.kubeconfig.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("out.xml");
    let junit_arg = format!("junit={}", junit.display());
    let args = [
        "validate",
        "-r",
        RECIPE,
        "--phase",
        "deployment",
        "-k",
        kc,
        "-t",
        "json",
        "--report",
        &junit_arg,
    ];
    let out = run(&args);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["status"], "fail");
    let checks = doc["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["phase"] == "deployment"));
    assert!(checks.iter().any(|c| c["name"]
        == "gpu-operator: Helm release gpu-operator/gpu-operator deployed"
        && c["status"] == "failed"));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let parsed = roxmltree::Document::parse(&xml).unwrap();
    let cases = parsed
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases, checks.len());
    let mut lenient = args.to_vec();
    lenient.push("--fail-on-error=false");
    let out2 = run(&lenient);
    assert_eq!(code(&out2), 0, "{}", stderr(&out2));
}

/// Markup, quotes and control characters from the recipe reach every
/// report intact or escaped: the JUnit XML parses, the CTRF is JSON, the
/// table carries no raw escape sequence.
#[test]
fn hostile_text_is_escaped_in_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = recipe_with(
        dir.path(),
        "hostile.yaml",
        "\n  - name: OS.release.ID\n    value: \"ub<un>&\\\"tu\\u0007\\u001b[2J]]>\"",
    );
    let base = [
        "validate",
        "-r",
        s(&hostile),
        "-s",
        SNAP,
        "--phase",
        "constraints",
    ];
    let mut junit = base.to_vec();
    junit.extend(["--report", "junit"]);
    let out = run(&junit);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let xml = stdout(&out);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("expected ub<un>&\"tu\\u{7}\\u{1b}[2J]]>, got ubuntu")
    );
    let mut ctrf = base.to_vec();
    ctrf.extend(["--report", "ctrf"]);
    let doc: Value = serde_json::from_str(&stdout(&run(&ctrf))).unwrap();
    assert_eq!(
        doc["results"]["tests"][0]["message"],
        "expected ub<un>&\"tu\u{7}\u{1b}[2J]]>, got ubuntu"
    );
    let mut table = base.to_vec();
    table.extend(["-t", "table"]);
    let text = stdout(&run(&table));
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("ub<un>&\"tu\\u{7}\\u{1b}[2J]]>"), "{text}");
}
