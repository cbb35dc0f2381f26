//! `aicr snapshot`: runs the collectors on this node (or over `--root`) and
//! writes a `Snapshot` to stdout, a file or a ConfigMap (`-o cm://`). Sources that are absent are reported as unavailable
//! with the reason; the command still succeeds. With `--agent` it resolves
//! the agent flags into a [`crate::k8s::agent::Spec`] and has
//! [`crate::k8s::agent::run`] capture the snapshot on a GPU node of the
//! cluster instead (or prints the objects with `--dry-run`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use clap::Args;

use super::configmap::{self, Doc};
use super::{ExitStatus, OutputArgs};
use crate::collector::{self, ClusterConfig, Collector, Context, GpuSource};
use crate::error::UsageError;
use crate::k8s::agent;
use crate::measurement::{Measurement, MeasurementType, Snapshot, SNAPSHOT_KIND};
use crate::serializer::{self, Format, Output, API_VERSION};

mod fleet;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub out: OutputArgs,

    /// Leave out metadata.timestamp, so snapshots of an unchanged node are byte-identical
    #[arg(long, help_heading = "Output")]
    pub no_timestamp: bool,

    /// Only these collectors (comma-separated): os, systemd, gpu, k8s
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Collectors"
    )]
    pub filter: Vec<String>,

    /// Leave out these collectors (comma-separated): os, systemd, gpu, k8s
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Collectors"
    )]
    pub exclude: Vec<String>,

    /// Deadline of each collector, e.g. 500ms, 10s, 1m (at most 1h) [default: 10s];
    /// with --agent: the wait for the agent's Job [default: 5m]
    #[arg(long, value_name = "DURATION", help_heading = "Collectors")]
    pub timeout: Option<String>,

    /// Read the node's files under DIR instead of / (a mounted host filesystem, or a test fixture);
    /// GPUs are read from the live driver, and systemd only on the live host
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/",
        help_heading = "Collectors"
    )]
    pub root: PathBuf,

    /// How to read GPUs: NVML, nvidia-smi, or NVML falling back to nvidia-smi
    #[arg(
        long,
        value_enum,
        value_name = "SOURCE",
        default_value = "auto",
        help_heading = "Collectors"
    )]
    pub gpu_source: GpuSource,

    /// This node's name in the cluster [default: the hostname]
    #[arg(long, value_name = "NAME", env = "NODE_NAME", help_heading = "Cluster")]
    pub node_name: Option<String>,

    /// The cluster of the k8s collector, of -o cm:// and of --agent.
    #[command(flatten)]
    pub cluster: super::cluster::ClusterArgs,

    #[command(flatten)]
    pub agent: AgentArgs,
}

