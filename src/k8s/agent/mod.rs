//! The snapshot agent (`aicr snapshot --agent`): the objects that run
//! `aicr snapshot -o cm://NAMESPACE/NAME` as a Job on a GPU node and the
//! least rights it needs, each named with a per-run id and labelled with it
//! so two runs never collide and cleanup deletes exactly its own objects.
//! This module owns the [`Spec`] of a run and renders its manifests;
//! [`run`] checks the caller's permissions, creates them, waits for the Job,
//! reads the snapshot back and deletes what it created.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

pub mod fleet;
pub mod run;

/// `app.kubernetes.io/name` of every object.
pub const APP: &str = "aicr";
/// `app.kubernetes.io/component` of every object.
pub const COMPONENT: &str = "snapshot-agent";
/// The label holding the run id.
pub const RUN_LABEL: &str = "app.kubernetes.io/instance";
/// The user and group the default (restricted) pod runs as.
pub const NON_ROOT_ID: i64 = 65532;
/// How long a finished Job stays if cleanup did not run (a safety net).
pub const TTL_AFTER_FINISHED: i64 = 600;
/// How much longer than the CLI's wait the Job may run: the CLI gives up
/// first and reports the pod's state; the Job's own deadline is the safety
/// net when the CLI is gone.
pub const JOB_DEADLINE_MARGIN: u64 = 60;
/// Where `--privileged` mounts the node's `/` (read-only).
pub const HOST_ROOT: &str = "/host";
/// The node selector used when none is given.
pub const DEFAULT_NODE_SELECTOR: (&str, &str) = ("nvidia.com/gpu.present", "true");
/// The taint tolerated when no `--toleration` is given.
pub const DEFAULT_TOLERATION: &str = "nvidia.com/gpu";

/// The default image: a placeholder registry (no image is published yet),
/// tagged with this crate's version.
pub fn default_image() -> String {
    format!("ghcr.io/aicr-rs/aicr:v{}", env!("CARGO_PKG_VERSION"))
}

/// A toleration from `--toleration key[=value][:Effect]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    pub value: Option<String>,
    pub effect: Option<String>,
}

impl Toleration {
    /// Parses `key=value:Effect`, `key:Effect`, `key=value` or `key`.
    pub fn parse(text: &str) -> Result<Toleration, String> {
        let bad = |why: &str| {
            format!(
                "invalid --toleration {text:?}: {why}; give key, key=value, key:Effect or key=value:Effect (Effect: NoSchedule, PreferNoSchedule or NoExecute)"
            )
        };
        let (kv, effect) = match text.rsplit_once(':') {
            Some((kv, e)) => {
                if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e) {
                    return Err(bad(&format!("unknown effect {e:?}")));
                }
                (kv, Some(e.to_string()))
            }
            None => (text, None),
        };
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        if !is_label_key(key) {
            return Err(bad("the key is not a valid label key"));
        }
        if let Some(v) = value {
            if !is_label_value(v) {
                return Err(bad("the value is not a valid label value"));
            }
        }
        Ok(Toleration {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect,
        })
    }

    fn to_json(&self) -> Value {
        let mut t = serde_json::Map::new();
        t.insert("key".into(), json!(self.key));
        match &self.value {
            Some(v) => {
                t.insert("operator".into(), json!("Equal"));
                t.insert("value".into(), json!(v));
            }
            None => {
                t.insert("operator".into(), json!("Exists"));
            }
        }
        if let Some(e) = &self.effect {
            t.insert("effect".into(), json!(e));
        }
        Value::Object(t)
    }
}

