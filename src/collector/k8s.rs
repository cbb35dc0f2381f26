//! Kubernetes collector: `K8s` (server version, this node's details, the
//! container images in use, the GPU Operator ClusterPolicy) and
//! `NodeTopology` (this node's labels and taints, and a cluster summary).
//! Without a kubeconfig or in-cluster configuration both measurements say
//! so; a request that fails marks its subtype unavailable with the reason.
//! The client library's own log lines are not shown: what they report comes
//! back as those reasons.
//!
//! The requests run at once, all bounded by the collector's deadline. Pods
//! and nodes are listed page by page ([`list`]) and folded into the counts
//! as each page arrives, decoding only the fields read, so memory does not
//! grow with the size of the cluster; a listing that cannot be finished
//! marks its subtype unavailable rather than giving a partial count.

mod list;
mod proto;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::timeout_at;

use self::list::{Encoding, Limits, ListError, Listed, PageInfo};
use super::{ClusterConfig, Collector, Context};
use crate::measurement::{Measurement, MeasurementType, Reading, Subtype};

pub struct Kubernetes;

/// Pods per page: about 1 MiB of JSON for ordinary pods.
const POD_PAGE: u32 = 500;
/// Nodes per page: a node's status (its image list) is much larger than a
/// pod.
const NODE_PAGE: u32 = 100;

impl Collector for Kubernetes {
    fn name(&self) -> &'static str {
        "k8s"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::K8s, MeasurementType::NodeTopology]
    }

    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String> {
        let deadline = Instant::now() + ctx.timeout;
        let settings = match &ctx.cluster {
            ClusterConfig::None => return Err("no kubeconfig or in-cluster config".into()),
            ClusterConfig::Settings(s) => s,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        // The client library logs its own failures (`error: ... client
        // error (Connect)`); they come back as reasons here, so its log
        // lines are dropped at the source: this thread, which runs every
        // future of the single-threaded runtime, has no subscriber.
        let quiet = tracing::subscriber::NoSubscriber::default();
        let (measurements, warnings) = tracing::subscriber::with_default(quiet, || {
            rt.block_on(async {
                let (client, _server) = settings.client().await.map_err(|e| e.to_string())?;
                let deadline = tokio::time::Instant::from_std(deadline);
                collect(client, ctx.node_name.clone(), deadline, ctx.timeout).await
            })
        })?;
        for w in warnings {
            tracing::warn!("k8s: {w}");
        }
        Ok(measurements)
    }
}

/// The requests run at once on the single-threaded runtime: the version,
/// this node, the pods, the nodes and the ClusterPolicy. A version request
/// that fails makes the whole collector unavailable (the server is not
/// there); any other failure marks its own subtypes.
async fn collect(
    client: kube::Client,
    node_name: Option<String>,
    deadline: tokio::time::Instant,
    budget: Duration,
) -> Result<(Vec<Measurement>, Vec<String>), String> {
    let timed_out = move |what: &str| {
        format!(
            "timed out after {} waiting for {what}",
            humantime::format_duration(budget)
        )
    };
    let pods = Limits::new(POD_PAGE, deadline, budget);
    let nodes = Limits::new(NODE_PAGE, deadline, budget);
    let version = tokio::spawn(timeout_at(deadline, server(client.clone())));
    let this_node = tokio::spawn(timeout_at(deadline, node(client.clone(), node_name)));
    let images = tokio::spawn(images(client.clone(), pods));
    let summary = tokio::spawn(summary(client.clone(), nodes));
    let policy = tokio::spawn(timeout_at(deadline, policy(client)));

    let server = joined(version, "version")
        .await?
        .unwrap_or_else(|_| Err(timed_out("the API server's version")))?;
    let (node_sub, label, taint) = joined(this_node, "node").await?.unwrap_or_else(|_| {
        let reason = timed_out("this node");
        (
            Subtype::unavailable("node", reason.clone()),
            Subtype::unavailable("label", reason.clone()),
            Subtype::unavailable("taint", reason),
        )
    });
    let mut warnings = Vec::new();
    let mut listed = |r: Result<Listed<Subtype>, ListError>, name: &str| match r {
        Ok(l) => {
            warnings.extend(l.warning);
            l.state
        }
        Err(e) => {
            // A count the snapshot lacks is said on stderr too.
            warnings.push(format!("{name}: unavailable: {e}"));
            Subtype::unavailable(name, e.to_string())
        }
    };
    let image = listed(joined(images, "pods").await?, "image");
    let summary = listed(joined(summary, "nodes").await?, "summary");
    let policy = joined(policy, "ClusterPolicy")
        .await?
        .unwrap_or_else(|_| Err(timed_out("the ClusterPolicy")))
        .unwrap_or_else(|e| Subtype::unavailable("policy", e));
    let k8s = vec![server, node_sub, image, policy];
    let topology = vec![summary, label, taint];
    Ok((
        vec![
            Measurement::new(MeasurementType::K8s, k8s),
            Measurement::new(MeasurementType::NodeTopology, topology),
        ],
        warnings,
    ))
}

