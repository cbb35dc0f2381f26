//! Collectors: each reads one part of a node (OS, systemd services, GPUs,
//! the Kubernetes cluster) into measurements, behind one trait. They run
//! concurrently, each on its own thread with a deadline; one that fails or
//! times out yields measurements marked unavailable with the reason, and the
//! rest still come out. Output order is fixed, whatever finishes first.
//!
//! Every collector reads files through `Context::path`, under a root
//! directory (`/` by default), so tests run them over fixture trees and an
//! operator can read a mounted host filesystem.

pub mod gpu;
pub mod k8s;
pub mod os;
pub mod redact;
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterConfig {
    /// No kubeconfig and not running in a pod.
    None,
    /// A kubeconfig file.
    Kubeconfig(PathBuf),
    /// In-cluster service account (KUBERNETES_SERVICE_HOST is set).
    InCluster,
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
    /// A path on the node, read under the root: `path("/etc/os-release")`.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
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

/// Runs the collectors concurrently and returns their measurements in the
/// collectors' order. A collector still running at the deadline is left to
/// finish on its own; its measurements say it timed out.
pub fn run(collectors: Vec<Arc<dyn Collector>>, ctx: Context) -> Vec<Measurement> {
    let ctx = Arc::new(ctx);
    let (tx, rx) = mpsc::channel();
    for (i, c) in collectors.iter().enumerate() {
        let (c, ctx, tx) = (Arc::clone(c), Arc::clone(&ctx), tx.clone());
        std::thread::Builder::new()
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
            })
            .expect("a collector thread starts");
    }
    drop(tx);
    let deadline = Instant::now() + ctx.timeout;
    let mut results: Vec<Option<Result<Vec<Measurement>, String>>> =
        collectors.iter().map(|_| None).collect();
    let mut pending = collectors.len();
    while pending > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, r)) => {
                results[i] = Some(r);
                pending -= 1;
            }
            Err(_) => break,
        }
    }
    let mut out = Vec::new();
    for (c, r) in collectors.iter().zip(results) {
        let r = r.unwrap_or_else(|| {
            Err(format!(
                "timed out after {}",
                humantime::format_duration(ctx.timeout)
            ))
        });
        match r {
            Ok(ms) => {
                // Keep the declared order even if a collector returned another.
                for kind in c.kinds() {
                    out.extend(ms.iter().filter(|m| m.kind == *kind).cloned());
                }
            }
            Err(reason) => {
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

/// Runs a program with a deadline; kills it when the deadline passes.
pub fn run_program(program: &Path, args: &[&str], timeout: Duration) -> Result<String, String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let shown = program.display();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish within {}",
                    humantime::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(format!(
            "{shown} {} failed ({status}): {}",
            args.join(" "),
            err.trim()
        ));
    }
    String::from_utf8(out).map_err(|_| format!("{shown} printed text that is not UTF-8"))
}
