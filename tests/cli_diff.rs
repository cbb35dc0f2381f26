//! Whole runs of `aicr diff`: snapshots compared reading by reading, recipes
//! leaf by leaf, the output formats (a JSON Patch among them, checked by
//! applying it), `--fail-on-drift`, Go aicr's kind-less snapshots, and bad
//! inputs with their messages and exit codes.

mod common;

use common::*;
use serde_json::Value;

const SNAP_A: &str = "tests/fixtures/diff/snapshot-before.yaml";
const SNAP_B: &str = "tests/fixtures/diff/snapshot-after.yaml";
const RECIPE_A: &str = "tests/fixtures/diff/recipe-eks-h100-training.yaml";
const RECIPE_B: &str = "tests/fixtures/diff/recipe-eks-h100-inference.yaml";
const GO_SNAP: &str = "tests/fixtures/go-aicr-v0.11.1/golden/mock-snapshot-cuj1.yaml";

#[test]
fn snapshots_table() {
    let out = run(&["diff", SNAP_A, SNAP_B]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The timestamps differ, and are not a difference.
    assert!(!stdout(&out).contains("metadata"));
    assert!(!stdout(&out).contains("2026"));
    settings().bind(|| {
        insta::assert_snapshot!(
            "diff_snapshots_table",
            transcript(&["diff", SNAP_A, SNAP_B])
        )
    });
}

#[test]
fn recipes_table() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "diff_recipes_table",
            transcript(&["diff", RECIPE_A, RECIPE_B])
        )
    });
}

#[test]
fn identical_documents_print_nothing() {
    for (a, b) in [
        (SNAP_A, SNAP_A),
        (RECIPE_B, RECIPE_B),
        (GO_SNAP, GO_SNAP),
        (
            RECIPE_A,
            "tests/fixtures/diff/recipe-eks-h100-training.json",
        ),
    ] {
        for extra in [&[][..], &["--fail-on-drift"]] {
            let mut args = vec!["diff", a, b];
            args.extend(extra);
            let out = run(&args);
            assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
            assert_eq!(stdout(&out), "", "{args:?}");
            assert_eq!(stderr(&out), "no differences\n", "{args:?}");
        }
    }
    // Machine formats still print a document: an empty list.
    for format in ["json", "patch"] {
        let out = run(&["diff", SNAP_A, SNAP_A, "-t", format]);
        assert_eq!(code(&out), 0);
        assert_eq!(stdout(&out), "[]\n", "{format}");
    }
}

/// A snapshot that differs only in its timestamp is no drift.
#[test]
fn timestamp_alone_is_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("diff/snapshot-before.yaml")).unwrap();
    let later = dir.path().join("later.yaml");
    std::fs::write(
        &later,
        text.replace("2026-01-10T08:00:00Z", "2027-06-01T00:00:00Z"),
    )
    .unwrap();
    let out = run(&[
        "diff",
        SNAP_A,
        later.to_str().unwrap(),
        "--fail-on-drift",
        "-t",
        "patch",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn drift_fails_only_when_asked() {
    assert_eq!(code(&run(&["diff", SNAP_A, SNAP_B])), 0);
    assert_eq!(code(&run(&["diff", RECIPE_A, RECIPE_B, "-t", "json"])), 0);
    assert_eq!(
        code(&run(&["diff", RECIPE_A, RECIPE_B, "--fail-on-drift"])),
        1
    );
    settings().bind(|| {
        insta::assert_snapshot!(
            "diff_fail_on_drift",
            transcript(&["diff", SNAP_A, SNAP_B, "--fail-on-drift"])
        )
    });
}

#[test]
fn json_and_yaml_list_the_changes() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "diff_snapshots_json",
            transcript(&["diff", SNAP_A, SNAP_B, "-t", "json"])
        )
    });
    let json: Value =
        serde_json::from_str(&stdout(&run(&["diff", RECIPE_A, RECIPE_B, "-t", "json"]))).unwrap();
    let yaml = parse_yaml(&stdout(&run(&["diff", RECIPE_A, RECIPE_B, "-t", "yaml"])));
    assert_eq!(json, yaml);
    let changes = json.as_array().unwrap();
    let table = stdout(&run(&["diff", RECIPE_A, RECIPE_B]));
    assert_eq!(changes.len() + 1, table.lines().count());
    let valuesfile = changes
        .iter()
        .find(|c| c["path"] == "componentRefs.gpu-operator.valuesFile")
        .unwrap();
    assert_eq!(valuesfile["change"], "changed");
    assert_eq!(
        valuesfile["old"],
        "components/gpu-operator/values-eks-training.yaml"
    );
    assert_eq!(valuesfile["new"], "components/gpu-operator/values.yaml");
    // Constraint names hold dots, so they are quoted.
    assert!(changes.iter().any(|c| c["path"]
        == "validation.deployment.constraints.\"Deployment.gpu-operator.version\".value"
        && c["change"] == "removed"
        && c.get("new").is_none()));
}

