//! `aicr query --selector PATH`: resolves the recipe like `aicr recipe`,
//! hydrates every component's values, and prints the selected value. Scalars
//! print bare for shell use; subtrees as YAML, JSON or a path/value table.

use crate::error::{Result, UsageError};
use clap::Args;
use serde_json::Value;

use super::{CriteriaArgs, DataArgs, ExitStatus};
use crate::measurement::Snapshot;
use crate::recipe::query::Selector;
use crate::recipe::{Catalog, Criteria};
use crate::serializer::{self, table, Format, Output};

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Path to select, yq-style: components.gpu-operator.values.driver.version,
    /// deploymentOrder[0], components."name.with.dots"; '' or . for everything
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub selector: Option<String>,

    #[command(flatten)]
    pub criteria: CriteriaArgs,

    #[command(flatten)]
    pub data: DataArgs,

    /// Output format for subtrees (scalars print bare unless json)
    #[arg(
        short = 't',
        long,
        value_enum,
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub format: Option<Format>,
}

struct Settings {
    criteria: Criteria,
    snapshot: Option<Snapshot>,
    selector: Selector,
    format: Format,
}

pub fn run(args: QueryArgs) -> Result<ExitStatus> {
    // The selector's syntax is checked before any work. It is not
    // clap-required, so that the config file can give it.
    let Some(text) = &args.selector else {
        return Err(UsageError(
            "no selector: give --selector PATH (such as components.gpu-operator.values.driver.version, or . for everything)".into(),
        )
        .into());
    };
    let selector = Selector::parse(text)?;
    let (criteria, snapshot) = args.criteria.resolve_with_snapshot()?;
    let settings = Settings {
        selector,
        criteria,
        snapshot,
        format: args.format.unwrap_or(Format::Yaml),
    };
    let store = args.data.open()?;
    // Not dropped: the process ends after this command, and freeing every
    // overlay's tree one allocation at a time was ~7% of a recipe run.
    let catalog = std::mem::ManuallyDrop::new(Catalog::load(&store)?);
    let recipe = catalog.resolve_with(&store, &settings.criteria, settings.snapshot.as_ref())?;
    super::log_screening(&recipe);
    let hydrated = std::mem::ManuallyDrop::new(recipe.hydrate(&store)?);
    let selected = settings.selector.select(&hydrated)?;
    let text = match (selected, settings.format) {
        (Value::Object(_) | Value::Array(_), f) => serializer::render(selected, f),
        (scalar, Format::Json) => serializer::to_json(scalar),
        (scalar, _) => format!("{}\n", table::scalar_text(scalar)),
    };
    Output::Stdout.write(text.as_bytes())?;
    Ok(ExitStatus::Success)
}
