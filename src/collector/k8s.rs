//! Kubernetes collector (being written).
use super::{Collector, Context};
use crate::measurement::{Measurement, MeasurementType};
pub struct Kubernetes;
impl Collector for Kubernetes {
    fn name(&self) -> &'static str {
        "k8s"
    }
    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::K8s, MeasurementType::NodeTopology]
    }
    fn collect(&self, _ctx: &Context) -> Result<Vec<Measurement>, String> {
        Err("not built".into())
    }
}