/// The agent flags (Go aicr's names; see the README, "snapshot --agent").
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Capture the snapshot on a GPU node of the cluster, through a Job, instead of on this host
    #[arg(long, help_heading = "Agent")]
    pub agent: bool,

    /// Print the objects --agent would create (a YAML stream) and create nothing
    #[arg(long, help_heading = "Agent")]
    pub dry_run: bool,

    /// Image of the agent's container [default: ghcr.io/aicr-rs/aicr:v<version>]
    #[arg(long, value_name = "IMAGE", env = "AICR_IMAGE", help_heading = "Agent")]
    pub image: Option<String>,

    /// Secret for pulling the image (repeatable)
    #[arg(long, value_name = "NAME", help_heading = "Agent")]
    pub image_pull_secret: Vec<String>,

    /// Prefix of the agent's object names, followed by -snapshot-<run id> [default: aicr]
    #[arg(long, value_name = "NAME", help_heading = "Agent")]
    pub job_name: Option<String>,

    /// Run as this existing ServiceAccount instead of creating one
    #[arg(long, value_name = "NAME", help_heading = "Agent")]
    pub service_account_name: Option<String>,

    /// Schedule only on nodes with this label, key=value (repeatable) [default: nvidia.com/gpu.present=true]
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Agent")]
    pub node_selector: Vec<String>,

    /// Tolerate a taint: key, key=value, key:Effect or key=value:Effect (repeatable; replaces the default) [default: nvidia.com/gpu]
    #[arg(long, value_name = "TAINT", help_heading = "Agent")]
    pub toleration: Vec<String>,

    /// Run privileged with the host's / read-only at /host and its PID namespace (all collectors);
    /// off: the pod passes Pod Security "restricted" and sees no host files
    #[arg(long, help_heading = "Agent")]
    pub privileged: bool,

    /// Request one nvidia.com/gpu for the pod
    #[arg(
        long,
        env = "AICR_REQUIRE_GPU",
        value_parser = crate::logging::parse_switch,
        help_heading = "Agent"
    )]
    pub require_gpu: bool,

    /// runtimeClassName of the pod (nvidia-smi access without taking a GPU)
    #[arg(
        long,
        value_name = "NAME",
        env = "AICR_RUNTIME_CLASS",
        help_heading = "Agent"
    )]
    pub runtime_class: Option<String>,

    /// Keep the agent's objects after the run, and list them
    #[arg(long, help_heading = "Agent")]
    pub no_cleanup: bool,

    /// The run id in every object's name and label (lowercase letters and digits, at most 16) [default: random]
    #[arg(long, value_name = "ID", help_heading = "Agent")]
    pub run_id: Option<String>,

    /// Snapshot every node matching --node-selector, one Job per node; -o DIR/ writes DIR/<node>.yaml
    /// (.json with -t json), without -o each snapshot stays in cm://NAMESPACE/<prefix>-snapshot-<run id>-<node>.
    /// stdout gets the per-node summary (status ok, failed or timed-out, reason, where the snapshot went)
    /// in the -t format: table (default on a terminal), yaml (default otherwise) or json
    #[arg(long, help_heading = "Agent")]
    pub all_nodes: bool,

    /// With --all-nodes: how many Jobs run at a time (1 to 256) [default: 10]
    #[arg(long, value_name = "N", help_heading = "Agent")]
    pub parallel: Option<usize>,
}

struct Settings {
    collectors: Vec<Arc<dyn Collector>>,
    context: Context,
    output: Output,
    format: Format,
    timestamp: bool,
    /// The cluster of `-o cm://`.
    cluster: crate::k8s::ClusterSettings,
}

impl Settings {
    fn resolve(args: SnapshotArgs) -> Result<Settings> {
        let (output, format) = args.out.resolve(Format::Yaml)?;
        let node_name = args.node_name.clone().filter(|n| !n.trim().is_empty());
        let known = collector::names();
        for name in args.filter.iter().chain(&args.exclude) {
            if !known.contains(&name.trim()) {
                return Err(UsageError(format!(
                    "unknown collector {name:?} in --filter/--exclude; collectors: {}",
                    known.join(", ")
                ))
                .into());
            }
        }
        let collectors: Vec<Arc<dyn Collector>> = collector::all()
            .into_iter()
            .filter(|c| args.filter.is_empty() || args.filter.iter().any(|f| f.trim() == c.name()))
            .filter(|c| !args.exclude.iter().any(|f| f.trim() == c.name()))
            .collect();
        if collectors.is_empty() {
            return Err(
                UsageError("--filter and --exclude leave no collector to run".into()).into(),
            );
        }
        let timeout = parse_timeout(args.timeout.as_deref().unwrap_or("10s"))?;
        match std::fs::metadata(&args.root) {
            // Missing is not found (3), unreadable unauthorized (4).
            Err(io) => {
                return Err(crate::serializer::Error::Read {
                    path: format!("--root {}", args.root.display()),
                    io,
                }
                .into())
            }
            Ok(m) if !m.is_dir() => {
                return Err(
                    UsageError(format!("--root {}: not a directory", args.root.display())).into(),
                )
            }
            Ok(_) => {}
        }
        // Resolved as every command resolves cluster access.
        let cluster = args.cluster.resolve(timeout)?;
        let configmaps = crate::k8s::ClusterSettings {
            timeout: configmap::TIMEOUT,
            ..cluster.clone()
        };
        let cluster = ClusterConfig::from(&cluster);
        let search_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        Ok(Settings {
            collectors,
            context: Context {
                root: args.root,
                timeout,
                gpu_source: args.gpu_source,
                cluster,
                search_path,
                node_name,
            },
            output,
            format,
            timestamp: !args.no_timestamp,
            cluster: configmaps,
        })
    }
}

