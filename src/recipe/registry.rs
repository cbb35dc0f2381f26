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

/// The value paths that hold a component's image references, rewritten by
/// `bundle --registry-mirror`, each with what the chart itself defaults to
/// there.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    try_from = "ImageValuesDoc"
)]
pub struct ImageValues {
    /// The chart version whose values.yaml the defaults were read from; a
    /// bundle that pins another version is warned to check them.
    #[serde(default, deserialize_with = "super::metadata::scalar_string")]
    pub chart_version: String,
    #[serde(default)]
    pub repository_paths: Vec<ImagePath>,
    /// Images of the chart that no value path here can rewrite (a list
    /// entry, an environment variable), said as a warning.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub incomplete: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImageValuesDoc {
    #[serde(default, deserialize_with = "super::metadata::scalar_string")]
    chart_version: String,
    #[serde(default)]
    repository_paths: Vec<ImagePath>,
    #[serde(default)]
    incomplete: String,
}

impl TryFrom<ImageValuesDoc> for ImageValues {
    type Error = String;

    fn try_from(d: ImageValuesDoc) -> Result<ImageValues, String> {
        let mut seen = std::collections::BTreeSet::new();
        for p in &d.repository_paths {
            if !seen.insert(p.path.as_str()) {
                return Err(format!("image path {:?} is listed twice", p.path));
            }
        }
        Ok(ImageValues {
            chart_version: d.chart_version,
            repository_paths: d.repository_paths,
            incomplete: d.incomplete.trim().to_string(),
        })
    }
}

/// What the value at an [`ImagePath`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageKind {
    /// A whole repository, registry host included or Docker Hub's implied
    /// (`quay.io/jetstack/cert-manager-controller`, `bitnami/kubectl`),
    /// with or without a tag or digest.
    #[default]
    Repository,
    /// A registry host and namespace that the chart joins with an image
    /// name held at another path (`nvcr.io/nvidia` + `gpu-operator`).
    Prefix,
    /// A registry host alone, the repository at another path (`quay.io` +
    /// `prometheus/node-exporter`), or a chart-wide registry that overrides
    /// each image's (`global.imageRegistry`).
    Registry,
}

impl ImageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Repository => "repository",
            ImageKind::Prefix => "prefix",
            ImageKind::Registry => "registry",
        }
    }
}

/// One value path that holds an image reference: written as a plain path
/// (a whole repository that the component's values must set), or as
/// `{path, kind, default}`, where `default` is what the chart's own
/// values.yaml holds there, so that a path the recipe leaves unset is
/// written with the mirrored default. An empty default says the chart
/// pulls nothing from there unless it is set (`global.imageRegistry`, an
/// optional image): an unset path stays unset, a set one is rewritten.
/// `optional: true` (with no default) marks a path whose chart default is
/// not recorded (a reference whose tag moves with the chart version, a
/// default that could not be read): set, it is rewritten; unset, a warning
/// names it instead of the error a plain path gives.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePath {
    pub path: String,
    pub kind: ImageKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImagePathDoc {
    path: String,
    #[serde(default)]
    kind: ImageKind,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    optional: bool,
}