/// Parses `--node-selector key=value`.
pub fn parse_node_selector(text: &str) -> Result<(String, String), String> {
    let bad = |why: &str| {
        format!("invalid --node-selector {text:?}: {why}; give key=value, such as nvidia.com/gpu.present=true")
    };
    let (k, v) = text.split_once('=').ok_or_else(|| bad("no ="))?;
    if !is_label_key(k) {
        return Err(bad("the key is not a valid label key"));
    }
    if !is_label_value(v) {
        return Err(bad("the value is not a valid label value"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters.
fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !p.split('.').all(is_dns_label) {
            return false;
        }
    }
    !name.is_empty() && is_label_value(name)
}

/// A label value: at most 63 alphanumerics, `-`, `_`, `.`, starting and
/// ending alphanumeric (or empty).
fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

pub use crate::k8s::access::is_dns_label;

/// A new random run id: 8 lowercase hex digits.
pub fn new_run_id() -> Result<String, String> {
    let mut b = [0u8; 4];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| format!("cannot draw a random run id: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Everything that decides one agent run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub run_id: String,
    pub namespace: String,
    /// The prefix of every object's name (`--job-name`, default `aicr`).
    pub prefix: String,
    /// An existing ServiceAccount to run as; `None` creates one.
    pub service_account: Option<String>,
    pub image: String,
    pub image_pull_secrets: Vec<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    /// The wait for the Job, and its `activeDeadlineSeconds`.
    pub timeout: Duration,
    pub privileged: bool,
    /// Requests one `nvidia.com/gpu`.
    pub require_gpu: bool,
    pub runtime_class: Option<String>,
    /// Arguments passed on to `aicr snapshot` in the pod (collector flags).
    pub snapshot_args: Vec<String>,
}

/// One object the run creates, as the API addresses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: &'static str,
    /// `resource.group` as RBAC names it.
    pub resource: &'static str,
    /// The collection path (`/api/v1/namespaces/NS/configmaps`).
    pub collection: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl Spec {
    /// The name of every namespaced object of the run: `PREFIX-snapshot-ID`.
    pub fn name(&self) -> String {
        format!("{}-snapshot-{}", self.prefix, self.run_id)
    }

    /// The cluster-scoped objects' name, which also says the namespace.
    pub fn cluster_name(&self) -> String {
        format!(
            "{}-snapshot-{}-{}",
            self.prefix, self.namespace, self.run_id
        )
    }

    /// The ServiceAccount the pod runs as.
    pub fn service_account_name(&self) -> String {
        self.service_account.clone().unwrap_or_else(|| self.name())
    }

    /// Where the pod writes the snapshot.
    pub fn configmap_uri(&self) -> String {
        format!("cm://{}/{}", self.namespace, self.name())
    }

    /// The run labels every object carries.
    pub fn labels(&self) -> Value {
        json!({
            "app.kubernetes.io/name": APP,
            "app.kubernetes.io/component": COMPONENT,
            RUN_LABEL: self.run_id,
        })
    }

    /// The label selector of this run's objects.
    pub fn selector(&self) -> String {
        format!("{RUN_LABEL}={}", self.run_id)
    }

    fn meta(&self, name: &str, namespaced: bool) -> Value {
        let mut m = json!({ "name": name, "labels": self.labels() });
        if namespaced {
            m["namespace"] = json!(self.namespace);
        }
        m
    }

    /// The objects of the run, in the order they are created.
    pub fn manifests(&self) -> Vec<Value> {
        let name = self.name();
        let mut out = Vec::new();
        out.extend(self.service_account_manifest());
        // Created empty here, so the pod needs no `create` (which RBAC
        // cannot restrict to one name): it may only read and update it.
        out.push(self.configmap_manifest(&name));
        out.extend(self.rbac_manifests(std::slice::from_ref(&name)));
        out.push(self.job_manifest(&name, &self.configmap_uri(), None));
        out
    }

    /// The objects a fleet run (`--all-nodes`) creates once: the
    /// ServiceAccount and the RBAC objects, the Role granting the
    /// ConfigMaps `names`.
    pub fn shared_manifests(&self, names: &[String]) -> Vec<Value> {
        let mut out: Vec<Value> = self.service_account_manifest().into_iter().collect();
        out.extend(self.rbac_manifests(names));
        out
    }

    /// The objects of one node of a fleet run: its ConfigMap and its Job
    /// (both called `name`), the Job pinned to `node` by name.
    pub fn node_manifests(&self, node: &str, name: &str) -> Vec<Value> {
        let uri = format!("{}{}/{name}", crate::k8s::configmap::SCHEME, self.namespace);
        vec![
            self.configmap_manifest(name),
            self.job_manifest(name, &uri, Some(node)),
        ]
    }

    fn service_account_manifest(&self) -> Option<Value> {
        self.service_account.is_none().then(|| {
            json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": self.meta(&self.name(), true),
            })
        })
    }

    fn configmap_manifest(&self, name: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(name, true),
        })
    }

    /// Role and RoleBinding (the ConfigMaps `names`), ClusterRole and
    /// ClusterRoleBinding (nodes, pods, ClusterPolicies).
    fn rbac_manifests(&self, names: &[String]) -> Vec<Value> {
        let name = self.name();
        let cname = self.cluster_name();
        let subject = json!([{ "kind": "ServiceAccount", "name": self.service_account_name(), "namespace": self.namespace }]);
        vec![
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": self.meta(&name, true),
                "rules": [{
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": names,
                    "verbs": ["get", "update"],
                }],
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": self.meta(&name, true),
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
                "subjects": subject,
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": self.meta(&cname, false),
                "rules": [
                    { "apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list"] },
                    { "apiGroups": ["nvidia.com"], "resources": ["clusterpolicies"], "verbs": ["get", "list"] },
                ],
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": self.meta(&cname, false),
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cname },
                "subjects": subject,
            }),
        ]
    }

    /// The command line of the pod's container.
    pub fn container_args(&self) -> Vec<String> {
        self.container_args_to(&self.configmap_uri())
    }

    /// The command line of a container writing to the ConfigMap `uri`.
    fn container_args_to(&self, uri: &str) -> Vec<String> {
        let mut args = vec!["snapshot".to_string(), "-o".to_string(), uri.to_string()];
        if self.privileged {
            args.push("--root".into());
            args.push(HOST_ROOT.into());
        }
        args.extend(self.snapshot_args.iter().cloned());
        args
    }

    /// The Job `name` writing to `uri`; with `node`, required to run on
    /// the node of that name (a `metadata.name` node affinity, as a
    /// DaemonSet's pods have: the scheduler still checks taints and room).
    fn job_manifest(&self, name: &str, uri: &str, node: Option<&str>) -> Value {
        let mut container = json!({
            "name": "aicr",
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "args": self.container_args_to(uri),
            "env": [{
                "name": "NODE_NAME",
                "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } },
            }],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        });
        let mut pod = json!({
            "serviceAccountName": self.service_account_name(),
            "automountServiceAccountToken": true,
            "restartPolicy": "Never",
            "nodeSelector": self.node_selector,
            "tolerations": self.tolerations.iter().map(Toleration::to_json).collect::<Vec<_>>(),
        });
        if self.privileged {
            pod["hostPID"] = json!(true);
            pod["volumes"] =
                json!([{ "name": "host", "hostPath": { "path": "/", "type": "Directory" } }]);
            container["securityContext"] = json!({ "privileged": true, "runAsUser": 0 });
            container["volumeMounts"] =
                json!([{ "name": "host", "mountPath": HOST_ROOT, "readOnly": true }]);
        } else {
            pod["securityContext"] = json!({
                "runAsNonRoot": true,
                "runAsUser": NON_ROOT_ID,
                "runAsGroup": NON_ROOT_ID,
                "seccompProfile": { "type": "RuntimeDefault" },
            });
            container["securityContext"] = json!({
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": { "drop": ["ALL"] },
            });
        }
        if self.require_gpu {
            container["resources"] = json!({ "limits": { "nvidia.com/gpu": 1 } });
        }
        if let Some(node) = node {
            pod["affinity"] = json!({ "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{ "matchFields": [
                    { "key": "metadata.name", "operator": "In", "values": [node] },
                ] }],
            } } });
        }
        if let Some(rc) = &self.runtime_class {
            pod["runtimeClassName"] = json!(rc);
        }
        if !self.image_pull_secrets.is_empty() {
            pod["imagePullSecrets"] = json!(self
                .image_pull_secrets
                .iter()
                .map(|s| json!({ "name": s }))
                .collect::<Vec<_>>());
        }
        pod["containers"] = json!([container]);
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.meta(name, true),
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": self.timeout.as_secs() + JOB_DEADLINE_MARGIN,
                "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
                "template": {
                    "metadata": { "labels": self.labels() },
                    "spec": pod,
                },
            },
        })
    }

    /// Where each manifest is created, in the same order.
    pub fn objects(&self) -> Vec<ObjectRef> {
        self.manifests().iter().filter_map(object_ref).collect()
    }
}

