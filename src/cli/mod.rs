//! The command-line interface: the clap tree, the argument groups shared by
//! several commands (criteria, data, output), and the dispatch to one module
//! per subcommand. Each subcommand module turns its arguments into a settings
//! struct before any work starts, calls the domain modules, and prints.

pub mod bundle;
pub mod cluster;
pub mod completion;
pub mod config;
pub mod configmap;
pub mod diff;
pub mod mirror;
pub mod query;
pub mod recipe;
pub mod snapshot;
pub mod validate;
pub mod verify;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::error::{Context, Result, UsageError};
use crate::measurement::Snapshot;
use crate::recipe::criteria::{
    Accelerator, CriteriaFile, Intent, Os, Platform, Service, CRITERIA_KIND,
};
use crate::recipe::{Criteria, DataStore};
use crate::serializer::{self, Format, Output};

/// `aicr --version`: version, git commit and build date.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit: ",
    env!("AICR_GIT_COMMIT"),
    ", date: ",
    env!("AICR_BUILD_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "aicr",
    about = "AI Cluster Runtime: capture GPU nodes, generate recipes, validate and bundle GPU Kubernetes stacks",
    long_about = None,
    version = LONG_VERSION,
    propagate_version = true,
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Exit codes: 0 ok, 1 validation findings, 2 invalid input or usage, 3 not found, \
                  4 unauthorized, 5 timeout, 6 unavailable, 7 rate limited, 8 internal error."
)]
pub struct Cli {
    /// Enable debug logging (full text logs with timestamps, levels and the module that logged)
    #[arg(long, global = true, env = "AICR_DEBUG", value_parser = crate::logging::parse_switch)]
    pub debug: bool,

    /// Write logs and errors as JSON lines on stderr
    #[arg(long, global = true, env = "AICR_LOG_JSON", value_parser = crate::logging::parse_switch)]
    pub log_json: bool,

    /// Configuration file (kind AICRConfig) [default: $XDG_CONFIG_HOME/aicr/config.yaml, else ~/.config/aicr/config.yaml]
    #[arg(long, global = true, env = "AICR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the version, git commit and build date
    #[arg(short = 'v', long = "version", global = true, action = ArgAction::Version)]
    version: Option<bool>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture this node's configuration (OS, services, GPUs, cluster) as a Snapshot
    Snapshot(snapshot::SnapshotArgs),
    /// Generate a recipe (components, versions, values, constraints, order) for a cluster
    Recipe(recipe::RecipeArgs),
    /// Print one value or subtree of the fully hydrated recipe
    Query(query::QueryArgs),
    /// Check a recipe's constraints against a snapshot; write CTRF and JUnit reports
    Validate(validate::ValidateArgs),
    /// Render a deployable bundle (Helm scripts, Argo CD or Flux objects) from a recipe
    Bundle(Box<bundle::BundleArgs>),
    /// Check a bundle directory against its checksums.txt
    Verify(verify::VerifyArgs),
    /// Air-gap: list every chart and container image a recipe or bundle pulls
    Mirror(mirror::MirrorArgs),
    /// Compare two snapshots or two recipes: changed, added and removed readings
    Diff(diff::DiffArgs),
    /// Print a shell completion script
    Completion(completion::CompletionArgs),
    /// Inspect the configuration: the settings of each command and where each came from
    Config(config::ConfigArgs),
}

/// How a command ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The command ran and found what it checks for: failed constraints,
    /// drift between documents (exit 1).
    Findings,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Findings => 1,
        }
    }
}

/// Runs the parsed command; `sources` says which settings were typed on
/// the command line.
pub fn run(cli: Cli, sources: &config::Sources) -> Result<ExitStatus> {
    match cli.command {
        Command::Config(args) => config::run(args, sources),
        Command::Recipe(args) => recipe::run(args),
        Command::Query(args) => query::run(args),
        Command::Completion(args) => completion::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Snapshot(args) => snapshot::run(args, sources),
        Command::Validate(args) => validate::run(args, sources),
        Command::Bundle(args) => bundle::run(*args, sources),
        Command::Verify(args) => verify::run(args),
        Command::Mirror(args) => mirror::run(args),
    }
}

/// The criteria flags shared by `recipe` and `query`.
#[derive(Debug, Args)]
pub struct CriteriaArgs {
    /// Kubernetes service: eks, gke, aks, oke, kind (any, self-managed: no service-specific overlay)
    #[arg(long, value_name = "SERVICE", help_heading = "Criteria")]
    pub service: Option<String>,

