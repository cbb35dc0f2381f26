//! One parsed constraint against one snapshot: passed, failed, or skipped
//! with the reason (the measurement type absent, its collector
//! unavailable, the subtype or key absent, the value not comparable, or a
//! value only a live cluster has). Never a silent pass.

use super::lang::{Constraint, Expected, Target};
use super::version::Version;
use crate::error::excerpt;
use crate::measurement::{MeasurementType, Snapshot};
use crate::validate::Status;

/// How one constraint ended against a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// The value read from the snapshot, when there was one.
    pub actual: Option<String>,
    /// For a skip, why it was not evaluated; empty otherwise.
    pub skip_reason: String,
}

impl Outcome {
    fn skipped(reason: String) -> Outcome {
        Outcome {
            status: Status::Skipped,
            actual: None,
            skip_reason: reason,
        }
    }

    /// The message of the check: expected and actual, or the skip reason
    /// and what was expected.
    pub fn message(&self, c: &Constraint) -> String {
        let expected = c.expected.to_string();
        match (&self.status, &self.actual) {
            (Status::Skipped, _) => format!("{}; expected {expected}", self.skip_reason),
            (_, Some(actual)) => format!("expected {expected}, got {}", excerpt(actual)),
            (_, None) => format!("expected {expected}"),
        }
    }
}

/// Evaluates `c` against `snap`.
pub fn evaluate(c: &Constraint, snap: &Snapshot) -> Outcome {
    let (kind, subtype, key) = match &c.target {
        Target::Live { phase } => {
            return Outcome::skipped(format!(
                "not in a snapshot: the {phase} phase measures it in a live cluster"
            ))
        }
        Target::Snapshot { kind, subtype, key } => (*kind, subtype.as_str(), key.as_str()),
    };
    let Some(reading) = snap.reading(kind, subtype, key) else {
        return Outcome::skipped(absence(snap, kind, subtype, key));
    };
    let actual = reading.to_string();
    let status = match &c.expected {
        Expected::Exact(want) => pass_if(actual == *want),
        Expected::Compare { op, version, .. } => match Version::parse(&actual) {
            Some(found) => pass_if(op.holds(&found, version)),
            None => {
                return Outcome {
                    status: Status::Skipped,
                    skip_reason: format!(
                        "value not comparable: {:?} is not a version",
                        excerpt(&actual)
                    ),
                    actual: Some(actual),
                }
            }
        },
    };
    Outcome {
        status,
        actual: Some(actual),
        skip_reason: String::new(),
    }
}

fn pass_if(ok: bool) -> Status {
    if ok {
        Status::Passed
    } else {
        Status::Failed
    }
}

/// Why `Type.subtype.key` has no reading in `snap`, judged from the first
/// measurement of the type and the first subtype of the name (the first of
/// duplicates wins).
fn absence(snap: &Snapshot, kind: MeasurementType, subtype: &str, key: &str) -> String {
    let mut of_kind = snap.measurements.iter().filter(|m| m.kind == kind);
    let Some(first) = of_kind.clone().next() else {
        return format!("measurement absent: the snapshot has no {kind} measurement");
    };
    let sub = of_kind
        .by_ref()
        .flat_map(|m| &m.subtypes)
        .find(|s| s.subtype == subtype);
    match (sub, &first.unavailable) {
        (None, Some(reason)) => format!("{kind} collector unavailable: {}", excerpt(reason)),
        (None, None) => format!(
            "measurement absent: the snapshot's {kind} measurement has no subtype {:?}",
            excerpt(subtype)
        ),
        (Some(s), _) => match s.context.get("unavailable") {
            Some(reason) => format!(
                "{kind}.{} unavailable: {}",
                excerpt(subtype),
                excerpt(reason)
            ),
            None => format!(
                "measurement absent: {kind}.{} has no key {:?}",
                excerpt(subtype),
                excerpt(key)
            ),
        },
    }
}
