//! `aicr bundle`: a recipe (from a file, or built from criteria or a
//! snapshot) to a deployable directory; `--verify DIR` checks one.

use std::path::{Path, PathBuf};

use crate::error::Result;
use clap::Args;

use super::verify::{self, VerifyFormat};
use super::{CriteriaArgs, DataArgs, ExitStatus};
use crate::bundler::scheduling::{parse_selector, Scheduling, Toleration};
use crate::bundler::set::{Assignment, SetKind};
use crate::bundler::{self, output, safety, Options};
use crate::deployer::{self, GitSource, Kind, Revision, REPO_PLACEHOLDER};
use crate::error::UsageError;
use crate::measurement::Snapshot;
use crate::recipe::result::RecipeResult;
use crate::recipe::{Catalog, Criteria, DataStore};
use crate::serializer;

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// RecipeResult (a YAML or JSON file, - for stdin, or cm://NAMESPACE/NAME); or build the recipe from criteria flags, -c or -s
    #[arg(
        short = 'r',
        long,
        value_name = "FILE|CM",
        help_heading = "Input",
        conflicts_with_all = ["service", "accelerator", "intent", "os", "platform", "criteria_file", "snapshot"]
    )]
    pub recipe: Option<String>,

    #[command(flatten)]
    pub criteria: CriteriaArgs,

    #[command(flatten)]
    pub data: DataArgs,

    /// Bundle directory: created, or replaced when it holds an earlier bundle; or oci://REGISTRY/REPOSITORY:TAG to push it as one OCI artifact
    #[arg(
        short = 'o',
        long,
        value_name = "DIR",
        default_value = "./bundle",
        help_heading = "Output"
    )]
    pub output: PathBuf,

    /// Replace files of an earlier bundle that were edited since aicr wrote them (refused otherwise)
    #[arg(long, help_heading = "Output")]
    pub force: bool,

    /// How the bundle is deployed
    #[arg(
        short = 'd',
        long,
        value_enum,
        ignore_case = true,
        default_value = "helm",
        env = "AICR_DEPLOYER",
        help_heading = "Deployment"
    )]
    pub deployer: Kind,

    /// Git repository the bundle will be pushed to (argocd, flux)
    #[arg(long, value_name = "URL", help_heading = "Deployment")]
    pub repo: Option<String>,

    /// Branch, tag or commit of --repo (argocd, flux): NAME (a version such as v1.2.3 is a tag, a full SHA a commit, else a branch), or branch:NAME, tag:NAME, commit:SHA, refs/heads/NAME, refs/tags/NAME
    #[arg(
        long,
        value_name = "REV",
        default_value = "main",
        help_heading = "Deployment"
    )]
    pub revision: String,

    /// Set a Helm value: COMPONENT:PATH=VALUE (bool, int and null typed, else a string); COMPONENT:enabled=false drops a component
    #[arg(long = "set", value_name = "C:PATH=VALUE", help_heading = "Values")]
    pub set: Vec<String>,

    /// Set a Helm value as a string: COMPONENT:PATH=VALUE
    #[arg(
        long = "set-string",
        value_name = "C:PATH=VALUE",
        help_heading = "Values"
    )]
    pub set_string: Vec<String>,

    /// Set a Helm value from JSON: COMPONENT:PATH=JSON
    #[arg(long = "set-json", value_name = "C:PATH=JSON", help_heading = "Values")]
    pub set_json: Vec<String>,

    /// Node selector for system components: KEY=VALUE (repeatable)
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Scheduling")]
    pub system_node_selector: Vec<String>,

    /// Toleration for system components: KEY=VALUE:EFFECT or KEY:EFFECT (repeatable)
    #[arg(long, value_name = "TOLERATION", help_heading = "Scheduling")]
    pub system_node_toleration: Vec<String>,

    /// Node selector for GPU node components: KEY=VALUE (repeatable)
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Scheduling")]
    pub accelerated_node_selector: Vec<String>,

    /// Toleration for GPU node components: KEY=VALUE:EFFECT or KEY:EFFECT (repeatable)
    #[arg(long, value_name = "TOLERATION", help_heading = "Scheduling")]
    pub accelerated_node_toleration: Vec<String>,

    /// Taint that keeps workloads off a node until it is ready: KEY=VALUE:EFFECT or KEY:EFFECT
    #[arg(long, value_name = "TAINT", help_heading = "Scheduling")]
    pub workload_gate: Option<String>,

    /// Labels of workload pods that node setup must not disrupt: KEY=VALUE (repeatable)
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Scheduling")]
    pub workload_selector: Vec<String>,

    /// Pull each chart (helm pull, OCI included) into the bundle's charts/ so it installs with no access to chart repositories
    #[arg(long, help_heading = "Air gap")]
    pub vendor_charts: bool,

    /// The helm binary for --vendor-charts [default: helm on PATH]
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Air gap",
        requires = "vendor_charts"
    )]
    pub helm: Option<PathBuf>,

    /// Seconds one `helm pull` may take
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Air gap")]
    pub helm_timeout: u64,

    /// Rewrite image repositories in values to this mirror registry: HOST[:PORT][/PREFIX] (at the value paths the component registry names)
    #[arg(long, value_name = "HOST/PREFIX", help_heading = "Air gap")]
    pub registry_mirror: Option<String>,

    /// Docker/Podman auth file with the registry's credentials for -o oci:// [default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json]
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub registry_auth: Option<PathBuf>,

    /// Reach the registry of -o oci:// over plain HTTP (always so for one on 127.0.0.1, ::1 or localhost)
    #[arg(long, help_heading = "Output")]
    pub plain_http: bool,

    /// Check the bundle in DIR against its checksums.txt instead of bundling (same as `aicr verify DIR`)
    #[arg(long, value_name = "DIR")]
    pub verify: Option<PathBuf>,
}