/// The result of a spawned request; a task that stopped (a defect) is
/// reported as such.
async fn joined<T>(task: tokio::task::JoinHandle<T>, what: &str) -> Result<T, String> {
    task.await
        .map_err(|e| format!("the {what} request stopped without a result (a defect): {e}"))
}

/// The server's version (`K8s.server`).
async fn server(client: kube::Client) -> Result<Subtype, String> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| crate::k8s::reason(&e))?;
    let mut server = BTreeMap::new();
    server.insert(
        "version".to_string(),
        Reading::from(info.git_version.as_str()),
    );
    server.insert("major".to_string(), Reading::from(info.major.as_str()));
    server.insert("minor".to_string(), Reading::from(info.minor.as_str()));
    server.insert(
        "platform".to_string(),
        Reading::from(info.platform.as_str()),
    );
    Ok(Subtype::new("server", server))
}

/// This node's details (`K8s.node`), labels and taints.
async fn node(client: kube::Client, name: Option<String>) -> (Subtype, Subtype, Subtype) {
    let unavailable = |reason: String| {
        (
            Subtype::unavailable("node", reason.clone()),
            Subtype::unavailable("label", reason.clone()),
            Subtype::unavailable("taint", reason),
        )
    };
    let Some(name) = name else {
        return unavailable("the node name is unknown: set NODE_NAME".into());
    };
    let node = match Api::<Node>::all(client).get_opt(&name).await {
        Ok(Some(n)) => n,
        Ok(None) => return unavailable(format!("node {name:?} is not in the cluster")),
        Err(e) => return unavailable(crate::k8s::reason(&e)),
    };
    let mut data = BTreeMap::new();
    data.insert("name".to_string(), Reading::from(name.as_str()));
    if let Some(spec) = &node.spec {
        if let Some(p) = &spec.provider_id {
            data.insert("provider-id".into(), Reading::from(p.as_str()));
        }
        data.insert(
            "unschedulable".into(),
            Reading::Bool(spec.unschedulable.unwrap_or(false)),
        );
    }
    if let Some(status) = &node.status {
        if let Some(i) = &status.node_info {
            for (k, v) in [
                ("kubelet-version", &i.kubelet_version),
                ("container-runtime", &i.container_runtime_version),
                ("os-image", &i.os_image),
                ("kernel-version", &i.kernel_version),
                ("architecture", &i.architecture),
            ] {
                data.insert(k.into(), Reading::from(v.as_str()));
            }
        }
        for (k, q) in status
            .capacity
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("nvidia.com/"))
        {
            data.insert(format!("capacity.{k}"), Reading::from(q.0.as_str()));
        }
    }
    let labels: BTreeMap<String, Reading> = node
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Reading::from(v.as_str())))
        .collect();
    let taints: BTreeMap<String, Reading> = node
        .spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .map(|t| {
            (
                t.key.clone(),
                Reading::from(format!("{}:{}", t.value.as_deref().unwrap_or(""), t.effect)),
            )
        })
        .collect();
    (
        Subtype::new("node", data),
        Subtype::new("label", labels),
        Subtype::new("taint", taints),
    )
}

