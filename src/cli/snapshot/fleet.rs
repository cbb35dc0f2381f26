//! `aicr snapshot --agent --all-nodes`: resolves the fleet flags
//! (`--parallel`, `-o DIR/`), has [`crate::k8s::agent::fleet`] run one Job
//! per matching node, writes each node's snapshot to `DIR/<node>.yaml` (or
//! leaves it in its ConfigMap without `-o`), and prints the per-node
//! summary table on stderr. Any node that failed or timed out makes the
//! command fail with exit 6 (unavailable, as a failed single-node agent
//! Job does) after the others' snapshots are written.

use std::path::PathBuf;

use super::{agent_snapshot, has_gpu_data, render_snapshot, AgentSettings, Progress, SnapshotArgs};
use crate::cli::ExitStatus;
use crate::error::{Class, Classify, Result, UsageError};
use crate::k8s::agent::{self, fleet::NodeResult};
use crate::serializer::{self, Format};

/// Jobs at a time when `--parallel` is not given.
pub const DEFAULT_PARALLEL: usize = 10;

/// The nodes shown in the error line (the table lists all).
const NAMED_IN_ERROR: usize = 20;

/// `--all-nodes`, resolved.
#[derive(Debug)]
pub(super) struct FleetSettings {
    parallel: usize,
    /// `-o DIR/`: where the snapshots go; `None` leaves them in the
    /// ConfigMaps.
    dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
enum FleetError {
    #[error("no node matches the node selector {selector} (--node-selector): nothing to snapshot")]
    NoNodes { selector: String },
    #[error("{failed} of {total} nodes gave no snapshot: {names} (see the table above)")]
    Failed {
        failed: usize,
        total: usize,
        names: String,
    },
}

impl Classify for FleetError {
    fn class(&self) -> Class {
        match self {
            FleetError::NoNodes { .. } => Class::NotFound,
            FleetError::Failed { .. } => Class::Unavailable,
        }
    }
}

impl FleetSettings {
    /// `None` without `--all-nodes` (refusing `--parallel` then).
    pub(super) fn resolve(args: &SnapshotArgs) -> Result<Option<FleetSettings>> {
        let a = &args.agent;
        if !a.all_nodes {
            if a.parallel.is_some() {
                return Err(UsageError(
                    "--parallel goes with --all-nodes: add it to snapshot every matching node"
                        .into(),
                )
                .into());
            }
            return Ok(None);
        }
        if a.no_cleanup {
            return Err(UsageError(
                "--no-cleanup is for a single-node run: --all-nodes deletes each node's Job as it ends (to look at one, run --agent with --node-selector for that node)".into(),
            )
            .into());
        }
        let parallel = a.parallel.unwrap_or(DEFAULT_PARALLEL);
        if !(1..=agent::fleet::MAX_PARALLEL).contains(&parallel) {
            return Err(UsageError(format!(
                "invalid --parallel {parallel}: give 1 to {}",
                agent::fleet::MAX_PARALLEL
            ))
            .into());
        }
        if args.out.format == Some(Format::Table) {
            return Err(UsageError(
                "--all-nodes writes the snapshots as yaml or json, not a table".into(),
            )
            .into());
        }
        let dir = match args.out.output.as_deref() {
            None => None,
            Some(_) if a.dry_run => {
                return Err(UsageError(
                    "--all-nodes --dry-run prints the manifests to standard output: leave out -o"
                        .into(),
                )
                .into())
            }
            Some(o) if o == "-" || o.starts_with(crate::k8s::configmap::SCHEME) => {
                return Err(UsageError(format!(
                    "-o {o}: with --all-nodes, -o names a directory (such as snapshots/), which gets one file per node; without -o each snapshot stays in its ConfigMap"
                ))
                .into())
            }
            Some(o) => {
                let p = PathBuf::from(o);
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_dir() => Some(p),
                    Ok(_) => {
                        return Err(UsageError(format!(
                            "-o {o}: not a directory; with --all-nodes, -o names a directory, which gets one file per node"
                        ))
                        .into())
                    }
                    Err(_) if o.ends_with('/') => Some(p),
                    Err(_) => {
                        return Err(UsageError(format!(
                            "-o {o}: with --all-nodes, -o names a directory: end it with / to have it created"
                        ))
                        .into())
                    }
                }
            }
        };
        Ok(Some(FleetSettings { parallel, dir }))
    }
}