#[test]
fn patch_transcript() {
    settings().bind(|| {
        insta::assert_snapshot!(
            "diff_snapshots_patch",
            transcript(&["diff", SNAP_A, SNAP_B, "-t", "patch"])
        )
    });
}

/// The patch turns A into B (timestamps aside) for snapshots, recipes, and
/// a Go aicr snapshot against one of ours.
#[test]
fn patch_applies() {
    for (a, b) in [
        (SNAP_A, SNAP_B),
        (SNAP_B, SNAP_A),
        (RECIPE_A, RECIPE_B),
        (RECIPE_B, RECIPE_A),
        (GO_SNAP, SNAP_B),
    ] {
        let out = run(&["diff", a, b, "-t", "patch"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let patch: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let (doc_a, doc_b) = (read_yaml(&repo(a)), read_yaml(&repo(b)));
        let patched = apply(&doc_a, patch.as_array().unwrap());
        assert_eq!(
            without_timestamp(patched),
            without_timestamp(doc_b),
            "{a} -> {b}"
        );
    }
}

#[test]
fn go_snapshot_without_kind() {
    let out = run(&["diff", GO_SNAP, GO_SNAP, "--fail-on-drift"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    settings().bind(|| {
        insta::assert_snapshot!("diff_go_snapshot", transcript(&["diff", GO_SNAP, SNAP_A]))
    });
}

#[test]
fn stdin_and_output_file() {
    let text = std::fs::read(repo(SNAP_A)).unwrap();
    let out = aicr()
        .args(["diff", "-", SNAP_B, "-t", "json"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        stdout(&run(&["diff", SNAP_A, SNAP_B, "-t", "json"]))
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drift.txt");
    let out = run(&["diff", SNAP_A, SNAP_B, "-o", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        stdout(&run(&["diff", SNAP_A, SNAP_B]))
    );
}

/// Each bad input: its exact message and exit code.
#[test]
fn bad_inputs() {
    let cases: &[(&str, &[&str], i32)] = &[
        ("snapshot_vs_recipe", &["diff", SNAP_A, RECIPE_A], 2),
        ("recipe_vs_go_snapshot", &["diff", RECIPE_A, GO_SNAP], 2),
        (
            "other_kind",
            &[
                "diff",
                "tests/fixtures/criteria/eks-h100-training.yaml",
                SNAP_A,
            ],
            2,
        ),
        (
            "no_kind",
            &["diff", SNAP_A, "tests/fixtures/diff/no-kind.yaml"],
            2,
        ),
        (
            "missing_file",
            &["diff", SNAP_A, "tests/fixtures/diff/nope.yaml"],
            3,
        ),
        (
            "bad_yaml",
            &["diff", "tests/fixtures/diff/bad.yaml", SNAP_A],
            2,
        ),
        (
            "name_keyed_snapshot",
            &["diff", SNAP_A, "tests/fixtures/snapshots/name-keyed.yaml"],
            2,
        ),
        ("both_stdin", &["diff", "-", "-"], 2),
        ("bad_format", &["diff", SNAP_A, SNAP_B, "-t", "xml"], 2),
        ("one_argument", &["diff", SNAP_A], 2),
    ];
    let mut all = String::new();
    for (name, args, want) in cases {
        let out = run(args);
        assert_eq!(code(&out), *want, "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{name}");
        all.push_str(&format!("## {name}\n{}\n", transcript(args)));
    }
    settings().bind(|| insta::assert_snapshot!("diff_bad_inputs", all));
}

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn without_timestamp(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("timestamp");
    }
    v
}

/// Applies an RFC 6902 patch of add, remove and replace operations.
fn apply(doc: &Value, ops: &[Value]) -> Value {
    let mut doc = doc.clone();
    for op in ops {
        let path = op["path"].as_str().unwrap();
        let kind = op["op"].as_str().unwrap();
        if path.is_empty() {
            assert_eq!(kind, "replace");
            doc = op["value"].clone();
            continue;
        }
        let tokens: Vec<String> = path
            .strip_prefix('/')
            .expect("a pointer starts with /")
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        let (last, parents) = tokens.split_last().unwrap();
        let mut cur = &mut doc;
        for t in parents {
            cur = match cur {
                Value::Object(m) => m.get_mut(t).unwrap_or_else(|| panic!("{path}")),
                Value::Array(a) => &mut a[t.parse::<usize>().unwrap()],
                _ => panic!("{path} goes through a scalar"),
            };
        }
        match (kind, cur) {
            ("remove", Value::Object(m)) => {
                m.remove(last).unwrap_or_else(|| panic!("{path}"));
            }
            ("add", Value::Object(m)) => {
                assert!(
                    m.insert(last.clone(), op["value"].clone()).is_none(),
                    "{path}"
                );
            }
            ("replace", Value::Object(m)) => {
                *m.get_mut(last).unwrap_or_else(|| panic!("{path}")) = op["value"].clone();
            }
            ("replace", Value::Array(a)) => {
                a[last.parse::<usize>().unwrap()] = op["value"].clone();
            }
            (kind, _) => panic!("unexpected {kind} at {path}"),
        }
    }
    doc
}

/// `--baseline`: one baseline against many documents (a directory expanded
/// in name order, and a file), in one report; only the differing ones have
/// table rows, yaml/json list every document; --fail-on-drift is exit 1
/// when any differs.
#[test]
fn baseline_against_many() {
    const DIR: &str = "tests/fixtures/diff/fleet";
    let args = ["diff", "--baseline", SNAP_A, DIR, SNAP_B];
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("2 of 3 documents differ from the baseline {SNAP_A}\n")
    );
    let table = stdout(&out);
    assert!(!table.contains("node-a.yaml"), "{table}");
    let pair = stdout(&run(&["diff", SNAP_A, SNAP_B]));
    // Each differing document has the rows of a two-document diff.
    for doc in [format!("{DIR}/node-b.yaml"), SNAP_B.to_string()] {
        let rows = table.lines().filter(|l| l.starts_with(&doc)).count();
        assert_eq!(rows + 1, pair.lines().count(), "{doc}: {table}");
    }
    settings().bind(|| insta::assert_snapshot!("diff_baseline_table", transcript(&args)));

    let json: Value = serde_json::from_str(&stdout(&run(&[
        "diff",
        "--baseline",
        SNAP_A,
        DIR,
        SNAP_B,
        "-t",
        "json",
    ])))
    .unwrap();
    let docs: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["document"].as_str().unwrap())
        .collect();
    assert_eq!(
        docs,
        [
            format!("{DIR}/node-a.yaml").as_str(),
            format!("{DIR}/node-b.yaml").as_str(),
            SNAP_B
        ]
    );
    assert_eq!(json[0]["changes"], serde_json::json!([]));
    let pair_json: Value =
        serde_json::from_str(&stdout(&run(&["diff", SNAP_A, SNAP_B, "-t", "json"]))).unwrap();
    assert_eq!(json[2]["changes"], pair_json);

    let drift = run(&["diff", "--baseline", SNAP_A, DIR, "--fail-on-drift"]);
    assert_eq!(code(&drift), 1, "{}", stderr(&drift));
    let same = run(&[
        "diff",
        "--baseline",
        SNAP_A,
        &format!("{DIR}/node-a.yaml"),
        "--fail-on-drift",
    ]);
    assert_eq!(code(&same), 0, "{}", stderr(&same));
    assert_eq!(stdout(&same), "");
}

/// Bad `--baseline` uses: exit 2 with what is allowed.
#[test]
fn baseline_bad_inputs() {
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["diff", "--baseline", SNAP_A, SNAP_B, "-t", "patch"],
            "error: -t patch gives one document's patch; with --baseline give table, yaml or json\n",
        ),
        (
            vec!["diff", "--baseline", SNAP_A, "-"],
            "error: --baseline reads no standard input (-): give files, directories or cm:// ConfigMaps\n",
        ),
        (
            vec!["diff", "--baseline", SNAP_A, &empty],
            "holds no .yaml, .yml or .json document to compare with the baseline\n",
        ),
        (vec!["diff", SNAP_A, SNAP_B, SNAP_B], "--baseline"),
        (vec!["diff", "--baseline", SNAP_A, RECIPE_A], "RecipeResult"),
    ];
    for (args, want) in cases {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}
