//! The `RecipeResult` document: what `aicr recipe` prints and `aicr bundle`
//! reads; its table form; and its hydrated form, the map `aicr query` selects
//! from.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::criteria::Criteria;
use super::metadata::{ComponentRef, Constraint, Validation};
use super::store::DataStore;
use super::values::component_values;
use super::Error;
use crate::serializer::{self, table};

pub const RESULT_KIND: &str = "RecipeResult";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecipeResult {
    pub kind: String,
    pub api_version: String,
    pub metadata: ResultMetadata,
    pub criteria: Criteria,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    #[serde(default, deserialize_with = "unique_refs")]
    pub component_refs: Vec<ComponentRef>,
    #[serde(default, deserialize_with = "super::metadata::component_names")]
    pub deployment_order: Vec<String>,
    #[serde(default, skip_serializing_if = "Validation::is_empty")]
    pub validation: Validation,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResultMetadata {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub applied_overlays: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_overlays: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraint_warnings: Vec<ConstraintWarning>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstraintWarning {
    pub overlay: String,
    pub constraint: String,
    #[serde(default)]
    pub expected: String,
    #[serde(default)]
    pub actual: String,
    #[serde(default)]
    pub reason: String,
}

/// `componentRefs` with each component once: a second reference to the same
/// component is a mistake (which one would be bundled?), not a merge.
fn unique_refs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ComponentRef>, D::Error> {
    let refs = Vec::<ComponentRef>::deserialize(d)?;
    let mut seen = std::collections::BTreeSet::new();
    for r in &refs {
        if !seen.insert(r.name.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "componentRefs lists component {:?} twice; each component may appear once",
                r.name
            )));
        }
    }
    Ok(refs)
}

impl RecipeResult {
    /// Parses a `RecipeResult` document (YAML or JSON, by content), as
    /// `aicr bundle -r` reads it; `origin` names it in messages.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<RecipeResult, serializer::Error> {
        let value = serializer::parse_value(bytes, origin, RESULT_KIND)?;
        serializer::typed_document(value, origin, RESULT_KIND, false)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a recipe always serialises")
    }

    /// The recipe for a person: criteria, overlays, components in
    /// deployment order, constraints and validation checks.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let crit = serde_json::to_value(&self.criteria).expect("criteria serialise");
        let mut rows = vec![vec!["CRITERION".to_string(), "VALUE".to_string()]];
        if let Value::Object(m) = crit {
            rows.extend(
                m.iter()
                    .map(|(k, v)| vec![k.clone(), table::scalar_text(v)]),
            );
        }
        out.push_str(&table::render(&rows));
        out.push_str(&format!(
            "\nOverlays: {}\n",
            self.metadata.applied_overlays.join(", ")
        ));
        if !self.metadata.excluded_overlays.is_empty() {
            out.push_str(&format!(
                "Excluded by the snapshot: {}\n",
                self.metadata.excluded_overlays.join(", ")
            ));
        }
        if !self.metadata.constraint_warnings.is_empty() {
            out.push_str(&format!(
                "Constraint warnings: {} (see metadata.constraintWarnings in -t yaml)\n",
                self.metadata.constraint_warnings.len()
            ));
        }
        out.push('\n');

        let mut rows = vec![[
            "#",
            "COMPONENT",
            "VERSION",
            "NAMESPACE",
            "SOURCE",
            "DEPENDS ON",
        ]
        .map(String::from)
        .to_vec()];
        for (i, name) in self.deployment_order.iter().enumerate() {
            let Some(c) = self.component_refs.iter().find(|c| &c.name == name) else {
                continue;
            };
            rows.push(vec![
                (i + 1).to_string(),
                c.name.clone(),
                or_dash(&c.version),
                or_dash(&c.namespace),
                or_dash(&source_of(c)),
                if c.dependency_refs.is_empty() {
                    "-".into()
                } else {
                    c.dependency_refs.join(", ")
                },
            ]);
        }
        out.push_str(&table::render(&rows));

        if !self.constraints.is_empty() {
            let mut rows = vec![vec!["CONSTRAINT".to_string(), "EXPECTED".to_string()]];
            rows.extend(
                self.constraints
                    .iter()
                    .map(|c| vec![c.name.clone(), c.value.clone()]),
            );
            out.push('\n');
            out.push_str(&table::render(&rows));
        }
        let phases = [
            ("readiness", &self.validation.readiness),
            ("deployment", &self.validation.deployment),
            ("performance", &self.validation.performance),
            ("conformance", &self.validation.conformance),
        ];
        let mut rows = vec![vec!["PHASE".to_string(), "CHECKS".to_string()]];
        for (name, phase) in phases {
            if let Some(p) = phase {
                rows.push(vec![name.to_string(), p.checks.join(", ")]);
            }
        }
        if rows.len() > 1 {
            out.push('\n');
            out.push_str(&table::render(&rows));
        }
        out
    }

    /// The hydrated recipe: the recipe with `components` keyed by name, each
    /// carrying its merged Helm `values` instead of file references.
    pub fn hydrate(&self, store: &DataStore) -> Result<Value, Error> {
        let mut components = Map::new();
        for r in &self.component_refs {
            let mut c = Map::new();
            c.insert("name".into(), json!(r.name));
            if let Some(k) = r.kind {
                c.insert(
                    "type".into(),
                    serde_json::to_value(k).expect("type serialises"),
                );
            }
            for (key, v) in [
                ("source", &r.source),
                ("namespace", &r.namespace),
                ("chart", &r.chart),
                ("version", &r.version),
                ("tag", &r.tag),
                ("path", &r.path),
            ] {
                if !v.is_empty() {
                    c.insert(key.into(), json!(v));
                }
            }
            if !r.dependency_refs.is_empty() {
                c.insert("dependencyRefs".into(), json!(r.dependency_refs));
            }
            if !r.manifest_files.is_empty() {
                c.insert("manifestFiles".into(), json!(r.manifest_files));
            }
            c.insert("values".into(), component_values(store, r)?);
            components.insert(r.name.clone(), Value::Object(c));
        }
        let mut root = Map::new();
        root.insert("kind".into(), json!(self.kind));
        root.insert("apiVersion".into(), json!(self.api_version));
        root.insert(
            "metadata".into(),
            serde_json::to_value(&self.metadata).expect("metadata serialises"),
        );
        root.insert(
            "criteria".into(),
            serde_json::to_value(&self.criteria).expect("criteria serialise"),
        );
        root.insert(
            "constraints".into(),
            serde_json::to_value(&self.constraints).expect("constraints serialise"),
        );
        root.insert("deploymentOrder".into(), json!(self.deployment_order));
        root.insert("components".into(), Value::Object(components));
        if !self.validation.is_empty() {
            root.insert(
                "validation".into(),
                serde_json::to_value(&self.validation).expect("validation serialises"),
            );
        }
        Ok(Value::Object(root))
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Where a component comes from: chart repository (and chart), or
/// "manifests" for a component without a chart source.
fn source_of(c: &ComponentRef) -> String {
    match (c.source.as_str(), c.chart.as_str()) {
        ("", _) if !c.manifest_files.is_empty() => "manifests only".into(),
        (s, "") => s.to_string(),
        (s, chart) if s.starts_with("oci://") => format!("{s}/{chart}"),
        (s, chart) => format!("{s} ({chart})"),
    }
}
