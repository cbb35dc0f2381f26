//! A `--set`, `--set-string` and `--set-json` argument as `aicr bundle`
//! takes it (`Assignment::parse`), applied to a component's values
//! (`Assignment::apply`, the `enabled` switch), and the values written as
//! `values.yaml` is written: the YAML reads back to the same values.
#![no_main]

use aicr::bundler::set::{Assignment, SetKind};
use aicr::serializer;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    // Command-line arguments reach clap's String only as UTF-8.
    let Ok(arg) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [SetKind::Typed, SetKind::String, SetKind::Json] {
        let Ok(a) = Assignment::parse(arg, kind) else {
            continue;
        };
        let _ = a.enabled();
        let mut values = json!({
            "driver": {"enabled": true, "version": "580.95.05", "env": [{"name": "A", "value": "1"}]},
            "list": [1, 2, 3],
            "empty": {},
            "scalar": "x",
        });
        if a.apply(&mut values).is_err() {
            continue;
        }
        let yaml = serializer::yaml::to_string(&values);
        let back = serializer::parse_value(yaml.as_bytes(), "values.yaml", "values")
            .unwrap_or_else(|e| panic!("values.yaml does not read back: {e}\n{yaml}"));
        assert_eq!(values, back, "values changed on a round trip:\n{yaml}");
    }
});
