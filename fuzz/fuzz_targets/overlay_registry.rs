//! A YAML or JSON document read as the recipe data store reads its files:
//! as an overlay under `overlays/` (`Catalog::load` through
//! `Overlay::from_document`, then the checks `resolve` makes of its
//! component references) and as a `registry.yaml` (the typed
//! `ComponentRegistry` document merged into a registry, as
//! `DataStore::registry` does).
#![no_main]

use aicr::recipe::catalog::{deployment_order, merge_ref, Overlay};
use aicr::recipe::metadata::{ComponentRef, OVERLAY_KIND};
use aicr::recipe::registry::{Registry, RegistryDoc, REGISTRY_KIND};
use aicr::serializer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let origin = "overlays/fuzz.yaml";
    if let Ok(value) = serializer::parse_value(data, origin, OVERLAY_KIND) {
        if let Ok(overlay) = Overlay::from_document(value, origin.to_string()) {
            let _ = overlay.criteria.specificity();
            let _ = overlay.criteria.as_flags();
            let refs = &overlay.spec.component_refs;
            let _ = deployment_order(refs);
            for r in refs {
                let _ = r.check_manifest_files();
                let mut base = ComponentRef {
                    name: r.name.clone(),
                    ..Default::default()
                };
                merge_ref(&mut base, r);
            }
        }
    }
    let origin = "registry.yaml";
    if let Ok(value) = serializer::parse_value(data, origin, REGISTRY_KIND) {
        if let Ok(doc) =
            serializer::typed_document::<RegistryDoc>(value, origin, REGISTRY_KIND, false)
        {
            let mut registry = Registry::default();
            registry.merge(doc.components.clone());
            registry.merge(doc.components);
            for c in &registry.components {
                let _ = (
                    c.default_namespace(),
                    c.default_chart(),
                    c.default_source(),
                    c.default_version(),
                );
            }
            let _ = registry.names();
        }
    }
});
