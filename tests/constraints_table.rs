//! The constraint operators, table-driven: each row is a constraint (path
//! and expected value), the value a snapshot holds at that path, and how
//! the check must end (passed, failed, skipped with its message) or the
//! exact error of a constraint that does not parse. The table in
//! docs/constraints.md is these rows. Then a property: parsing never
//! panics, and version order is total and agrees with every operator.

use std::collections::BTreeMap;

use aicr::constraints::{check, Constraint, Version};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    let mut c = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x00a1_c0de);
    }
    c
}
use aicr::measurement::{Measurement, MeasurementType, Reading, Snapshot, Subtype};
use aicr::validate::Status;

const K8S: &str = "K8s.server.version";
const KERNEL: &str = "OS.sysctl./proc/sys/kernel/osrelease";
const OS_ID: &str = "OS.release.ID";

/// How a row must end.
enum Want {
    Pass,
    Fail,
    /// Skipped, with this message.
    Skip(&'static str),
    /// The constraint does not parse: this exact error.
    Invalid(&'static str),
}
use Want::*;

/// A snapshot holding `value` at `path` (`Type.subtype.key`).
fn snapshot_with(path: &str, value: &str) -> Snapshot {
    let mut parts = path.splitn(3, '.');
    let (t, sub, key) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let kind = match t {
        "K8s" => MeasurementType::K8s,
        "OS" => MeasurementType::Os,
        "GPU" => MeasurementType::Gpu,
        "SystemD" => MeasurementType::SystemD,
        _ => MeasurementType::NodeTopology,
    };
    let mut data = BTreeMap::new();
    data.insert(key.to_string(), Reading::from(value));
    Snapshot {
        measurements: vec![Measurement::new(kind, vec![Subtype::new(sub, data)])],
        ..Snapshot::default()
    }
}

#[rustfmt::skip]
const ROWS: &[(&str, &str, &str, Want)] = &[
    // Kernel strings: the distribution suffix is ignored.
    (KERNEL, ">= 6.8", "6.8.0-1024-aws", Pass),
    (KERNEL, "> 6.8", "6.8.0-1024-aws", Fail),
    (KERNEL, "== 6.8", "6.8.0-1024-aws", Pass),
    (KERNEL, ">= 6.8", "5.15.0-1050-azure", Fail),
    (KERNEL, "< 6.0", "5.15.0-1050-azure", Pass),
    (KERNEL, ">= 5.15.0", "5.15.0-1050-azure", Pass),
    (KERNEL, ">= 6.8", "6.1.0-27-cloud-amd64", Fail),
    (KERNEL, ">= 6.1", "6.1.0-27-cloud-amd64", Pass),
    (KERNEL, "<= 6.1.0", "6.1.0-27-cloud-amd64", Pass),
    (KERNEL, ">= 6.8", "6.18.44-fc-v657-gpu", Pass),
    (KERNEL, "!= 6.18.44", "6.18.44-fc-v657-gpu", Fail),
    // EKS, GKE and AKS server versions.
    (K8S, ">= 1.32.4", "v1.33.5-eks-4f4795d", Pass),
    (K8S, ">= 1.34", "v1.33.5-eks-4f4795d", Fail),
    (K8S, "== 1.33.5", "v1.33.5-eks-4f4795d", Pass),
    (K8S, ">= 1.32.4", "v1.32.4-gke.1106000", Pass),
    (K8S, "> 1.32.4", "v1.32.4-gke.1106000", Fail),
    (K8S, "< 1.33", "v1.32.4-gke.1106000", Pass),
    (K8S, ">= 1.32.4", "v1.31.2", Fail),
    (K8S, ">= 1.30", "v1.31.2", Pass),
    (K8S, "!= 1.31.2", "v1.31.2", Fail),
    (K8S, "!= 1.31.3", "v1.31.2", Pass),
    // k3s: build metadata after + is ignored.
    (K8S, ">= 1.30.2", "v1.30.2+k3s1", Pass),
    (K8S, "== 1.30.2", "v1.30.2+k3s1", Pass),
    (K8S, "> 1.30.2", "v1.30.2+k3s1", Fail),
    // A leading v on either side, or both.
    (K8S, ">= v1.32", "1.33.0", Pass),
    (K8S, ">= v1.32", "v1.33.0", Pass),
    (K8S, "== V1.33.0", "v1.33.0", Pass),
    (K8S, "<= v1.31", "1.33.0", Fail),
    // Shorter and longer precision: missing components are 0.
    (K8S, "> 1.33", "v1.33.5", Pass),
    (K8S, "== 1.33", "v1.33.5", Fail),
    (K8S, ">= 1.33", "v1.33.5", Pass),
    (K8S, "== 1.33", "v1.33.0", Pass),
    (K8S, "<= 1.33", "v1.33.0", Pass),
    (K8S, "> 1.33.0.1", "v1.33.0", Fail),
    (K8S, "< 1.33.0.1", "v1.33", Pass),
    (K8S, ">= 1", "v1.33.0", Pass),
    (K8S, "> 2", "v1.33.0", Fail),
    (K8S, ">= 1.9", "v1.10.0", Pass),
    // Pre-releases order before their release.
    (K8S, ">= 1.30", "v1.30.0-rc.1", Fail),
    (K8S, "< 1.30.0", "v1.30.0-rc.1", Pass),
    (K8S, "> 1.29.9", "v1.30.0-rc.1", Pass),
    (K8S, "== 1.30.0", "v1.30.0-rc.1", Fail),
    (K8S, ">= 1.30.0-rc.1", "v1.30.0", Pass),
    (K8S, ">= 1.30.0-rc.1", "v1.30.0-rc.2", Pass),
    (K8S, ">= 1.30.0-rc.1", "v1.30.0-beta.0", Fail),
    (K8S, "< 1.31.0-alpha.1", "v1.31.0-alpha.0", Pass),
    // Bare values: exact, case-sensitive text.
    (OS_ID, "ubuntu", "ubuntu", Pass),
    (OS_ID, "ubuntu", "UBUNTU", Fail),
    (OS_ID, "ubuntu", "ubuntu ", Fail),
    ("OS.release.VERSION_ID", "24.04", "24.04", Pass),
    ("OS.release.VERSION_ID", "24.04", "24.4", Fail),
    (K8S, "1.33.0", "v1.33.0", Fail),
    ("GPU.smi.gpu.model", "NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", Pass),
    ("GPU.smi.gpu.model", "NVIDIA H100 80GB HBM3", "NVIDIA H200", Fail),
    ("SystemD.containerd.service.ActiveState", "active", "active", Pass),
    ("NodeTopology.node.count", ">= 2", "4", Pass),
    // A snapshot value that is not a version: skipped, never a pass.
    (OS_ID, ">= 1.0", "ubuntu",
        Skip("value not comparable: \"ubuntu\" is not a version; expected >= 1.0")),
    (K8S, ">= 1.30", "",
        Skip("value not comparable: \"\" is not a version; expected >= 1.30")),
    (K8S, "!= 1.30", "1.30a",
        Skip("value not comparable: \"1.30a\" is not a version; expected != 1.30")),
    // Constraints that do not parse: errors in the recipe, naming them.
    (OS_ID, ">= ubuntu", "ubuntu",
        Invalid("constraint \"OS.release.ID\": value \">= ubuntu\": \"ubuntu\" is not a version; >= compares versions such as 1.30, v1.33.5 or 6.8.0-1024-aws (write the bare value for an exact text match)")),
    (OS_ID, "== ubuntu", "ubuntu",
        Invalid("constraint \"OS.release.ID\": value \"== ubuntu\": \"ubuntu\" is not a version; == compares versions such as 1.30, v1.33.5 or 6.8.0-1024-aws (write the bare value for an exact text match)")),
    (K8S, ">=", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": value \">=\" has no version after the operator >=")),
    (K8S, "<  ", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": value \"<  \" has no version after the operator <")),
    (K8S, "=> 1.30", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": value \"=> 1.30\" has unknown operator \"=>\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)")),
    (K8S, "= 1.30", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": value \"= 1.30\" has unknown operator \"=\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)")),
    (K8S, "~1.30", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": value \"~1.30\" has unknown operator \"~\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)")),
    (K8S, "", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": the value is empty; give an operator and a version (>= 1.30) or a bare value to match exactly")),
    (K8S, ">= 1..30", "v1.33.0",
        Invalid("constraint \"K8s.server.version\": value \">= 1..30\": \"1..30\" is not a version; >= compares versions such as 1.30, v1.33.5 or 6.8.0-1024-aws (write the bare value for an exact text match)")),
    ("Foo.bar.baz", ">= 1.30", "1.31",
        Invalid("constraint \"Foo.bar.baz\": unknown measurement type \"Foo\"; types are K8s, OS, GPU, SystemD, NodeTopology")),
    ("k8s.server.version", ">= 1.30", "1.31",
        Invalid("constraint \"k8s.server.version\": unknown measurement type \"k8s\"; types are K8s, OS, GPU, SystemD, NodeTopology")),
    ("K8s.server", ">= 1.30", "1.31",
        Invalid("constraint \"K8s.server\": the path has no key; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version, OS.sysctl./proc/sys/kernel/osrelease)")),
    ("K8s", ">= 1.30", "1.31",
        Invalid("constraint \"K8s\": the path has no subtype; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version, OS.sysctl./proc/sys/kernel/osrelease)")),
    ("K8s..version", ">= 1.30", "1.31",
        Invalid("constraint \"K8s..version\": the path has no subtype; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version, OS.sysctl./proc/sys/kernel/osrelease)")),
    ("K8s.server.version", "≥ 1.30", "1.31",
        Invalid("constraint \"K8s.server.version\": value \"≥ 1.30\" has unknown operator \"≥\"; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)")),
    ("K8s.ser ver.version", ">= 1.30", "1.31",
        Invalid("constraint \"K8s.ser ver.version\": subtype \"ser ver\" contains whitespace")),
    (" K8s.server.version", ">= 1.30", "1.31",
        Invalid("constraint \" K8s.server.version\": the name has leading or trailing whitespace")),
    ("Deployment.gpu-operator.version", ">= v24.6.0", "v25.10.1",
        Invalid("constraint \"Deployment.gpu-operator.version\": unknown measurement type \"Deployment\"; types are K8s, OS, GPU, SystemD, NodeTopology")),
    ("", ">= 1.30", "1.31",
        Invalid("constraint \"\": the name is empty; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version)")),
];

