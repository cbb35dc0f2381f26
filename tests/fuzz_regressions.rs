//! Inputs the fuzz targets (fuzz/, run by fuzz/run.sh) found to crash aicr,
//! each run through the same function the target and the CLI call, and
//! held to the error it gives now.

mod common;

use aicr::bundler::set::{parse_path, Assignment, SetKind};
use serde_json::json;

/// set_expression: 446 bytes of `--set` whose 63 nested indexes of 65,536
/// each padded one list after another: four million nulls, over libFuzzer's
/// 2 GiB (and, in `aicr bundle`, hundreds of MiB of values.yaml).
#[test]
fn nested_list_indexes_may_not_add_up_past_helms_limit() {
    let input = [b"c:a".as_slice(), &b"[65536]".repeat(63), b"=x"].concat();
    assert_eq!(input.len(), 446);
    let arg = std::str::from_utf8(&input).unwrap();
    let path = &arg[2..arg.len() - 2];
    for kind in [SetKind::Typed, SetKind::String, SetKind::Json] {
        let e = Assignment::parse(arg, kind).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} {:?}: the list indexes in path {:?} add up to 4128768, over the limit of 65536 for one path",
                kind.flag(),
                aicr::error::excerpt(arg),
                aicr::error::excerpt(path)
            )
        );
    }
    // Up to the limit, indexes are Helm's: the lists are padded with nulls.
    let a = Assignment::parse("c:a[65535][1]=x", SetKind::Typed).unwrap();
    let mut values = json!({});
    a.apply(&mut values).unwrap();
    let outer = values["a"].as_array().unwrap();
    assert_eq!(outer.len(), 65536);
    assert_eq!(outer[65535], json!([null, "x"]));
    assert_eq!(
        parse_path("a[65535][2]").unwrap_err(),
        "the list indexes in path \"a[65535][2]\" add up to 65537, over the limit of 65536 for one path"
    );
}

/// The same input through `aicr bundle`: refused before anything is
/// written, as invalid input.
#[test]
fn bundle_refuses_a_set_whose_indexes_add_up_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let out = out.to_str().unwrap();
    let set = "gpu-operator:a[40000][40000]=x";
    let run = common::run(&[
        "bundle",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--set",
        set,
        "-o",
        out,
    ]);
    assert_eq!(common::code(&run), 2, "{}", common::stderr(&run));
    assert_eq!(common::stdout(&run), "");
    assert!(
        common::stderr(&run).contains(
            "--set \"gpu-operator:a[40000][40000]=x\": the list indexes in path \"a[40000][40000]\" add up to 80000, over the limit of 65536 for one path"
        ),
        "{}",
        common::stderr(&run)
    );
    assert!(!std::path::Path::new(out).exists());
}
