//! `aicr diff A B`: reads two snapshots or two recipes (files, `-`, or
//! `cm://` ConfigMaps), asks `crate::diff`
//! what changed from A to B, and prints it as a table, YAML, JSON or a JSON
//! Patch. With `--baseline DOC` it compares DOC with each of many documents
//! (directories expanded) in one report. With `--fail-on-drift` any
//! difference exits 1.

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
    #[arg(value_name = "A", required_unless_present = "baseline")]
    pub a: Option<String>,

    /// The later document, of the same kind as A; - for stdin (only one of A and B), or cm://NAMESPACE/NAME
    #[arg(value_name = "B", required_unless_present = "baseline")]
    pub b: Option<String>,

    /// With --baseline: more documents to compare with it
    #[arg(value_name = "MORE", requires = "baseline")]
    pub more: Vec<String>,

    /// Compare this document with each of A, B, MORE (files, directories of .yaml/.yml/.json
    /// documents, or cm://NAMESPACE/NAME) in one report
    #[arg(long, value_name = "DOC")]
    pub baseline: Option<String>,

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
    /// With `--baseline`: every document compared with A, in order.
    targets: Vec<String>,
    baseline: bool,
    format: DiffFormat,
    output: Output,
    fail_on_drift: bool,
    /// The cluster of `cm://` inputs.
    cluster: crate::k8s::ClusterSettings,
}

impl Settings {
    fn resolve(args: DiffArgs) -> Result<Settings> {
        if let Some(base) = args.baseline.clone() {
            return Settings::resolve_baseline(base, args);
        }
        if args.a.is_none() || args.b.is_none() {
            return Err(UsageError(
                "diff compares two documents A and B (or many with --baseline)".into(),
            )
            .into());
        }
        Settings::resolve_pair(args)
    }

    /// `--baseline BASE A [B MORE...]`: directories expanded (sorted), at
    /// most [`MAX_TARGETS`] documents; no stdin, no patch.
    fn resolve_baseline(base: String, args: DiffArgs) -> Result<Settings> {
        if args.format == DiffFormat::Patch {
            return Err(UsageError(
                "-t patch gives one document's patch; with --baseline give table, yaml or json"
                    .into(),
            )
            .into());
        }
        let mut targets = Vec::new();
        for arg in args.a.iter().chain(&args.b).chain(&args.more) {
            if arg == "-" || base == "-" {
                return Err(UsageError("--baseline reads no standard input (-): give files, directories or cm:// ConfigMaps".into()).into());
            }
            super::configmap::check_input(arg)?;
            match std::fs::metadata(arg) {
                Ok(m) if m.is_dir() => targets.extend(documents_in(arg)?),
                _ => targets.push(arg.clone()),
            }
            if targets.len() > MAX_TARGETS {
                return Err(UsageError(format!("more than {MAX_TARGETS} documents to compare with the baseline; compare them in parts")).into());
            }
        }
        super::configmap::check_input(&base)?;
        let output = Output::parse(args.output.as_deref());
        output.check()?;
        let cluster = args.cluster.resolve(super::configmap::TIMEOUT)?;
        Ok(Settings {
            a: base,
            targets,
            baseline: true,
            format: args.format,
            output,
            fail_on_drift: args.fail_on_drift,
            cluster,
        })
    }

    fn resolve_pair(args: DiffArgs) -> Result<Settings> {
        let (a, b) = (args.a.unwrap_or_default(), args.b.unwrap_or_default());
        if !args.more.is_empty() {
            return Err(UsageError(
                "diff compares two documents; to compare many with one, give it with --baseline"
                    .into(),
            )
            .into());
        }
        if a == "-" && b == "-" {
            return Err(UsageError(
                "A and B are both - (stdin); at most one of them can be read from stdin".into(),
            )
            .into());
        }
        let output = Output::parse(args.output.as_deref());
        output.check()?;
        super::configmap::check_input(&a)?;
        super::configmap::check_input(&b)?;
        let cluster = args.cluster.resolve(super::configmap::TIMEOUT)?;
        Ok(Settings {
            a,
            targets: vec![b],
            baseline: false,
            format: args.format,
            output,
            fail_on_drift: args.fail_on_drift,
            cluster,
        })
    }
}

/// The most documents one `--baseline` run compares.
const MAX_TARGETS: usize = 10_000;

/// The `.yaml`, `.yml` and `.json` files of a directory, sorted by name.
fn documents_in(dir: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|io| serializer::Error::Read {
        path: dir.to_string(),
        io,
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|io| serializer::Error::Read {
            path: dir.to_string(),
            io,
        })?;
        let p = e.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if matches!(ext, "yaml" | "yml" | "json") && p.is_file() {
            out.push(p.display().to_string());
        }
        if out.len() > MAX_TARGETS {
            break;
        }
    }
    if out.is_empty() {
        return Err(UsageError(format!(
            "{dir} holds no .yaml, .yml or .json document to compare with the baseline"
        ))
        .into());
    }
    out.sort();
    Ok(out)
}

pub fn run(args: DiffArgs) -> Result<ExitStatus> {
    let settings = Settings::resolve(args)?;
    if settings.baseline {
        return run_baseline(&settings);
    }
    let a = read(&settings.a, &settings.cluster)?;
    let b = read(&settings.targets[0], &settings.cluster)?;
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

/// `--baseline`: each document against the baseline, in one report: a
/// table with the document in the first column (only changes), or a
/// yaml/json list of `{document, changes}` (every document).
fn run_baseline(settings: &Settings) -> Result<ExitStatus> {
    let base = read(&settings.a, &settings.cluster)?;
    let mut reports = Vec::new();
    for t in &settings.targets {
        let doc = read(t, &settings.cluster)?;
        let changes = Pair::new(base.clone(), doc)?.changes();
        reports.push((t.clone(), changes));
    }
    let differ = reports.iter().filter(|(_, c)| !c.is_empty()).count();
    tracing::info!(
        "{differ} of {} documents differ from the baseline {}",
        reports.len(),
        settings.a
    );
    let text = match settings.format {
        DiffFormat::Table if differ == 0 => String::new(),
        DiffFormat::Table => {
            let mut rows = vec![["DOCUMENT", "CHANGE", "PATH", "OLD", "NEW"]
                .map(String::from)
                .to_vec()];
            for (t, changes) in &reports {
                for c in changes {
                    rows.push(std::iter::once(t.clone()).chain(change_row(c)).collect());
                }
            }
            table::render(&rows)
        }
        f => {
            let list: Vec<Value> = reports
                .iter()
                .map(|(t, c)| serde_json::json!({ "document": t, "changes": to_value(c) }))
                .collect();
            let f = if f == DiffFormat::Json {
                Format::Json
            } else {
                Format::Yaml
            };
            serializer::render(&Value::Array(list), f)
        }
    };
    let verdict = if settings.fail_on_drift && differ > 0 {
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
    let mut rows = vec![["CHANGE", "PATH", "OLD", "NEW"].map(String::from).to_vec()];
    rows.extend(changes.iter().map(change_row));
    table::render(&rows)
}

/// CHANGE, PATH, OLD, NEW of one change.
fn change_row(c: &Change) -> Vec<String> {
    let cell = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| table::scalar_text(v).replace('\n', "\\n"))
            .unwrap_or_default()
    };
    vec![
        c.change.to_string(),
        c.path.clone(),
        cell(&c.old),
        cell(&c.new),
    ]
}
