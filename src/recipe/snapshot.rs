//! Criteria detected from a `Snapshot` (`aicr recipe -s FILE`): the service
//! from the Kubernetes server, the accelerator from the GPU model, the OS from
//! os-release. Intent and platform are never guessed; give them as flags.

use super::criteria::{Accelerator, Criteria, Os, Service};
use crate::measurement::{MeasurementType, Reading, Snapshot};

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
