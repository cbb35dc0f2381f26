//! The documents of the recipe data model, serde-compatible with Go aicr
//! v0.11.1: `RecipeMetadata` overlays and the parts they share with the
//! `RecipeResult` (component references, constraints, validation phases).
//! Unknown fields are refused, so a misspelt field is an error, not a no-op.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::criteria::RawCriteria;

pub const OVERLAY_KIND: &str = "RecipeMetadata";

/// `metadata` of an aicr document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A `RecipeMetadata` overlay document.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverlayDoc {
    // kind and apiVersion are checked by serializer::typed_document.
    #[allow(dead_code)]
    pub kind: String,
    #[allow(dead_code)]
    pub api_version: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: OverlaySpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverlaySpec {
    /// The parent overlay; empty means `base`.
    #[serde(default)]
    pub base: String,
    #[serde(default)]
    pub criteria: Option<RawCriteria>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub component_refs: Vec<ComponentRef>,
    #[serde(default)]
    pub validation: Option<Validation>,
}

/// A constraint on a measurement: `name` is `Type.subtype.key`, `value` an
/// expression such as `>= 1.30` or a literal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    pub name: String,
    #[serde(deserialize_with = "scalar_string")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// How a component is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComponentType {
    Helm,
    Kustomize,
}

/// A resource a component is expected to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedResource {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A component reference, as overlays declare it and as recipes carry it.
/// Field order is the order Go aicr writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chart: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ComponentType>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(
        default,
        deserialize_with = "scalar_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub version: String,
    #[serde(
        default,
        deserialize_with = "scalar_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub tag: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub values_file: String,
    #[serde(
        default,
        skip_serializing_if = "Map::is_empty",
        deserialize_with = "map_or_null"
    )]
    pub overrides: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependency_refs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_files: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_resources: Vec<ExpectedResource>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_check_asserts: String,
}

/// Validation phases of a recipe. Each phase a later overlay declares
/// replaces the earlier one whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conformance: Option<Phase>,
}

impl Validation {
    pub fn is_empty(&self) -> bool {
        self == &Validation::default()
    }

    /// Phases set in `later` replace ours.
    pub fn merge(&mut self, later: &Validation) {
        for (mine, theirs) in [
            (&mut self.readiness, &later.readiness),
            (&mut self.deployment, &later.deployment),
            (&mut self.performance, &later.performance),
            (&mut self.conformance, &later.conformance),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Phase {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selection: Option<NodeSelection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSelection {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_nodes: Vec<String>,
}

/// Accepts a string, number or boolean and keeps its text: `version: 1.5`
/// stays "1.5" rather than failing or becoming a float.
pub fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {other}"
        ))),
    }
}

fn map_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    match Value::deserialize(d)? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(serde::de::Error::custom(format!(
            "expected a mapping, found {other}"
        ))),
    }
}

/// Sorts the keys of every mapping in `v`, recursively: free-form values
/// (Helm values, overrides) come out in one order whatever the file order.
pub fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// Deep merge: mappings merge key by key, anything else in `top` replaces
/// what is in `base` (lists included, as Helm does). Nulls are kept: Helm
/// reads a null as "delete this default".
pub fn deep_merge(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, tv) in t {
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && tv.is_object() => deep_merge(bv, tv),
                    _ => {
                        b.insert(k.clone(), tv.clone());
                    }
                }
            }
        }
        (b, t) => *b = t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_merge_merges_maps_and_replaces_the_rest() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        deep_merge(&mut base, &json!({"a": {"c": [3], "e": null}, "f": 2}));
        assert_eq!(
            base,
            json!({"a": {"b": 1, "c": [3], "e": null}, "d": 1, "f": 2})
        );
    }
}