/// Container images in use across the cluster, with how many containers
/// (init containers too) run each (`K8s.image`), from the pods listed page
/// by page.
async fn images(client: kube::Client, limits: Limits) -> Result<Listed<Subtype>, ListError> {
    let listed = list::fold(
        &client,
        "pods",
        "/api/v1/pods",
        limits,
        BTreeMap::<String, i64>::new,
        |counts, encoding, page| {
            let mut count = |image: &str| match counts.get_mut(image) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(image.to_string(), 1);
                }
            };
            match encoding {
                Encoding::Protobuf => {
                    proto::decode_list(page, "PodList", |pod| proto::pod_images(pod, &mut count))
                        .map(PageInfo::from)
                        .map_err(|e| e.to_string())
                }
                Encoding::Json => list::decode_page(page, |pod: PodLite| {
                    let Some(spec) = pod.spec else { return };
                    for c in spec
                        .containers
                        .into_iter()
                        .flatten()
                        .chain(spec.init_containers.into_iter().flatten())
                    {
                        if let Some(image) = c.image {
                            count(&image);
                        }
                    }
                })
                .map_err(|e| e.to_string()),
            }
        },
    )
    .await?;
    Ok(Listed {
        state: Subtype::new(
            "image",
            listed
                .state
                .into_iter()
                .map(|(k, v)| (k, Reading::Int(v)))
                .collect(),
        ),
        warning: listed.warning,
    })
}

/// The fields of a pod the image counts read; the rest is skipped.
#[derive(Deserialize)]
struct PodLite<'a> {
    #[serde(borrow, default)]
    spec: Option<PodSpecLite<'a>>,
}

#[derive(Deserialize)]
struct PodSpecLite<'a> {
    #[serde(borrow, default)]
    containers: Option<Vec<ContainerLite<'a>>>,
    #[serde(borrow, default, rename = "initContainers")]
    init_containers: Option<Vec<ContainerLite<'a>>>,
}

#[derive(Deserialize)]
struct ContainerLite<'a> {
    #[serde(borrow, default)]
    image: Option<Cow<'a, str>>,
}

/// The GPU Operator's ClusterPolicy, its spec flattened to dotted keys
/// (`K8s.policy`).
async fn policy(client: kube::Client) -> Result<Subtype, String> {
    let gvk = GroupVersionKind::gvk("nvidia.com", "v1", "ClusterPolicy");
    let api: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(&gvk, "clusterpolicies"),
    );
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) if crate::k8s::is_not_found(&e) => {
            return Err("no ClusterPolicy resource type: the GPU Operator is not installed".into())
        }
        Err(e) => return Err(crate::k8s::reason(&e)),
    };
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let Some(cp) = items.first() else {
        return Err("no ClusterPolicy in the cluster".into());
    };
    let mut data = BTreeMap::new();
    data.insert(
        "name".to_string(),
        Reading::from(cp.metadata.name.clone().unwrap_or_default()),
    );
    if let Some(spec) = cp.data.get("spec") {
        policy_spec(spec, &mut data);
    }
    if let Some(state) = cp
        .data
        .get("status")
        .and_then(|s| s.get("state"))
        .and_then(Value::as_str)
    {
        data.insert("status.state".into(), Reading::from(state));
    }
    Ok(Subtype::new("policy", data))
}