/// The longest `--timeout` accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// `--timeout`: a positive duration of at most [`MAX_TIMEOUT`].
pub(super) fn parse_timeout(text: &str) -> Result<Duration, UsageError> {
    let invalid = |why: &str| {
        UsageError(format!(
            "invalid --timeout {text:?}: {why}; give a positive duration of at most 1h, such as 500ms, 10s or 1m"
        ))
    };
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(invalid("it is zero")),
        Ok(d) if d > MAX_TIMEOUT => Err(invalid("it is longer than 1h")),
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => {
            Err(invalid("the number is too large or too precise"))
        }
        Err(_) => Err(invalid("not a duration")),
    }
}

pub fn run(args: SnapshotArgs, sources: &super::config::Sources) -> Result<ExitStatus> {
    if args.agent.agent {
        return run_agent(AgentSettings::resolve(args, sources)?);
    }
    refuse_agent_flags(sources)?;
    let mut settings = Settings::resolve(args)?;
    let node = match settings.context.node_name.clone() {
        Some(n) => n,
        None => hostname(&settings.context),
    };
    settings.context.node_name = Some(node.clone());
    let measurements = collector::run(settings.collectors, settings.context);
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("source-node".to_string(), node);
    if settings.timestamp {
        metadata.insert(
            "timestamp".to_string(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        );
    }
    metadata.insert("version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    let snapshot = Snapshot {
        kind: SNAPSHOT_KIND.into(),
        api_version: API_VERSION.into(),
        metadata,
        measurements,
    };
    emit_snapshot(
        &snapshot,
        &settings.output,
        settings.format,
        &settings.cluster,
    )
}

/// Writes a snapshot in `format` where `-o` says.
fn emit_snapshot(
    snapshot: &Snapshot,
    output: &Output,
    format: Format,
    cluster: &crate::k8s::ClusterSettings,
) -> Result<ExitStatus> {
    let text = render_snapshot(snapshot, format)?;
    let doc = Doc {
        kind: crate::k8s::configmap::DocKind::Snapshot,
        format,
        text: &text,
        timestamp: snapshot.metadata.get("timestamp").map(String::as_str),
    };
    configmap::emit_document(output, &doc, cluster)?;
    Ok(ExitStatus::Success)
}

/// A snapshot as text in `format`.
fn render_snapshot(snapshot: &Snapshot, format: Format) -> Result<String> {
    Ok(match format {
        Format::Table => snapshot.to_table(),
        f => serializer::render(
            &serde_json::to_value(snapshot)
                .map_err(|e| crate::error::Error::new(crate::error::Class::Internal, e))?,
            f,
        ),
    })
}

/// The agent flags typed without `--agent`: refused, naming the first.
/// The same settings from the environment or the config file wait for
/// `--agent` and are not refused.
fn refuse_agent_flags(sources: &super::config::Sources) -> Result<()> {
    let given = [
        ("--dry-run", "dry_run"),
        ("--image", "image"),
        ("--image-pull-secret", "image_pull_secret"),
        ("--job-name", "job_name"),
        ("--service-account-name", "service_account_name"),
        ("--node-selector", "node_selector"),
        ("--toleration", "toleration"),
        ("--privileged", "privileged"),
        ("--require-gpu", "require_gpu"),
        ("--runtime-class", "runtime_class"),
        ("--no-cleanup", "no_cleanup"),
        ("--run-id", "run_id"),
        ("--all-nodes", "all_nodes"),
        ("--parallel", "parallel"),
    ]
    .map(|(flag, id)| (flag, sources.typed(id)));
    match given.iter().find(|(_, g)| *g) {
        Some((flag, _)) => Err(UsageError(format!(
            "{flag} is an agent option: add --agent to capture the snapshot through a Job in the cluster"
        ))
        .into()),
        None => Ok(()),
    }
}

/// `snapshot --agent`, resolved.
struct AgentSettings {
    spec: agent::Spec,
    dry_run: bool,
    keep: bool,
    /// Measurements the restricted pod cannot take.
    not_collected: Vec<MeasurementType>,
    output: Output,
    format: Format,
    cluster: crate::k8s::ClusterSettings,
    /// `--all-nodes`, resolved.
    fleet: Option<fleet::FleetSettings>,
}

impl AgentSettings {
    fn resolve(args: SnapshotArgs, sources: &super::config::Sources) -> Result<AgentSettings> {
        let (node_selector, tolerations) = placement(&args.agent)?;
        let (snapshot_args, not_collected) = pod_collector_args(&args, args.agent.privileged)?;
        let fleet = fleet::FleetSettings::resolve(&args)?;
        let a = args.agent;
        let (output, format) = match &fleet {
            // -o is the directory of the snapshots, resolved above.
            Some(_) => (Output::Stdout, args.out.format.unwrap_or(Format::Yaml)),
            None => args.out.resolve(Format::Yaml)?,
        };
        if a.dry_run {
            configmap::refuse_output(&output, "the agent's manifests")?;
            if format == Format::Table {
                return Err(UsageError(
                    "--dry-run prints manifests as yaml or json, not a table".into(),
                )
                .into());
            }
        }
        if args.root != std::path::Path::new("/") {
            return Err(UsageError(
                "--root reads this host's files and cannot be combined with --agent; the agent reads the node's own (all of them with --privileged)".into(),
            )
            .into());
        }
        let timeout_text = args.timeout.as_deref().unwrap_or("5m");
        let timeout = parse_timeout(timeout_text)?;
        // -n, AICR_NAMESPACE, the context's namespace, ... (checked).
        let cluster = args.cluster.resolve(configmap::TIMEOUT)?;
        let namespace = cluster.namespace()?;
        let prefix = a.job_name.unwrap_or_else(|| "aicr".into());
        if !agent::is_dns_label(&prefix) || prefix.len() > 20 {
            return Err(UsageError(format!(
                "invalid --job-name {prefix:?}: give lowercase letters, digits and -, at most 20 (the names add -snapshot-<run id>)"
            ))
            .into());
        }
        let run_id = match a.run_id {
            Some(id) => {
                if id.is_empty()
                    || id.len() > 16
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                {
                    return Err(UsageError(format!(
                        "invalid --run-id {id:?}: give lowercase letters and digits, at most 16"
                    ))
                    .into());
                }
                id
            }
            None => agent::new_run_id().map_err(|e| {
                crate::error::Error::new(crate::error::Class::Internal, std::io::Error::other(e))
            })?,
        };
        let dns_subdomain = |flag: &str, v: &str| -> Result<()> {
            if v.is_empty() || v.len() > 253 || !v.split('.').all(agent::is_dns_label) {
                return Err(UsageError(format!(
                    "invalid {flag} {v:?}: give a Kubernetes object name (lowercase letters, digits, - and .)"
                ))
                .into());
            }
            Ok(())
        };
        if let Some(sa) = &a.service_account_name {
            dns_subdomain("--service-account-name", sa)?;
        }
        for s in &a.image_pull_secret {
            dns_subdomain("--image-pull-secret", s)?;
        }
        // --require-gpu and --runtime-class exclude each other; when only
        // one of them was typed it wins over the other's variable or file
        // setting (AICR_REQUIRE_GPU=false is no request at all).
        let (mut require_gpu, mut runtime_class) = (a.require_gpu, a.runtime_class);
        if require_gpu && runtime_class.is_some() {
            match (sources.typed("require_gpu"), sources.typed("runtime_class")) {
                (true, false) => runtime_class = None,
                (false, true) => require_gpu = false,
                _ => {}
            }
        }
        if let Some(rc) = &runtime_class {
            dns_subdomain("--runtime-class", rc)?;
        }
        if require_gpu && runtime_class.is_some() {
            return Err(UsageError(
                "--require-gpu and --runtime-class exclude each other: request a GPU, or reach the driver through the runtime class".into(),
            )
            .into());
        }
        let image = a.image.unwrap_or_else(agent::default_image);
        if image.is_empty()
            || image.len() > 512
            || image.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(UsageError(format!(
                "invalid --image {image:?}: give an image reference"
            ))
            .into());
        }
        Ok(AgentSettings {
            spec: agent::Spec {
                run_id,
                namespace,
                prefix,
                service_account: a.service_account_name,
                image,
                image_pull_secrets: a.image_pull_secret,
                node_selector,
                tolerations,
                timeout,
                privileged: a.privileged,
                require_gpu,
                runtime_class,
                snapshot_args,
            },
            dry_run: a.dry_run,
            keep: a.no_cleanup,
            not_collected,
            output,
            format,
            cluster,
            fleet,
        })
    }
}

