//! `aicr snapshot`: runs the collectors on this node (or over `--root`) and
//! prints a `Snapshot`. Sources that are absent are reported as unavailable
//! with the reason; the command still succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use clap::Args;

use super::{emit, ExitStatus, OutputArgs};
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

    /// Deadline of each collector, e.g. 500ms, 10s, 1m
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

    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
    #[arg(short = 'k', long, value_name = "FILE", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,
}

struct Settings {
    collectors: Vec<Arc<dyn Collector>>,
    context: Context,
    output: Output,
    format: Format,
    timestamp: bool,
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
        let timeout = humantime::parse_duration(&args.timeout)
            .ok()
            .filter(|d| *d > Duration::ZERO)
            .ok_or_else(|| {
                UsageError(format!(
                    "invalid --timeout {:?}: give a positive duration such as 500ms, 10s or 1m",
                    args.timeout
                ))
            })?;
        if !args.root.is_dir() {
            return Err(
                UsageError(format!("--root {}: not a directory", args.root.display())).into(),
            );
        }
        let cluster = cluster_config(args.kubeconfig)?;
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
        })
    }
}

/// `-k`, then `$KUBECONFIG` (first existing entry), then `~/.kube/config`,
/// then the in-cluster service account.
fn cluster_config(flag: Option<PathBuf>) -> Result<ClusterConfig> {
    if let Some(p) = flag {
        if let Err(io) = std::fs::metadata(&p) {
            return Err(crate::serializer::Error::Read {
                path: format!("--kubeconfig {}", p.display()),
                io,
            }
            .into());
        }
        return Ok(ClusterConfig::Kubeconfig(p));
    }
    if let Some(list) = std::env::var_os("KUBECONFIG") {
        if let Some(p) = std::env::split_paths(&list).find(|p| p.is_file()) {
            return Ok(ClusterConfig::Kubeconfig(p));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".kube/config");
        if p.is_file() {
            return Ok(ClusterConfig::Kubeconfig(p));
        }
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Ok(ClusterConfig::InCluster);
    }
    Ok(ClusterConfig::None)
}

pub fn run(args: SnapshotArgs) -> Result<ExitStatus> {
    let mut settings = Settings::resolve(args)?;
    let node = settings
        .context
        .node_name
        .clone()
        .unwrap_or_else(|| hostname(&settings.context));
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
            &serde_json::to_value(&snapshot).expect("a snapshot serialises"),
            f,
        ),
    };
    emit(&settings.output, &text)?;
    Ok(ExitStatus::Success)
}

fn hostname(ctx: &Context) -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(ctx.path(p)).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
