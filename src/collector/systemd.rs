//! SystemD collector (being written).
use super::{Collector, Context};
use crate::measurement::{Measurement, MeasurementType};
pub struct SystemD;
impl Collector for SystemD {
    fn name(&self) -> &'static str {
        "systemd"
    }
    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::SystemD]
    }
    fn collect(&self, _ctx: &Context) -> Result<Vec<Measurement>, String> {
        Err("not built".into())
    }
}
