//! The core algorithms through the library crate, case by case with exact
//! results: the merge of one component's references from several overlays
//! (`merge_ref`), which overlays apply to a query and in what order, the
//! check that every stated criterion is honoured, and the parsing of a
//! bundle's `checksums.txt` by `verify`.

use std::path::Path;

use aicr::bundler::checksum::{self, sha256_hex};
use aicr::error::{Class, Classify};
use aicr::recipe::catalog::{merge_ref, Catalog, Overlay};
use aicr::recipe::criteria::{Accelerator, Criteria, Intent, Os, Platform, Service};
use aicr::recipe::metadata::{ComponentRef, ComponentType, ExpectedResource};
use aicr::recipe::registry::Registry;
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- merge_ref

/// `base` merged with `later`, for one field family per case.
#[test]
fn merge_ref_cases() {
    let named = |f: &dyn Fn(&mut ComponentRef)| {
        let mut r = ComponentRef {
            name: "gpu-operator".into(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    let resource = |kind: &str, name: &str| ExpectedResource {
        kind: kind.into(),
        name: name.into(),
        namespace: String::new(),
    };
    type Case<'a> = (
        &'a str,
        Box<dyn Fn(&mut ComponentRef)>,
        Box<dyn Fn(&mut ComponentRef)>,
        Box<dyn Fn(&mut ComponentRef)>,
    );
    let cases: Vec<Case> = vec![
        (
            "non-empty scalar fields win, empty ones keep the earlier value",
            Box::new(|r| {
                r.namespace = "gpu-operator".into();
                r.chart = "gpu-operator".into();
                r.source = "https://helm.ngc.nvidia.com/nvidia".into();
                r.version = "v25.3.0".into();
                r.values_file = "components/gpu-operator/values.yaml".into();
            }),
            Box::new(|r| {
                r.version = "v25.10.1".into();
                r.values_file = "components/gpu-operator/eks-values.yaml".into();
                r.tag = "t1".into();
                r.path = "p".into();
                r.health_check_asserts = "asserts".into();
            }),
            Box::new(|r| {
                r.namespace = "gpu-operator".into();
                r.chart = "gpu-operator".into();
                r.source = "https://helm.ngc.nvidia.com/nvidia".into();
                r.version = "v25.10.1".into();
                r.values_file = "components/gpu-operator/eks-values.yaml".into();
                r.tag = "t1".into();
                r.path = "p".into();
                r.health_check_asserts = "asserts".into();
            }),
        ),
        (
            "a later type replaces, an absent one keeps",
            Box::new(|r| r.kind = Some(ComponentType::Helm)),
            Box::new(|r| r.kind = None),
            Box::new(|r| r.kind = Some(ComponentType::Helm)),
        ),
        (
            "a later type replaces the earlier one",
            Box::new(|r| r.kind = Some(ComponentType::Helm)),
            Box::new(|r| r.kind = Some(ComponentType::Kustomize)),
            Box::new(|r| r.kind = Some(ComponentType::Kustomize)),
        ),
        (
            "overrides merge deeply; lists and scalars are replaced; nulls kept",
            Box::new(|r| {
                r.overrides = obj(json!({
                    "driver": {"enabled": true, "version": "570", "args": ["a", "b"]},
                    "keep": 1
                }))
            }),
            Box::new(|r| {
                r.overrides = obj(json!({
                    "driver": {"version": "580", "args": ["c"], "rdma": null},
                    "added": {"x": 1}
                }))
            }),
            Box::new(|r| {
                r.overrides = obj(json!({
                    "driver": {"enabled": true, "version": "580", "args": ["c"], "rdma": null},
                    "keep": 1,
                    "added": {"x": 1}
                }))
            }),
        ),
        (
            "a mapping replaces a scalar and a scalar replaces a mapping",
            Box::new(|r| r.overrides = obj(json!({"a": 1, "b": {"c": 2}}))),
            Box::new(|r| r.overrides = obj(json!({"a": {"x": 1}, "b": "flat"}))),
            Box::new(|r| r.overrides = obj(json!({"a": {"x": 1}, "b": "flat"}))),
        ),
        (
            "list fields are unions in first-seen order",
            Box::new(|r| {
                r.dependency_refs = strings(&["cert-manager", "nfd"]);
                r.patches = strings(&["p1"]);
                r.manifest_files = strings(&["m/a.yaml", "m/b.yaml"]);
            }),
            Box::new(|r| {
                r.dependency_refs = strings(&["nfd", "kai-scheduler", "cert-manager"]);
                r.patches = strings(&["p2", "p1"]);
                r.manifest_files = strings(&["m/c.yaml", "m/a.yaml"]);
            }),
            Box::new(|r| {
                r.dependency_refs = strings(&["cert-manager", "nfd", "kai-scheduler"]);
                r.patches = strings(&["p1", "p2"]);
                r.manifest_files = strings(&["m/a.yaml", "m/b.yaml", "m/c.yaml"]);
            }),
        ),
        (
            "cleanup can be switched on",
            Box::new(|r| r.cleanup = false),
            Box::new(|r| r.cleanup = true),
            Box::new(|r| r.cleanup = true),
        ),
        (
            "cleanup cannot be switched off",
            Box::new(|r| r.cleanup = true),
            Box::new(|r| r.cleanup = false),
            Box::new(|r| r.cleanup = true),
        ),
        (
            "expected resources are replaced whole when the later list has any",
            Box::new(move |r| {
                r.expected_resources = vec![resource("Deployment", "a"), resource("DaemonSet", "b")]
            }),
            Box::new(move |r| r.expected_resources = vec![resource("Deployment", "c")]),
            Box::new(move |r| r.expected_resources = vec![resource("Deployment", "c")]),
        ),
        (
            "an empty later list of expected resources keeps the earlier one",
            Box::new(move |r| r.expected_resources = vec![resource("Deployment", "a")]),
            Box::new(|r| r.expected_resources = Vec::new()),
            Box::new(move |r| r.expected_resources = vec![resource("Deployment", "a")]),
        ),
    ];
    for (what, base, later, want) in &cases {
        let mut merged = named(base.as_ref());
        merge_ref(&mut merged, &named(later.as_ref()));
        assert_eq!(merged, named(want.as_ref()), "{what}");
    }
}

/// The name is the key the references were matched by: it never changes.
#[test]
fn merge_ref_keeps_the_name() {
    let mut a = ComponentRef {
        name: "a".into(),
        ..Default::default()
    };
    merge_ref(
        &mut a,
        &ComponentRef {
            name: "b".into(),
            version: "1".into(),
            ..Default::default()
        },
    );
    assert_eq!(a.name, "a");
    assert_eq!(a.version, "1");
}

// --------------------------------------------------- overlay selection

/// An overlay for a synthetic catalog: `parent` empty means the root.
fn overlay(name: &str, parent: &str, criteria: Criteria) -> Overlay {
    Overlay {
        name: name.into(),
        file: format!("overlays/{name}.yaml"),
        parent: match (name, parent) {
            ("base", _) => None,
            (_, "") => Some("base".into()),
            (_, p) => Some(p.into()),
        },
        criteria,
        spec: Default::default(),
    }
}

fn crit(
    service: Option<Service>,
    accelerator: Option<Accelerator>,
    intent: Option<Intent>,
    os: Option<Os>,
) -> Criteria {
    Criteria {
        service,
        accelerator,
        intent,
        os,
        platform: None,
        nodes: 0,
    }
}

/// A small catalog shaped like the real data, plus two overlays that test
/// ancestors applied for a matching child and ties broken by name.
fn catalog() -> Catalog {
    use Accelerator::*;
    use Intent::*;
    use Os::*;
    use Service::*;
    let mut overlays = vec![
        overlay("base", "", Criteria::default()),
        overlay("monitoring", "", crit(None, None, Some(Training), None)),
        overlay("eks", "", crit(Some(Eks), None, None, None)),
        overlay(
            "eks-training",
            "eks",
            crit(Some(Eks), None, Some(Training), None),
        ),
        overlay(
            "eks-inference",
            "eks",
            crit(Some(Eks), None, Some(Inference), None),
        ),
        overlay(
            "h100-eks-training",
            "eks-training",
            crit(Some(Eks), Some(H100), Some(Training), None),
        ),
        overlay(
            "h100-eks-ubuntu-training",
            "h100-eks-training",
            crit(Some(Eks), Some(H100), Some(Training), Some(Ubuntu)),
        ),
        // Matches any h100 query, but inherits from the inference overlay.
        overlay(
            "h100-tuning",
            "eks-inference",
            crit(None, Some(H100), None, None),
        ),
        // Same specificity as `eks`; sorts after it by name.
        overlay("aks", "", crit(Some(Aks), None, None, None)),
        overlay("gke-cos", "", crit(Some(Gke), None, None, Some(Cos))),
        overlay(
            "gke-cos-training",
            "gke-cos",
            crit(Some(Gke), None, Some(Training), Some(Cos)),
        ),
        overlay(
            "gke-cos-inference",
            "gke-cos",
            crit(Some(Gke), None, Some(Inference), Some(Cos)),
        ),
        overlay(
            "dynamo",
            "",
            Criteria {
                platform: Some(Platform::Dynamo),
                ..crit(None, None, Some(Inference), None)
            },
        ),
    ];
    overlays.sort_by(|a, b| a.name.cmp(&b.name));
    Catalog {
        overlays,
        registry: Registry::default(),
    }
}

fn query(flags: &str) -> Criteria {
    let mut c = Criteria::default();
    let words: Vec<&str> = flags.split_whitespace().collect();
    for pair in words.chunks(2) {
        let v = pair[1];
        match pair[0] {
            "--service" => c.service = Service::parse(v).unwrap(),
            "--accelerator" => c.accelerator = Accelerator::parse(v).unwrap(),
            "--intent" => c.intent = Intent::parse(v).unwrap(),
            "--os" => c.os = Os::parse(v).unwrap(),
            "--platform" => c.platform = Platform::parse(v).unwrap(),
            "--nodes" => c.nodes = v.parse().unwrap(),
            f => panic!("unknown flag {f}"),
        }
    }
    c
}

fn applied(flags: &str) -> Result<Vec<String>, String> {
    let cat = catalog();
    cat.applied(&query(flags))
        .map(|v| v.iter().map(|o| o.name.clone()).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn applied_overlays_in_merge_order() {
    let cases: &[(&str, &[&str])] = &[
        // By (specificity, name), each preceded by its ancestors not yet
        // applied: h100-tuning brings its parent eks-inference along,
        // although that one does not match the query.
        (
            "--service eks --accelerator h100 --intent training --os ubuntu",
            &[
                "base",
                "eks",
                "eks-inference",
                "h100-tuning",
                "monitoring",
                "eks-training",
                "h100-eks-training",
                "h100-eks-ubuntu-training",
            ],
        ),
        (
            "--service eks --intent training",
            &["base", "eks", "monitoring", "eks-training"],
        ),
        // Specificity ties break by name: aks before monitoring.
        (
            "--service aks --intent training",
            &["base", "aks", "monitoring"],
        ),
        // A query field left unset matches only overlays that leave it unset.
        ("--service eks", &["base", "eks"]),
        (
            "--service gke --os cos --intent training",
            &["base", "monitoring", "gke-cos", "gke-cos-training"],
        ),
        ("--intent inference --platform dynamo", &["base", "dynamo"]),
        // Only the node count: the root alone, nothing stated to honour.
        ("--nodes 4", &["base"]),
    ];
    for (flags, want) in cases {
        assert_eq!(applied(flags), Ok(strings(want)), "{flags}");
    }
}

#[test]
fn every_stated_criterion_must_be_honoured() {
    let cases: &[(&str, &str)] = &[
        (
            "",
            "no criteria given: pass at least one of --service, --accelerator, --intent, --os, --platform, or a criteria file with -c FILE; `aicr recipe --list` shows the supported combinations",
        ),
        // A value that no overlay has at all.
        (
            "--service eks --accelerator b200",
            "no overlay supports --accelerator b200 (asked: --service eks --accelerator b200); accelerator values with overlays: h100; see `aicr recipe --list`",
        ),
        (
            "--service oke",
            "no overlay supports --service oke (asked: --service oke); service values with overlays: aks, eks, gke; see `aicr recipe --list`",
        ),
        // gke exists, but only with --os cos.
        (
            "--service gke --intent training --os ubuntu",
            "no overlay honours --service gke together with the other criteria (asked: --service gke --intent training --os ubuntu); combinations that exist with --service gke:\n  --service gke --intent inference --os cos\n  --service gke --intent training --os cos\n  --service gke --os cos\nsee `aicr recipe --list` for all",
        ),
        // h100 is honoured by h100-tuning (it admits any service); ubuntu by
        // nothing applied. No overlay with ubuntu keeps --service aks, so
        // every one with ubuntu is shown.
        (
            "--service aks --accelerator h100 --os ubuntu",
            "no overlay honours --os ubuntu together with the other criteria (asked: --service aks --accelerator h100 --os ubuntu); combinations that exist with --os ubuntu:\n  --service eks --accelerator h100 --intent training --os ubuntu\nsee `aicr recipe --list` for all",
        ),
        // Those that keep the other stated criteria are preferred: the
        // inference one is left out.
        (
            "--intent training --os cos --accelerator h100",
            "no overlay honours --os cos together with the other criteria (asked: --accelerator h100 --intent training --os cos); combinations that exist with --os cos:\n  --service gke --intent training --os cos\n  --service gke --os cos\nsee `aicr recipe --list` for all",
        ),
        // The first criterion in field order that fails is reported.
        (
            "--service kind --accelerator gb200",
            "no overlay supports --service kind (asked: --service kind --accelerator gb200); service values with overlays: aks, eks, gke; see `aicr recipe --list`",
        ),
        (
            "--intent training --platform kubeflow",
            "no overlay supports --platform kubeflow (asked: --intent training --platform kubeflow); platform values with overlays: dynamo; see `aicr recipe --list`",
        ),
    ];
    for (flags, want) in cases {
        assert_eq!(applied(flags), Err(want.to_string()), "{flags}");
        let err = catalog().applied(&query(flags)).unwrap_err();
        assert_eq!(err.class(), Class::InvalidInput, "{flags}");
    }
}

/// The embedded data, for one query whose answer the golden recipes fix.
#[test]
fn embedded_catalog_applies_the_golden_overlays() {
    let store = aicr::recipe::DataStore::embedded();
    let cat = Catalog::load(&store).unwrap();
    let names: Vec<String> = cat
        .applied(&query(
            "--service eks --accelerator h100 --intent training --os ubuntu",
        ))
        .unwrap()
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(
        names,
        strings(&[
            "base",
            "monitoring-hpa",
            "eks",
            "eks-training",
            "h100-eks-training",
            "h100-eks-ubuntu-training"
        ])
    );
}

// --------------------------------------------------------- checksums.txt

/// A bundle directory with `files` and the given `checksums.txt` text.
fn bundle_dir(files: &[(&str, &str)], sums: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(dir.path().join("checksums.txt"), sums).unwrap();
    dir
}

fn sum(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

#[test]
fn sha256_of_known_inputs() {
    assert_eq!(
        sum(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sum("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// (what, files on disk, checksums.txt) -> (verified, files, missing,
/// changed, extra).
#[test]
fn verify_reports_missing_changed_and_extra_files() {
    let files = [("README.md", "hello\n"), ("a/values.yaml", "x: 1\n")];
    let good = format!(
        "{}  README.md\n{}  a/values.yaml\n",
        sum("hello\n"),
        sum("x: 1\n")
    );
    type Want<'a> = (bool, usize, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, Want<'a>);
    let cases: Vec<Case> = vec![
        (
            "everything matches",
            files.to_vec(),
            good.clone(),
            (true, 2, &[], &[], &[]),
        ),
        (
            "upper-case hex digits are accepted; empty lines are skipped",
            files.to_vec(),
            format!(
                "\n{}  README.md\n\n{}  a/values.yaml\n",
                sum("hello\n").to_uppercase(),
                sum("x: 1\n")
            ),
            (true, 2, &[], &[], &[]),
        ),
        (
            "no trailing newline",
            files.to_vec(),
            good.trim_end().to_string(),
            (true, 2, &[], &[], &[]),
        ),
        (
            "a changed file",
            vec![("README.md", "hello!\n"), ("a/values.yaml", "x: 1\n")],
            good.clone(),
            (false, 1, &[], &["README.md"], &[]),
        ),
        (
            "a missing file",
            vec![("README.md", "hello\n")],
            good.clone(),
            (false, 1, &["a/values.yaml"], &[], &[]),
        ),
        (
            "an extra file, nested",
            vec![
                ("README.md", "hello\n"),
                ("a/values.yaml", "x: 1\n"),
                ("a/b/new.yaml", ""),
            ],
            good.clone(),
            (false, 2, &[], &[], &["a/b/new.yaml"]),
        ),
        (
            "all three at once, each list sorted",
            vec![("README.md", "changed\n"), ("z.txt", ""), ("b.txt", "")],
            good.clone(),
            (
                false,
                0,
                &["a/values.yaml"],
                &["README.md"],
                &["b.txt", "z.txt"],
            ),
        ),
        (
            "an empty list and an empty bundle",
            vec![],
            String::new(),
            (true, 0, &[], &[], &[]),
        ),
    ];
    for (what, files, sums, want) in cases {
        let dir = bundle_dir(&files, &sums);
        let r = checksum::verify(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = (
            r.verified,
            r.files,
            r.missing.clone(),
            r.changed.clone(),
            r.extra.clone(),
        );
        assert_eq!(
            got,
            (
                want.0,
                want.1,
                strings(want.2),
                strings(want.3),
                strings(want.4)
            ),
            "{what}"
        );
    }
}

/// A path listed as a file and as a directory is a malformed list.
#[test]
fn verify_refuses_a_path_listed_as_file_and_directory() {
    let dir = bundle_dir(
        &[("a/inner.txt", "")],
        &format!("{}  a\n{}  a/inner.txt\n", sum(""), sum("")),
    );
    let err = checksum::verify(dir.path()).unwrap_err().to_string();
    assert!(
        err.ends_with("checksums.txt line 2: a is listed as a file and as a directory; expected '<sha256>  <relative path>'"),
        "{err}"
    );
}

/// A directory where a file is listed counts as changed, not as a file.
#[test]
fn verify_a_directory_in_place_of_a_file_is_changed() {
    let dir = bundle_dir(&[("a/inner.txt", "")], &format!("{}  a\n", sum("")));
    let r = checksum::verify(dir.path()).unwrap();
    assert!(!r.verified);
    assert_eq!(r.changed, ["a"]);
    assert_eq!(r.extra, ["a/inner.txt"]);
}

#[test]
fn malformed_checksums_are_refused_with_the_line() {
    let h = sum("");
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "one space",
            format!("{h} README.md\n"),
            1,
            "no two-space separator",
        ),
        (
            "no path at all",
            format!("{h}\n"),
            1,
            "no two-space separator",
        ),
        (
            "63 hex digits",
            format!("{}  README.md\n", &h[1..]),
            1,
            "the checksum is not 64 hex digits",
        ),
        (
            "not hex",
            format!("{}g  README.md\n", &h[1..]),
            1,
            "the checksum is not 64 hex digits",
        ),
        (
            "a binary-mode marker (sha256sum -b)",
            format!("{h} *README.md\n"),
            1,
            "no two-space separator",
        ),
        (
            "an absolute path, on line 2",
            format!("{h}  README.md\n{h}  /etc/passwd\n"),
            2,
            "the path is not a plain relative path inside the bundle",
        ),
        (
            "a path leaving the bundle",
            format!("{h}  ../outside\n"),
            1,
            "the path is not a plain relative path inside the bundle",
        ),
        (
            "a dot component",
            format!("{h}  a/./b\n"),
            1,
            "the path is not a plain relative path inside the bundle",
        ),
        (
            "an empty component",
            format!("{h}  a//b\n"),
            1,
            "the path is not a plain relative path inside the bundle",
        ),
        (
            "an empty path",
            format!("{h}  \n"),
            1,
            "the path is not a plain relative path inside the bundle",
        ),
        (
            "a path listed twice",
            format!("{h}  README.md\n\n{h}  README.md\n"),
            3,
            "the path is listed twice",
        ),
    ];
    for (what, text, line, reason) in cases {
        let dir = bundle_dir(&[("README.md", "")], &text);
        let err = checksum::verify(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} line {line}: {reason}; expected '<sha256>  <relative path>'",
                dir.path().join("checksums.txt").display()
            ),
            "{what}"
        );
        assert_eq!(err.class(), Class::InvalidInput, "{what}");
    }
}

#[test]
fn verify_refuses_what_is_not_a_bundle() {
    let missing = Path::new("/nonexistent/aicr-bundle");
    let err = checksum::verify(missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/aicr-bundle: no such bundle directory"
    );
    assert_eq!(err.class(), Class::NotFound);

    let empty = tempfile::tempdir().unwrap();
    let err = checksum::verify(empty.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a bundle: it has no checksums.txt",
            empty.path().display()
        )
    );
    assert_eq!(err.class(), Class::InvalidInput);
}
