//! GPU collector (being written): NVML, then `nvidia-smi -q -x`.

use super::{Collector, Context};
use crate::measurement::{Measurement, MeasurementType};

pub struct Gpu;

impl Collector for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::Gpu]
    }

    fn collect(&self, _ctx: &Context) -> Result<Vec<Measurement>, String> {
        Err("the GPU collector is not built yet".into())
    }
}
