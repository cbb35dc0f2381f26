//! A `RecipeCriteria` document read as `aicr recipe -c FILE` reads it
//! (`cli::parse_criteria_file`); the criteria it gives are matched against
//! the embedded overlays as a query is.
#![no_main]

use std::sync::OnceLock;

use aicr::recipe::{Catalog, DataStore};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::load(&DataStore::embedded()).expect("embedded data loads"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(criteria) = aicr::cli::parse_criteria_file(data, "criteria.yaml") else {
        return;
    };
    let _ = criteria.as_flags();
    let _ = criteria.stated();
    let _ = serde_json::to_value(&criteria).expect("criteria serialise");
    // Which overlays apply, and whether every stated criterion is honoured:
    // the first step of `recipe`, without the merge.
    let _ = catalog().applied(&criteria);
});
