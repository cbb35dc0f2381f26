//! A `Snapshot` document read as `aicr recipe -s` reads it
//! (`Snapshot::parse`, then the criteria detected from it), as `aicr diff`
//! reads it (`diff::Document::new`; a snapshot compared with itself has no
//! changes), and written back as `aicr snapshot` writes it: the YAML reads
//! back to the same snapshot.
#![no_main]

use aicr::diff::{Document, Pair};
use aicr::measurement::{Snapshot, SNAPSHOT_KIND};
use aicr::serializer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = Snapshot::parse(data, "snapshot.yaml") {
        let _ = aicr::recipe::snapshot::detect(&snap);
        let _ = snap.to_table();
        if snap.kind == SNAPSHOT_KIND {
            let value = serde_json::to_value(&snap).expect("a snapshot serialises");
            let yaml = serializer::render(&value, serializer::Format::Yaml);
            let back = Snapshot::parse(yaml.as_bytes(), "rendered.yaml")
                .unwrap_or_else(|e| panic!("rendered snapshot does not read back: {e}\n{yaml}"));
            let again = serde_json::to_value(&back).expect("a snapshot serialises");
            assert_eq!(value, again, "snapshot changed on a round trip:\n{yaml}");
        }
    }
    if let Ok(raw) = serializer::parse_value(data, "a.yaml", SNAPSHOT_KIND) {
        if let Ok(doc) = Document::new("a.yaml", raw) {
            if let Ok(pair) = Pair::new(doc.clone(), doc) {
                assert!(pair.changes().is_empty(), "a document differs from itself");
                assert!(pair.patch().is_empty(), "a document patches itself");
            }
        }
    }
});
