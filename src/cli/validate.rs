//! `aicr validate`: reads a recipe and a snapshot (files, `-`, `https://`
//! URLs, or `cm://` ConfigMaps), runs the requested phases (the recipe's constraints against the
//! snapshot; the deployed stack against the live cluster, through
//! `crate::validate::deployment`), and writes the checks as a table, YAML
//! or JSON, plus any CTRF and JUnit reports, each to stdout or a file. The exit code says whether the checks passed: 0
//! all passed, 1 a check failed (or, with `--strict`, was skipped), 0 for
//! every finding with `--fail-on-error=false`; bad input keeps its own code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, ValueEnum};

use super::{emit, emit_verdict, DataArgs, ExitStatus};
use crate::error::{Class, Classify, Result, UsageError};
use crate::k8s::ClusterSettings;
use crate::measurement::Snapshot;
use crate::recipe::result::RecipeResult;
use crate::serializer::http::{display_url, is_url, FetchOptions};
use crate::serializer::{self, Format, Output, MAX_DOCUMENT_BYTES};
use crate::validate::report::{Report, Summary, Times};
use crate::validate::{deployment, Check, Phase, Status};

/// The default deadline of a URL input and of each cluster request.
const DEFAULT_TIMEOUT: &str = "30s";

/// The deadline of the whole deployment phase (Go aicr's `--timeout`
/// default).
const DEPLOYMENT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Args)]
#[command(
    after_help = "Reports: --report ctrf|junit writes that report to stdout (instead of the table or \
                  document); --report ctrf=FILE, --report junit=FILE write files, several at once. \
                  Exit codes: 0 all checks passed, 1 a check failed (with --strict also: skipped), \
                  2 bad recipe, snapshot or flags, 3 an input not found, 4 a cm:// input \
                  forbidden, 5 a URL or the cluster timed out, 6 a URL or the cluster \
                  unreachable or its certificate refused. --fail-on-error=false exits 0 \
                  for every finding."
)]
pub struct ValidateArgs {
    /// RecipeResult with the constraints: a file (YAML or JSON), - for stdin, an https:// URL, or cm://NAMESPACE/NAME
    #[arg(short = 'r', long, value_name = "FILE|URL|CM", help_heading = "Input")]
    pub recipe: Option<String>,

    /// Snapshot with the measurements: a file, - for stdin, an https:// URL, or cm://NAMESPACE/NAME (needed by the constraints phase)
    #[arg(short = 's', long, value_name = "FILE|URL|CM", help_heading = "Input")]
    pub snapshot: Option<String>,

    #[command(flatten)]
    pub data: DataArgs,

    /// The cluster of the deployment phase and of cm:// inputs.
    #[command(flatten)]
    pub cluster: super::cluster::ClusterArgs,

    /// Extra trusted CA certificates (PEM) for https:// inputs, beside the system's
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub ca_file: Option<PathBuf>,

    /// Deadline of each https:// input (connect, TLS, redirects, body) and of each cluster request (at most 1h)
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT, help_heading = "Input")]
    pub timeout: String,

    /// Phase to run (repeatable): constraints, deployment, all (default); performance and conformance are not built
    #[arg(
        long,
        value_enum,
        value_name = "PHASE",
        help_heading = "Validation control"
    )]
    pub phase: Vec<PhaseArg>,

    /// Exit 1 when a check fails; --fail-on-error=false reports the same and exits 0
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = crate::logging::parse_switch,
        help_heading = "Validation control"
    )]
    pub fail_on_error: bool,

    /// Also exit 1 when a check was skipped (not evaluated)
    #[arg(long, help_heading = "Validation control")]
    pub strict: bool,

    /// Do not contact a cluster: the deployment checks of --phase all are skipped with that reason
    #[arg(long, help_heading = "Validation control")]
    pub no_cluster: bool,

    /// Where the table or document goes: a file path (written atomically) or - for stdout
    #[arg(short = 'o', long, value_name = "PATH", help_heading = "Output")]
    pub output: Option<String>,

    /// Format of the checks: table (default on a terminal), yaml (default otherwise) or json
    #[arg(
        short = 't',
        long,
        value_enum,
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub format: Option<Format>,

    /// A test report: ctrf or junit to stdout, or ctrf=FILE, junit=FILE (repeatable)
    #[arg(long, value_name = "FORMAT[=FILE]", help_heading = "Output")]
    pub report: Vec<String>,

    /// Record the real start and stop times and durations in the reports (otherwise 0, so the same input gives the same bytes)
    #[arg(long, help_heading = "Output")]
    pub timestamps: bool,
}

