//! The component registry (`registry.yaml`, kind `ComponentRegistry`): every
//! component aicr knows, its chart defaults, the aliases `--set` accepts, and
//! where node scheduling settings go in its values. Adding a component is an
//! entry here plus its data files; no code.

use serde::{Deserialize, Serialize};

pub const REGISTRY_KIND: &str = "ComponentRegistry";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryDoc {
    // kind and apiVersion are checked by serializer::typed_document.
    #[allow(dead_code)]
    pub kind: String,
    #[allow(dead_code)]
    pub api_version: String,
    #[serde(default)]
    #[allow(dead_code)] // accepted for Kubernetes-style documents; not used
    pub metadata: Option<super::metadata::ObjectMeta>,
    #[serde(default)]
    pub components: Vec<RegistryComponent>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryComponent {
    #[serde(deserialize_with = "super::metadata::component_name")]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub value_override_keys: Vec<String>,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    #[serde(default)]
    pub helm: Option<HelmDefaults>,
    #[serde(default)]
    pub kustomize: Option<KustomizeDefaults>,
    #[serde(default)]
    pub manifest: Option<ManifestDefaults>,
    #[serde(default)]
    pub node_scheduling: Option<NodeScheduling>,
    #[serde(default)]
    pub pod_scheduling: Option<PodScheduling>,
    #[serde(default)]
    pub validations: Vec<ComponentValidation>,
    /// What "deployed and ready" means for this component, checked by
    /// `aicr validate --phase deployment`.
    #[serde(default)]
    pub readiness: Option<Readiness>,
    /// Where the component's values name container images, for
    /// `bundle --registry-mirror`.
    #[serde(default)]
    pub images: Option<ImageValues>,
}

/// The value paths that hold a component's image repositories (a registry
/// host and path, with or without a tag), rewritten by
/// `bundle --registry-mirror`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageValues {
    #[serde(default)]
    pub repository_paths: Vec<String>,
}

/// A component's readiness declaration: the objects whose state says it is
/// deployed and ready. Data, not code: a component added through `--data`
/// declares its own. Namespaced objects live in the component's namespace
/// (the recipe's componentRef `namespace`, else the registry default) unless
/// an entry names another.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    /// An asynchronous component (an operator whose readiness comes later,
    /// through the objects it reconciles): `deploy.sh` installs it without
    /// `helm --wait`, then awaits the workloads, CRDs and fields below.
    #[serde(default, rename = "async")]
    pub asynchronous: bool,
    /// The Helm release name; the component name when absent. Components
    /// without a chart (manifests only) have no release to check.
    #[serde(default)]
    pub release: Option<String>,
    /// Deployments, DaemonSets and StatefulSets that must be ready.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    /// CustomResourceDefinitions (`plural.group`) that must be Established.
    #[serde(default)]
    pub crds: Vec<String>,
    /// Custom resources whose field must hold a value (`ClusterPolicy`
    /// `status.state` is `ready`).
    #[serde(default)]
    pub fields: Vec<FieldEquals>,
}

/// The kinds of workload a readiness declaration may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }

    /// The resource name as RBAC spells it (`deployments.apps`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments.apps",
            WorkloadKind::DaemonSet => "daemonsets.apps",
            WorkloadKind::StatefulSet => "statefulsets.apps",
        }
    }
}

