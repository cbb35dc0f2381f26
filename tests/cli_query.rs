//! Whole runs of `aicr query`: selectors over the hydrated recipe, output
//! forms, and misses with their messages and exit codes.

mod common;

use common::*;

fn q(selector: &str, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = [&["query"][..], &words(EKS_H100_TRAINING)].concat();
    args.extend(["--selector", selector]);
    args.extend(extra);
    run(&args)
}

#[test]
fn scalars_print_bare() {
    let out = q("components.gpu-operator.values.driver.version", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "580.105.08\n");
    assert_eq!(
        stdout(&q(".components.gpu-operator.values.cdi.enabled", &[])),
        "true\n"
    );
    assert_eq!(
        stdout(&q("deploymentOrder[0]", &[])),
        "aws-ebs-csi-driver\n"
    );
    assert_eq!(stdout(&q("deploymentOrder[-1]", &[])), "nvsentinel\n");
    assert_eq!(
        stdout(&q("components.\"gpu-operator\".chart", &[])),
        "gpu-operator\n"
    );
    assert_eq!(
        stdout(&q(
            "components.gpu-operator.values.driver.version",
            &["-t", "json"]
        )),
        "\"580.105.08\"\n"
    );
}

/// Values are the base file, then the overlay's variant file, then the
/// overrides, deep-merged.
#[test]
fn values_are_hydrated_in_layers() {
    let out = q("components.gpu-operator.values", &["-t", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let base = read_yaml(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("recipes/components/gpu-operator/values.yaml"),
    );
    // From the overrides of h100-eks-training:
    assert_eq!(v["cdi"]["enabled"], true);
    assert_eq!(v["gdrcopy"]["enabled"], true);
    // From the base file, untouched by the variant:
    assert_eq!(v["operator"], base["operator"]);
    // Deep merge: kube-prometheus-stack keeps base prometheusSpec keys beside the EKS storage override.
    let kps: serde_json::Value = serde_json::from_str(&stdout(&q(
        "components.kube-prometheus-stack.values.prometheus.prometheusSpec",
        &["-t", "json"],
    )))
    .unwrap();
    assert_eq!(
        kps["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"],
        "gp2"
    );
    assert!(kps["storageSpec"]["emptyDir"].is_null());
    assert!(
        kps.as_object().unwrap().len() > 1,
        "base keys survive the override: {kps}"
    );
}

/// Hydrated values equal the values Go aicr wrote in its helm bundle,
/// minus what bundle adds (default tolerations) that query does not.
#[test]
fn values_match_go_bundle_where_untouched_by_scheduling() {
    let golden = golden("bundle-helm-eks-h100-training");
    for comp in [
        "cert-manager",
        "gpu-operator",
        "kube-prometheus-stack",
        "nvsentinel",
        "skyhook-operator",
    ] {
        let ours: serde_json::Value = serde_json::from_str(&stdout(&q(
            &format!("components.{comp}.values"),
            &["-t", "json"],
        )))
        .unwrap();
        let theirs = read_yaml(&golden.join(comp).join("values.yaml"));
        let strip = |mut v: serde_json::Value| {
            strip_tolerations(&mut v);
            v
        };
        assert_eq!(strip(ours), strip(theirs), "{comp}");
    }
}

/// Removes every `tolerations` key (bundle injects defaults there), and
/// mappings left empty by that, on both sides alike.
fn strip_tolerations(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.to_ascii_lowercase().ends_with("tolerations"));
            m.values_mut().for_each(strip_tolerations);
            // A mapping that only held tolerations is gone too.
            m.retain(|_, v| v.as_object().is_none_or(|o| !o.is_empty()));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_tolerations),
        _ => {}
    }
}

#[test]
fn whole_recipe_and_subtrees() {
    let all = q("", &[]);
    assert_eq!(code(&all), 0);
    let dot = q(".", &[]);
    assert_eq!(all.stdout, dot.stdout);
    let v = parse_yaml(&stdout(&all));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "kind",
            "apiVersion",
            "metadata",
            "criteria",
            "constraints",
            "deploymentOrder",
            "components",
            "validation"
        ]
    );
    settings().bind(|| {
        insta::assert_snapshot!(
            "query_driver_yaml",
            stdout(&q("components.gpu-operator.values.driver", &[]))
        );
        insta::assert_snapshot!(
            "query_order_table",
            stdout(&q("deploymentOrder", &["-t", "table"]))
        );
    });
}

#[test]
fn misses_and_bad_selectors() {
    let cases: &[(&str, &str)] = &[
        ("missing_key", "components.nope"),
        (
            "missing_nested_key",
            "components.gpu-operator.values.driver.nope",
        ),
        ("index_out_of_range", "deploymentOrder[40]"),
        ("key_on_list", "deploymentOrder.first"),
        ("index_on_map", "components[0]"),
        ("below_scalar", "kind.more"),
        ("empty_key", "components..x"),
        ("unclosed_quote", "components.\"gpu-operator"),
        ("bad_index", "deploymentOrder[x]"),
    ];
    let mut all = String::new();
    for (name, sel) in cases {
        let mut args: Vec<&str> = [&["query"][..], &words(EKS_H100_TRAINING)].concat();
        args.extend(["--selector", sel]);
        all.push_str(&format!("## {name}\n{}\n", transcript(&args)));
    }
    all.push_str(&format!(
        "## no_selector\n{}\n",
        transcript(&[&["query"][..], &words(EKS_H100_TRAINING)].concat())
    ));
    all.push_str(&format!(
        "## no_criteria\n{}\n",
        transcript(&["query", "--selector", "kind"])
    ));
    all.push_str(&format!(
        "## bad_criterion\n{}\n",
        transcript(&words(
            "query --service eks --accelerator x1 --selector kind"
        ))
    ));
    settings().bind(|| insta::assert_snapshot!("query_bad_inputs", all));
}
