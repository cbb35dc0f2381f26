//! OS collector (being written).
use super::{Collector, Context};
use crate::measurement::{Measurement, MeasurementType};
pub struct Os;
impl Collector for Os {
    fn name(&self) -> &'static str {
        "os"
    }
    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::Os]
    }
    fn collect(&self, _ctx: &Context) -> Result<Vec<Measurement>, String> {
        Err("not built".into())
    }
}
