//! What a `Snapshot` decides about a recipe (`aicr recipe -s FILE`): the
//! criteria it shows (the service from the Kubernetes server, the
//! accelerator from the GPU model, the OS from os-release; intent and
//! platform are never guessed), and the overlays it rules out: each
//! candidate overlay's own constraints evaluated against it, an overlay
//! with a failing constraint excluded (with its descendants), one whose
//! constraint could not be evaluated kept with a warning.

use std::collections::BTreeMap;

use super::catalog::Overlay;
use super::criteria::{Accelerator, Criteria, Os, Service};
use super::result::ConstraintWarning;
use super::Error;
use crate::constraints::{self, Constraint};
use crate::measurement::{MeasurementType, Reading, Snapshot};
use crate::validate::Status;

/// What the snapshot says about the cluster. Fields it cannot tell stay any.
pub fn detect(snap: &Snapshot) -> Criteria {
    let text = |kind, sub: &str, key: &str| snap.reading(kind, sub, key).map(Reading::to_string);
    let service = text(MeasurementType::K8s, "server", "service")
        .and_then(|s| Service::parse(&s).ok().flatten())
        .or_else(|| {
            let version = text(MeasurementType::K8s, "server", "version")?.to_ascii_lowercase();
            [
                ("-eks-", Service::Eks),
                ("-gke", Service::Gke),
                ("-aks", Service::Aks),
            ]
            .into_iter()
            .find(|(marker, _)| version.contains(marker))
            .map(|(_, s)| s)
        });
    let model = ["smi", "device"]
        .iter()
        .flat_map(|sub| ["gpu.model", "model"].map(|key| text(MeasurementType::Gpu, sub, key)))
        .flatten()
        .next()
        .map(|m| m.to_ascii_lowercase());
    // Longer names first: "gb200" contains "b200".
    let accelerator = model.and_then(|m| {
        [
            ("gb200", Accelerator::Gb200),
            ("b200", Accelerator::B200),
            ("h200", Accelerator::H200),
            ("h100", Accelerator::H100),
            ("a100", Accelerator::A100),
            ("l40", Accelerator::L40),
        ]
        .into_iter()
        .find(|(name, _)| m.contains(name))
        .map(|(_, a)| a)
    });
    let os = text(MeasurementType::Os, "release", "ID").and_then(|id| match id.trim() {
        "amzn" => Some(Os::Amazonlinux),
        other => Os::parse(other).ok().flatten(),
    });
    Criteria {
        service,
        accelerator,
        os,
        ..Criteria::default()
    }
}

/// The overlays a snapshot rules out, and why.
#[derive(Debug, Default)]
pub struct Screening {
    /// Excluded overlays, in merge order, each with why: its failing
    /// constraints (`constraint K8s.server.version >= 1.34 failed (got
    /// v1.33.0)`) or its excluded base.
    pub excluded: Vec<(String, String)>,
    /// One per constraint that failed or could not be evaluated, and one
    /// per overlay excluded with its base, in merge order.
    pub warnings: Vec<ConstraintWarning>,
}

impl Screening {
    pub fn is_excluded(&self, overlay: &str) -> bool {
        self.excluded.iter().any(|(e, _)| e == overlay)
    }
}

/// Evaluates the own constraints of each overlay of `applied` (in merge
/// order, so a base comes before the overlays that inherit from it)
/// against `snap`. An overlay with a failing constraint is excluded, and
/// so is every overlay whose base is excluded; a constraint that cannot be
/// evaluated (measurement absent, not comparable) keeps its overlay, with
/// a warning. A constraint that does not parse is an error naming the
/// overlay's file.
pub fn screen(applied: &[&Overlay], snap: &Snapshot) -> Result<Screening, Error> {
    let mut parsed: BTreeMap<&str, Vec<Constraint>> = BTreeMap::new();
    for o in applied {
        let list = o
            .spec
            .constraints
            .iter()
            .map(|c| Constraint::parse(&c.name, &c.value))
            .collect::<Result<Vec<_>, constraints::Error>>()
            .map_err(|e| Error::Overlay {
                file: o.file.clone(),
                detail: e.to_string(),
            })?;
        parsed.insert(&o.name, list);
    }
    let mut out = Screening::default();
    for o in applied {
        if let Some(base) = o.parent.as_deref().filter(|p| out.is_excluded(p)) {
            let why = format!("its base overlay {base} is excluded");
            out.warnings.push(ConstraintWarning {
                overlay: o.name.clone(),
                reason: format!("{why}; overlay excluded"),
                ..ConstraintWarning::default()
            });
            out.excluded.push((o.name.clone(), why));
            continue;
        }
        let mut failed = Vec::new();
        for c in parsed.get(o.name.as_str()).into_iter().flatten() {
            let outcome = constraints::evaluate(c, snap);
            let reason = match outcome.status {
                Status::Passed => continue,
                Status::Failed => {
                    failed.push(format!(
                        "constraint {} failed (got {})",
                        c.label(),
                        crate::error::excerpt(outcome.actual.as_deref().unwrap_or_default())
                    ));
                    "constraint not met; overlay excluded".to_string()
                }
                Status::Skipped => format!("{}; overlay kept", outcome.skip_reason),
            };
            out.warnings.push(ConstraintWarning {
                overlay: o.name.clone(),
                constraint: c.name.clone(),
                expected: c.expected.to_string(),
                actual: outcome.actual.unwrap_or_default(),
                reason,
            });
        }
        if !failed.is_empty() {
            out.excluded.push((o.name.clone(), failed.join("; ")));
        }
    }
    Ok(out)
}
