//! The constraint language: a path (`Type.subtype.key`, the key may hold
//! dots and slashes) and an expected value (`>= 1.30`, `< 6.0`, `!= 1.2.3`,
//! or a bare value matched exactly). Parsing checks everything a
//! constraint can get wrong before any is evaluated: an unknown type, a
//! missing subtype or key, an empty value, an operator with nothing after
//! it or an unknown one, a value that is not a version after an operator.

use std::fmt;

use super::version::Version;
use super::Error;
use crate::error::excerpt;
use crate::measurement::MeasurementType;

/// The measurement types a path may name, as written in constraints.
pub const TYPES: [(&str, MeasurementType); 5] = [
    ("K8s", MeasurementType::K8s),
    ("OS", MeasurementType::Os),
    ("GPU", MeasurementType::Gpu),
    ("SystemD", MeasurementType::SystemD),
    ("NodeTopology", MeasurementType::NodeTopology),
];

/// The ordering operators, longest first (so `>=` is not read as `>`).
pub const OPERATORS: [(&str, Op); 6] = [
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("==", Op::Eq),
    ("!=", Op::Ne),
    (">", Op::Gt),
    ("<", Op::Lt),
];

/// A comparison in version order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ge,
    Le,
    Gt,
    Lt,
    Eq,
    Ne,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(s, _)| *s)
            .unwrap_or("?")
    }

    /// Whether `actual OP expected` holds.
    pub fn holds(self, actual: &Version, expected: &Version) -> bool {
        match self {
            Op::Ge => actual >= expected,
            Op::Le => actual <= expected,
            Op::Gt => actual > expected,
            Op::Lt => actual < expected,
            Op::Eq => actual == expected,
            Op::Ne => actual != expected,
        }
    }
}

/// What a constraint expects of the value it names.
#[derive(Clone, Debug)]
pub enum Expected {
    /// `OP version`: the value read must be a version in that relation.
    Compare {
        op: Op,
        version: Version,
        /// The version as written after the operator.
        text: String,
    },
    /// A bare value: the value read must be exactly this text.
    Exact(String),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Compare { op, text, .. } => write!(f, "{} {text}", op.symbol()),
            Expected::Exact(v) => f.write_str(v),
        }
    }
}

/// Where the value a constraint names is measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A reading of a snapshot: `Type.subtype.key`.
    Snapshot {
        kind: MeasurementType,
        subtype: String,
        key: String,
    },
    /// A value only a validation phase measures in a live cluster (a
    /// deployed component's `Deployment.<component>.<field>`, a
    /// performance result such as `nccl-all-reduce-bw`): never in a
    /// snapshot.
    Live { phase: String },
}

/// A parsed constraint.
#[derive(Clone, Debug)]
pub struct Constraint {
    /// The path as written.
    pub name: String,
    /// The value as written.
    pub value: String,
    pub target: Target,
    pub expected: Expected,
}

impl Constraint {
    /// `Type.subtype.key OP value` as the recipe writes it (the name of a
    /// check).
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.value)
    }

    /// Parses a constraint of the recipe's top-level `constraints` (or of
    /// an overlay): its path must name a snapshot reading.
    pub fn parse(name: &str, value: &str) -> Result<Constraint, Error> {
        Constraint::parse_in(name, value, None)
    }

    /// Parses a constraint of `validation.<phase>.constraints`. There, the
    /// deployment phase may also name `Deployment.<component>.<field>` and
    /// the performance and conformance phases a result by its name alone
    /// (`nccl-all-reduce-bw`): values measured in a live cluster.
    pub fn parse_in(name: &str, value: &str, phase: Option<&str>) -> Result<Constraint, Error> {
        let invalid = |reason: String| Error::Invalid {
            name: excerpt(name).into_owned(),
            reason: match phase {
                Some(p) => format!("{reason} (in validation.{p}.constraints)"),
                None => reason,
            },
        };
        let target = parse_path(name, phase).map_err(invalid)?;
        let expected = parse_expected(value).map_err(invalid)?;
        Ok(Constraint {
            name: name.to_string(),
            value: value.to_string(),
            target,
            expected,
        })
    }
}

fn parse_path(name: &str, phase: Option<&str>) -> Result<Target, String> {
    if name.trim().is_empty() {
        return Err(
            "the name is empty; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version)".into(),
        );
    }
    if name.trim() != name {
        return Err("the name has leading or trailing whitespace".into());
    }
    // A performance or conformance result, named alone.
    if let Some(p @ ("performance" | "conformance")) = phase {
        if !name.contains('.') {
            return Ok(Target::Live { phase: p.into() });
        }
    }
    let mut parts = name.splitn(3, '.');
    let (kind, subtype, key) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let live = phase == Some("deployment") && kind == "Deployment";
    let kind = if live {
        None
    } else {
        Some(measurement_type(kind, phase)?)
    };
    for (what, part) in [("subtype", subtype), ("key", key)] {
        if part.is_empty() {
            return Err(format!(
                "the path has no {what}; a constraint names a measurement as Type.subtype.key (e.g. K8s.server.version, OS.sysctl./proc/sys/kernel/osrelease)"
            ));
        }
    }
    if subtype.contains(char::is_whitespace) {
        return Err(format!(
            "subtype {:?} contains whitespace",
            excerpt(subtype)
        ));
    }
    Ok(match kind {
        None => Target::Live {
            phase: "deployment".into(),
        },
        Some(kind) => Target::Snapshot {
            kind,
            subtype: subtype.to_string(),
            key: key.to_string(),
        },
    })
}

/// The measurement type a path starts with, or why it is not one.
fn measurement_type(kind: &str, phase: Option<&str>) -> Result<MeasurementType, String> {
    TYPES
        .iter()
        .find(|(t, _)| *t == kind)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            let mut types: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
            if phase == Some("deployment") {
                types.push("Deployment (deployment phase only)");
            }
            format!(
                "unknown measurement type {:?}; types are {}",
                excerpt(kind),
                types.join(", ")
            )
        })
}

/// The characters an operator is made of: a value starting with one of
/// them is an operator expression, never a bare value (so `≥ 1.30` and
/// `~1.30` are refused rather than matched as text).
const OPERATOR_CHARS: &[char] = &['<', '>', '=', '!', '~', '^', '≥', '≤', '≠'];

fn parse_expected(value: &str) -> Result<Expected, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(
            "the value is empty; give an operator and a version (>= 1.30) or a bare value to match exactly".into(),
        );
    }
    let op_end = v.find(|c| !OPERATOR_CHARS.contains(&c)).unwrap_or(v.len());
    if op_end == 0 {
        return Ok(Expected::Exact(v.to_string()));
    }
    let (token, rest) = v.split_at(op_end);
    let Some(op) = OPERATORS.iter().find(|(s, _)| *s == token).map(|(_, o)| *o) else {
        return Err(format!(
            "value {:?} has unknown operator {:?}; operators are >=, <=, >, <, ==, != (or a bare value for an exact match)",
            excerpt(value),
            excerpt(token)
        ));
    };
    let text = rest.trim();
    if text.is_empty() {
        return Err(format!(
            "value {:?} has no version after the operator {token}",
            excerpt(value)
        ));
    }
    let version = Version::parse(text).ok_or_else(|| {
        format!(
            "value {:?}: {:?} is not a version; {token} compares versions such as 1.30, v1.33.5 or 6.8.0-1024-aws (write the bare value for an exact text match)",
            excerpt(value),
            excerpt(text)
        )
    })?;
    Ok(Expected::Compare {
        op,
        version,
        text: text.to_string(),
    })
}
