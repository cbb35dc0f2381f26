//! A `--selector` as `aicr query` takes it (`Selector::parse`, then
//! `select`) on a fixed hydrated recipe (EKS, H100, training, Ubuntu, from
//! the embedded data), and the selected value printed as `query` prints it.
#![no_main]

use std::sync::OnceLock;

use aicr::recipe::criteria::{Accelerator, Intent, Os, Service};
use aicr::recipe::query::Selector;
use aicr::recipe::{Catalog, Criteria, DataStore};
use aicr::serializer::table;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn hydrated() -> &'static Value {
    static HYDRATED: OnceLock<Value> = OnceLock::new();
    HYDRATED.get_or_init(|| {
        let store = DataStore::embedded();
        let catalog = Catalog::load(&store).expect("embedded data loads");
        let criteria = Criteria {
            service: Some(Service::Eks),
            accelerator: Some(Accelerator::H100),
            intent: Some(Intent::Training),
            os: Some(Os::Ubuntu),
            ..Default::default()
        };
        let recipe = catalog
            .resolve(&store, &criteria)
            .expect("the recipe resolves");
        recipe.hydrate(&store).expect("the recipe hydrates")
    })
}

fuzz_target!(|data: &[u8]| {
    // Command-line arguments reach clap's String only as UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = Selector::parse(text) else {
        return;
    };
    if let Ok(v) = selector.select(hydrated()) {
        if !(v.is_object() || v.is_array()) {
            let _ = table::scalar_text(v);
        }
    }
});