/// One workload: by `name`, or every workload of the kind matching a label
/// `selector` (at least one must exist). Exactly one of the two is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    try_from = "WorkloadDoc"
)]
pub struct Workload {
    pub kind: WorkloadKind,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub selector: Option<String>,
    /// Another namespace than the component's.
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WorkloadDoc {
    kind: WorkloadKind,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

impl TryFrom<WorkloadDoc> for Workload {
    type Error = String;

    fn try_from(d: WorkloadDoc) -> Result<Workload, String> {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if given(&d.name) == given(&d.selector) {
            return Err(format!(
                "readiness workload of kind {} needs exactly one of `name` and `selector`",
                d.kind.as_str()
            ));
        }
        Ok(Workload {
            kind: d.kind,
            name: d.name.filter(|s| !s.trim().is_empty()),
            selector: d.selector.filter(|s| !s.trim().is_empty()),
            namespace: d.namespace.filter(|s| !s.trim().is_empty()),
        })
    }
}

/// Whether a custom resource is namespaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[default]
    Namespaced,
    Cluster,
}

/// A custom resource's field that must equal a value: `field` is a dotted
/// path into the object (`status.state`), compared with `equals` as text
/// (numbers and booleans as JSON writes them). Without `name`, every object
/// of the kind is checked, and at least one must exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(try_from = "FieldEqualsDoc")]
pub struct FieldEquals {
    /// `group/version` (`nvidia.com/v1`), or `version` for the core group.
    pub api_version: String,
    pub kind: String,
    /// The plural resource name (`clusterpolicies`).
    pub resource: String,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub name: Option<String>,
    /// Another namespace than the component's (namespaced kinds).
    #[serde(default)]
    pub namespace: Option<String>,
    pub field: String,
    pub equals: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default)]
    pub assert_file: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmDefaults {
    #[serde(default)]
    pub default_repository: String,
    #[serde(default)]
    pub default_chart: String,
    #[serde(default, deserialize_with = "super::metadata::scalar_string")]
    pub default_version: String,
    #[serde(default)]
    pub default_namespace: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeDefaults {
    #[serde(default)]
    pub default_source: String,
    #[serde(default)]
    pub default_path: String,
    #[serde(default, deserialize_with = "super::metadata::scalar_string")]
    pub default_tag: String,
    #[serde(default)]
    pub default_namespace: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestDefaults {
    #[serde(default)]
    pub default_namespace: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeScheduling {
    #[serde(default)]
    pub system: Option<SchedulingPaths>,
    #[serde(default)]
    pub accelerated: Option<SchedulingPaths>,
    #[serde(default)]
    pub node_count_paths: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulingPaths {
    #[serde(default)]
    pub node_selector_paths: Vec<String>,
    #[serde(default)]
    pub toleration_paths: Vec<String>,
    #[serde(default)]
    pub taint_str_paths: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodScheduling {
    #[serde(default)]
    pub workload: Option<WorkloadScheduling>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadScheduling {
    #[serde(default)]
    pub workload_selector_paths: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentValidation {
    pub function: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub conditions: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub message: String,
}

impl RegistryComponent {
    /// The namespace the component installs into by default.
    pub fn default_namespace(&self) -> &str {
        self.helm
            .as_ref()
            .map(|h| h.default_namespace.as_str())
            .or(self
                .kustomize
                .as_ref()
                .map(|k| k.default_namespace.as_str()))
            .or(self.manifest.as_ref().map(|m| m.default_namespace.as_str()))
            .unwrap_or("")
    }

    /// The bare chart name (`nvidia/gpu-operator` gives `gpu-operator`).
    pub fn default_chart(&self) -> &str {
        let chart = self.helm.as_ref().map_or("", |h| h.default_chart.as_str());
        chart.rsplit('/').next().unwrap_or(chart)
    }

    pub fn default_source(&self) -> &str {
        self.helm
            .as_ref()
            .map(|h| h.default_repository.as_str())
            .or(self.kustomize.as_ref().map(|k| k.default_source.as_str()))
            .unwrap_or("")
    }

    pub fn default_version(&self) -> &str {
        self.helm
            .as_ref()
            .map(|h| h.default_version.as_str())
            .or(self.kustomize.as_ref().map(|k| k.default_tag.as_str()))
            .unwrap_or("")
    }
}

/// The merged registry: embedded components, with `--data` entries replacing
/// same-named ones and adding new ones after them.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub components: Vec<RegistryComponent>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&RegistryComponent> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn merge(&mut self, other: Vec<RegistryComponent>) {
        for c in other {
            match self.components.iter_mut().find(|e| e.name == c.name) {
                Some(existing) => *existing = c,
                None => self.components.push(c),
            }
        }
    }

    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
        v.sort_unstable();
        v
    }
}

/// [`FieldEquals`] as written, checked before use.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FieldEqualsDoc {
    api_version: String,
    kind: String,
    resource: String,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    field: String,
    #[serde(deserialize_with = "super::metadata::scalar_string")]
    equals: String,
}

impl TryFrom<FieldEqualsDoc> for FieldEquals {
    type Error = String;

    fn try_from(d: FieldEqualsDoc) -> Result<FieldEquals, String> {
        let what = format!("readiness field check of kind {:?}", d.kind);
        let parts: Vec<&str> = d.api_version.split('/').collect();
        if parts.len() > 2 || parts.iter().any(|p| p.trim().is_empty()) {
            return Err(format!(
                "{what}: apiVersion {:?} is not `group/version` or `version`",
                d.api_version
            ));
        }
        for (name, v) in [("kind", &d.kind), ("resource", &d.resource)] {
            if v.trim().is_empty() || v.contains('/') {
                return Err(format!(
                    "{what}: `{name}` must be a non-empty name without `/`"
                ));
            }
        }
        if d.field.split('.').any(|p| p.is_empty()) {
            return Err(format!(
                "{what}: field {:?} must be a dotted path such as `status.state`",
                d.field
            ));
        }
        if d.scope == Scope::Cluster && d.namespace.is_some() {
            return Err(format!("{what}: a Cluster-scoped kind takes no namespace"));
        }
        Ok(FieldEquals {
            api_version: d.api_version,
            kind: d.kind,
            resource: d.resource,
            scope: d.scope,
            name: d.name.filter(|s| !s.trim().is_empty()),
            namespace: d.namespace.filter(|s| !s.trim().is_empty()),
            field: d.field,
            equals: d.equals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::store::DataStore;

    /// Every embedded component says what its readiness is, and every
    /// chart component's workloads or CRDs are named.
    #[test]
    fn every_embedded_component_declares_readiness() {
        let reg = DataStore::embedded().registry().unwrap();
        assert_eq!(reg.components.len(), 19);
        for c in &reg.components {
            let r = c
                .readiness
                .as_ref()
                .unwrap_or_else(|| panic!("{} has no readiness", c.name));
            assert!(
                !(r.workloads.is_empty() && r.crds.is_empty() && r.fields.is_empty()),
                "{}: empty readiness",
                c.name
            );
        }
        let gpu = reg.get("gpu-operator").unwrap().readiness.clone().unwrap();
        assert_eq!(
            gpu.crds,
            ["clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com"]
        );
        assert_eq!(gpu.fields[0].field, "status.state");
        assert_eq!(gpu.fields[0].equals, "ready");
        assert_eq!(gpu.fields[0].scope, Scope::Cluster);
    }

    fn parse(readiness: &str) -> Result<RegistryComponent, String> {
        let text = format!("name: x\nreadiness:\n{readiness}");
        serde_yaml_ng::from_str::<RegistryComponent>(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_readiness_declarations_are_refused() {
        for (yaml, want) in [
            (
                "  workloads: [{kind: Deployment}]\n",
                "readiness workload of kind Deployment needs exactly one of `name` and `selector`",
            ),
            (
                "  workloads: [{kind: DaemonSet, name: a, selector: b=c}]\n",
                "readiness workload of kind DaemonSet needs exactly one of `name` and `selector`",
            ),
            ("  workloads: [{kind: Job, name: a}]\n", "unknown variant `Job`"),
            ("  crd: [a]\n", "unknown field `crd`"),
            (
                "  fields: [{apiVersion: a/b/c, kind: K, resource: ks, field: s, equals: x}]\n",
                "apiVersion \"a/b/c\" is not `group/version` or `version`",
            ),
            (
                "  fields: [{apiVersion: v1, kind: K, resource: ks, field: status..x, equals: x}]\n",
                "field \"status..x\" must be a dotted path",
            ),
            (
                "  fields: [{apiVersion: v1, kind: K, resource: ks, scope: Cluster, namespace: n, field: a, equals: x}]\n",
                "a Cluster-scoped kind takes no namespace",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        let ok = parse("  release: other\n  fields: [{apiVersion: v1, kind: K, resource: ks, field: a.b, equals: 3}]\n")
            .unwrap();
        let r = ok.readiness.unwrap();
        assert_eq!(r.release.as_deref(), Some("other"));
        assert_eq!(r.fields[0].equals, "3");
    }
}