impl<'de> Deserialize<'de> for ImagePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ImagePath, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ImagePathDoc;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value path, or a map {path, kind, default}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ImagePathDoc, E> {
                Ok(ImagePathDoc {
                    path: v.to_string(),
                    kind: ImageKind::Repository,
                    default: None,
                    optional: false,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<ImagePathDoc, A::Error> {
                ImagePathDoc::deserialize(serde::de::value::MapAccessDeserializer::new(m))
            }
        }
        let doc = d.deserialize_any(V)?;
        ImagePath::try_from(doc).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<ImagePathDoc> for ImagePath {
    type Error = String;

    fn try_from(d: ImagePathDoc) -> Result<ImagePath, String> {
        let what = format!("image path {:?}", crate::error::excerpt(&d.path));
        let steps = super::path::Path::parse(&d.path).map_err(|e| format!("{what}: {e}"))?;
        if !matches!(steps.0.first(), Some(super::path::Segment::Key(_))) {
            return Err(format!("{what}: a value path starts with a key"));
        }
        if let Some(def) = d.default.as_deref().filter(|d| !d.is_empty()) {
            let plausible = def.len() <= 255
                && !def.contains("://")
                && !def.starts_with('/')
                && !def.ends_with('/')
                && !def.contains("//")
                && def.bytes().all(|b| b.is_ascii_graphic());
            if !plausible {
                return Err(format!(
                    "{what}: default {:?} is not an image {}: give it as the chart's values.yaml does, without a scheme (nvcr.io/nvidia, quay.io, registry.k8s.io/nfd/node-feature-discovery)",
                    crate::error::excerpt(def),
                    d.kind.as_str()
                ));
            }
        }
        if d.optional && d.default.is_some() {
            return Err(format!(
                "{what}: `optional` is for a path whose chart default is not recorded; give `default` or `optional: true`, not both"
            ));
        }
        Ok(ImagePath {
            path: d.path,
            kind: d.kind,
            default: d.default,
            optional: d.optional,
        })
    }
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

    fn images(yaml: &str) -> Result<ImageValues, String> {
        let text = format!("name: x\nimages:\n{yaml}");
        serde_yaml_ng::from_str::<RegistryComponent>(&text)
            .map(|c| c.images.unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn image_paths_load_plain_or_with_their_defaults() {
        // Old data: plain strings, a whole repository the values must set.
        let old = images("  repositoryPaths:\n    - image.repository\n").unwrap();
        assert_eq!(
            old.repository_paths,
            [ImagePath {
                path: "image.repository".into(),
                kind: ImageKind::Repository,
                default: None,
                optional: false,
            }]
        );
        let new = images(
            "  chartVersion: \"25.10\"\n  repositoryPaths:\n    - {path: operator.repository, kind: prefix, default: nvcr.io/nvidia}\n    - {path: global.imageRegistry, kind: registry, default: \"\"}\n    - {path: a.b, optional: true}\n  incomplete: \" an env image \"\n",
        )
        .unwrap();
        assert_eq!(new.chart_version, "25.10");
        assert_eq!(new.incomplete, "an env image");
        assert_eq!(new.repository_paths[0].kind, ImageKind::Prefix);
        assert_eq!(
            new.repository_paths[0].default.as_deref(),
            Some("nvcr.io/nvidia")
        );
        assert_eq!(new.repository_paths[1].default.as_deref(), Some(""));
        assert!(new.repository_paths[2].optional);
    }

    #[test]
    fn bad_image_paths_are_refused() {
        for (yaml, want) in [
            ("  repositoryPaths: [{path: a, kind: tag}]\n", "unknown variant `tag`, expected one of `repository`, `prefix`, `registry`"),
            ("  repositoryPaths: [{path: a, dflt: x}]\n", "unknown field `dflt`"),
            ("  repositoryPaths: [\"a..b\"]\n", "image path \"a..b\": "),
            ("  repositoryPaths: [\"[0].a\"]\n", "image path \"[0].a\": a value path starts with a key"),
            ("  repositoryPaths: [{path: a, default: \"https://nvcr.io/x\"}]\n", "image path \"a\": default \"https://nvcr.io/x\" is not an image repository: give it as the chart's values.yaml does"),
            ("  repositoryPaths: [{path: a, default: \"a b\"}]\n", "is not an image repository"),
            ("  repositoryPaths: [{path: a, default: x.io/y, optional: true}]\n", "image path \"a\": `optional` is for a path whose chart default is not recorded; give `default` or `optional: true`, not both"),
            ("  repositoryPaths: [a.b, {path: a.b, default: x.io/y}]\n", "image path \"a.b\" is listed twice"),
            ("  repositoryPaths: [[a]]\n", "expected a value path, or a map {path, kind, default}"),
        ] {
            let err = images(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
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