/// The ClusterPolicy spec as dotted readings. Lists (environment
/// variables, tolerations) become one JSON reading each, so secrets in them
/// are redacted in the document first, where names and values still sit
/// together.
fn policy_spec(spec: &Value, out: &mut BTreeMap<String, Reading>) {
    let mut spec = spec.clone();
    super::redact::json(&mut spec);
    flatten("", &spec, out);
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Reading>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        Value::Bool(b) => {
            out.insert(prefix.to_string(), Reading::Bool(*b));
        }
        Value::Number(n) => {
            let r = n
                .as_i64()
                .map(Reading::Int)
                .unwrap_or_else(|| Reading::Float(n.as_f64().unwrap_or(0.0)));
            out.insert(prefix.to_string(), r);
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), Reading::from(s.as_str()));
        }
        Value::Array(_) => {
            out.insert(prefix.to_string(), Reading::from(v.to_string()));
        }
        Value::Null => {}
    }
}

/// How many nodes the cluster has, and how many offer NVIDIA GPUs
/// (`NodeTopology.summary`), from the nodes listed page by page.
async fn summary(client: kube::Client, limits: Limits) -> Result<Listed<Subtype>, ListError> {
    let listed = list::fold(
        &client,
        "nodes",
        "/api/v1/nodes",
        limits,
        || (0i64, 0i64),
        |(nodes, gpu_nodes), encoding, page| {
            let mut count = |gpus: Option<&str>| {
                *nodes += 1;
                if gpus.is_some_and(|q| q != "0") {
                    *gpu_nodes += 1;
                }
            };
            match encoding {
                Encoding::Protobuf => proto::decode_list(page, "NodeList", |node| {
                    count(proto::node_capacity(node, "nvidia.com/gpu")?);
                    Ok(())
                })
                .map(PageInfo::from)
                .map_err(|e| e.to_string()),
                Encoding::Json => list::decode_page(page, |node: NodeLite| {
                    let gpus = node.status.and_then(|s| s.capacity).and_then(|c| c.gpu);
                    count(gpus.as_deref());
                })
                .map_err(|e| e.to_string()),
            }
        },
    )
    .await?;
    let (nodes, gpu_nodes) = listed.state;
    let mut data = BTreeMap::new();
    data.insert("nodes".to_string(), Reading::Int(nodes));
    data.insert("gpu-nodes".to_string(), Reading::Int(gpu_nodes));
    Ok(Listed {
        state: Subtype::new("summary", data),
        warning: listed.warning,
    })
}

/// The field of a node the summary reads: its GPU capacity.
#[derive(Deserialize)]
struct NodeLite<'a> {
    #[serde(borrow, default)]
    status: Option<NodeStatusLite<'a>>,
}

#[derive(Deserialize)]
struct NodeStatusLite<'a> {
    #[serde(borrow, default)]
    capacity: Option<CapacityLite<'a>>,
}

#[derive(Deserialize)]
struct CapacityLite<'a> {
    #[serde(borrow, default, rename = "nvidia.com/gpu")]
    gpu: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::redact;

    /// A ClusterPolicy whose driver has secret environment variables: the
    /// reading holds the list with only the secrets redacted, and the
    /// subtype says which reading was changed.
    #[test]
    fn policy_env_secrets_are_redacted() {
        let spec = serde_json::json!({
            "driver": {
                "version": "580.105.08",
                "env": [{"name": "NGC_API_KEY", "value": "hunter2"}, {"name": "X", "value": "1"}]
            },
            "daemonsets": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
        });
        let mut data = BTreeMap::new();
        policy_spec(&spec, &mut data);
        let sub = redact::subtype(Subtype::new("policy", data));
        assert_eq!(
            sub.data["driver.env"],
            Reading::from(
                r#"[{"name":"NGC_API_KEY","value":"[REDACTED]"},{"name":"X","value":"1"}]"#
            )
        );
        assert_eq!(
            sub.data["daemonsets.tolerations"],
            Reading::from(r#"[{"key":"nvidia.com/gpu","operator":"Exists"}]"#)
        );
        assert_eq!(sub.data["driver.version"], Reading::from("580.105.08"));
        assert_eq!(sub.context["redacted"], "driver.env");
    }
}
