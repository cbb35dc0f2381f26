//! Values hydration: a component's Helm values are its base
//! `components/<name>/values.yaml`, then the recipe's `valuesFile` variant,
//! then the recipe's `overrides`, deep-merged in that order, keys sorted.

use serde_json::{Map, Value};

use super::metadata::{deep_merge, sort_keys, ComponentRef};
use super::store::{normalise, DataStore};
use super::Error;
use crate::serializer;

/// The hydrated values of one component.
pub fn component_values(store: &DataStore, r: &ComponentRef) -> Result<Value, Error> {
    let mut values = Value::Object(Map::new());
    let base = format!("components/{}/values.yaml", r.name);
    let mut files = Vec::with_capacity(2);
    if store.contains(&base)? {
        files.push(base.clone());
    }
    if !r.values_file.is_empty() && normalise(&r.values_file)? != base {
        files.push(r.values_file.clone());
    }
    for f in files {
        // A values file is a mapping, or nothing at all (comments only).
        let layer = match store.document(&f, "Helm values") {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(Error::ValuesShape {
                    component: r.name.clone(),
                    path: store.origin(&normalise(&f)?),
                })
            }
            Err(Error::Document(serializer::Error::Empty { .. })) => Value::Object(Map::new()),
            Err(e) => return Err(e),
        };
        deep_merge(&mut values, &layer);
    }
    deep_merge(&mut values, &Value::Object(r.overrides.clone()));
    sort_keys(&mut values);
    Ok(values)
}