    /// GPU model: h100, h200, gb200, b200, a100, l40
    #[arg(
        long,
        visible_alias = "gpu",
        value_name = "GPU",
        help_heading = "Criteria"
    )]
    pub accelerator: Option<String>,

    /// Workload intent: training, inference
    #[arg(long, value_name = "INTENT", help_heading = "Criteria")]
    pub intent: Option<String>,

    /// Operating system of the GPU nodes: ubuntu, rhel, cos, amazonlinux (al2, al2023)
    #[arg(long, value_name = "OS", help_heading = "Criteria")]
    pub os: Option<String>,

    /// Platform on top of the GPU stack: dynamo, kubeflow
    #[arg(long, value_name = "PLATFORM", help_heading = "Criteria")]
    pub platform: Option<String>,

    /// Number of GPU nodes (0: unspecified)
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Criteria"
    )]
    pub nodes: Option<i64>,

    /// RecipeCriteria file (YAML or JSON, `-` for stdin); flags override its fields
    #[arg(
        short = 'c',
        long = "criteria",
        value_name = "FILE",
        help_heading = "Input"
    )]
    pub criteria_file: Option<String>,

    /// Snapshot (a YAML or JSON file, - for stdin, or cm://NAMESPACE/NAME) to detect service, accelerator and OS from; flags override
    #[arg(
        short = 's',
        long = "snapshot",
        value_name = "FILE|CM",
        conflicts_with = "criteria_file",
        help_heading = "Input"
    )]
    pub snapshot: Option<String>,

    /// The cluster of cm:// inputs and outputs.
    #[command(flatten)]
    pub cluster: cluster::ClusterArgs,
}

impl CriteriaArgs {
    /// The criteria from the file, if any, with the flags laid over it.
    pub fn resolve(&self) -> Result<Criteria> {
        Ok(self.resolve_with_snapshot()?.0)
    }

    /// [`CriteriaArgs::resolve`], and the snapshot of `-s`, whose
    /// constraints rule out overlays.
    pub fn resolve_with_snapshot(&self) -> Result<(Criteria, Option<Snapshot>)> {
        let mut snapshot = None;
        let (mut criteria, source) = match (&self.criteria_file, &self.snapshot) {
            (Some(path), _) => (read_criteria_file(path)?, "the criteria file"),
            (None, Some(path)) => {
                let (criteria, snap) = read_snapshot_criteria(path, &self.cluster)?;
                snapshot = Some(snap);
                (criteria, "the snapshot")
            }
            (None, None) => (Criteria::default(), ""),
        };
        let from_flags = Criteria {
            service: flag(&self.service, Service::parse)?,
            accelerator: flag(&self.accelerator, Accelerator::parse)?,
            intent: flag(&self.intent, Intent::parse)?,
            os: flag(&self.os, Os::parse)?,
            platform: flag(&self.platform, Platform::parse)?,
            nodes: self
                .nodes
                .map(crate::recipe::criteria::parse_nodes)
                .transpose()?
                .unwrap_or(0),
        };
        for s in from_flags.stated() {
            if let Some(old) = criteria.get(s.field).filter(|old| *old != s.value) {
                tracing::info!(
                    "{} {} overrides {} {old:?} from {source}",
                    s.flag,
                    s.value,
                    s.field
                );
            }
        }
        // A flag that was given replaces the file's value, `any` included.
        macro_rules! given {
            ($($f:ident),*) => {$(
                if self.$f.is_some() {
                    criteria.$f = from_flags.$f;
                }
            )*};
        }
        given!(service, accelerator, intent, os, platform);
        if from_flags.nodes != 0 {
            criteria.nodes = from_flags.nodes;
        }
        Ok((criteria, snapshot))
    }
}

fn flag<T>(
    v: &Option<String>,
    parse: fn(&str) -> Result<Option<T>, crate::recipe::Error>,
) -> Result<Option<T>> {
    Ok(v.as_deref().map(parse).transpose()?.flatten())
}

fn read_criteria_file(path: &str) -> Result<Criteria> {
    let bytes = serializer::read_input(path)?;
    parse_criteria_file(&bytes, path)
}