/// Where the recipe comes from.
enum RecipeSource {
    /// `-r FILE` (`-` for stdin, or `cm://NAMESPACE/NAME` read from the
    /// cluster).
    File(String, crate::k8s::ClusterSettings),
    /// Criteria flags, `-c FILE` or `-s SNAPSHOT`, resolved; the snapshot's
    /// constraints rule out overlays.
    Criteria(Criteria, Option<Snapshot>),
}

/// Everything `bundle` needs, resolved and checked once before work starts;
/// the body only reads it.
struct Settings {
    source: RecipeSource,
    /// The recipe data: embedded, or layered with `--data`.
    store: DataStore,
    output: PathBuf,
    /// Overwrite edits made to an earlier bundle's files.
    force: bool,
    deployer: Kind,
    git: GitSource,
    options: Options,
    /// `--vendor-charts`: the helm that pulls the charts.
    vendor: Option<crate::mirror::helm::Helm>,
    /// `-o oci://...`: where to push, with the credentials found for it.
    oci: Option<(
        crate::bundler::oci::Target,
        crate::bundler::oci::Credentials,
    )>,
}

impl Settings {
    fn resolve(args: &BundleArgs, sources: &super::config::Sources) -> Result<Settings> {
        let mut sets = Vec::new();
        for (list, kind) in [
            (&args.set, SetKind::Typed),
            (&args.set_string, SetKind::String),
            (&args.set_json, SetKind::Json),
        ] {
            for a in list {
                sets.push(Assignment::parse(a, kind)?);
            }
        }
        let tolerations = |flag: &'static str, list: &[String]| {
            list.iter()
                .map(|t| Toleration::parse(flag, t))
                .collect::<Result<Vec<_>, _>>()
        };
        let nodes = args
            .criteria
            .nodes
            .map(crate::recipe::criteria::parse_nodes)
            .transpose()?;
        let scheduling = Scheduling {
            system_selector: parse_selector("--system-node-selector", &args.system_node_selector)?,
            system_tolerations: tolerations(
                "--system-node-toleration",
                &args.system_node_toleration,
            )?,
            accelerated_selector: parse_selector(
                "--accelerated-node-selector",
                &args.accelerated_node_selector,
            )?,
            accelerated_tolerations: tolerations(
                "--accelerated-node-toleration",
                &args.accelerated_node_toleration,
            )?,
            workload_gate: args
                .workload_gate
                .as_deref()
                .map(|g| Toleration::parse("--workload-gate", g))
                .transpose()?,
            workload_selector: parse_selector("--workload-selector", &args.workload_selector)?,
        };
        let gitops = matches!(args.deployer, Kind::Argocd | Kind::Flux);
        // A --repo from the config file serves the gitops deployers and
        // is left unused by the others; a typed one is a mistake.
        let repo = args
            .repo
            .clone()
            .filter(|_| gitops || sources.typed("repo"));
        if !gitops && repo.is_some() {
            return Err(UsageError(format!(
                "--repo applies to the argocd and flux deployers; the {} deployer has no repository",
                args.deployer.name()
            ))
            .into());
        }
        if let Some(r) = &repo {
            safety::repo_url(r)?;
        }
        let revision = Revision::parse(&args.revision)?;
        if args.recipe.is_none()
            && args.criteria.criteria_file.is_none()
            && args.criteria.snapshot.is_none()
            && [
                &args.criteria.service,
                &args.criteria.accelerator,
                &args.criteria.intent,
                &args.criteria.os,
                &args.criteria.platform,
            ]
            .iter()
            .all(|f| f.is_none())
        {
            return Err(UsageError(
                "no recipe: give -r FILE (or -r - for stdin), or criteria (--service, --accelerator, --intent, --os, --platform, -c FILE, -s SNAPSHOT) to build one"
                    .into(),
            )
            .into());
        }
        let out_text = args.output.to_string_lossy();
        let oci = if out_text.starts_with("oci://") {
            if args.force {
                return Err(UsageError(
                    "--force applies to a bundle directory; a push to oci:// replaces the tag"
                        .into(),
                )
                .into());
            }
            let target = crate::bundler::oci::Target::parse(&out_text, args.plain_http, true)?;
            let creds = crate::bundler::oci::credentials(
                target.reference.registry(),
                args.registry_auth.as_deref(),
            )?;
            Some((target, creds))
        } else {
            if args.registry_auth.is_some() || args.plain_http {
                return Err(UsageError(
                    "--registry-auth and --plain-http apply to -o oci://...; the bundle is written to a directory"
                        .into(),
                )
                .into());
            }
            output::check_destination(&args.output).map_err(bundler::Error::from)?;
            None
        };
        let vendor = if args.vendor_charts {
            Some(crate::mirror::helm::Helm::find(
                args.helm.as_deref(),
                std::time::Duration::from_secs(args.helm_timeout),
                "vendor the charts (--vendor-charts)",
            )?)
        } else {
            None
        };
        let source = match &args.recipe {
            Some(path) => {
                super::configmap::check_input(path)?;
                let cluster = args.criteria.cluster.resolve(super::configmap::TIMEOUT)?;
                RecipeSource::File(path.clone(), cluster)
            }
            None => {
                let (criteria, snapshot) = args.criteria.resolve_with_snapshot()?;
                RecipeSource::Criteria(criteria, snapshot)
            }
        };
        Ok(Settings {
            source,
            store: args.data.open()?,
            output: args.output.clone(),
            force: args.force,
            deployer: args.deployer,
            git: GitSource {
                placeholder: repo.is_none(),
                repo: repo.unwrap_or_else(|| REPO_PLACEHOLDER.to_string()),
                revision,
            },
            options: Options {
                sets,
                scheduling,
                nodes,
                registry_mirror: args
                    .registry_mirror
                    .as_deref()
                    .map(bundler::registry_mirror::RegistryMirror::parse)
                    .transpose()?,
            },
            vendor,
            oci,
        })
    }
}