/// The address of a manifest this module renders.
pub fn object_ref(m: &Value) -> Option<ObjectRef> {
    let kind = m.get("kind")?.as_str()?;
    let name = m.pointer("/metadata/name")?.as_str()?.to_string();
    let ns = m
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (kind, resource, base, plural) = match kind {
        "ServiceAccount" => (
            "ServiceAccount",
            "serviceaccounts",
            "/api/v1",
            "serviceaccounts",
        ),
        "ConfigMap" => ("ConfigMap", "configmaps", "/api/v1", "configmaps"),
        "Role" => (
            "Role",
            "roles.rbac.authorization.k8s.io",
            "/apis/rbac.authorization.k8s.io/v1",
            "roles",
        ),
        "RoleBinding" => (
            "RoleBinding",
            "rolebindings.rbac.authorization.k8s.io",
            "/apis/rbac.authorization.k8s.io/v1",
            "rolebindings",
        ),
        "ClusterRole" => (
            "ClusterRole",
            "clusterroles.rbac.authorization.k8s.io",
            "/apis/rbac.authorization.k8s.io/v1",
            "clusterroles",
        ),
        "ClusterRoleBinding" => (
            "ClusterRoleBinding",
            "clusterrolebindings.rbac.authorization.k8s.io",
            "/apis/rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
        ),
        "Job" => ("Job", "jobs.batch", "/apis/batch/v1", "jobs"),
        _ => return None,
    };
    let collection = match &ns {
        Some(n) => format!("{base}/namespaces/{n}/{plural}"),
        None => format!("{base}/{plural}"),
    };
    Some(ObjectRef {
        kind,
        resource,
        collection,
        name,
        namespace: ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> Spec {
        Spec {
            run_id: "0123abcd".into(),
            namespace: "gpu-team".into(),
            prefix: "aicr".into(),
            service_account: None,
            image: "ghcr.io/aicr-rs/aicr:v0.0.0".into(),
            image_pull_secrets: vec![],
            node_selector: [("nvidia.com/gpu.present".to_string(), "true".to_string())]
                .into_iter()
                .collect(),
            tolerations: vec![Toleration::parse("nvidia.com/gpu").unwrap()],
            timeout: Duration::from_secs(300),
            privileged: false,
            require_gpu: false,
            runtime_class: None,
            snapshot_args: vec![],
        }
    }

    #[test]
    fn tolerations_parse() {
        assert_eq!(
            Toleration::parse("a=b:NoSchedule").unwrap(),
            Toleration {
                key: "a".into(),
                value: Some("b".into()),
                effect: Some("NoSchedule".into())
            }
        );
        assert_eq!(
            Toleration::parse("example.com/k:NoExecute")
                .unwrap()
                .effect
                .as_deref(),
            Some("NoExecute")
        );
        assert_eq!(Toleration::parse("k").unwrap().value, None);
        assert_eq!(
            Toleration::parse("k=v:Sometimes").unwrap_err(),
            "invalid --toleration \"k=v:Sometimes\": unknown effect \"Sometimes\"; give key, key=value, key:Effect or key=value:Effect (Effect: NoSchedule, PreferNoSchedule or NoExecute)"
        );
        assert!(Toleration::parse("=v").is_err());
        assert!(Toleration::parse("k=v v").is_err());
    }

    #[test]
    fn node_selectors_parse() {
        assert_eq!(
            parse_node_selector("kubernetes.io/hostname=gpu-1").unwrap(),
            ("kubernetes.io/hostname".into(), "gpu-1".into())
        );
        assert_eq!(
            parse_node_selector("novalue").unwrap_err(),
            "invalid --node-selector \"novalue\": no =; give key=value, such as nvidia.com/gpu.present=true"
        );
        assert!(parse_node_selector("a b=c").is_err());
    }

    #[test]
    fn run_ids_are_hex_and_differ() {
        let a = new_run_id().unwrap();
        let b = new_run_id().unwrap();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    fn render(s: &Spec) -> String {
        s.manifests()
            .iter()
            .map(|m| {
                format!(
                    "---\n{}",
                    crate::serializer::render(m, crate::serializer::Format::Yaml)
                )
            })
            .collect()
    }

    #[test]
    fn restricted_manifests() {
        insta::assert_snapshot!("agent_restricted", render(&spec()));
    }

    #[test]
    fn privileged_manifests_with_options() {
        let mut s = spec();
        s.privileged = true;
        s.service_account = Some("existing".into());
        s.image_pull_secrets = vec!["regcred".into()];
        s.require_gpu = true;
        s.tolerations = vec![Toleration::parse("dedicated=gpu:NoSchedule").unwrap()];
        s.snapshot_args = vec!["--filter".into(), "gpu,k8s".into()];
        insta::assert_snapshot!("agent_privileged", render(&s));
    }

    /// Every object carries the run label, every name the run id, and the
    /// objects are addressed where their kind lives.
    #[test]
    fn every_object_is_labelled_and_addressed() {
        let s = spec();
        let ms = s.manifests();
        assert_eq!(ms.len(), 7);
        for m in &ms {
            assert_eq!(
                m.pointer("/metadata/labels/app.kubernetes.io~1instance"),
                Some(&json!("0123abcd"))
            );
            assert!(m
                .pointer("/metadata/name")
                .unwrap()
                .as_str()
                .unwrap()
                .contains("0123abcd"));
        }
        let objs = s.objects();
        assert_eq!(objs.len(), 7);
        assert_eq!(
            objs[0].collection,
            "/api/v1/namespaces/gpu-team/serviceaccounts"
        );
        assert_eq!(
            objs[4].collection,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles"
        );
        assert_eq!(objs[4].name, "aicr-snapshot-gpu-team-0123abcd");
        assert_eq!(
            objs[6].collection,
            "/apis/batch/v1/namespaces/gpu-team/jobs"
        );
    }
}
