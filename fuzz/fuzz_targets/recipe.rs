//! A `RecipeResult` document read as `aicr bundle -r FILE` reads it
//! (`RecipeResult::parse`), printed as `aicr recipe` prints it (YAML and
//! table; the YAML reads back to the same recipe), hydrated as `aicr query`
//! hydrates it, and prepared for bundling (`bundler::prepare`, without
//! writing anything) against the embedded data.
#![no_main]

use aicr::bundler::{self, Options};
use aicr::recipe::result::RecipeResult;
use aicr::recipe::DataStore;
use aicr::serializer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(recipe) = RecipeResult::parse(data, "recipe.yaml") else {
        return;
    };
    let value = recipe.to_value();
    let yaml = serializer::render(&value, serializer::Format::Yaml);
    let back = RecipeResult::parse(yaml.as_bytes(), "rendered.yaml")
        .unwrap_or_else(|e| panic!("rendered recipe does not read back: {e}\n{yaml}"));
    assert_eq!(
        value,
        back.to_value(),
        "recipe changed on a round trip:\n{yaml}"
    );
    let _ = recipe.to_table();
    let store = DataStore::embedded();
    let _ = recipe.hydrate(&store);
    let _ = bundler::prepare(&store, &recipe, &Options::default());
});
