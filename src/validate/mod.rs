//! Validation results: every check `aicr validate` runs (a recipe constraint
//! against a snapshot, a component's readiness in a live cluster) ends as one
//! [`Check`]: passed, failed, or skipped with the reason. Reports (table,
//! YAML, JSON, CTRF, JUnit) are written from the list of checks; the exit
//! status is decided from their statuses, never from how they were produced.

pub mod deployment;
pub mod helm_release;
pub mod report;

use std::time::Duration;

use serde::Serialize;

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// Not evaluated, with the reason in [`Check::message`]: the
    /// measurement is absent, its collector was unavailable, the value is
    /// not comparable, or no cluster was reachable.
    Skipped,
}

/// The phase a check belongs to, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The recipe's constraints against a snapshot (offline).
    Constraints,
    /// The deployed stack against a live cluster (read-only).
    Deployment,
}

/// One check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable and unique within a report: for a constraint its name and
    /// expected value (`K8s.server.version >= 1.30`), for a readiness item
    /// the component and what was checked (`gpu-operator: Deployment
    /// gpu-operator/gpu-operator ready`).
    pub name: String,
    pub phase: Phase,
    /// The group it is reported under: `constraints`, or the component name
    /// for a component's checks.
    pub suite: String,
    pub status: Status,
    /// Why it ended as it did: the value found, the failure, the skip
    /// reason. Empty only for a pass that has nothing to add.
    pub message: String,
    /// The object looked at (`OS.release.VERSION_ID = 24.04`,
    /// `apps/v1 Deployment gpu-operator/gpu-operator`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Wall time spent on the check (zero for offline checks, which reports
    /// print as 0 so the same input gives the same bytes).
    #[serde(skip)]
    pub duration: Duration,
}
