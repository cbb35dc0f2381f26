//! A fleet run of the snapshot agent (`snapshot --agent --all-nodes`): the
//! nodes matching the node selector listed, the shared objects (the
//! ServiceAccount and the RBAC objects) created once, then one ConfigMap
//! and one Job per node, pinned to it by name, at most `parallel` Jobs at a
//! time; each node's snapshot read back and its Job deleted as soon as it
//! ends, whatever the outcome. Every object is registered for cleanup
//! before its request; what is left at the end (the shared objects, and on
//! an interruption everything) is deleted, as the single-node run does.
//! This module owns the per-node object names ([`object_name`]) and the
//! per-node outcomes; it never prints.

use std::cell::RefCell;

use futures_util::StreamExt;
use kube::api::{GetParams, ListParams};
use serde_json::Value;

use super::run::{permissions, Conn, Error, Permission};
use super::{ObjectRef, Spec};
use crate::k8s::access::{ClusterSettings, RequestError};
use crate::k8s::configmap::{self, DocKind, Target};

/// The most nodes one run takes (the Role lists every ConfigMap by name).
pub const MAX_NODES: usize = 5000;
/// The most Jobs at a time `--parallel` accepts.
pub const MAX_PARALLEL: usize = 256;
/// The longest object name (a Job's name is also a label value).
const MAX_NAME: usize = 63;
/// Nodes listed per request.
const PAGE: u32 = 500;

/// What became of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeResult {
    /// The snapshot document as the pod wrote it.
    Ok(Vec<u8>),
    Failed(String),
    TimedOut(String),
}

/// One node of the run and the name of its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub node: String,
    pub name: String,
}

impl NodePlan {
    /// Where its snapshot is written.
    pub fn configmap_uri(&self, spec: &Spec) -> String {
        format!("{}{}/{}", configmap::SCHEME, spec.namespace, self.name)
    }
}

/// The name of `node`'s ConfigMap and Job: `PREFIX-snapshot-ID-NODE`, the
/// node's name made a DNS-1123 label (`.` and anything else to `-`); when
/// that changed it or it had to be shortened to fit 63 characters, an FNV
/// hash of the real name is appended, so two nodes never share a name.
pub fn object_name(spec: &Spec, node: &str) -> String {
    let base = spec.name();
    let room = MAX_NAME.saturating_sub(base.len() + 1);
    let clean: String = node
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let part = if clean == node && clean.len() <= room {
        clean.to_string()
    } else {
        let keep = room.saturating_sub(9);
        let head: String = clean.chars().take(keep).collect();
        let head = head.trim_end_matches('-');
        if head.is_empty() {
            format!("{:08x}", fnv1a(node))
        } else {
            format!("{head}-{:08x}", fnv1a(node))
        }
    };
    format!("{base}-{part}")
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The plan of each node, sorted by node; refused (as a bug, class
/// internal) should two names still collide.
pub fn plan(spec: &Spec, mut nodes: Vec<String>) -> Result<Vec<NodePlan>, Error> {
    nodes.sort();
    nodes.dedup();
    let plans: Vec<NodePlan> = nodes
        .into_iter()
        .map(|node| NodePlan {
            name: object_name(spec, &node),
            node,
        })
        .collect();
    let mut names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Runtime(format!(
            "two nodes map to the object name {}; give --node-selector to take them in separate runs",
            w[0]
        )));
    }
    Ok(plans)
}

/// The label selector of the nodes a run takes.
pub fn node_selector(spec: &Spec) -> String {
    spec.node_selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The names of the nodes matching the run's node selector (paged, at
/// most [`MAX_NODES`]).
pub fn list_nodes(spec: &Spec, cluster: &ClusterSettings) -> Result<Vec<String>, Error> {
    let rt = runtime()?;
    let conn = rt.block_on(Conn::open(cluster))?;
    rt.block_on(conn.list_nodes(spec))
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))
}

/// What a fleet run gives back: each node's outcome, in node order, and
/// the objects left (kept by `keep_results`, or not deletable).
#[derive(Debug)]
pub struct FleetOutcome {
    pub results: Vec<(NodePlan, NodeResult)>,
    pub kept: Vec<ObjectRef>,
}