/// `--node-selector` and `--toleration`, or their defaults.
fn placement(
    a: &AgentArgs,
) -> Result<(
    std::collections::BTreeMap<String, String>,
    Vec<agent::Toleration>,
)> {
    let mut node_selector = std::collections::BTreeMap::new();
    for ns in &a.node_selector {
        let (k, v) = agent::parse_node_selector(ns).map_err(UsageError)?;
        node_selector.insert(k, v);
    }
    if node_selector.is_empty() {
        let (k, v) = agent::DEFAULT_NODE_SELECTOR;
        node_selector.insert(k.to_string(), v.to_string());
    }
    let mut tolerations = Vec::new();
    for t in &a.toleration {
        tolerations.push(agent::Toleration::parse(t).map_err(UsageError)?);
    }
    if tolerations.is_empty() {
        tolerations.push(agent::Toleration {
            key: agent::DEFAULT_TOLERATION.into(),
            value: None,
            effect: None,
        });
    }
    Ok((node_selector, tolerations))
}

/// The collector flags passed on to the pod, and the measurements it
/// cannot take (without `--privileged`).
fn pod_collector_args(
    args: &SnapshotArgs,
    privileged: bool,
) -> Result<(Vec<String>, Vec<MeasurementType>)> {
    // The collector flags travel to the pod; their names were checked
    // by the local resolution's rules.
    let known = collector::names();
    for name in args.filter.iter().chain(&args.exclude) {
        if !known.contains(&name.trim()) {
            return Err(UsageError(format!(
                "unknown collector {name:?} in --filter/--exclude; collectors: {}",
                known.join(", ")
            ))
            .into());
        }
    }
    // Without --privileged the pod sees its own /etc and /proc, not the
    // node's: the host-file collectors are not run there, and their
    // measurements are marked unavailable with the reason.
    let filter: Vec<String> = args.filter.iter().map(|f| f.trim().to_string()).collect();
    let mut exclude: Vec<String> = args.exclude.iter().map(|f| f.trim().to_string()).collect();
    let mut not_collected = Vec::new();
    if !privileged {
        for (name, kind) in HOST_COLLECTORS {
            if filter.iter().any(|f| f == name) {
                return Err(UsageError(format!(
                    "--filter {name}: the {name} collector reads the node's files, which the agent sees only with --privileged"
                ))
                .into());
            }
            let wanted = (filter.is_empty() || filter.iter().any(|f| f == name))
                && !exclude.iter().any(|f| f == name);
            if wanted {
                exclude.push(name.to_string());
                not_collected.push(kind);
            }
        }
    }
    let left = known
        .iter()
        .filter(|k| filter.is_empty() || filter.iter().any(|f| f == *k))
        .filter(|k| !exclude.iter().any(|f| f == *k))
        .count();
    if left == 0 {
        return Err(UsageError(
            "--filter and --exclude leave no collector for the agent to run (without --privileged it runs neither os nor systemd)".into(),
        )
        .into());
    }
    let mut snapshot_args = Vec::new();
    if !filter.is_empty() {
        snapshot_args.push("--filter".to_string());
        snapshot_args.push(filter.join(","));
    }
    if !exclude.is_empty() {
        snapshot_args.push("--exclude".to_string());
        snapshot_args.push(exclude.join(","));
    }
    if args.no_timestamp {
        snapshot_args.push("--no-timestamp".into());
    }
    if args.gpu_source != GpuSource::Auto {
        snapshot_args.push("--gpu-source".into());
        snapshot_args.push(format!("{:?}", args.gpu_source).to_lowercase());
    }
    Ok((snapshot_args, not_collected))
}

