//! `aicr recipe`: criteria (flags, `-c FILE`, `-s SNAPSHOT`) to a
//! `RecipeResult`, written to stdout, a file or a ConfigMap; or `--list`
//! for the combinations the data supports.

use crate::error::Result;
use clap::Args;
use serde_json::{json, Value};

use super::configmap::{self, Doc};
use super::{CriteriaArgs, DataArgs, ExitStatus, OutputArgs};
use crate::k8s::configmap::DocKind;
use crate::k8s::ClusterSettings;
use crate::measurement::Snapshot;
use crate::recipe::{Catalog, Criteria};
use crate::serializer::{self, table, Format, Output};

#[derive(Debug, Args)]
pub struct RecipeArgs {
    #[command(flatten)]
    pub criteria: CriteriaArgs,

    #[command(flatten)]
    pub data: DataArgs,

    #[command(flatten)]
    pub out: OutputArgs,

    /// List the criteria combinations that have overlays, filtered by any criteria given (a table unless -t is given)
    #[arg(long)]
    pub list: bool,
}

/// Everything `recipe` needs, resolved before work starts.
struct Settings {
    criteria: Criteria,
    /// The snapshot of `-s`: its constraints rule out overlays.
    snapshot: Option<Snapshot>,
    output: Output,
    format: Format,
    list: bool,
    /// The cluster of `-s cm://` and `-o cm://`.
    cluster: ClusterSettings,
}

impl Settings {
    fn resolve(args: &RecipeArgs) -> Result<Settings> {
        if args.list {
            let output = Output::parse(args.out.output.as_deref());
            configmap::refuse_output(&output, "the --list table")?;
        }
        let (output, format) = args.out.resolve(if args.list {
            Format::Table
        } else {
            Format::Yaml
        })?;
        let cluster = args.criteria.cluster.resolve(configmap::TIMEOUT)?;
        let (criteria, snapshot) = args.criteria.resolve_with_snapshot()?;
        Ok(Settings {
            criteria,
            snapshot,
            output,
            format,
            list: args.list,
            cluster,
        })
    }
}

pub fn run(args: RecipeArgs) -> Result<ExitStatus> {
    let settings = Settings::resolve(&args)?;
    let store = args.data.open()?;
    // Not dropped: the process ends after this command, and freeing every
    // overlay's tree one allocation at a time was ~7% of a recipe run.
    let catalog = std::mem::ManuallyDrop::new(Catalog::load(&store)?);
    let text = if settings.list {
        render_list(&catalog, &settings.criteria, settings.format)
    } else {
        let recipe =
            catalog.resolve_with(&store, &settings.criteria, settings.snapshot.as_ref())?;
        tracing::debug!(overlays = ?recipe.metadata.applied_overlays, "recipe resolved");
        super::log_screening(&recipe);
        match settings.format {
            Format::Table => recipe.to_table(),
            f => serializer::render(&recipe.to_value(), f),
        }
    };
    let doc = Doc {
        kind: DocKind::Recipe,
        format: settings.format,
        text: &text,
        timestamp: None,
    };
    configmap::emit_document(&settings.output, &doc, &settings.cluster)?;
    Ok(ExitStatus::Success)
}

/// Every overlay that selects something, as the flags that reach it.
fn render_list(catalog: &Catalog, filter: &Criteria, format: Format) -> String {
    let mut rows: Vec<(String, &crate::recipe::catalog::Overlay)> = catalog
        .overlays
        .iter()
        .filter(|o| o.criteria.specificity() > 0)
        .filter(|o| {
            filter
                .stated()
                .iter()
                .all(|s| o.criteria.get(s.field) == Some(s.value))
        })
        .map(|o| (o.criteria.as_flags(), o))
        .collect();
    // Table order: field by field, `any` first.
    let key = |o: &crate::recipe::catalog::Overlay| {
        ["service", "accelerator", "intent", "os", "platform"].map(|f| o.criteria.get(f))
    };
    rows.sort_by(|a, b| {
        key(a.1)
            .cmp(&key(b.1))
            .then_with(|| a.1.name.cmp(&b.1.name))
    });
    if format == Format::Table {
        let mut t = vec![[
            "SERVICE",
            "ACCELERATOR",
            "INTENT",
            "OS",
            "PLATFORM",
            "OVERLAY",
        ]
        .map(String::from)
        .to_vec()];
        for (_, o) in &rows {
            let c = &o.criteria;
            let f = |field| c.get(field).unwrap_or("any").to_string();
            t.push(vec![
                f("service"),
                f("accelerator"),
                f("intent"),
                f("os"),
                f("platform"),
                o.name.clone(),
            ]);
        }
        return table::render(&t);
    }
    let list: Vec<Value> = rows
        .iter()
        .map(|(flags, o)| {
            json!({
                "overlay": o.name,
                "base": o.parent.clone().unwrap_or_default(),
                "criteria": o.criteria,
                "flags": flags,
            })
        })
        .collect();
    serializer::render(&Value::Array(list), format)
}
