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
    #[serde(deserialize_with = "component_name")]
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
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "component_names"
    )]
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

/// The one rule for component names, applied as every registry entry,
/// overlay and recipe is loaded: a name becomes a directory of the bundle
/// and a word of its scripts, so it is a DNS-1123 label.
pub fn check_component_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "component name {name:?} is not valid: a component name is a DNS label (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)"
        ))
    }
}

/// A component name, checked by [`check_component_name`].
pub fn component_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check_component_name(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

/// A list of component names, each checked by [`check_component_name`].
pub fn component_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for n in &names {
        check_component_name(n).map_err(serde::de::Error::custom)?;
    }
    Ok(names)
}

impl ComponentRef {
    /// Checks that every `manifestFiles` entry is a manifest of this
    /// component: a relative path under `components/<name>/manifests/`,
    /// with no empty, `.` or `..` segment, ending in `.yaml` or `.yml`.
    /// On failure: the entry, and why it is refused.
    pub fn check_manifest_files(&self) -> Result<(), (&str, String)> {
        let dir = format!("components/{}/manifests/", self.name);
        for path in &self.manifest_files {
            let ok = path.strip_prefix(&dir).is_some_and(|rest| {
                rest.split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            }) && !path.contains('\\')
                && (path.ends_with(".yaml") || path.ends_with(".yml"));
            if !ok {
                return Err((
                    path,
                    format!("is not a manifest of this component: manifest files are paths under {dir} (no '..'), ending in .yaml or .yml"),
                ));
            }
        }
        Ok(())
    }
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
    fn component_names_and_manifest_files() {
        assert!(check_component_name("gpu-operator").is_ok());
        for bad in [
            "../../etc",
            "A",
            "-a",
            "a-",
            "a/b",
            "a b",
            "",
            &"a".repeat(64),
        ] {
            assert!(check_component_name(bad).is_err(), "{bad}");
        }
        let mut r = ComponentRef {
            name: "gpu-operator".into(),
            manifest_files: vec![
                "components/gpu-operator/manifests/dcgm-exporter.yaml".into(),
                "components/gpu-operator/manifests/sub/x.yml".into(),
            ],
            ..Default::default()
        };
        assert!(r.check_manifest_files().is_ok());
        for bad in [
            "registry.yaml",
            "/etc/passwd.yaml",
            "components/gpu-operator/values.yaml",
            "components/other/manifests/x.yaml",
            "components/gpu-operator/manifests/../values.yaml",
            "components/gpu-operator/manifests//x.yaml",
            "components/gpu-operator/manifests/x.txt",
        ] {
            r.manifest_files = vec![bad.into()];
            assert!(r.check_manifest_files().is_err(), "{bad}");
        }
    }

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