/// `snapshot --agent`: prints the manifests (`--dry-run`), or runs the
/// agent and writes the snapshot it captured.
fn run_agent(s: AgentSettings) -> Result<ExitStatus> {
    if let Some(f) = &s.fleet {
        return fleet::run(&s, f);
    }
    if s.dry_run {
        let text = render_manifests(&s.spec.manifests(), s.format);
        return super::emit_verdict(&s.output, &text, ExitStatus::Success);
    }
    if s.spec.privileged {
        tracing::warn!(
            "--privileged: the agent pod runs privileged, in the host's PID namespace, with the node's / mounted read-only at {}",
            agent::HOST_ROOT
        );
    }
    let mut progress = Progress::new();
    let outcome = agent::run::run(&s.spec, &s.cluster, s.keep, &mut |m| progress.show(m));
    progress.finish();
    let outcome = outcome?;
    if !s.keep && !outcome.kept.is_empty() {
        tracing::warn!(
            "could not delete {} of the agent's objects; find them with the label {}",
            outcome.kept.len(),
            s.spec.selector()
        );
    }
    let snapshot = agent_snapshot(&outcome.snapshot, &s.spec.configmap_uri(), &s.not_collected)?;
    if !has_gpu_data(&snapshot) {
        tracing::warn!(
            "the captured snapshot holds no GPU data: the pod ran on a node without a GPU it could reach (see --node-selector, --require-gpu, --runtime-class, --privileged)"
        );
    }
    emit_snapshot(&snapshot, &s.output, s.format, &s.cluster)
}