/// `--phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    Constraints,
    Deployment,
    Performance,
    Conformance,
    All,
}

/// A report format of `--report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportKind {
    Ctrf,
    Junit,
}

impl ReportKind {
    fn name(self) -> &'static str {
        match self {
            ReportKind::Ctrf => "ctrf",
            ReportKind::Junit => "junit",
        }
    }

    fn render(self, report: &Report) -> String {
        match self {
            ReportKind::Ctrf => report.ctrf(),
            ReportKind::Junit => report.junit(),
        }
    }
}

/// Everything `validate` needs, resolved and checked before work starts.
struct Settings {
    recipe: String,
    snapshot: Option<String>,
    fetch: FetchOptions,
    /// The cluster of `cm://` inputs.
    inputs: ClusterSettings,
    /// Run the constraints phase.
    constraints: bool,
    /// How the deployment phase runs, if it does.
    deployment: DeploymentPhase,
    fail_on_error: bool,
    strict: bool,
    /// The table or document, and where it goes; `None` when a report
    /// takes stdout and no `-o` was given.
    main: Option<(Output, Format)>,
    reports: Vec<(ReportKind, Output)>,
    timestamps: bool,
}

impl Settings {
    fn resolve(mut args: ValidateArgs, sources: &super::config::Sources) -> Result<Settings> {
        let Some(recipe) = args.recipe.take() else {
            return Err(UsageError(
                "no recipe: give -r FILE (YAML or JSON), - for stdin, an https:// URL or cm://NAMESPACE/NAME (or recipe: in the validate section of the config file)".into(),
            )
            .into());
        };
        let (constraints, wanted) = phases(&args.phase, args.no_cluster)?;
        // A snapshot from the environment or the config file waits for
        // the constraints phase; only a typed -s is refused without it.
        if !constraints && !sources.typed("snapshot") {
            args.snapshot = None;
        }
        if constraints && args.snapshot.is_none() {
            return Err(UsageError(
                "no snapshot: the constraints phase (part of the default --phase all) needs -s FILE (from `aicr snapshot -o FILE` on a GPU node), - for stdin, or an https:// URL; capturing one through an agent Job is not built in this version; --phase deployment alone needs none"
                    .into(),
            )
            .into());
        }
        if !constraints && args.snapshot.is_some() {
            return Err(UsageError(
                "-s is read only by the constraints phase, which --phase deployment leaves out; drop -s, or add --phase constraints".into(),
            )
            .into());
        }
        if recipe == "-" && args.snapshot.as_deref() == Some("-") {
            return Err(UsageError(
                "-r and -s are both - (stdin); at most one of them can be read from stdin".into(),
            )
            .into());
        }
        for (flag, v) in [("-r", Some(&recipe)), ("-s", args.snapshot.as_ref())] {
            if let Some(v) = v.filter(|v| crate::k8s::configmap::Target::is_reference(v)) {
                super::configmap::check_input(v)?;
                if args.no_cluster {
                    return Err(UsageError(format!(
                        "{flag} {v}: reading a ConfigMap contacts the cluster, and --no-cluster forbids that; save the document to a file, or drop --no-cluster"
                    ))
                    .into());
                }
            }
        }
        let timeout = super::snapshot::parse_timeout(&args.timeout)?;
        // Only typed cluster flags are refused where nothing reads them:
        // the environment and the config file set them for every run.
        let cluster_flag = if sources.typed("kubeconfig") {
            Some("-k/--kubeconfig")
        } else if sources.typed("context") {
            Some("--context")
        } else {
            None
        };
        let reads_cm = [Some(&recipe), args.snapshot.as_ref()]
            .into_iter()
            .flatten()
            .any(|v| crate::k8s::configmap::Target::is_reference(v));
        if let Some(flag) =
            cluster_flag.filter(|_| !reads_cm && matches!(wanted, Wanted::No | Wanted::Skip(_)))
        {
            return Err(UsageError(format!(
                "{flag} is read only by the deployment phase and by cm:// inputs: no input is cm://, and {}",
                if args.no_cluster {
                    "--no-cluster leaves the deployment phase out; drop one of them"
                } else {
                    "--phase constraints leaves the deployment phase out; drop it, or add --phase deployment"
                }
            ))
            .into());
        }
        let inputs = args.cluster.resolve(timeout)?;
        let deployment = match wanted {
            Wanted::No => DeploymentPhase::Off,
            Wanted::Skip(reason) => DeploymentPhase::Skip(reason),
            Wanted::IfReachable | Wanted::Required => DeploymentPhase::Run {
                cluster: inputs.clone(),
                store: args.data.open()?,
                required: wanted == Wanted::Required,
            },
        };
        let reports = args
            .report
            .iter()
            .map(|r| parse_report(r))
            .collect::<Result<Vec<_>>>()?;
        let main = main_output(args.output.as_deref(), args.format, &reports)?;
        check_destinations(main.as_ref().map(|(o, _)| o), &reports)?;
        Ok(Settings {
            recipe,
            snapshot: args.snapshot,
            fetch: FetchOptions {
                timeout,
                ca_file: args.ca_file,
                limit: MAX_DOCUMENT_BYTES,
            },
            inputs,
            constraints,
            deployment,
            fail_on_error: args.fail_on_error,
            strict: args.strict,
            main,
            reports,
            timestamps: args.timestamps,
        })
    }
}

