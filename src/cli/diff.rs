//! `aicr diff A B`: reads two snapshots or two recipes (files, `-`, or
//! `cm://` ConfigMaps), asks `crate::diff`
//! what changed from A to B, and prints it as a table, YAML, JSON or a JSON
//! Patch. With `--fail-on-drift` any difference exits 1.

use crate::error::Result;
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{emit_verdict, ExitStatus};
use crate::diff::{Change, Document, Pair, EXPECTED};
use crate::error::UsageError;
use crate::serializer::{self, table, Format, Output};

#[derive(Debug, Args)]
#[command(
    after_help = "Snapshots are compared reading by reading (Type.subtype.key, as in recipe constraints, \
                  plus Type.unavailable, subtype context and metadata); recipes leaf by leaf in the \
                  `aicr query` path form, componentRefs and constraints keyed by name. \
                  metadata.timestamp is always ignored."
)]
pub struct DiffArgs {
    /// The earlier document: a Snapshot or RecipeResult file (YAML or JSON), - for stdin, or cm://NAMESPACE/NAME
    #[arg(value_name = "A")]
    pub a: String,

    /// The later document, of the same kind as A; - for stdin (only one of A and B), or cm://NAMESPACE/NAME
    #[arg(value_name = "B")]
    pub b: String,

    #[command(flatten)]
    pub cluster: super::cluster::ClusterArgs,

    /// Exit 1 when the documents differ (0 when they do not)
    #[arg(long)]
    pub fail_on_drift: bool,

    /// Where to write: a file path (written atomically) or - for stdout
    #[arg(short = 'o', long, value_name = "PATH", help_heading = "Output")]
    pub output: Option<String>,

    /// Output format: table (CHANGE PATH OLD NEW), yaml or json (a list of
    /// {change, path, old, new}), or patch (an RFC 6902 JSON Patch from A to B)
    #[arg(
        short = 't',
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = DiffFormat::Table,
        help_heading = "Output"
    )]
    pub format: DiffFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Table,
    Yaml,
    Json,
    Patch,
}

/// Everything `diff` needs, resolved before work starts.
struct Settings {
    a: String,
    b: String,
    format: DiffFormat,
    output: Output,
    fail_on_drift: bool,
    /// The cluster of `cm://` inputs.
    cluster: crate::k8s::ClusterSettings,
}

impl Settings {
    fn resolve(args: DiffArgs) -> Result<Settings> {
        if args.a == "-" && args.b == "-" {
            return Err(UsageError(
                "A and B are both - (stdin); at most one of them can be read from stdin".into(),
            )
            .into());
        }
        let output = Output::parse(args.output.as_deref());
        output.check()?;
        super::configmap::check_input(&args.a)?;
        super::configmap::check_input(&args.b)?;
        let cluster = args.cluster.resolve(super::configmap::TIMEOUT)?;
        Ok(Settings {
            a: args.a,
            b: args.b,
            format: args.format,
            output,
            fail_on_drift: args.fail_on_drift,
            cluster,
        })
    }
}

pub fn run(args: DiffArgs) -> Result<ExitStatus> {
    let settings = Settings::resolve(args)?;
    let a = read(&settings.a, &settings.cluster)?;
    let b = read(&settings.b, &settings.cluster)?;
    let pair = Pair::new(a, b)?;
    let changes = pair.changes();
    tracing::debug!(kind = %pair.kind(), changes = changes.len(), "compared");
    if changes.is_empty() {
        tracing::info!("no differences");
    }
    let text = match settings.format {
        DiffFormat::Table if changes.is_empty() => String::new(),
        DiffFormat::Table => render_table(&changes),
        DiffFormat::Yaml => serializer::render(&to_value(&changes), Format::Yaml),
        DiffFormat::Json => serializer::render(&to_value(&changes), Format::Json),
        DiffFormat::Patch => serializer::to_json(&to_value(&pair.patch())),
    };
    // Also when empty: -o always leaves this run's result.
    let verdict = if settings.fail_on_drift && !changes.is_empty() {
        ExitStatus::Findings
    } else {
        ExitStatus::Success
    };
    emit_verdict(&settings.output, &text, verdict)
}

fn read(path: &str, cluster: &crate::k8s::ClusterSettings) -> Result<Document> {
    let bytes = super::configmap::read(path, None, cluster)?;
    let value = serializer::parse_value(&bytes, path, EXPECTED)?;
    let origin = if path == "-" { "standard input" } else { path };
    Ok(Document::new(origin, value)?)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("changes and patches always serialise")
}

fn render_table(changes: &[Change]) -> String {
    let cell = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| table::scalar_text(v).replace('\n', "\\n"))
            .unwrap_or_default()
    };
    let mut rows = vec![["CHANGE", "PATH", "OLD", "NEW"].map(String::from).to_vec()];
    rows.extend(changes.iter().map(|c| {
        vec![
            c.change.to_string(),
            c.path.clone(),
            cell(&c.old),
            cell(&c.new),
        ]
    }));
    table::render(&rows)
}
