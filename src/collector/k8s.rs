//! Kubernetes collector: `K8s` (server version, this node's details, the
//! container images in use, the GPU Operator ClusterPolicy) and
//! `NodeTopology` (this node's labels and taints, and a cluster summary).
//! Without a kubeconfig or in-cluster configuration both measurements say
//! so; a request that fails marks its subtype unavailable with the reason.
//! The client library's own log lines are not shown: what they report comes
//! back as those reasons.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::{ClusterConfig, Collector, Context};
use crate::measurement::{Measurement, MeasurementType, Reading, Subtype};

pub struct Kubernetes;

/// Items per page when listing pods and nodes.
const PAGE: u32 = 500;

impl Collector for Kubernetes {
    fn name(&self) -> &'static str {
        "k8s"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::K8s, MeasurementType::NodeTopology]
    }

    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String> {
        let kubeconfig = match &ctx.cluster {
            ClusterConfig::None => return Err("no kubeconfig or in-cluster config".into()),
            ClusterConfig::Kubeconfig(p) => Some(p.as_path()),
            ClusterConfig::InCluster => None,
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
        tracing::subscriber::with_default(quiet, || {
            rt.block_on(async {
                let client = crate::k8s::client(kubeconfig, ctx.timeout).await?;
                collect(client, ctx.node_name.as_deref()).await
            })
        })
    }
}

async fn collect(
    client: kube::Client,
    node_name: Option<&str>,
) -> Result<Vec<Measurement>, String> {
    // The version call also tells whether the server is there at all.
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

    let (node_sub, label, taint) = node(&client, node_name).await;
    let k8s = vec![
        Subtype::new("server", server),
        node_sub,
        images(&client)
            .await
            .unwrap_or_else(|e| Subtype::unavailable("image", e)),
        policy(&client)
            .await
            .unwrap_or_else(|e| Subtype::unavailable("policy", e)),
    ];
    let topology = vec![
        summary(&client)
            .await
            .unwrap_or_else(|e| Subtype::unavailable("summary", e)),
        label,
        taint,
    ];
    Ok(vec![
        Measurement::new(MeasurementType::K8s, k8s),
        Measurement::new(MeasurementType::NodeTopology, topology),
    ])
}

/// This node's details (`K8s.node`), labels and taints.
async fn node(client: &kube::Client, name: Option<&str>) -> (Subtype, Subtype, Subtype) {
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
    let node = match Api::<Node>::all(client.clone()).get_opt(name).await {
        Ok(Some(n)) => n,
        Ok(None) => return unavailable(format!("node {name:?} is not in the cluster")),
        Err(e) => return unavailable(crate::k8s::reason(&e)),
    };
    let mut data = BTreeMap::new();
    data.insert("name".to_string(), Reading::from(name));
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
/// run each (`K8s.image`).
async fn images(client: &kube::Client) -> Result<Subtype, String> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for pod in list_all(&Api::<Pod>::all(client.clone())).await? {
        let Some(spec) = &pod.spec else { continue };
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            if let Some(image) = &c.image {
                *counts.entry(image.clone()).or_default() += 1;
            }
        }
    }
    Ok(Subtype::new(
        "image",
        counts
            .into_iter()
            .map(|(k, v)| (k, Reading::Int(v)))
            .collect(),
    ))
}

/// The GPU Operator's ClusterPolicy, its spec flattened to dotted keys
/// (`K8s.policy`).
async fn policy(client: &kube::Client) -> Result<Subtype, String> {
    let gvk = GroupVersionKind::gvk("nvidia.com", "v1", "ClusterPolicy");
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
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
/// (`NodeTopology.summary`).
async fn summary(client: &kube::Client) -> Result<Subtype, String> {
    let all = list_all(&Api::<Node>::all(client.clone())).await?;
    let has_gpus = |n: &&Node| {
        n.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("nvidia.com/gpu"))
            .is_some_and(|q| q.0 != "0")
    };
    let mut data = BTreeMap::new();
    data.insert("nodes".to_string(), Reading::Int(all.len() as i64));
    data.insert(
        "gpu-nodes".to_string(),
        Reading::Int(all.iter().filter(has_gpus).count() as i64),
    );
    Ok(Subtype::new("summary", data))
}

/// Every object of a list, page by page.
async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>, String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.map_err(|e| crate::k8s::reason(&e))?;
        all.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(all);
        }
    }
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