/// Whether and how the deployment phase was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wanted {
    No,
    /// `--phase all` with `--no-cluster`: its checks skipped, this reason.
    Skip(String),
    /// `--phase all`: run when a cluster is reachable, else skip.
    IfReachable,
    /// `--phase deployment`: run, and a cluster that cannot be reached is
    /// an error.
    Required,
}

/// How the deployment phase runs, resolved before work starts.
enum DeploymentPhase {
    Off,
    Skip(String),
    Run {
        cluster: ClusterSettings,
        store: crate::recipe::DataStore,
        required: bool,
    },
}

/// The phases to run: whether constraints run, and how the deployment
/// phase does. Phases that are not built are refused, never reported as
/// passed.
fn phases(list: &[PhaseArg], no_cluster: bool) -> Result<(bool, Wanted)> {
    for p in list {
        let name = match p {
            PhaseArg::Performance => "performance",
            PhaseArg::Conformance => "conformance",
            PhaseArg::Deployment if no_cluster => {
                return Err(UsageError(
                    "--phase deployment reads the live cluster, and --no-cluster forbids that; drop one of them".into(),
                )
                .into())
            }
            _ => continue,
        };
        return Err(UsageError(format!(
            "--phase {name} is not built in this version of aicr: it runs GPU Jobs on the cluster; available: constraints, deployment, all"
        ))
        .into());
    }
    let all = list.is_empty() || list.contains(&PhaseArg::All);
    let constraints = all || list.contains(&PhaseArg::Constraints);
    let wanted = if all && no_cluster {
        Wanted::Skip("--no-cluster: the live cluster was not read".into())
    } else if list.contains(&PhaseArg::Deployment) {
        Wanted::Required
    } else if all {
        Wanted::IfReachable
    } else {
        Wanted::No
    };
    Ok((constraints, wanted))
}