/// The criteria of a `RecipeCriteria` document (`-c FILE`), YAML or JSON by
/// content; `path` names it in messages.
pub fn parse_criteria_file(bytes: &[u8], path: &str) -> Result<Criteria> {
    let value = serializer::parse_value(bytes, path, CRITERIA_KIND)?;
    let file: CriteriaFile = serializer::typed_document(value, path, CRITERIA_KIND, false)?;
    let criteria = file
        .spec
        .parse()
        .with_context(|| format!("criteria file {path}"))?;
    Ok(criteria)
}

fn read_snapshot_criteria(
    path: &str,
    cluster: &cluster::ClusterArgs,
) -> Result<(Criteria, Snapshot)> {
    if path.starts_with("http://") || path.starts_with("https://") {
        return Err(UsageError(format!(
            "--snapshot {path}: reading snapshots from URLs is not built in this version yet; save the snapshot to a file"
        ))
        .into());
    }
    let bytes = if crate::k8s::configmap::Target::is_reference(path) {
        configmap::check_input(path)?;
        let settings = cluster.resolve(configmap::TIMEOUT)?;
        configmap::read(
            path,
            Some(crate::k8s::configmap::DocKind::Snapshot),
            &settings,
        )?
    } else {
        serializer::read_input(path)?
    };
    let snap = Snapshot::parse(&bytes, path)?;
    let detected = crate::recipe::snapshot::detect(&snap);
    let found = detected.as_flags();
    if found.is_empty() {
        tracing::warn!("the snapshot {path} names no service, accelerator or OS aicr knows; give them as flags");
    } else {
        tracing::info!("detected from the snapshot: {found}");
    }
    Ok((detected, snap))
}

/// Logs what a snapshot ruled out of a recipe (`-s`): each excluded
/// overlay and each constraint it could not evaluate.
fn log_screening(recipe: &crate::recipe::result::RecipeResult) {
    for w in &recipe.metadata.constraint_warnings {
        let constraint = match (w.constraint.as_str(), w.actual.as_str()) {
            ("", _) => String::new(),
            (c, "") => format!(": {c} {}", w.expected),
            (c, actual) => format!(": {c} {} (got {actual})", w.expected),
        };
        tracing::warn!("overlay {}{constraint}: {}", w.overlay, w.reason);
    }
}

/// `--data DIR`, shared by every command that reads recipe data.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Directory of recipe data layered over the embedded data; must hold registry.yaml
    #[arg(long, value_name = "DIR", env = "AICR_DATA", help_heading = "Input")]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn open(&self) -> Result<DataStore> {
        match &self.data {
            None => Ok(DataStore::embedded()),
            Some(dir) if !dir.exists() => {
                Err(crate::recipe::Error::DataDirNotFound(dir.display().to_string()).into())
            }
            Some(dir) => Ok(DataStore::with_dir(dir)?),
        }
    }
}

/// Writes rendered data to its destination, after checking it.
pub fn emit(output: &Output, text: &str) -> Result<()> {
    output.write(text.as_bytes())?;
    if let Output::File(p) = output {
        tracing::info!("wrote {}", p.display());
    }
    Ok(())
}

/// Writes a command's report and returns its verdict. When the reader of
/// stdout went away the verdict still stands: a broken pipe is success only
/// for a command that found nothing (`aicr verify DIR | head` still exits 1
/// on a tampered bundle).
pub fn emit_verdict(output: &Output, text: &str, verdict: ExitStatus) -> Result<ExitStatus> {
    match emit(output, text) {
        Err(e) if e.is_broken_pipe() => Ok(verdict),
        Err(e) => Err(e),
        Ok(()) => Ok(verdict),
    }
}

/// `-o/--output` and `-t/--format`, shared by the commands that write a document.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Where to write: a file path (written atomically), - for stdout, or cm://NAMESPACE/NAME (a ConfigMap)
    #[arg(short = 'o', long, value_name = "PATH|CM", help_heading = "Output")]
    pub output: Option<String>,

    /// Output format: yaml (default), json or table
    #[arg(
        short = 't',
        long,
        value_enum,
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub format: Option<Format>,
}

impl OutputArgs {
    /// The checked destination and the format, `default` when not given.
    pub fn resolve(&self, default: Format) -> Result<(Output, Format)> {
        let output = Output::parse(self.output.as_deref());
        let format = self.format.unwrap_or(default);
        configmap::check_output(&output, format)?;
        Ok((output, format))
    }
}
