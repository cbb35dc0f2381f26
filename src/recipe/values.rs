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
        let origin = store.origin(&normalise(&f)?);
        let bytes = store.read(&f)?;
        let layer = parse_values(&bytes, &origin, &r.name)?;
        deep_merge(&mut values, &layer);
    }
    deep_merge(&mut values, &Value::Object(r.overrides.clone()));
    sort_keys(&mut values);
    Ok(values)
}

/// A values file: a mapping, or nothing at all (comments only).
fn parse_values(bytes: &[u8], origin: &str, component: &str) -> Result<Value, Error> {
    match serializer::parse_value(bytes, origin, "Helm values") {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::ValuesShape {
            component: component.into(),
            path: origin.into(),
        }),
        Err(serializer::Error::Empty { .. }) => Ok(Value::Object(Map::new())),
        Err(e) => Err(e.into()),
    }
}
