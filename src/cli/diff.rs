//! `aicr diff A B` (being written).

use anyhow::Result;
use clap::Args;

use super::ExitStatus;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier document
    pub a: String,
    /// The later document
    pub b: String,
}

pub fn run(_args: DiffArgs) -> Result<ExitStatus> {
    Err(crate::error::NotBuilt("diff").into())
}
