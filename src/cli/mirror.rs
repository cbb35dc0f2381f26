//! `aicr mirror list`: every chart and container image a stack pulls, for
//! a recipe (`-r FILE|cm://`) or a bundle directory (`-b DIR`), as a plain
//! list of images, JSON, a Hauler manifest or a Zarf package config. Charts
//! are rendered with `helm template` (the bundle's values; for a recipe,
//! the values `aicr bundle` would write), from a bundle's vendored charts
//! when it has them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{DataArgs, ExitStatus};
use crate::bundler::{self, output::read_capped, Component, Options};
use crate::error::{Class, Error, Result, UsageError};
use crate::mirror::format::{self, BundleFiles, MirrorFormat};
use crate::mirror::{self, helm::Helm};
use crate::recipe::result::RecipeResult;
use crate::serializer::Output;

#[derive(Debug, Args)]
pub struct MirrorArgs {
    #[command(subcommand)]
    pub command: MirrorCommand,
}

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// List every chart and container image the stack pulls (images from `helm template` of each chart with its values)
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// RecipeResult (a YAML or JSON file, - for stdin, or cm://NAMESPACE/NAME)
    #[arg(
        short = 'r',
        long,
        value_name = "FILE|CM",
        help_heading = "Input",
        conflicts_with = "bundle",
        required_unless_present = "bundle"
    )]
    pub recipe: Option<String>,

    /// A bundle directory written by `aicr bundle` (its recipe.yaml, values and manifests; its vendored charts when it has them)
    #[arg(short = 'b', long, value_name = "DIR", help_heading = "Input")]
    pub bundle: Option<PathBuf>,

    #[command(flatten)]
    pub data: DataArgs,

    #[command(flatten)]
    pub cluster: super::cluster::ClusterArgs,

    /// The helm binary [default: helm on PATH]
    #[arg(long, value_name = "PATH", help_heading = "Helm")]
    pub helm: Option<PathBuf>,

    /// Seconds one `helm template` may take
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Helm")]
    pub helm_timeout: u64,

    /// Where to write: a file (written atomically) or - for stdout
    #[arg(short = 'o', long, value_name = "PATH", help_heading = "Output")]
    pub output: Option<String>,

    /// text: the images, one a line, sorted; json: charts and images; hauler: a Hauler manifest; zarf: a Zarf package config
    #[arg(
        short = 't',
        long,
        value_enum,
        default_value = "text",
        help_heading = "Output"
    )]
    pub format: MirrorFormat,
}

pub fn run(args: MirrorArgs) -> Result<ExitStatus> {
    match args.command {
        MirrorCommand::List(a) => list(a),
    }
}

/// Where the stack comes from.
enum Input {
    Recipe(String, crate::k8s::ClusterSettings),
    Bundle(PathBuf),
}

/// `mirror list` with SIGINT, SIGTERM and SIGHUP held back: a signal stops
/// the helm run under way, its temporary values file goes, and only then
/// does the signal end aicr.
fn list(args: ListArgs) -> Result<ExitStatus> {
    let signals = crate::bundler::output::HeldSignals::hold();
    let result = list_held(args);
    signals.release(|signal| match &result {
        Ok(_) => tracing::error!("interrupted by {signal} after the list was written"),
        Err(_) => tracing::error!(
            "interrupted by {signal}: helm was stopped, its temporary files removed, and nothing was written"
        ),
    });
    result
}

fn list_held(args: ListArgs) -> Result<ExitStatus> {
    // Settings first: every flag checked before helm runs.
    let output = Output::parse(args.output.as_deref());
    if let Output::ConfigMap(_) = output {
        return Err(UsageError("-o cm://: mirror list writes a file or stdout".into()).into());
    }
    output.check()?;
    let input = match (&args.recipe, &args.bundle) {
        (Some(r), None) => {
            super::configmap::check_input(r)?;
            Input::Recipe(r.clone(), args.cluster.resolve(super::configmap::TIMEOUT)?)
        }
        (None, Some(dir)) => Input::Bundle(dir.clone()),
        _ => return Err(UsageError("give -r FILE|CM or -b DIR".into()).into()),
    };
    let store = args.data.open()?;
    let helm = Helm::find(
        args.helm.as_deref(),
        Duration::from_secs(args.helm_timeout),
        "render the charts",
    )?;

    let (components, vendored, bundle) = match &input {
        Input::Recipe(path, cluster) => {
            let kind = Some(crate::k8s::configmap::DocKind::Recipe);
            let bytes = super::configmap::read(path, kind, cluster)?;
            let recipe = RecipeResult::parse(&bytes, path)?;
            let prepared = bundler::prepare(&store, &recipe, &Options::default())?;
            (prepared.components, Default::default(), None)
        }
        Input::Bundle(dir) => {
            let components = bundle_components(&store, dir)?;
            let vendored = mirror::vendored_in(dir, &components);
            (components, vendored, Some(BundleFiles { values: true }))
        }
    };
    let inv = mirror::inventory(&components, &helm, &vendored)?;
    tracing::info!(
        "{} charts, {} images in {} components",
        inv.charts.len(),
        inv.images.len(),
        components.len()
    );
    let text = format::render(&inv, &components, args.format, bundle.as_ref());
    super::emit(&output, &text)?;
    Ok(ExitStatus::Success)
}

/// The most a bundle's recipe.yaml or a values file may hold.
const BUNDLE_FILE_CAP: u64 = 16 << 20;

/// A bundle's components: its recipe.yaml prepared against the registry,
/// then each component's values and manifests as the bundle holds them. A
/// bundle that no longer matches its checksums.txt is read with a warning.
fn bundle_components(store: &crate::recipe::DataStore, dir: &Path) -> Result<Vec<Component>> {
    let report = bundler::checksum::verify(dir)?;
    if !report.verified {
        tracing::warn!(
            "{}: the bundle does not match its checksums.txt ({} changed, {} missing, {} extra): listing it as it is now; `aicr verify` names the files",
            dir.display(),
            report.changed.len(),
            report.missing.len(),
            report.extra.len()
        );
    }
    let root = std::fs::File::open(dir)
        .map_err(|e| Error::from(e).context(format!("cannot open the bundle {}", dir.display())))?;
    let root = std::os::fd::AsFd::as_fd(&root);
    let read = |rel: &str| -> Result<String> {
        let bytes = read_capped(root, rel, BUNDLE_FILE_CAP).map_err(|reason| {
            Error::new(
                Class::InvalidInput,
                UsageError(format!("{}/{rel}: {reason}", dir.display())),
            )
        })?;
        String::from_utf8(bytes)
            .map_err(|_| UsageError(format!("{}/{rel}: not UTF-8 text", dir.display())).into())
    };
    let shown = format!("{}/recipe.yaml", dir.display());
    let recipe = RecipeResult::parse(read("recipe.yaml")?.as_bytes(), &shown)?;
    let mut prepared = bundler::prepare(store, &recipe, &Options::default())?;
    for c in &mut prepared.components {
        let rel = format!("{}/values.yaml", c.name);
        let text = read(&rel)?;
        let values: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| UsageError(format!("{}/{rel}: not YAML: {e}", dir.display())))?;
        c.values = if values.is_null() {
            Value::Object(Default::default())
        } else {
            values
        };
        for m in &mut c.manifests {
            m.text = read(&format!("{}/manifests/{}", c.name, m.file_name))?;
        }
    }
    Ok(prepared.components)
}