/// `--report FORMAT[=FILE]`.
fn parse_report(arg: &str) -> Result<(ReportKind, Output)> {
    let (name, path) = match arg.split_once('=') {
        Some((n, p)) => (n, Some(p)),
        None => (arg, None),
    };
    let kind = match name.to_ascii_lowercase().as_str() {
        "ctrf" => ReportKind::Ctrf,
        "junit" => ReportKind::Junit,
        _ => {
            return Err(UsageError(format!(
                "--report {:?}: unknown report format {:?}; expected ctrf or junit, optionally =FILE (ctrf=report.json)",
                crate::error::excerpt(arg),
                crate::error::excerpt(name)
            ))
            .into())
        }
    };
    if path == Some("") {
        return Err(UsageError(format!(
            "--report {arg}: the file name after = is empty; give {name}=FILE, or {name} alone for stdout"
        ))
        .into());
    }
    if path.is_some_and(|p| p.starts_with("cm://")) {
        return Err(UsageError(format!(
            "--report {arg}: writing a report to a ConfigMap is not built in this version; give a file"
        ))
        .into());
    }
    Ok((kind, Output::parse(path)))
}

/// The table or document and its destination; `None` when a report takes
/// stdout and neither `-o` nor `-t` asks for the document.
fn main_output(
    output: Option<&str>,
    format: Option<Format>,
    reports: &[(ReportKind, Output)],
) -> Result<Option<(Output, Format)>> {
    let out = Output::parse(output);
    let report_on_stdout = reports.iter().any(|(_, o)| *o == Output::Stdout);
    if out == Output::Stdout && output.is_none() && format.is_none() && report_on_stdout {
        return Ok(None);
    }
    let format = format.unwrap_or_else(|| {
        if out == Output::Stdout && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Yaml
        }
    });
    Ok(Some((out, format)))
}

/// At most one output on stdout, no file written twice, and every file's
/// directory present, before any work.
fn check_destinations(main: Option<&Output>, reports: &[(ReportKind, Output)]) -> Result<()> {
    let mut named: Vec<(String, &Output)> = Vec::new();
    if let Some(o) = main {
        named.push(("the checks (-o/-t)".into(), o));
    }
    for (k, o) in reports {
        named.push((format!("--report {}", k.name()), o));
    }
    let on_stdout: Vec<&str> = named
        .iter()
        .filter(|(_, o)| **o == Output::Stdout)
        .map(|(n, _)| n.as_str())
        .collect();
    if on_stdout.len() > 1 {
        return Err(UsageError(format!(
            "{} would {} go to standard output; only one can: give the others a file (-o FILE, --report ctrf=FILE, --report junit=FILE)",
            on_stdout.join(" and "),
            if on_stdout.len() == 2 { "both" } else { "all" }
        ))
        .into());
    }
    for (i, (name, o)) in named.iter().enumerate() {
        if let Output::File(p) = o {
            if let Some((other, _)) = named[..i].iter().find(|(_, q)| *q == *o) {
                return Err(UsageError(format!(
                    "{other} and {name} would both write {}; give each its own file",
                    p.display()
                ))
                .into());
            }
        }
        o.check()?;
    }
    Ok(())
}

pub fn run(args: ValidateArgs, sources: &super::config::Sources) -> Result<ExitStatus> {
    let settings = Settings::resolve(args, sources)?;
    let start = SystemTime::now();
    let recipe = read_recipe(&settings.recipe, &settings)?;
    let mut checks = Vec::new();
    if settings.constraints {
        let path = settings.snapshot.as_deref().unwrap_or_default();
        let snap = read_snapshot(path, &settings)?;
        checks.extend(crate::constraints::evaluate_recipe(&recipe, &snap)?);
    }
    let access = run_deployment(&settings.deployment, &recipe, &mut checks)?;
    let report = Report {
        checks,
        times: settings.timestamps.then(|| Times {
            start,
            stop: SystemTime::now(),
        }),
    };
    let summary = report.summary();
    log_summary(&summary);
    let verdict = verdict(&summary, settings.strict, settings.fail_on_error);
    let verdict = write_outputs(&settings, &report, verdict)?;
    match access {
        // A read the cluster refused (or that timed out) is not a finding
        // about the stack: the reports are written, and its class is the
        // exit code.
        Some(class) => Err(crate::error::Error::new(class, ReadsFailed(class))),
        None => Ok(verdict),
    }
}