#[test]
fn operator_table() {
    assert!(ROWS.len() >= 60, "{} rows", ROWS.len());
    let mut wrong = Vec::new();
    for (name, value, actual, want) in ROWS {
        let row = format!("{name} {value:?} against {actual:?}");
        let parsed = Constraint::parse(name, value);
        let c = match (parsed, want) {
            (Err(e), Invalid(text)) => {
                if e.to_string() != *text {
                    wrong.push(format!("{row}: error\n  {e}\nwanted\n  {text}"));
                }
                continue;
            }
            (Err(e), _) => {
                wrong.push(format!("{row}: does not parse: {e}"));
                continue;
            }
            (Ok(_), Invalid(_)) => {
                wrong.push(format!("{row}: parses, wanted an error"));
                continue;
            }
            (Ok(c), _) => c,
        };
        let snap = snapshot_with(if name.is_empty() { K8S } else { name }, actual);
        let got = check("constraints", &c, &snap);
        assert_eq!(got.name, format!("{name} {value}"));
        let ok = match want {
            Pass | Fail => {
                let status = if matches!(want, Pass) {
                    Status::Passed
                } else {
                    Status::Failed
                };
                got.status == status
                    && got.message == format!("expected {}, got {actual}", value.trim())
                    && got.object.as_deref() == Some(format!("{name} = {actual}").as_str())
            }
            Skip(msg) => got.status == Status::Skipped && got.message == *msg,
            Invalid(_) => unreachable!(),
        };
        if !ok {
            wrong.push(format!("{row}: got {:?}: {}", got.status, got.message));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

proptest! {
    // A fixed seed, as in tests/properties.rs, so a run is reproducible
    // (PROPTEST_RNG_SEED explores others); no failure files are written.
    #![proptest_config(config())]

    /// Parsing never panics, whatever the text; and version order is a
    /// total order: exactly one of <, ==, > holds, and the operators agree
    /// with it.
    #[test]
    fn parsing_never_panics_and_order_is_total(
        name in "\\PC{0,40}",
        value in "\\PC{0,40}",
        a in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-(rc|beta|alpha|eks|gke)(\\.?[0-9]{1,2})?)?(\\+k3s1)?",
        b in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-(rc|beta|alpha|eks|gke)(\\.?[0-9]{1,2})?)?",
    ) {
        let _ = Constraint::parse(&name, &value);
        let (va, vb) = (Version::parse(&a).unwrap(), Version::parse(&b).unwrap());
        let n = [va < vb, va == vb, va > vb].iter().filter(|x| **x).count();
        prop_assert_eq!(n, 1, "{} vs {}", a, b);
        prop_assert_eq!(va.cmp(&vb), vb.cmp(&va).reverse());
        for (op, holds) in [(">=", va >= vb), ("<=", va <= vb), (">", va > vb), ("<", va < vb), ("==", va == vb), ("!=", va != vb)] {
            let c = Constraint::parse("K8s.server.version", &format!("{op} {b}")).unwrap();
            let got = check("constraints", &c, &snapshot_with(K8S, &a)).status;
            prop_assert_eq!(got == Status::Passed, holds, "{} {} {}", a, op, b);
        }
    }
}
