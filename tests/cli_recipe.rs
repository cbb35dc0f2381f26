//! Whole runs of `aicr recipe`: output stability, criteria files, fail-closed
//! criteria and every bad input with its message and exit code.

mod common;

use common::*;

fn eks() -> Vec<&'static str> {
    [&["recipe"][..], &words(EKS_H100_TRAINING)].concat()
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn output_is_byte_identical_across_runs_and_destinations() {
    let first = run(&eks());
    assert_eq!(code(&first), 0);
    let second = run(&eks());
    assert_eq!(first.stdout, second.stdout);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipe.yaml");
    let out = run(&with(&eks(), &["-o", file.to_str().unwrap()]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing on stdout with -o");
    assert_eq!(std::fs::read(&file).unwrap(), first.stdout);
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("recipe.yaml")]);
    for fmt in ["json", "table"] {
        let a = run(&with(&eks(), &["-t", fmt]));
        let b = run(&with(&eks(), &["-t", fmt]));
        assert_eq!(code(&a), 0);
        assert_eq!(a.stdout, b.stdout, "{fmt} output differs between runs");
    }
}

#[test]
fn json_and_yaml_carry_the_same_recipe() {
    let yaml = parse_yaml(&stdout(&run(&eks())));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(&with(&eks(), &["-t", "json"])))).unwrap();
    assert_eq!(yaml, json);
}

#[test]
fn yaml_transcript() {
    settings().bind(|| insta::assert_snapshot!("recipe_eks_h100_yaml", transcript(&eks())));
}

#[test]
fn table_transcript() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "recipe_eks_h100_table",
            transcript(&with(&eks(), &["-t", "table"]))
        )
    });
}

#[test]
fn list_transcript() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "recipe_list_eks",
            transcript(&["recipe", "--list", "--service", "eks"])
        )
    });
}

