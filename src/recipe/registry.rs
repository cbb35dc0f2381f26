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