pub fn run(args: BundleArgs, sources: &super::config::Sources) -> Result<ExitStatus> {
    if let Some(dir) = &args.verify {
        // Only typed flags are refused beside --verify: the environment
        // and the config file set bundle flags for every run.
        if let Some(other) = sources.typed_besides(&["verify"]) {
            return Err(UsageError(format!(
                "--verify DIR checks a bundle and takes no other flag of bundle; drop {other}, or drop --verify to bundle"
            ))
            .into());
        }
        return verify::check(dir, VerifyFormat::Text);
    }
    // Held from the start, before any thread exists, so every thread the
    // run starts holds them too: helm and the registry client stop at the
    // next poll, temporary files go, and only then does the signal end
    // aicr (see `HeldSignals::release`).
    let signals = output::HeldSignals::hold();
    let shown = args.output.display().to_string();
    let result = make(&args, sources);
    signals.release(|signal| match &result {
        Ok(_) => tracing::error!("interrupted by {signal} after the bundle was written to {shown}"),
        Err(_) => {
            let kept = if shown.starts_with("oci://") {
                "its tag is unchanged"
            } else {
                "a bundle already there is unchanged"
            };
            let helm = if args.vendor_charts {
                "; the helm pulls were stopped and their temporary files removed"
            } else {
                ""
            };
            tracing::error!(
                "interrupted by {signal}: stopped before {shown} was written ({kept}){helm}"
            )
        }
    });
    result
}

