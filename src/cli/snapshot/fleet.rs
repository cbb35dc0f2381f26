//! `aicr snapshot --agent --all-nodes`: resolves the fleet flags
//! (`--parallel`, `-o DIR/`, `-t`), has [`crate::k8s::agent::fleet`] run
//! one Job per matching node, writes each node's snapshot to
//! `DIR/<node>.yaml` (`.json` with `-t json`; or leaves it in its ConfigMap
//! without `-o`), and prints the per-node summary on stdout (node, status
//! `ok`/`failed`/`timed-out`, the reason, where the snapshot went; in node
//! order, no timestamps): a table (`-t table`, the default when stdout is
//! a terminal) or a YAML or JSON document (`-t yaml`, the default
//! otherwise; `-t json`). Any node that failed or timed out makes the
//! command fail with exit 6 (unavailable, as a failed single-node agent
//! Job does) after the others' snapshots and the summary are written.

use std::path::PathBuf;

use serde::Serialize;

use super::{
    agent_snapshot, has_gpu_data, render_manifests, render_snapshot, AgentSettings, Progress,
    SnapshotArgs,
};
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
    /// The format of the summary on stdout.
    summary: Format,
    /// The format of the snapshot files (`-t json`, else YAML).
    files: Format,
}

#[derive(Debug, thiserror::Error)]
enum FleetError {
    #[error("no node matches the node selector {selector} (--node-selector): nothing to snapshot")]
    NoNodes { selector: String },
    #[error("{failed} of {total} nodes gave no snapshot: {names} (see the summary)")]
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
        // -t is the summary's format, and the files' unless a table.
        let summary = args.out.format.unwrap_or_else(|| {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Yaml
            }
        });
        let files = match args.out.format {
            Some(Format::Json) => Format::Json,
            _ => Format::Yaml,
        };
        Ok(Some(FleetSettings {
            parallel,
            dir,
            summary,
            files,
        }))
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
    let mut nodes: Vec<NodeSummary> = Vec::new();
    let mut no_gpu = Vec::new();
    for (p, r) in &outcome.results {
        let (status, detail) = match r {
            NodeResult::Ok(bytes) => match write_node(s, f, p, bytes) {
                Ok((detail, gpu)) => {
                    if !gpu {
                        no_gpu.push(p.node.as_str());
                    }
                    (Status::Ok, detail)
                }
                Err(e) => (Status::Failed, e.to_string()),
            },
            NodeResult::Failed(why) => (Status::Failed, why.clone()),
            NodeResult::TimedOut(why) => (Status::TimedOut, why.clone()),
        };
        let detail = one_line(&detail);
        let (snapshot, reason) = match status {
            Status::Ok => (Some(detail), None),
            _ => (None, Some(detail)),
        };
        nodes.push(NodeSummary {
            node: p.node.clone(),
            status,
            reason,
            snapshot,
        });
    }
    let summary = Summary::new(nodes);
    crate::cli::emit_verdict(
        &crate::serializer::Output::Stdout,
        &summary.render(f.summary),
        ExitStatus::Success,
    )?;
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
    let failed: Vec<&str> = summary
        .nodes
        .iter()
        .filter(|n| n.status != Status::Ok)
        .map(|n| n.node.as_str())
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
        total: summary.nodes.len(),
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
    let text = render_manifests(&manifests, s.format);
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
    let ext = if f.files == Format::Json {
        "json"
    } else {
        "yaml"
    };
    let path = dir.join(format!("{stem}.{ext}"));
    let text = render_snapshot(&snapshot, f.files)?;
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

/// What became of one node, as the summary says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    Ok,
    Failed,
    TimedOut,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::TimedOut => "timed-out",
        }
    }
}

/// One node's line of the summary.
#[derive(Debug, Serialize)]
struct NodeSummary {
    node: String,
    status: Status,
    /// Why it gave no snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Where its snapshot went: the file, or the ConfigMap.
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<String>,
}

/// The per-node summary of a fleet run, in node order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    total: usize,
    ok: usize,
    failed: usize,
    timed_out: usize,
    nodes: Vec<NodeSummary>,
}

impl Summary {
    fn new(nodes: Vec<NodeSummary>) -> Summary {
        let count = |s: Status| nodes.iter().filter(|n| n.status == s).count();
        Summary {
            total: nodes.len(),
            ok: count(Status::Ok),
            failed: count(Status::Failed),
            timed_out: count(Status::TimedOut),
            nodes,
        }
    }

    /// The table, or the document in YAML or JSON.
    fn render(&self, format: Format) -> String {
        match format {
            Format::Table => {
                let rows: Vec<[String; 3]> = self
                    .nodes
                    .iter()
                    .map(|n| {
                        let detail = n.snapshot.as_ref().or(n.reason.as_ref());
                        [
                            n.node.clone(),
                            n.status.word().to_string(),
                            detail.cloned().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&rows)
            }
            f => match serde_json::to_value(self) {
                Ok(v) => serializer::render(&v, f),
                // Strings and numbers only: cannot fail.
                Err(e) => format!("{e}\n"),
            },
        }
    }
}

/// The summary: NODE, STATUS, DETAIL, aligned.
fn table(rows: &[[String; 3]]) -> String {
    let head = ["NODE", "STATUS", "DETAIL"].map(String::from);
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
    use super::*;

    fn summary() -> Summary {
        Summary::new(vec![
            NodeSummary {
                node: "gpu-1".into(),
                status: Status::Ok,
                reason: None,
                snapshot: Some("a/gpu-1.yaml".into()),
            },
            NodeSummary {
                node: "g2".into(),
                status: Status::TimedOut,
                reason: Some("why".into()),
                snapshot: None,
            },
            NodeSummary {
                node: "g3".into(),
                status: Status::Failed,
                reason: Some("Evicted".into()),
                snapshot: None,
            },
        ])
    }

    #[test]
    fn table_aligns() {
        assert_eq!(
            summary().render(Format::Table),
            "NODE   STATUS     DETAIL\ngpu-1  ok         a/gpu-1.yaml\ng2     timed-out  why\ng3     failed     Evicted\n"
        );
    }

    #[test]
    fn summary_documents() {
        assert_eq!(
            summary().render(Format::Yaml),
            "total: 3\nok: 1\nfailed: 1\ntimedOut: 1\nnodes:\n  - node: gpu-1\n    status: ok\n    snapshot: a/gpu-1.yaml\n  - node: g2\n    status: timed-out\n    reason: why\n  - node: g3\n    status: failed\n    reason: Evicted\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&summary().render(Format::Json)).unwrap();
        assert_eq!(json["nodes"][1]["status"], "timed-out");
        assert_eq!(json["timedOut"], 1);
    }
}
