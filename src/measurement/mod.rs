//! The `Snapshot` data model: measurements of a node, each of a type
//! (`K8s`, `OS`, `GPU`, `SystemD`, `NodeTopology`) with named subtypes holding
//! readings. Compatible with Go aicr v0.11.1 snapshots, including those that
//! carry no `kind`; subtypes must be keyed `subtype:` (a `name:` key is an
//! error, not a silently skipped subtype).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::serializer;

pub const SNAPSHOT_KIND: &str = "Snapshot";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub measurements: Vec<Measurement>,
}

/// The measurement types, in the fixed order snapshots list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MeasurementType {
    K8s,
    #[serde(rename = "OS")]
    Os,
    #[serde(rename = "GPU")]
    Gpu,
    SystemD,
    NodeTopology,
}

impl fmt::Display for MeasurementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeasurementType::K8s => "K8s",
            MeasurementType::Os => "OS",
            MeasurementType::Gpu => "GPU",
            MeasurementType::SystemD => "SystemD",
            MeasurementType::NodeTopology => "NodeTopology",
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    #[serde(rename = "type")]
    pub kind: MeasurementType,
    #[serde(default)]
    pub subtypes: Vec<Subtype>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subtype {
    pub subtype: String,
    #[serde(default)]
    pub data: BTreeMap<String, Reading>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// One reading: a scalar as the collector saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reading {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reading::Bool(b) => write!(f, "{b}"),
            Reading::Int(i) => write!(f, "{i}"),
            Reading::Float(x) => write!(f, "{x}"),
            Reading::Text(s) => f.write_str(s),
        }
    }
}

impl Snapshot {
    /// Parses a snapshot document (YAML or JSON, by content).
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Snapshot, serializer::Error> {
        let v = serializer::parse_value(bytes, origin, SNAPSHOT_KIND)?;
        serializer::typed_document(v, origin, SNAPSHOT_KIND, true)
    }

    /// The reading at `Type.subtype.key`; the key may contain dots.
    pub fn reading(&self, kind: MeasurementType, subtype: &str, key: &str) -> Option<&Reading> {
        self.measurements
            .iter()
            .filter(|m| m.kind == kind)
            .flat_map(|m| &m.subtypes)
            .filter(|s| s.subtype == subtype)
            .find_map(|s| s.data.get(key))
    }
}