/// The deployment phase: its checks appended to `checks`; returns the
/// most severe class of the cluster reads that failed, if any.
fn run_deployment(
    phase: &DeploymentPhase,
    recipe: &RecipeResult,
    checks: &mut Vec<Check>,
) -> Result<Option<Class>> {
    let (cluster, store, required) = match phase {
        DeploymentPhase::Off => return Ok(None),
        DeploymentPhase::Skip(reason) => {
            checks.extend(skipped_deployment(recipe, reason));
            return Ok(None);
        }
        DeploymentPhase::Run {
            cluster,
            store,
            required,
        } => (cluster, store, *required),
    };
    let registry = store.registry()?;
    match deployment::run(cluster, recipe, &registry, DEPLOYMENT_DEADLINE) {
        Ok(outcome) => {
            checks.extend(outcome.checks);
            Ok(outcome.access)
        }
        // Under --phase all, a cluster that is absent, unreachable or
        // silent skips the phase's checks with that reason.
        Err(e) if !required && matches!(e.class(), Class::Unavailable | Class::Timeout) => {
            let reason = format!("no cluster reachable: {e}");
            tracing::warn!("deployment phase skipped: {reason}");
            checks.extend(skipped_deployment(recipe, &reason));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// One skipped readiness check per component of the recipe, in
/// deployment order (then the components the order leaves out).
fn skipped_deployment(recipe: &RecipeResult, reason: &str) -> Vec<Check> {
    let mut names: Vec<&str> = recipe.deployment_order.iter().map(String::as_str).collect();
    for r in &recipe.component_refs {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    names
        .into_iter()
        .filter(|n| recipe.component_refs.iter().any(|r| r.name == *n))
        .map(|n| Check {
            name: format!("{n}: readiness"),
            phase: Phase::Deployment,
            suite: n.to_string(),
            status: Status::Skipped,
            message: reason.to_string(),
            object: None,
            duration: std::time::Duration::ZERO,
        })
        .collect()
}

/// Cluster reads failed: the checks say which; this is the exit code.
#[derive(Debug, thiserror::Error)]
#[error("some reads of the cluster failed ({}): the failed checks in the report name each one", .0.name())]
struct ReadsFailed(Class);

/// Files first, stdout last: a reader of stdout that goes away early
/// does not stop the files from being written.
fn write_outputs(settings: &Settings, report: &Report, verdict: ExitStatus) -> Result<ExitStatus> {
    let mut stdout: Option<String> = None;
    let main = settings.main.as_ref().map(|(o, f)| {
        let text = match f {
            Format::Table => report.table(),
            Format::Yaml | Format::Json => serializer::render(&report.document(), *f),
        };
        (o, text)
    });
    let rendered = settings.reports.iter().map(|(k, o)| (o, k.render(report)));
    for (o, text) in main.into_iter().chain(rendered) {
        match o {
            Output::Stdout => stdout = Some(text),
            o => emit(o, &text)?,
        }
    }
    match stdout {
        Some(text) => emit_verdict(&Output::Stdout, &text, verdict),
        None => Ok(verdict),
    }
}

/// 1 for a failed check, and with `--strict` for a skipped one; 0 for
/// every finding with `--fail-on-error=false`.
fn verdict(s: &Summary, strict: bool, fail_on_error: bool) -> ExitStatus {
    let findings = s.failed > 0 || (strict && s.skipped > 0);
    if findings && !fail_on_error {
        tracing::warn!("exiting 0 despite the findings: --fail-on-error=false");
        return ExitStatus::Success;
    }
    if findings {
        ExitStatus::Findings
    } else {
        ExitStatus::Success
    }
}

fn log_summary(s: &Summary) {
    if s.tests == 0 {
        tracing::warn!("the recipe declares no constraints: nothing was checked");
    }
    tracing::info!(
        "{} {}: {} passed, {} failed, {} skipped; status: {}",
        s.tests,
        if s.tests == 1 { "check" } else { "checks" },
        s.passed,
        s.failed,
        s.skipped,
        s.overall().name()
    );
}

/// The name of an input in messages: the path, `standard input`, or the
/// URL without credentials.
fn origin(arg: &str) -> String {
    if is_url(arg) {
        display_url(arg)
    } else {
        arg.to_string()
    }
}

/// A recipe given as `-s` or a snapshot given as `-r`: refused, naming
/// what was found and what the flag takes.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {path} is a {found}; {flag} takes a {expected} ({how}); were -r and -s swapped?")]
struct Swapped {
    flag: &'static str,
    path: String,
    found: &'static str,
    expected: &'static str,
    how: &'static str,
}

impl crate::error::Classify for Swapped {
    fn class(&self) -> crate::error::Class {
        crate::error::Class::InvalidInput
    }
}

/// What a parsed document is, by its `kind`, or for a Go aicr snapshot
/// (which has none) by its `measurements`.
fn kind_of(v: &serde_json::Value) -> Option<&'static str> {
    match v.get("kind").and_then(|k| k.as_str()) {
        Some(crate::recipe::result::RESULT_KIND) => Some("RecipeResult"),
        Some(crate::measurement::SNAPSHOT_KIND) => Some("Snapshot"),
        None if v.get("measurements").is_some() => Some("Snapshot"),
        _ => None,
    }
}

/// An input's bytes: a ConfigMap, a URL, a file or stdin.
fn read_bytes(
    arg: &str,
    kind: crate::k8s::configmap::DocKind,
    settings: &Settings,
) -> Result<Vec<u8>> {
    if crate::k8s::configmap::Target::is_reference(arg) {
        return super::configmap::read(arg, Some(kind), &settings.inputs);
    }
    Ok(serializer::read_source(arg, &settings.fetch)?)
}

fn read_recipe(arg: &str, settings: &Settings) -> Result<RecipeResult> {
    let path = origin(arg);
    let bytes = read_bytes(arg, crate::k8s::configmap::DocKind::Recipe, settings)?;
    let value = serializer::parse_value(&bytes, &path, crate::recipe::result::RESULT_KIND)?;
    if kind_of(&value) == Some("Snapshot") {
        return Err(Swapped {
            flag: "-r",
            path: serializer::display_path(&path),
            found: "Snapshot",
            expected: "RecipeResult",
            how: "from aicr recipe",
        }
        .into());
    }
    let recipe =
        serializer::typed_document(value, &path, crate::recipe::result::RESULT_KIND, false)?;
    Ok(recipe)
}

fn read_snapshot(arg: &str, settings: &Settings) -> Result<Snapshot> {
    let path = origin(arg);
    let bytes = read_bytes(arg, crate::k8s::configmap::DocKind::Snapshot, settings)?;
    let value = serializer::parse_value(&bytes, &path, crate::measurement::SNAPSHOT_KIND)?;
    if kind_of(&value) == Some("RecipeResult") {
        return Err(Swapped {
            flag: "-s",
            path: serializer::display_path(&path),
            found: "RecipeResult",
            expected: "Snapshot",
            how: "from aicr snapshot",
        }
        .into());
    }
    let snap = serializer::typed_document(value, &path, crate::measurement::SNAPSHOT_KIND, true)?;
    Ok(snap)
}