#[test]
fn criteria_file_and_flag_override() {
    let file = fixture("criteria/eks-h100-training.yaml");
    let f = file.to_str().unwrap();
    let out = run(&["recipe", "-c", f]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        run(&eks()).stdout,
        "file gives the same recipe as the flags"
    );
    let out = run(&["recipe", "-c", f, "--service", "aks", "-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["criteria"]["service"], "aks");
    assert_eq!(v["criteria"]["accelerator"], "h100");
    assert!(
        stderr(&out).contains("--service aks overrides service \"eks\" from the criteria file"),
        "{}",
        stderr(&out)
    );
}

/// A flag given as `any` clears the file's value; `--nodes` adds to it.
#[test]
fn criteria_file_any_flag_clears_and_nodes_adds() {
    let file = fixture("criteria/eks-h100-training.yaml");
    let f = file.to_str().unwrap();
    let out = run(&[
        "recipe",
        "-c",
        f,
        "--service",
        "any",
        "--os",
        "any",
        "--intent",
        "any",
        "-t",
        "json",
    ]);
    assert_eq!(
        code(&out),
        2,
        "accelerator h100 alone has no overlay: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("(asked: --accelerator h100)"),
        "{}",
        stderr(&out)
    );
    let out = run(&["recipe", "-c", f, "--nodes", "4", "-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["criteria"]["service"], "eks");
    assert_eq!(v["criteria"]["nodes"], 4);
}

#[test]
fn criteria_file_parsed_by_content_not_extension() {
    let file = fixture("criteria/aks-json.txt");
    let out = run(&["recipe", "--criteria", file.to_str().unwrap(), "-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["criteria"]["service"], "aks");
}

#[test]
fn criteria_from_stdin() {
    let text = std::fs::read_to_string(fixture("criteria/eks-h100-training.yaml")).unwrap();
    let out = aicr()
        .args(["recipe", "-c", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, run(&eks()).stdout);
}

/// Each bad input: its exact message and exit code.
#[test]
fn bad_inputs() {
    let cases: &[(&str, &[&str])] = &[
        ("no_criteria", &["recipe"]),
        ("unknown_service", &["recipe", "--service", "openshift"]),
        ("unknown_accelerator", &["recipe", "--accelerator", "h300"]),
        (
            "negative_nodes",
            &["recipe", "--service", "eks", "--nodes", "-3"],
        ),
        (
            "nodes_not_a_number",
            &["recipe", "--service", "eks", "--nodes", "many"],
        ),
        (
            "service_twice",
            &["recipe", "--service", "eks", "--service", "gke"],
        ),
        ("unknown_flag", &["recipe", "--service", "eks", "--bogus"]),
        (
            "format_f_is_not_format",
            &["recipe", "--service", "eks", "-f", "json"],
        ),
        ("bad_format", &["recipe", "--service", "eks", "-t", "xml"]),
        (
            "gke_without_cos",
            &words("recipe --service gke --accelerator h100 --intent inference"),
        ),
        (
            "unsupported_service",
            &["recipe", "--service", "oke", "--accelerator", "h100"],
        ),
        (
            "unsupported_accelerator",
            &words("recipe --service eks --accelerator b200 --intent training"),
        ),
        (
            "unsupported_os",
            &["recipe", "--service", "eks", "--os", "rhel"],
        ),
        (
            "platform_without_leaf",
            &["recipe", "--service", "eks", "--platform", "kubeflow"],
        ),
        (
            "accelerator_without_intent",
            &["recipe", "--service", "eks", "--accelerator", "h100"],
        ),
        (
            "criteria_missing_file",
            &["recipe", "-c", "tests/fixtures/criteria/nope.yaml"],
        ),
        (
            "criteria_unknown_field",
            &["recipe", "-c", "tests/fixtures/criteria/unknown-field.yaml"],
        ),
        (
            "criteria_wrong_kind",
            &["recipe", "-c", "tests/fixtures/criteria/wrong-kind.yaml"],
        ),
        (
            "criteria_wrong_api_version",
            &[
                "recipe",
                "-c",
                "tests/fixtures/criteria/wrong-api-version.yaml",
            ],
        ),
        (
            "criteria_bad_value",
            &["recipe", "-c", "tests/fixtures/criteria/bad-value.yaml"],
        ),
        (
            "criteria_malformed",
            &["recipe", "-c", "tests/fixtures/criteria/malformed.yaml"],
        ),
        (
            "criteria_empty",
            &["recipe", "-c", "tests/fixtures/criteria/empty.yaml"],
        ),
        (
            "output_is_directory",
            &["recipe", "--service", "eks", "-o", "tests"],
        ),
        (
            "output_parent_missing",
            &["recipe", "--service", "eks", "-o", "no/such/dir/r.yaml"],
        ),
        (
            "output_configmap",
            &["recipe", "--service", "eks", "-o", "cm://default/Recipe"],
        ),
    ];
    let mut all = String::new();
    for (name, args) in cases {
        let t = transcript(args);
        let out = run(args);
        assert!(out.stdout.is_empty(), "{name}: a failed run prints no data");
        assert_ne!(code(&out), 0, "{name} must fail");
        all.push_str(&format!("## {name}\n{t}\n"));
    }
    settings().bind(|| insta::assert_snapshot!("recipe_bad_inputs", all));
}

#[test]
fn aliases_and_any() {
    let a = run(&words("recipe --service self-managed --nodes 4 -t json"));
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    let v: serde_json::Value = serde_json::from_str(&stdout(&a)).unwrap();
    assert_eq!(v["criteria"]["service"], "any");
    assert_eq!(
        v["metadata"]["appliedOverlays"],
        serde_json::json!(["base", "monitoring-hpa"])
    );
    let b = run(&words(
        "recipe --service EKS --gpu H100 --intent Training --os Ubuntu",
    ));
    assert_eq!(b.stdout, run(&eks()).stdout);
}

#[test]
fn nodes_are_recorded() {
    let out = run(&with(&eks(), &["--nodes", "8", "-t", "json"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["criteria"]["nodes"], 8);
}
