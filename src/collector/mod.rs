//! Collectors: each reads one part of a node (OS, systemd services, GPUs,
//! the Kubernetes cluster) into measurements, behind one trait. They run
//! concurrently, each on its own thread with a deadline; one that fails or
//! times out yields measurements marked unavailable with the reason, and the
//! rest still come out. Output order is fixed, whatever finishes first.
//!
//! Every collector reads files through [`Context::read`], under a root
//! directory (`/` by default), so tests run them over fixture trees and an
//! operator can read a mounted host filesystem; [`rootfs`] keeps those reads
//! inside the root, away from FIFOs and devices, and capped in size.
//! Programs run through [`process`], which kills them at the deadline.
//! Whatever a collector returns is redacted here, in one place ([`redact`]).

pub mod gpu;
pub mod k8s;
pub mod os;
pub mod process;
pub mod redact;
pub mod rootfs;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::measurement::{Measurement, MeasurementType};

/// How the GPU collector reaches the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuSource {
    /// NVML when the library loads, else `nvidia-smi -q -x`.
    Auto,
    /// NVML only.
    Nvml,
    /// `nvidia-smi -q -x` only.
    Smi,
}

/// Where the cluster configuration comes from, resolved by the CLI.
#[derive(Clone, Debug)]
pub enum ClusterConfig {
    /// No kubeconfig and not running in a pod.
    None,
    /// Cluster access as every command resolves it: `-k`, `KUBECONFIG`
    /// (a merged list), `~/.kube/config` or in-cluster, and `--context`.
    Settings(crate::k8s::ClusterSettings),
}

impl From<&crate::k8s::ClusterSettings> for ClusterConfig {
    fn from(s: &crate::k8s::ClusterSettings) -> ClusterConfig {
        match &s.source {
            crate::k8s::Source::None => ClusterConfig::None,
            _ => ClusterConfig::Settings(s.clone()),
        }
    }
}

/// What every collector may read.
#[derive(Clone, Debug)]
pub struct Context {
    /// Root of the filesystem to read (`/` for the live host).
    pub root: PathBuf,
    /// Deadline of each collector.
    pub timeout: Duration,
    pub gpu_source: GpuSource,
    pub cluster: ClusterConfig,
    /// Directories searched for `nvidia-smi` and `systemctl` (the PATH).
    pub search_path: Vec<PathBuf>,
    /// This node's name in the cluster (NODE_NAME, else the hostname).
    pub node_name: Option<String>,
}

impl Context {
    /// The path on this machine of a path on the node: `/etc/os-release`
    /// under the root, symbolic links resolved inside the root.
    pub fn resolve(&self, abs: &str) -> Result<PathBuf, rootfs::ReadError> {
        rootfs::resolve(&self.root, abs)
    }

    /// Reads a regular file of the node, at most `cap` bytes, as text.
    pub fn read(&self, abs: &str, cap: u64) -> Result<String, rootfs::ReadError> {
        rootfs::read(&self.root, abs, cap)
    }

    /// True when the root is the live host, where commands may be run.
    pub fn is_live_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Finds an executable on the search path.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.search_path.iter().map(|d| d.join(name)).find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }
}

/// One source of measurements.
pub trait Collector: Send + Sync {
    /// The name used by `--filter` and `--exclude`.
    fn name(&self) -> &'static str;
    /// The measurement types it produces, in output order.
    fn kinds(&self) -> &'static [MeasurementType];
    /// Collects; `Err(reason)` marks every kind of this collector unavailable.
    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String>;
}

/// Every collector, in output order.
pub fn all() -> Vec<Arc<dyn Collector>> {
    vec![
        Arc::new(os::Os),
        Arc::new(systemd::SystemD),
        Arc::new(gpu::Gpu),
        Arc::new(k8s::Kubernetes),
    ]
}

/// The names `--filter` and `--exclude` accept.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|c| c.name()).collect()
}

/// How long past the deadline the runner waits for a collector's answer.
const GRACE: Duration = Duration::from_millis(250);

/// Runs the collectors concurrently and returns their measurements in the
/// collectors' order. A collector still running at the deadline (plus a
/// short grace) is left behind, the programs it runs killed; its
/// measurements say it timed out.
pub fn run(collectors: Vec<Arc<dyn Collector>>, ctx: Context) -> Vec<Measurement> {
    let ctx = Arc::new(ctx);
    let started = Instant::now();
    // A collector's own deadline (a program it runs) passes a moment after
    // this one starts counting; the grace lets its more precise reason win
    // over a plain "timed out", every time.
    let deadline = started.checked_add(ctx.timeout + GRACE).unwrap_or(started);
    let (tx, rx) = mpsc::channel();
    let mut results: Vec<Option<Result<Vec<Measurement>, String>>> =
        collectors.iter().map(|_| None).collect();
    let mut pending = 0;
    for (i, c) in collectors.iter().enumerate() {
        let (c, ctx, tx) = (Arc::clone(c), Arc::clone(&ctx), tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("collector-{}", c.name()))
            .spawn(move || {
                let started = Instant::now();
                let result = c.collect(&ctx);
                tracing::debug!(
                    collector = c.name(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    ok = result.is_ok(),
                    "collected"
                );
                let _ = tx.send((i, result));
            });
        match spawned {
            Ok(_) => pending += 1,
            Err(e) => results[i] = Some(Err(format!("cannot start a thread: {e}"))),
        }
    }
    drop(tx);
    let mut stopped = false;
    while pending > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, r)) => {
                results[i] = Some(r);
                pending -= 1;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                stopped = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
        }
    }
    // Programs of collectors past the deadline go now, not when aicr exits.
    process::kill_all();
    let mut out = Vec::new();
    for (c, r) in collectors.iter().zip(results) {
        let r = r.unwrap_or_else(|| {
            Err(if stopped {
                "the collector stopped without a result (a defect)".to_string()
            } else {
                format!(
                    "timed out after {}",
                    humantime::format_duration(ctx.timeout)
                )
            })
        });
        match r {
            Ok(ms) => {
                // Keep the declared order even if a collector returned another.
                for kind in c.kinds() {
                    out.extend(
                        ms.iter()
                            .filter(|m| m.kind == *kind)
                            .cloned()
                            .map(redact::measurement)
                            .inspect(warn_unavailable),
                    );
                }
            }
            Err(reason) => {
                let reason = redact::text(&reason);
                tracing::warn!("{}: unavailable: {reason}", c.name());
                out.extend(
                    c.kinds()
                        .iter()
                        .map(|k| Measurement::unavailable(*k, reason.clone())),
                );
            }
        }
    }
    out
}

/// Logs a warning for a measurement, or each subtype of it, that a
/// collector returned as unavailable (a whole collector that failed is
/// logged where it fails).
fn warn_unavailable(m: &Measurement) {
    if let Some(reason) = &m.unavailable {
        tracing::warn!("{}: unavailable: {reason}", m.kind);
    }
    for s in &m.subtypes {
        if let Some(reason) = s.context.get("unavailable") {
            tracing::warn!("{}.{}: unavailable: {reason}", m.kind, s.subtype);
        }
    }
}

/// Runs a program with a deadline; see [`process::run`].
pub fn run_program(program: &Path, args: &[&str], timeout: Duration) -> Result<String, String> {
    process::run(program, args, timeout)
}