/// Runs the fleet: see the module. With `keep_results` each node's
/// ConfigMap stays (it is the result); otherwise it is deleted once read.
/// `progress` hears each node's end.
pub fn run(
    spec: &Spec,
    plans: &[NodePlan],
    parallel: usize,
    cluster: &ClusterSettings,
    keep_results: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<FleetOutcome, Error> {
    let signals = crate::bundler::output::HeldSignals::hold();
    let rt = runtime()?;
    let conn = rt.block_on(Conn::open(cluster))?;
    let mut perms = permissions(spec);
    perms.push(Permission {
        verb: "list",
        resource: "nodes",
        group: "",
        namespace: None,
        why: "to find the nodes",
    });
    rt.block_on(conn.check_all(&perms))?;
    let created = RefCell::new(Vec::new());
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let progress = RefCell::new(progress);
    let result = rt.block_on(async {
        for m in spec.shared_manifests(&names) {
            conn.register_and_create(spec, &m, &created).await?;
        }
        let done = RefCell::new(0usize);
        let results: Vec<(NodePlan, NodeResult)> = futures_util::stream::iter(plans)
            .map(|p| async {
                let r = conn.node(spec, p, &created, &signals, keep_results).await;
                *done.borrow_mut() += 1;
                let what = match &r {
                    NodeResult::Ok(_) => "ok",
                    NodeResult::Failed(_) => "failed",
                    NodeResult::TimedOut(_) => "timed out",
                };
                (progress.borrow_mut())(&format!(
                    "node {} {what} ({}/{})",
                    p.node,
                    done.borrow(),
                    plans.len()
                ));
                (p.clone(), r)
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        Ok::<_, Error>(results)
    });
    (progress.borrow_mut())("cleaning up");
    let mut left = created.into_inner();
    if keep_results && !signals.pending() {
        // The ConfigMaps of the nodes that succeeded are the results.
        let ok: Vec<&str> = match &result {
            Ok(rs) => rs
                .iter()
                .filter(|(_, r)| matches!(r, NodeResult::Ok(_)))
                .map(|(p, _)| p.name.as_str())
                .collect(),
            Err(_) => Vec::new(),
        };
        left.retain(|o| !(o.kind == "ConfigMap" && ok.contains(&o.name.as_str())));
    }
    let kept = rt.block_on(conn.delete_all(&left));
    if signals.pending() {
        for k in &kept {
            tracing::warn!("left {k}");
        }
        drop(signals);
        return Err(Error::Interrupted);
    }
    let mut results = result?;
    results.sort_by(|a, b| a.0.node.cmp(&b.0.node));
    Ok(FleetOutcome { results, kept })
}

impl Conn {
    async fn list_nodes(&self, spec: &Spec) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default()
                .labels(&node_selector(spec))
                .limit(PAGE);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let http = kube::core::Request::new("/api/v1/nodes").list(&lp);
            let page = self.call(http, "list", "nodes", None, None).await?;
            for n in page
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = n.pointer("/metadata/name").and_then(Value::as_str) {
                    out.push(name.to_string());
                }
            }
            if out.len() > MAX_NODES {
                return Err(Error::Request(RequestError {
                    class: crate::error::Class::InvalidInput,
                    code: None,
                    message: format!(
                        "more than {MAX_NODES} nodes match {}: narrow it with --node-selector",
                        node_selector(spec)
                    ),
                }));
            }
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Creates one object, registered for cleanup before the request.
    async fn register_and_create(
        &self,
        spec: &Spec,
        m: &Value,
        created: &RefCell<Vec<ObjectRef>>,
    ) -> Result<(), Error> {
        let Some(obj) = super::object_ref(m) else {
            return Ok(());
        };
        created.borrow_mut().push(obj.clone());
        Ok(self.create(spec, &obj, m).await?)
    }

    /// One node: its ConfigMap and Job created, the Job waited for, the
    /// snapshot read, the Job deleted (and the ConfigMap, unless it is the
    /// result).
    async fn node(
        &self,
        spec: &Spec,
        p: &NodePlan,
        created: &RefCell<Vec<ObjectRef>>,
        signals: &crate::bundler::output::HeldSignals,
        keep_results: bool,
    ) -> NodeResult {
        if signals.pending() {
            return NodeResult::Failed("interrupted before it started".into());
        }
        let mut result = self.node_run(spec, p, created, signals).await;
        let mut gone = Vec::new();
        let mine: Vec<ObjectRef> = created
            .borrow()
            .iter()
            .filter(|o| o.name == p.name)
            .cloned()
            .collect();
        for obj in mine {
            let keep =
                obj.kind == "ConfigMap" && keep_results && matches!(result, NodeResult::Ok(_));
            if keep {
                continue;
            }
            match self.delete(&obj).await {
                Ok(()) => gone.push(obj),
                Err(e) => {
                    tracing::warn!("could not delete {obj}: {e}");
                    if let NodeResult::Ok(_) = result {
                        // A Job that may still run is no clean success.
                        if obj.kind == "Job" {
                            result = NodeResult::Failed(format!("could not delete its Job: {e}"));
                        }
                    }
                }
            }
        }
        created.borrow_mut().retain(|o| !gone.contains(o));
        result
    }

    async fn node_run(
        &self,
        spec: &Spec,
        p: &NodePlan,
        created: &RefCell<Vec<ObjectRef>>,
        signals: &crate::bundler::output::HeldSignals,
    ) -> NodeResult {
        for m in spec.node_manifests(&p.node, &p.name) {
            if let Err(e) = self.register_and_create(spec, &m, created).await {
                return NodeResult::Failed(e.to_string());
            }
        }
        let pods = format!("job-name={}", p.name);
        match self
            .wait(spec, &p.name, &pods, signals, &mut |m| {
                tracing::debug!("node {}: {m}", p.node)
            })
            .await
        {
            Ok(()) => {}
            Err(e @ Error::Timeout { .. }) => return NodeResult::TimedOut(e.to_string()),
            Err(e) => return NodeResult::Failed(e.to_string()),
        }
        let path = format!("/api/v1/namespaces/{}/configmaps", spec.namespace);
        let http = kube::core::Request::new(&path).get(&p.name, &GetParams::default());
        let obj = match self
            .call(
                http,
                "get",
                "configmaps",
                Some(&p.name),
                Some(&spec.namespace),
            )
            .await
        {
            Ok(o) => o,
            Err(e) => return NodeResult::Failed(e.to_string()),
        };
        let target = Target {
            namespace: spec.namespace.clone(),
            name: p.name.clone(),
        };
        match configmap::document_of(&obj, &target, Some(DocKind::Snapshot)) {
            Ok(bytes) => NodeResult::Ok(bytes),
            Err(e) => NodeResult::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let mut s = super::super::tests::spec();
        s.run_id = "0123abcd".into();
        s
    }

    #[test]
    fn names_are_labels_and_never_collide() {
        let s = spec();
        assert_eq!(object_name(&s, "gpu-1"), "aicr-snapshot-0123abcd-gpu-1");
        let dotted = object_name(&s, "ip-10-0-0-1.ec2.internal");
        assert!(
            dotted.starts_with("aicr-snapshot-0123abcd-ip-10-0-0-1-ec2-internal-"),
            "{dotted}"
        );
        assert_ne!(dotted, object_name(&s, "ip-10-0-0-1-ec2-internal"));
        let long = "n".repeat(200);
        let a = object_name(&s, &long);
        let b = object_name(&s, &format!("{long}x"));
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        for n in [a, b, dotted] {
            assert!(super::super::is_dns_label(&n), "{n}");
        }
        let plans = plan(&s, vec!["b".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(
            plans.iter().map(|p| p.node.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn node_objects_are_pinned_and_shared_ones_grant_every_configmap() {
        let s = spec();
        let names = vec!["x-1".to_string(), "x-2".to_string()];
        let shared = s.shared_manifests(&names);
        let kinds: Vec<&str> = shared.iter().map(|m| m["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding"
            ]
        );
        assert_eq!(
            shared[1]["rules"][0]["resourceNames"],
            serde_json::json!(names)
        );
        let node = s.node_manifests("gpu-7", "x-1");
        assert_eq!(node[0]["kind"], "ConfigMap");
        assert_eq!(node[1]["metadata"]["name"], "x-1");
        let pod = &node[1]["spec"]["template"]["spec"];
        assert_eq!(
            pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0],
            "gpu-7"
        );
        assert_eq!(pod["containers"][0]["args"][2], "cm://gpu-team/x-1");
    }
}