/// Lists the nodes, then prints the manifests (`--dry-run`) or runs the
/// fleet, writes the snapshots and prints the summary.
pub(super) fn run(s: &AgentSettings, f: &FleetSettings) -> Result<ExitStatus> {
    let nodes = agent::fleet::list_nodes(&s.spec, &s.cluster)?;
    if nodes.is_empty() {
        return Err(FleetError::NoNodes {
            selector: agent::fleet::node_selector(&s.spec),
        }
        .into());
    }
    let plans = agent::fleet::plan(&s.spec, nodes)?;
    if s.dry_run {
        return dry_run(s, &plans);
    }
    if let Some(dir) = &f.dir {
        std::fs::create_dir_all(dir).map_err(|io| serializer::Error::Write {
            path: dir.display().to_string(),
            io,
        })?;
    }
    if s.spec.privileged {
        tracing::warn!(
            "--privileged: the agent pods run privileged, in the host's PID namespace, with the node's / mounted read-only at {}",
            agent::HOST_ROOT
        );
    }
    tracing::info!(
        "snapshotting {} nodes, {} at a time",
        plans.len(),
        f.parallel
    );
    let mut progress = Progress::new();
    let outcome = agent::fleet::run(
        &s.spec,
        &plans,
        f.parallel,
        &s.cluster,
        f.dir.is_none(),
        &mut |m| progress.show(m),
    );
    progress.finish();
    let outcome = outcome?;
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut no_gpu = Vec::new();
    for (p, r) in &outcome.results {
        let (state, detail) = match r {
            NodeResult::Ok(bytes) => match write_node(s, f, p, bytes) {
                Ok((detail, gpu)) => {
                    if !gpu {
                        no_gpu.push(p.node.as_str());
                    }
                    ("ok", detail)
                }
                Err(e) => ("failed", e.to_string()),
            },
            NodeResult::Failed(why) => ("failed", why.clone()),
            NodeResult::TimedOut(why) => ("timed out", why.clone()),
        };
        rows.push([p.node.clone(), state.to_string(), one_line(&detail)]);
    }
    eprint!("{}", table(&rows));
    if !no_gpu.is_empty() {
        tracing::warn!(
            "{} snapshots hold no GPU data (the pod could not reach a GPU: see --require-gpu, --runtime-class, --privileged): {}",
            no_gpu.len(),
            no_gpu.join(", ")
        );
    }
    if !outcome.kept.is_empty() {
        for k in &outcome.kept {
            tracing::warn!("could not delete {k}");
        }
        tracing::warn!("find what is left with the label {}", s.spec.selector());
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r[1] != "ok")
        .map(|r| r[0].as_str())
        .collect();
    if failed.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let mut names = failed
        .iter()
        .take(NAMED_IN_ERROR)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if failed.len() > NAMED_IN_ERROR {
        names.push_str(&format!(" and {} more", failed.len() - NAMED_IN_ERROR));
    }
    Err(FleetError::Failed {
        failed: failed.len(),
        total: rows.len(),
        names,
    }
    .into())
}

/// The shared objects and the first node's, on stdout; the nodes on stderr.
fn dry_run(s: &AgentSettings, plans: &[agent::fleet::NodePlan]) -> Result<ExitStatus> {
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let mut manifests = s.spec.shared_manifests(&names);
    if let Some(first) = plans.first() {
        manifests.extend(s.spec.node_manifests(&first.node, &first.name));
    }
    eprintln!(
        "{} nodes match {} (the manifests are those of the first; each node gets its own ConfigMap and Job):",
        plans.len(),
        agent::fleet::node_selector(&s.spec)
    );
    for p in plans {
        eprintln!("  {}", p.node);
    }
    let text = match s.format {
        Format::Json => serializer::render(
            &serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": manifests }),
            Format::Json,
        ),
        _ => manifests
            .iter()
            .map(|m| format!("---\n{}", serializer::render(m, Format::Yaml)))
            .collect(),
    };
    crate::cli::emit_verdict(&s.output, &text, ExitStatus::Success)
}

/// Checks the node's snapshot and writes it to `DIR/<node>.<ext>`
/// (atomically), or leaves it in its ConfigMap; what the table says, and
/// whether it holds GPU data.
fn write_node(
    s: &AgentSettings,
    f: &FleetSettings,
    p: &agent::fleet::NodePlan,
    bytes: &[u8],
) -> Result<(String, bool)> {
    let uri = p.configmap_uri(&s.spec);
    let snapshot = agent_snapshot(bytes, &uri, &s.not_collected)?;
    let gpu = has_gpu_data(&snapshot);
    let Some(dir) = &f.dir else {
        return Ok((uri, gpu));
    };
    // A node's name is a DNS subdomain (no `/`, never `.` or `..`); one
    // that is not falls back to its object name.
    let stem = if !p.node.is_empty()
        && p.node.len() <= 253
        && p.node.split('.').all(agent::is_dns_label)
    {
        p.node.as_str()
    } else {
        p.name.as_str()
    };
    let ext = if s.format == Format::Json {
        "json"
    } else {
        "yaml"
    };
    let path = dir.join(format!("{stem}.{ext}"));
    let text = render_snapshot(&snapshot, s.format)?;
    serializer::write_file(&path, text.as_bytes())?;
    Ok((path.display().to_string(), gpu))
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The summary: NODE, RESULT, DETAIL, aligned.
fn table(rows: &[[String; 3]]) -> String {
    let head = ["NODE", "RESULT", "DETAIL"].map(String::from);
    let w0 = rows
        .iter()
        .chain([&head])
        .map(|r| r[0].len())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .chain([&head])
        .map(|r| r[1].len())
        .max()
        .unwrap_or(0);
    std::iter::once(&head)
        .chain(rows)
        .map(|r| format!("{:w0$}  {:w1$}  {}\n", r[0], r[1], r[2]).replace(" \n", "\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns() {
        let rows = [
            [
                "gpu-1".to_string(),
                "ok".to_string(),
                "a/gpu-1.yaml".to_string(),
            ],
            ["g2".to_string(), "timed out".to_string(), "why".to_string()],
        ];
        assert_eq!(
            super::table(&rows),
            "NODE   RESULT     DETAIL\ngpu-1  ok         a/gpu-1.yaml\ng2     timed out  why\n"
        );
    }
}