/// `bundle` itself, with the signals held.
fn make(args: &BundleArgs, sources: &super::config::Sources) -> Result<ExitStatus> {
    let settings = Settings::resolve(args, sources)?;
    let store = &settings.store;
    let recipe = match &settings.source {
        RecipeSource::File(path, cluster) => read_recipe(path, cluster)?,
        RecipeSource::Criteria(criteria, snapshot) => {
            let recipe = Catalog::load(store)?.resolve_with(store, criteria, snapshot.as_ref())?;
            super::log_screening(&recipe);
            recipe
        }
    };
    let mut prepared = bundler::prepare(store, &recipe, &settings.options)?;
    let mut charts = bundler::Files::default();
    if let Some(helm) = &settings.vendor {
        let unpack = settings.deployer != Kind::Helm;
        bundler::vendor::vendor(&mut prepared.components, helm, unpack, &mut charts)?;
    }
    let deployer = deployer::new(settings.deployer, settings.git.clone());
    let files = deployer::assemble_with(&prepared, deployer.as_ref(), charts)?;
    if let Some((target, creds)) = &settings.oci {
        let digest = crate::bundler::oci::push(target, &files, creds, super::verify::OCI_TIMEOUT)?;
        for w in prepared.warnings.iter().chain(deployer.warnings().iter()) {
            tracing::warn!("{w}");
        }
        let summary = format!(
            "Bundle pushed to {} ({digest}): {} components, {} files, {} deployer.\nTo check it: aicr verify {}@{digest}\n",
            target.shown,
            prepared.components.len(),
            files.len(),
            settings.deployer.name(),
            target.shown.rsplit_once(':').map_or(target.shown.as_str(), |(repo, _)| repo),
        );
        super::emit(&serializer::Output::Stdout, &summary)?;
        return Ok(ExitStatus::Success);
    }
    let written =
        output::write(&settings.output, &files, settings.force).map_err(bundler::Error::from)?;

    for w in prepared.warnings.iter().chain(deployer.warnings().iter()) {
        tracing::warn!("{w}");
    }
    let shown = display_dir(&settings.output);
    let verb = match written {
        output::Written::Written => "written to",
        output::Written::Unchanged => "unchanged in",
    };
    // Counted as `verify` counts: the files checksums.txt lists.
    let mut summary = format!(
        "Bundle {verb} {shown}: {} components, {} files and {}, {} deployer.\n",
        prepared.components.len(),
        files.len().saturating_sub(1),
        output::MARKER,
        settings.deployer.name()
    );
    summary.push_str("To deploy:\n");
    for (i, step) in deployer.next_steps(&shown).iter().enumerate() {
        summary.push_str(&format!("  {}. {step}\n", i + 1));
    }
    super::emit(&serializer::Output::Stdout, &summary)?;
    Ok(ExitStatus::Success)
}

fn read_recipe(path: &str, cluster: &crate::k8s::ClusterSettings) -> Result<RecipeResult> {
    let kind = Some(crate::k8s::configmap::DocKind::Recipe);
    let bytes = super::configmap::read(path, kind, cluster)?;
    Ok(RecipeResult::parse(&bytes, path)?)
}

/// The bundle directory as the user named it, made absolute.
fn display_dir(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}
