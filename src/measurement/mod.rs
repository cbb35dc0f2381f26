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
    /// Why this source could not be read (no GPU, no systemd, no cluster,
    /// a timeout). Absent when the measurement is complete. Go aicr ignores
    /// the field, so snapshots stay readable there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

impl Measurement {
    pub fn new(kind: MeasurementType, subtypes: Vec<Subtype>) -> Measurement {
        Measurement {
            kind,
            subtypes,
            unavailable: None,
        }
    }

    pub fn unavailable(kind: MeasurementType, reason: impl Into<String>) -> Measurement {
        Measurement {
            kind,
            subtypes: Vec::new(),
            unavailable: Some(reason.into()),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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

impl Subtype {
    pub fn new(name: &str, data: BTreeMap<String, Reading>) -> Subtype {
        Subtype {
            subtype: name.to_string(),
            data,
            context: BTreeMap::new(),
        }
    }

    /// A subtype whose source is missing: no data, the reason in its context.
    pub fn unavailable(name: &str, reason: impl Into<String>) -> Subtype {
        let mut context = BTreeMap::new();
        context.insert("unavailable".to_string(), reason.into());
        Subtype {
            subtype: name.to_string(),
            data: BTreeMap::new(),
            context,
        }
    }
}

impl From<&str> for Reading {
    fn from(s: &str) -> Reading {
        Reading::Text(s.to_string())
    }
}

impl From<String> for Reading {
    fn from(s: String) -> Reading {
        Reading::Text(s)
    }
}

impl From<bool> for Reading {
    fn from(b: bool) -> Reading {
        Reading::Bool(b)
    }
}

impl From<i64> for Reading {
    fn from(i: i64) -> Reading {
        Reading::Int(i)
    }
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
    /// The snapshot for a person: one row per reading, and one per source
    /// that was unavailable, in measurement order.
    pub fn to_table(&self) -> String {
        let mut rows = vec![["TYPE", "SUBTYPE", "KEY", "VALUE"]
            .map(String::from)
            .to_vec()];
        for m in &self.measurements {
            if let Some(reason) = &m.unavailable {
                rows.push(vec![
                    m.kind.to_string(),
                    "-".into(),
                    "-".into(),
                    format!("unavailable: {reason}"),
                ]);
            }
            for s in &m.subtypes {
                if let Some(reason) = s.context.get("unavailable") {
                    rows.push(vec![
                        m.kind.to_string(),
                        s.subtype.clone(),
                        "-".into(),
                        format!("unavailable: {reason}"),
                    ]);
                }
                for (k, v) in &s.data {
                    let v = v.to_string();
                    let v = if v.contains('\n') {
                        format!("{:?}", v)
                    } else {
                        v
                    };
                    rows.push(vec![m.kind.to_string(), s.subtype.clone(), k.clone(), v]);
                }
            }
        }
        crate::serializer::table::render(&rows)
    }

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