/// Manifests as a YAML stream, or with `-t json` a JSON `List`.
fn render_manifests(manifests: &[serde_json::Value], format: Format) -> String {
    match format {
        Format::Json => serializer::render(
            &serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": manifests }),
            Format::Json,
        ),
        _ => manifests
            .iter()
            .map(|m| format!("---\n{}", serializer::render(m, Format::Yaml)))
            .collect(),
    }
}

/// The snapshot a pod wrote (read from `source`), with the measurements
/// it was not asked to take marked unavailable.
fn agent_snapshot(
    bytes: &[u8],
    source: &str,
    not_collected: &[MeasurementType],
) -> Result<Snapshot> {
    let mut snapshot = Snapshot::parse(bytes, source)?;
    for kind in not_collected {
        snapshot.measurements.push(Measurement::unavailable(
            *kind,
            "not collected: the agent ran without --privileged, so it cannot read the node's files",
        ));
    }
    snapshot.measurements.sort_by_key(|m| m.kind);
    Ok(snapshot)
}

/// The collectors that read the node's files, and their measurements.
const HOST_COLLECTORS: [(&str, MeasurementType); 2] = [
    ("os", MeasurementType::Os),
    ("systemd", MeasurementType::SystemD),
];

/// Whether a GPU measurement with readings is present.
fn has_gpu_data(s: &Snapshot) -> bool {
    s.measurements.iter().any(|m| {
        m.kind == MeasurementType::Gpu
            && m.unavailable.is_none()
            && m.subtypes.iter().any(|st| !st.data.is_empty())
    })
}

/// Progress of the agent on stderr: one redrawn line on a terminal, a log
/// line per change otherwise.
struct Progress {
    tty: bool,
    drawn: bool,
    tick: usize,
}

impl Progress {
    fn new() -> Progress {
        use std::io::IsTerminal;
        Progress {
            tty: std::io::stderr().is_terminal(),
            drawn: false,
            tick: 0,
        }
    }

    fn show(&mut self, msg: &str) {
        if self.tty {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            self.tick = (self.tick + 1) % FRAMES.len();
            let line: String = msg.chars().take(150).collect();
            eprint!("\r\x1b[2K{} {line}", FRAMES[self.tick]);
            self.drawn = true;
        } else {
            tracing::info!("{msg}");
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

/// The node's hostname (the first line of its file), read under the root
/// within the collectors' deadline; `unknown` when it cannot be read in
/// time.
fn hostname(ctx: &Context) -> String {
    let ctx2 = ctx.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("hostname".into())
        .spawn(move || {
            let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .iter()
                .find_map(|p| ctx2.read(p, 4096).ok())
                .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
                .filter(|s| !s.is_empty());
            let _ = tx.send(name);
        });
    let name = match spawned {
        Ok(_) => rx.recv_timeout(ctx.timeout).ok().flatten(),
        Err(_) => None,
    };
    name.unwrap_or_else(|| "unknown".into())
}
