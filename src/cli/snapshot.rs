//! `aicr snapshot`: runs the collectors on this node (or over `--root`) and
//! writes a `Snapshot` to stdout, a file or a ConfigMap (`-o cm://`). Sources that are absent are reported as unavailable
//! with the reason; the command still succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use clap::Args;

use super::configmap::{self, Doc};
use super::{ExitStatus, OutputArgs};
use crate::collector::{self, ClusterConfig, Collector, Context, GpuSource};
use crate::error::UsageError;
use crate::measurement::{Snapshot, SNAPSHOT_KIND};
use crate::serializer::{self, Format, Output, API_VERSION};

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

    /// Deadline of each collector, e.g. 500ms, 10s, 1m (at most 1h)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        help_heading = "Collectors"
    )]
    pub timeout: String,

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

    /// Kubeconfig file, for the k8s collector and -o cm:// (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
    #[arg(short = 'k', long, value_name = "FILE", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,
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
        let timeout = parse_timeout(&args.timeout)?;
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
        // Resolved as every command resolves cluster access; the collector
        // reads the first kubeconfig file of the list.
        let cluster = crate::k8s::ClusterSettings::resolve(
            args.kubeconfig,
            None,
            timeout,
            &crate::k8s::Env::from_process(),
        )?;
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

pub fn run(args: SnapshotArgs) -> Result<ExitStatus> {
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
    let text = match settings.format {
        Format::Table => snapshot.to_table(),
        f => serializer::render(
            &serde_json::to_value(&snapshot)
                .map_err(|e| crate::error::Error::new(crate::error::Class::Internal, e))?,
            f,
        ),
    };
    let doc = Doc {
        kind: crate::k8s::configmap::DocKind::Snapshot,
        format: settings.format,
        text: &text,
        timestamp: snapshot.metadata.get("timestamp").map(String::as_str),
    };
    configmap::emit_document(&settings.output, &doc, &settings.cluster)?;
    Ok(ExitStatus::Success)
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
